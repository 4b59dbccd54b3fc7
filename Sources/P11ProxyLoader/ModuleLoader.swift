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
    package static func load(path: String) throws(LoadError) -> CK_FUNCTION_LIST_3_0 {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            let reason = dlerror().map { String(cString: $0) } ?? "unknown dlopen error"
            throw LoadError(description: "cannot load: \(reason)")
        }
        var functions = CK_FUNCTION_LIST_3_0()
        // PKCS#11 3.0 section 5.4: prefer C_GetInterface; only a 3.0 interface's list may be read past
        // the 2.40 prefix.
        if let symbol = dlsym(handle, "C_GetInterface") {
            let getInterface = unsafeBitCast(symbol, to: CK_C_GetInterface.self)
            var interface: UnsafeMutablePointer<CK_INTERFACE>?
            let name = Array("PKCS 11".utf8) + [0]
            let rv = name.withUnsafeBufferPointer { nameBuffer in
                getInterface(UnsafeMutablePointer(mutating: nameBuffer.baseAddress), nil, &interface, 0)
            }
            if rv == CKR_OK, let list = interface?.pointee.pFunctionList {
                let version = list.assumingMemoryBound(to: CK_VERSION.self).pointee
                if version.major >= 3 {
                    functions = list.assumingMemoryBound(to: CK_FUNCTION_LIST_3_0.self).pointee
                } else {
                    copy240(from: list.assumingMemoryBound(to: CK_FUNCTION_LIST.self), into: &functions)
                }
                return try validated(functions)
            }
        }
        guard let symbol = dlsym(handle, "C_GetFunctionList") else {
            throw LoadError(description: "not a PKCS#11 module: no C_GetFunctionList or C_GetInterface symbol")
        }
        let getFunctionList = unsafeBitCast(symbol, to: CK_C_GetFunctionList.self)
        var list: UnsafeMutablePointer<CK_FUNCTION_LIST>?
        let rv = getFunctionList(&list)
        guard rv == CKR_OK, let list else {
            throw LoadError(description: "C_GetFunctionList failed: \(PKCS11Name.returnValueText(rv))")
        }
        copy240(from: list, into: &functions)
        return try validated(functions)
    }

    /// A `remote:` module: a connection to a p11-kit RPC server that looks like a loaded library
    /// (its function list calls the connection). Nothing is sent until C_Initialize. The module's
    /// name goes in every frame, as p11-kit sends the .module file's name; `x-remote-timeout`
    /// bounds each call. x-init-reserved reaches the server as C_Initialize's pReserved, as for
    /// a local module.
    package static func connect(address: String, config: ModuleConfig) throws(LoadError) -> (RemoteModule, CK_FUNCTION_LIST_3_0) {
        var settings = RemoteSettings()
        settings.moduleName = config.name
        if let seconds = config.remoteTimeoutSeconds { settings.callTimeout = Int32(clamping: seconds * 1000) }
        let remote: RemoteModule
        do throws(RPCError) {
            remote = try RemoteModule(remote: address, settings: settings)
        } catch {
            throw LoadError(description: "remote: \(error.message)")
        }
        guard let functions = remote.functionList() else {
            throw LoadError(description: "more than \(RemoteModule.functionListCount) remote modules in one process")
        }
        return (remote, functions)
    }

    /// Copies the 2.40 part of a list; the 3.0 entries of `functions` stay nil.
    static func copy240(from list: UnsafeMutablePointer<CK_FUNCTION_LIST>, into functions: inout CK_FUNCTION_LIST_3_0) {
        withUnsafeMutableBytes(of: &functions) { destination in
            destination.copyMemory(from: UnsafeRawBufferPointer(start: list, count: MemoryLayout<CK_FUNCTION_LIST>.size))
        }
    }

    private static func validated(_ functions: CK_FUNCTION_LIST_3_0) throws(LoadError) -> CK_FUNCTION_LIST_3_0 {
        guard functions.C_Initialize != nil, functions.C_Finalize != nil, functions.C_GetSlotList != nil else {
            throw LoadError(description: "its function list lacks C_Initialize, C_Finalize or C_GetSlotList")
        }
        return functions
    }
}
