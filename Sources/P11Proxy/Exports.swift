// The three symbols libp11proxy.so exports (the linker's version script hides everything
// else). Each call makes a new caller with its own tables.
import CPKCS11

@_cdecl("C_GetFunctionList")
public func exportedGetFunctionList(_ ppFunctionList: CK_FUNCTION_LIST_PTR_PTR?) -> CK_RV {
    _ = ProxyRuntime.prepared
    guard let ppFunctionList else { return CK_RV(CKR_ARGUMENTS_BAD) }
    guard let tables = CallerPool.acquire() else { return CK_RV(CKR_HOST_MEMORY) }
    // The 2.40-versioned table: legacy callers read only the 2.40 prefix; 3.0 callers ask
    // C_GetInterface for the 3.0 one (PKCS#11 3.0 section 5.4).
    ppFunctionList.pointee = UnsafeMutableRawPointer(tables.list240).assumingMemoryBound(to: CK_FUNCTION_LIST.self)
    return CK_RV(CKR_OK)
}

@_cdecl("C_GetInterfaceList")
public func exportedGetInterfaceList(_ pInterfacesList: CK_INTERFACE_PTR?, _ pulCount: CK_ULONG_PTR?) -> CK_RV {
    _ = ProxyRuntime.prepared
    return InterfaceQuery.list(pInterfacesList, pulCount) { CallerPool.acquire() }
}

@_cdecl("C_GetInterface")
public func exportedGetInterface(_ pInterfaceName: CK_UTF8CHAR_PTR?, _ pVersion: CK_VERSION_PTR?,
                          _ ppInterface: CK_INTERFACE_PTR_PTR?, _ flags: CK_FLAGS) -> CK_RV {
    _ = ProxyRuntime.prepared
    return InterfaceQuery.find(pInterfaceName, pVersion, ppInterface, flags) { CallerPool.acquire() }
}
