// C_GetInfo (p11proxy describes itself; in spy mode the module does) and the function-list
// getters reached through a caller's own table, which return that caller's tables rather than
// making a new caller.
import CPKCS11
import Glibc

/// The "PKCS 11" interfaces p11proxy offers each caller, newest first: C_GetInterfaceList lists
/// them in this order, and C_GetInterface without a version gives the first.
enum InterfaceVersion: Int {
    case v3_2 = 0, v3_0, v2_40

    var version: CK_VERSION {
        switch self {
        case .v3_2: CK_VERSION(major: 3, minor: 2)
        case .v3_0: CK_VERSION(major: 3, minor: 0)
        case .v2_40: CK_VERSION(major: 2, minor: 40)
        }
    }

    init?(_ version: CK_VERSION) {
        switch (version.major, version.minor) {
        case (3, 2): self = .v3_2
        case (3, 0): self = .v3_0
        case (2, 40): self = .v2_40
        default: return nil
        }
    }
}

extension Entry {
    static let libraryVersion = CK_VERSION(major: 0, minor: 1)

    /// Built once: C_GetInfo is called in loops by some applications (p11-kit answers it from a
    /// static structure too). cryptokiVersion is the newest interface's; callers of an older
    /// list get theirs (`C_GetInfo(_:_:_:)`).
    static let info: CK_INFO = {
        var info = CK_INFO()
        info.cryptokiVersion = InterfaceVersion.v3_2.version
        PaddedText.write("p11proxy", into: &info.manufacturerID)
        info.flags = 0
        PaddedText.write("p11proxy PKCS#11 proxy module", into: &info.libraryDescription)
        info.libraryVersion = libraryVersion
        return info
    }()

    /// Through a caller's 3.2 list.
    @inline(never)
    static func C_GetInfo(_ pInfo: CK_INFO_PTR?, _ caller: CallerNumber) -> CK_RV {
        C_GetInfo(pInfo, caller, .v3_2)
    }

    /// Through the list of `interface`: cryptokiVersion says the version of the list the caller
    /// holds (PKCS#11 3.0 section 5.4: a 2.40 caller that reads 3.0 there may take it for a
    /// 3.0 list; p11-kit's proxy answers 2.40 through its 2.40 list too).
    @inline(never)
    static func C_GetInfo(_ pInfo: CK_INFO_PTR?, _ caller: CallerNumber, _ interface: InterfaceVersion) -> CK_RV {
        guard CallerPool.isInitialized(caller) else { return CK_RV(CKR_CRYPTOKI_NOT_INITIALIZED) }
        if let spy = SpyModule.index { return ModuleCall.C_GetInfo(ModuleTable.entry(spy), caller, pInfo) }
        guard let pInfo else { return CK_RV(CKR_ARGUMENTS_BAD) }
        pInfo.pointee = info
        pInfo.pointee.cryptokiVersion = interface.version
        return CK_RV(CKR_OK)
    }

    @inline(never)
    static func C_GetFunctionList(_ ppFunctionList: CK_FUNCTION_LIST_PTR_PTR?, _ caller: CallerNumber) -> CK_RV {
        guard let ppFunctionList else { return CK_RV(CKR_ARGUMENTS_BAD) }
        guard let tables = CallerPool.existingTables(for: caller) else { return CK_RV(CKR_GENERAL_ERROR) }
        ppFunctionList.pointee = UnsafeMutableRawPointer(tables.list240).assumingMemoryBound(to: CK_FUNCTION_LIST.self)
        return CK_RV(CKR_OK)
    }

    @inline(never)
    static func C_GetInterfaceList(_ pInterfacesList: CK_INTERFACE_PTR?, _ pulCount: CK_ULONG_PTR?, _ caller: CallerNumber) -> CK_RV {
        InterfaceQuery.list(pInterfacesList, pulCount) { CallerPool.existingTables(for: caller) }
    }

    @inline(never)
    static func C_GetInterface(_ pInterfaceName: CK_UTF8CHAR_PTR?, _ pVersion: CK_VERSION_PTR?,
                               _ ppInterface: CK_INTERFACE_PTR_PTR?, _ flags: CK_FLAGS, _ caller: CallerNumber) -> CK_RV {
        InterfaceQuery.find(pInterfaceName, pVersion, ppInterface, flags) { CallerPool.existingTables(for: caller) }
    }
}

/// PKCS#11 3.0 section 5.4 (3.2 section 5.2): C_GetInterfaceList and C_GetInterface over one
/// caller's three interfaces, "PKCS 11" 3.2 (the default), 3.0 and 2.40. `tables` is asked only
/// once the call is known to succeed, so a failed or size-only call creates no caller.
enum InterfaceQuery {
    static let count: CK_ULONG = 3

    static func list(_ pInterfacesList: CK_INTERFACE_PTR?, _ pulCount: CK_ULONG_PTR?,
                     tables: () -> CallerTablesStorage?) -> CK_RV {
        guard let pulCount else { return CK_RV(CKR_ARGUMENTS_BAD) }
        guard let pInterfacesList else {
            pulCount.pointee = count
            return CK_RV(CKR_OK)
        }
        guard pulCount.pointee >= count else {
            pulCount.pointee = count
            return CK_RV(CKR_BUFFER_TOO_SMALL)
        }
        guard let tables = tables() else { return CK_RV(CKR_HOST_MEMORY) }
        for index in 0..<Int(count) { pInterfacesList[index] = tables.interfaces[index] }
        pulCount.pointee = count
        return CK_RV(CKR_OK)
    }

    /// A NULL name or a NULL version means any (the newest); `flags` must all be among the
    /// interface's flags, and ours have none, so a request for any flag finds nothing.
    static func find(_ pInterfaceName: CK_UTF8CHAR_PTR?, _ pVersion: CK_VERSION_PTR?,
                     _ ppInterface: CK_INTERFACE_PTR_PTR?, _ flags: CK_FLAGS,
                     tables: () -> CallerTablesStorage?) -> CK_RV {
        guard let ppInterface else { return CK_RV(CKR_ARGUMENTS_BAD) }
        if let pInterfaceName {
            let name = UnsafeRawPointer(pInterfaceName).assumingMemoryBound(to: CChar.self)
            guard strnlen(name, 8) == 7, strncmp(name, "PKCS 11", 7) == 0 else { return CK_RV(CKR_ARGUMENTS_BAD) }
        }
        var which = InterfaceVersion.v3_2
        if let version = pVersion?.pointee {
            guard let asked = InterfaceVersion(version) else { return CK_RV(CKR_ARGUMENTS_BAD) }
            which = asked
        }
        guard flags == 0 else { return CK_RV(CKR_ARGUMENTS_BAD) }
        guard let tables = tables() else { return CK_RV(CKR_HOST_MEMORY) }
        ppInterface.pointee = tables.interfaces + which.rawValue
        return CK_RV(CKR_OK)
    }
}
