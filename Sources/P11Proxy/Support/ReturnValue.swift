// CK_RV as data, not a closed enum: a module's vendor codes pass through unchanged
// (like swift-system's Errno). Converted to CK_RV only at the exported boundary.
import CPKCS11
import P11ProxyNames

struct ReturnValue: RawRepresentable, Equatable, Hashable, Error, Sendable, CustomStringConvertible {
    var rawValue: CK_RV
    init(rawValue: CK_RV) { self.rawValue = rawValue }
    init(_ value: CK_RV) { self.rawValue = value }
    init(_ value: Int32) { self.rawValue = CK_RV(value) }

    static let ok = ReturnValue(CK_RV(CKR_OK))
    static let slotIDInvalid = ReturnValue(CK_RV(CKR_SLOT_ID_INVALID))
    static let generalError = ReturnValue(CK_RV(CKR_GENERAL_ERROR))
    static let argumentsBad = ReturnValue(CK_RV(CKR_ARGUMENTS_BAD))
    static let functionNotSupported = ReturnValue(CK_RV(CKR_FUNCTION_NOT_SUPPORTED))
    static let sessionHandleInvalid = ReturnValue(CK_RV(CKR_SESSION_HANDLE_INVALID))
    static let cryptokiNotInitialized = ReturnValue(CK_RV(CKR_CRYPTOKI_NOT_INITIALIZED))
    static let cryptokiAlreadyInitialized = ReturnValue(CK_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED))

    /// The spec's name (the tracer's table), or the value in hex for a vendor code.
    var description: String {
        PKCS11Name.returnValueText(rawValue)
    }
}
