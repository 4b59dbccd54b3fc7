// The module loader: dlopen a real module and fetch its function list. One of the two places
// (with Exports.swift) where p11proxy touches the dynamic linker and raw C entry points.
import CPKCS11
import Glibc

/// A file's identity, so the same library reached by two paths (or symlinks) is loaded once,
/// and p11proxy recognises itself however it is named.
struct FileIdentity: Hashable {
    var device: UInt
    var inode: UInt

    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        device = UInt(info.st_dev)
        inode = UInt(info.st_ino)
    }
}

struct LoadError: Error, CustomStringConvertible {
    var description: String
}

enum ModuleLoader {
    /// The file p11proxy itself was loaded from: the mapping in /proc/self/maps that contains
    /// a constant string of its own (dladdr needs _GNU_SOURCE, which Swift's Glibc module lacks).
    /// A string literal lives in .rodata, which is mapped from the file; a variable could sit in
    /// the anonymous part of .bss, whose mapping names no file.
    static let ownIdentity: FileIdentity? = {
        let anchor: StaticString = "p11proxy: who am I"
        let address = UInt(bitPattern: anchor.utf8Start)
        guard let maps = readWholeFile("/proc/self/maps") else { return nil }
        for line in maps.split(separator: "\n") {
            // "start-end perms offset dev inode path"
            let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
            guard fields.count == 6 else { continue }
            let range = fields[0].split(separator: "-")
            guard range.count == 2, let start = UInt(range[0], radix: 16), let end = UInt(range[1], radix: 16),
                  start <= address, address < end else { continue }
            return FileIdentity(path: String(fields[5].drop { $0 == " " }))
        }
        return nil
    }()

    private static func readWholeFile(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Loads the library and copies its function list. RTLD_LOCAL keeps modules' symbols apart;
    /// the handle is never closed (see README: modules stay loaded for the life of the process).
    static func load(path: String) throws(LoadError) -> CK_FUNCTION_LIST_3_0 {
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
            throw LoadError(description: "C_GetFunctionList failed: \(ReturnValue(rv))")
        }
        copy240(from: list, into: &functions)
        return try validated(functions)
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
