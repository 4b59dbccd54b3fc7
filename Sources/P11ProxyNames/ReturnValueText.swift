// CK_RV values as text for messages ("C_Initialize failed: CKR_DEVICE_ERROR"), shared by the
// module's ReturnValue and the `p11proxy` command so both print a code the same way.
import CPKCS11

extension PKCS11Name {
    /// The spec's name, or `CKR_0x...` in hex for a code it does not name (vendor codes).
    package static func returnValueText(_ value: CK_ULONG) -> String {
        returnValue(value).map { $0.description } ?? "CKR_0x" + String(value, radix: 16, uppercase: true)
    }
}
