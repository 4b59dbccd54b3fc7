// The module loader: dlopen a real module and fetch its function list. With the module's
// Exports.swift, the one place where p11proxy touches the dynamic linker and raw C entry points;
// the `p11proxy` command loads modules through it too, so it sees what the module would.
import CPKCS11
import Glibc
import P11ProxyConfig
import P11ProxyNames
import P11ProxyRPC

/// A file's identity, so the same library reached by two paths (or symlinks) is loaded once,
/// and p11proxy recognises itself however it is named.
package struct FileIdentity: Hashable, Sendable {
    package var device: UInt
    package var inode: UInt

    package init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        device = UInt(info.st_dev)
        inode = UInt(info.st_ino)
    }
}

package struct LoadError: Error, CustomStringConvertible {
    package var description: String
}

package enum ModuleLoader {
    /// Loads the library and copies its function list. RTLD_LOCAL keeps modules' symbols apart;
    /// the handle is never closed (see README: modules stay loaded for the life of the process).
    package static func load(path: String) throws(LoadError) -> CK_FUNCTION_LIST_3_2 {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "unknown dlopen error"
            throw LoadError(description: "cannot load: \(reason)")
        }
        // PKCS#11 3.0 section 5.4: the newest "PKCS 11" interface the module offers. A module
        // whose C_GetInterfaceList or C_GetInterface fails (some vendor HSM libraries export them
        // and answer CKR_FUNCTION_NOT_SUPPORTED) is asked C_GetFunctionList, as a 2.x module is.
        if let list = newestInterface(handle) { return try validated(copied(list)) }
        guard let symbol = dlsym(handle, "C_GetFunctionList") else {
            throw LoadError(description: "not a PKCS#11 module: no C_GetFunctionList or C_GetInterface symbol")
        }
        let getFunctionList = unsafeBitCast(symbol, to: CK_C_GetFunctionList.self)
        var list: UnsafeMutablePointer<CK_FUNCTION_LIST>?
        let rv = getFunctionList(&list)
        guard rv == CKR_OK, let list else {
            throw LoadError(description: "C_GetFunctionList failed: \(PKCS11Name.returnValueText(rv))")
        }
        // Only the 2.40 part, whatever its version says: a module built against a 3.x header may
        // put {3, x} in a CK_FUNCTION_LIST that is 2.40-sized (only an interface's list is 3.x).
        return try validated(copied(UnsafeRawPointer(list), atMost: MemoryLayout<CK_FUNCTION_LIST>.size))
    }

    /// The function list of the module's newest "PKCS 11" interface: from C_GetInterfaceList
    /// (the highest version listed; for equal versions the first, the module's preferred one),
    /// else from C_GetInterface with no version (the module's default). Nil when the module has
    /// neither, or they fail.
    static func newestInterface(_ handle: UnsafeMutableRawPointer) -> UnsafeRawPointer? {
        if let symbol = dlsym(handle, "C_GetInterfaceList") {
            let getInterfaceList = unsafeBitCast(symbol, to: CK_C_GetInterfaceList.self)
            var count: CK_ULONG = 0
            if getInterfaceList(nil, &count) == CKR_OK, count > 0, count <= 64 {
                let interfaces = UnsafeMutablePointer<CK_INTERFACE>.allocate(capacity: Int(count))
                defer { interfaces.deallocate() }
                if getInterfaceList(interfaces, &count) == CKR_OK {
                    var best: (list: UnsafeRawPointer, version: CK_VERSION)?
                    for index in 0..<Int(min(count, 64)) {
                        let interface = interfaces[index]
                        guard let list = interface.pFunctionList, let interfaceName = interface.pInterfaceName,
                              strcmp(UnsafeRawPointer(interfaceName).assumingMemoryBound(to: CChar.self), "PKCS 11") == 0
                        else { continue }
                        let version = list.assumingMemoryBound(to: CK_VERSION.self).pointee
                        if let current = best?.version,
                           (version.major, version.minor) <= (current.major, current.minor) { continue }
                        best = (UnsafeRawPointer(list), version)
                    }
                    if let best { return best.list }
                }
            }
        }
        guard let symbol = dlsym(handle, "C_GetInterface") else { return nil }
        let getInterface = unsafeBitCast(symbol, to: CK_C_GetInterface.self)
        var interface: UnsafeMutablePointer<CK_INTERFACE>?
        let nameBytes = Array("PKCS 11".utf8) + [0]
        let rv = nameBytes.withUnsafeBufferPointer { nameBuffer in
            getInterface(UnsafeMutablePointer(mutating: nameBuffer.baseAddress), nil, &interface, 0)
        }
        guard rv == CKR_OK, let list = interface?.pointee.pFunctionList else { return nil }
        return UnsafeRawPointer(list)
    }

    /// A module's list as a 3.2 list: only the part its version promises is read (2.40, 3.0 or
    /// 3.2; 3.1 added no function, and a later 3.x list starts with the 3.2 one); the rest stays
    /// nil, so those calls answer CKR_FUNCTION_NOT_SUPPORTED without reaching the module. A 3.2
    /// list may itself hold nil entries (p11-kit 0.26 builds them so): the same answer.
    static func copied(_ list: UnsafeRawPointer, atMost limit: Int = MemoryLayout<CK_FUNCTION_LIST_3_2>.size) -> CK_FUNCTION_LIST_3_2 {
        let version = list.assumingMemoryBound(to: CK_VERSION.self).pointee
        let size: Int
        switch (version.major, version.minor) {
        case (0...2, _): size = MemoryLayout<CK_FUNCTION_LIST>.size
        case (3, 0...1): size = MemoryLayout<CK_FUNCTION_LIST_3_0>.size
        default: size = MemoryLayout<CK_FUNCTION_LIST_3_2>.size
        }
        var functions = CK_FUNCTION_LIST_3_2()
        withUnsafeMutableBytes(of: &functions) { destination in
            destination.copyMemory(from: UnsafeRawBufferPointer(start: list, count: min(size, limit)))
        }
        return functions
    }

    /// A `remote:` module: a connection to a p11-kit RPC server that looks like a loaded library
    /// (its function list calls the connection). Nothing is sent until C_Initialize. The module's
    /// name goes in every frame, as p11-kit sends the .module file's name; `x-remote-timeout`
    /// bounds each call. x-init-reserved reaches the server as C_Initialize's pReserved, as for
    /// a local module.
    package static func connect(address: String, config: ModuleConfig) throws(LoadError) -> (RemoteModule, CK_FUNCTION_LIST_3_2) {
        var settings = RemoteSettings()
        settings.moduleName = config.name
        if let seconds = config.remoteTimeoutSeconds { settings.callTimeout = Int32(clamping: seconds * 1000) }
        let remote: RemoteModule
        do throws(RPCError) {
            remote = try RemoteModule(remote: address, settings: settings)
        } catch {
            throw LoadError(description: "remote: \(error.message)")
        }
        guard var functions = remote.functionList() else {
            throw LoadError(description: "more than \(RemoteModule.functionListCount) remote modules in one process")
        }
        // A 3.0 list: p11-kit's protocol has no calls for the 3.2 functions, which stay nil.
        return (remote, withUnsafePointer(to: &functions) { copied(UnsafeRawPointer($0)) })
    }

    private static func validated(_ functions: CK_FUNCTION_LIST_3_2) throws(LoadError) -> CK_FUNCTION_LIST_3_2 {
        guard functions.C_Initialize != nil, functions.C_Finalize != nil, functions.C_GetSlotList != nil else {
            throw LoadError(description: "its function list lacks C_Initialize, C_Finalize or C_GetSlotList")
        }
        return functions
    }
}
