// The fixed PKCS#11 structures in replies, field by field in p11-kit's order (rpc-client.c
// OUT_INFO / OUT_SLOT_INFO / OUT_TOKEN_INFO / OUT_SESSION_INFO / OUT_MECHANISM_INFO): CK_INFO
// "vsusv", CK_SLOT_INFO "ssuvv", CK_TOKEN_INFO "ssssuuuuuuuuuuuvvs", CK_SESSION_INFO "uuuu",
// CK_MECHANISM_INFO "uuu". Decoded into a local value; the caller's struct is written only
// after the whole reply checked out.
import CPKCS11

extension RPCReply {
    /// "s" into one fixed-size field of a struct held in `value`.
    private mutating func text<T>(_ field: inout T) throws(RPCError) {
        try withUnsafeMutableBytes(of: &field) { (buffer) throws(RPCError) in
            try spaceString(into: buffer.baseAddress!, size: buffer.count)
        }
    }

    mutating func info() throws(RPCError) -> CK_INFO {
        var info = CK_INFO()
        info.cryptokiVersion = try version()
        try text(&info.manufacturerID)
        info.flags = try ulong()
        try text(&info.libraryDescription)
        info.libraryVersion = try version()
        return info
    }

    mutating func slotInfo() throws(RPCError) -> CK_SLOT_INFO {
        var info = CK_SLOT_INFO()
        try text(&info.slotDescription)
        try text(&info.manufacturerID)
        info.flags = try ulong()
        info.hardwareVersion = try version()
        info.firmwareVersion = try version()
        return info
    }

    mutating func tokenInfo() throws(RPCError) -> CK_TOKEN_INFO {
        var info = CK_TOKEN_INFO()
        try text(&info.label)
        try text(&info.manufacturerID)
        try text(&info.model)
        try text(&info.serialNumber)
        info.flags = try ulong()
        info.ulMaxSessionCount = try ulong()
        info.ulSessionCount = try ulong()
        info.ulMaxRwSessionCount = try ulong()
        info.ulRwSessionCount = try ulong()
        info.ulMaxPinLen = try ulong()
        info.ulMinPinLen = try ulong()
        info.ulTotalPublicMemory = try ulong()
        info.ulFreePublicMemory = try ulong()
        info.ulTotalPrivateMemory = try ulong()
        info.ulFreePrivateMemory = try ulong()
        info.hardwareVersion = try version()
        info.firmwareVersion = try version()
        try text(&info.utcTime)
        return info
    }

    mutating func sessionInfo() throws(RPCError) -> CK_SESSION_INFO {
        var info = CK_SESSION_INFO()
        info.slotID = try ulong()
        info.state = try ulong()
        info.flags = try ulong()
        info.ulDeviceError = try ulong()
        return info
    }

    mutating func mechanismInfo() throws(RPCError) -> CK_MECHANISM_INFO {
        var info = CK_MECHANISM_INFO()
        info.ulMinKeySize = try ulong()
        info.ulMaxKeySize = try ulong()
        info.flags = try ulong()
        return info
    }
}
