// C_GetInfo (p11proxy describes itself; in spy mode the module does) and the function-list
// getters reached through a caller's own table, which return that caller's tables rather than
// making a new caller.
import CPKCS11
import Glibc

extension Entry {
    static let libraryVersion = CK_VERSION(major: 0, minor: 1)

    /// Built once: C_GetInfo is called in loops by some applications (p11-kit answers it from a
    /// static structure too).
    static let info: CK_INFO = {
        var info = CK_INFO()
        info.cryptokiVersion = CK_VERSION(major: 3, minor: 0)
        PaddedText.write("p11proxy", into: &info.manufacturerID)
        info.flags = 0
        PaddedText.write("p11proxy PKCS#11 proxy module", into: &info.libraryDescription)
        info.libraryVersion = libraryVersion
        return info
    }()

    @inline(never)
    static func C_GetInfo(_ pInfo: CK_INFO_PTR?, _ caller: Int) -> CK_RV {
        guard CallerPool.isInitialized(caller) else { return CK_RV(CKR_CRYPTOKI_NOT_INITIALIZED) }
        if let spy = SpyModule.index { return ModuleCall.C_GetInfo(ModuleTable.entry(spy), caller, pInfo) }
        guard let pInfo else { return CK_RV(CKR_ARGUMENTS_BAD) }
        pInfo.pointee = info
        return CK_RV(CKR_OK)
    }

    @inline(never)
    static func C_GetFunctionList(_ ppFunctionList: CK_FUNCTION_LIST_PTR_PTR?, _ caller: Int) -> CK_RV {
        guard let ppFunctionList else { return CK_RV(CKR_ARGUMENTS_BAD) }
        guard let tables = CallerPool.existingTables(for: caller) else { return CK_RV(CKR_GENERAL_ERROR) }
        ppFunctionList.pointee = UnsafeMutableRawPointer(tables.list240).assumingMemoryBound(to: CK_FUNCTION_LIST.self)
        return CK_RV(CKR_OK)
    }

    @inline(never)
    static func C_GetInterfaceList(_ pInterfacesList: CK_INTERFACE_PTR?, _ pulCount: CK_ULONG_PTR?, _ caller: Int) -> CK_RV {
        InterfaceQuery.list(pInterfacesList, pulCount) { CallerPool.existingTables(for: caller) }
    }

    @inline(never)
    static func C_GetInterface(_ pInterfaceName: CK_UTF8CHAR_PTR?, _ pVersion: CK_VERSION_PTR?,
                               _ ppInterface: CK_INTERFACE_PTR_PTR?, _ flags: CK_FLAGS, _ caller: Int) -> CK_RV {
        InterfaceQuery.find(pInterfaceName, pVersion, ppInterface, flags) { CallerPool.existingTables(for: caller) }
    }
}

/// PKCS#11 3.0 section 5.4: C_GetInterfaceList and C_GetInterface over one caller's two
/// interfaces, "PKCS 11" 3.0 (the default) and "PKCS 11" 2.40. `tables` is asked only once the
/// call is known to succeed, so a failed or size-only call creates no caller.
enum InterfaceQuery {
    static let count: CK_ULONG = 2

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
        pInterfacesList[0] = tables.interfaces[0]
        pInterfacesList[1] = tables.interfaces[1]
        pulCount.pointee = count
        return CK_RV(CKR_OK)
    }

    static func find(_ pInterfaceName: CK_UTF8CHAR_PTR?, _ pVersion: CK_VERSION_PTR?,
                     _ ppInterface: CK_INTERFACE_PTR_PTR?, _ flags: CK_FLAGS,
                     tables: () -> CallerTablesStorage?) -> CK_RV {
        guard let ppInterface else { return CK_RV(CKR_ARGUMENTS_BAD) }
        if let pInterfaceName {
            let name = UnsafeRawPointer(pInterfaceName).assumingMemoryBound(to: CChar.self)
            guard strnlen(name, 8) == 7, strncmp(name, "PKCS 11", 7) == 0 else { return CK_RV(CKR_ARGUMENTS_BAD) }
        }
        var which = 0
        if let version = pVersion?.pointee {
            switch (version.major, version.minor) {
            case (3, 0): which = 0
            case (2, 40): which = 1
            default: return CK_RV(CKR_ARGUMENTS_BAD)
            }
        }
        // Our interfaces carry no flags (not CKF_INTERFACE_FORK_SAFE: a fork child must call
        // C_Initialize again), so a request for any flag finds nothing.
        guard flags == 0 else { return CK_RV(CKR_ARGUMENTS_BAD) }
        guard let tables = tables() else { return CK_RV(CKR_HOST_MEMORY) }
        ppInterface.pointee = tables.interfaces + which
        return CK_RV(CKR_OK)
    }
}
