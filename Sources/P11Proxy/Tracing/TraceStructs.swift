// The info structures a module fills in (C_GetInfo, C_GetSlotInfo, C_GetTokenInfo,
// C_GetSessionInfo, C_GetMechanismInfo) and C_Initialize's arguments, as p11-kit prints them.
import CPKCS11
import P11ProxyNames
import Glibc

enum TraceStructs {
    static func append<T>(_ out: inout TraceBuffer, json: Bool, _ value: UnsafeMutablePointer<T>) {
        switch value {
        case let info as UnsafeMutablePointer<CK_INFO>: self.info(&out, json: json, info.pointee)
        case let info as UnsafeMutablePointer<CK_SLOT_INFO>: slotInfo(&out, json: json, info.pointee)
        case let info as UnsafeMutablePointer<CK_TOKEN_INFO>: tokenInfo(&out, json: json, info.pointee)
        case let info as UnsafeMutablePointer<CK_SESSION_INFO>: sessionInfo(&out, json: json, info.pointee)
        case let info as UnsafeMutablePointer<CK_MECHANISM_INFO>: mechanismInfo(&out, json: json, info.pointee)
        default: TraceValue.pointer(&out, json: json, UnsafeRawPointer(value))
        }
    }

    /// A blank-padded text field, trailing blanks dropped.
    static func padded<Field>(_ out: inout TraceBuffer, json: Bool, _ field: Field) {
        var field = field
        withUnsafeBytes(of: &field) { bytes in
            var length = bytes.count
            while length > 0 && (bytes[length - 1] == 0x20 || bytes[length - 1] == 0) { length -= 1 }
            TraceValue.string(&out, json: json, UnsafeRawBufferPointer(rebasing: bytes[0..<length]))
        }
    }

    static func info(_ out: inout TraceBuffer, json: Bool, _ info: CK_INFO) {
        var object = TraceObject(&out, json: json)
        object.member(&out, "cryptokiVersion"); TraceValue.version(&out, json: json, info.cryptokiVersion)
        object.member(&out, "manufacturerID"); padded(&out, json: json, info.manufacturerID)
        object.member(&out, "flags"); TraceValue.ulong(&out, json: json, info.flags)
        object.member(&out, "libraryDescription"); padded(&out, json: json, info.libraryDescription)
        object.member(&out, "libraryVersion"); TraceValue.version(&out, json: json, info.libraryVersion)
        object.close(&out)
    }

    static func slotInfo(_ out: inout TraceBuffer, json: Bool, _ info: CK_SLOT_INFO) {
        var object = TraceObject(&out, json: json)
        object.member(&out, "slotDescription"); padded(&out, json: json, info.slotDescription)
        object.member(&out, "manufacturerID"); padded(&out, json: json, info.manufacturerID)
        object.member(&out, "flags"); TraceValue.flags(&out, json: json, info.flags, .slot)
        object.member(&out, "hardwareVersion"); TraceValue.version(&out, json: json, info.hardwareVersion)
        object.member(&out, "firmwareVersion"); TraceValue.version(&out, json: json, info.firmwareVersion)
        object.close(&out)
    }

    static func tokenInfo(_ out: inout TraceBuffer, json: Bool, _ info: CK_TOKEN_INFO) {
        var object = TraceObject(&out, json: json)
        object.member(&out, "label"); padded(&out, json: json, info.label)
        object.member(&out, "manufacturerID"); padded(&out, json: json, info.manufacturerID)
        object.member(&out, "model"); padded(&out, json: json, info.model)
        object.member(&out, "serialNumber"); padded(&out, json: json, info.serialNumber)
        object.member(&out, "flags"); TraceValue.flags(&out, json: json, info.flags, .token)
        object.member(&out, "ulMaxSessionCount"); TraceValue.ulong(&out, json: json, info.ulMaxSessionCount)
        object.member(&out, "ulSessionCount"); TraceValue.ulong(&out, json: json, info.ulSessionCount)
        object.member(&out, "ulMaxRwSessionCount"); TraceValue.ulong(&out, json: json, info.ulMaxRwSessionCount)
        object.member(&out, "ulRwSessionCount"); TraceValue.ulong(&out, json: json, info.ulRwSessionCount)
        object.member(&out, "ulMaxPinLen"); TraceValue.ulong(&out, json: json, info.ulMaxPinLen)
        object.member(&out, "ulMinPinLen"); TraceValue.ulong(&out, json: json, info.ulMinPinLen)
        object.member(&out, "ulTotalPublicMemory"); TraceValue.ulong(&out, json: json, info.ulTotalPublicMemory)
        object.member(&out, "ulFreePublicMemory"); TraceValue.ulong(&out, json: json, info.ulFreePublicMemory)
        object.member(&out, "ulTotalPrivateMemory"); TraceValue.ulong(&out, json: json, info.ulTotalPrivateMemory)
        object.member(&out, "ulFreePrivateMemory"); TraceValue.ulong(&out, json: json, info.ulFreePrivateMemory)
        object.member(&out, "hardwareVersion"); TraceValue.version(&out, json: json, info.hardwareVersion)
        object.member(&out, "firmwareVersion"); TraceValue.version(&out, json: json, info.firmwareVersion)
        object.member(&out, "utcTime"); padded(&out, json: json, info.utcTime)
        object.close(&out)
    }

    static func sessionInfo(_ out: inout TraceBuffer, json: Bool, _ info: CK_SESSION_INFO) {
        var object = TraceObject(&out, json: json)
        object.member(&out, "slotID"); TraceValue.handle(&out, json: json, info.slotID, .slot)
        object.member(&out, "state"); TraceValue.named(&out, json: json, info.state, PKCS11Name.sessionState)
        object.member(&out, "flags"); TraceValue.flags(&out, json: json, info.flags, .session)
        object.member(&out, "ulDeviceError"); TraceValue.ulong(&out, json: json, info.ulDeviceError)
        object.close(&out)
    }

    static func mechanismInfo(_ out: inout TraceBuffer, json: Bool, _ info: CK_MECHANISM_INFO) {
        var object = TraceObject(&out, json: json)
        object.member(&out, "ulMinKeySize"); TraceValue.ulong(&out, json: json, info.ulMinKeySize)
        object.member(&out, "ulMaxKeySize"); TraceValue.ulong(&out, json: json, info.ulMaxKeySize)
        object.member(&out, "flags"); TraceValue.flags(&out, json: json, info.flags, .mechanism)
        object.close(&out)
    }

    static func initializeArguments(_ out: inout TraceBuffer, json: Bool, _ arguments: CK_C_INITIALIZE_ARGS) {
        var object = TraceObject(&out, json: json)
        let callbacks = arguments.CreateMutex != nil || arguments.DestroyMutex != nil
            || arguments.LockMutex != nil || arguments.UnlockMutex != nil
        object.member(&out, "mutexCallbacks"); TraceValue.bool(&out, json: json, callbacks ? 1 : 0)
        object.member(&out, "flags"); TraceValue.flags(&out, json: json, arguments.flags, .initialize)
        object.member(&out, "pReserved")
        if let reserved = arguments.pReserved {
            let text = reserved.assumingMemoryBound(to: CChar.self)
            TraceValue.string(&out, json: json, UnsafeRawBufferPointer(start: reserved, count: strnlen(text, 256)))
        } else {
            TraceValue.pointer(&out, json: json, nil)
        }
        object.close(&out)
    }
}
