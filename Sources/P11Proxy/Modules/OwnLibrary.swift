// The file p11proxy itself was loaded from, so it never loads itself as one of its modules.
import Glibc
import P11ProxyConfig
import P11ProxyLoader

extension ModuleLoader {
    /// The library file holding P11ProxyLibrary.marker. dladdr names it cheaply, but by the name
    /// the host gave dlopen; an absolute name is stat'ed, a relative one (resolved against a
    /// working directory that may have changed since) is looked up in /proc/self/maps instead.
    /// (Reading and scanning /proc/self/maps was 0.16M of the 0.26M instructions p11proxy added
    /// to `pkcs11-tool -L`.)
    static let ownIdentity: FileIdentity? = {
        let address = UnsafeRawPointer(P11ProxyLibrary.marker.utf8Start)
        if let name = loadedFileName(containing: address), name.hasPrefix("/"),
           let identity = FileIdentity(path: name) {
            return identity
        }
        return mappedFileIdentity(containing: UInt(bitPattern: address))
    }()

    /// glibc's Dl_info, which Swift's Glibc module leaves out along with dladdr (GNU extensions
    /// of <dlfcn.h>); dladdr is therefore found with dlsym, as getauxval is in Syscalls.
    private struct SharedObjectInfo {
        var fileName: UnsafePointer<CChar>? = nil
        var base: UnsafeMutableRawPointer? = nil
        var symbolName: UnsafePointer<CChar>? = nil
        var symbolAddress: UnsafeMutableRawPointer? = nil
    }

    private static func loadedFileName(containing address: UnsafeRawPointer) -> String? {
        typealias AddressLookup = @convention(c) (UnsafeRawPointer?, UnsafeMutableRawPointer?) -> Int32
        guard let symbol = dlsym(nil, "dladdr") else { return nil }
        var info = SharedObjectInfo()
        guard unsafeBitCast(symbol, to: AddressLookup.self)(address, &info) != 0,
              let name = info.fileName else { return nil }
        return String(cString: name)
    }

    /// The mapping in /proc/self/maps that holds `address`. Scanned as bytes: splitting the file
    /// into Strings was 3M instructions, two thirds of a C program's whole load + C_Initialize.
    static func mappedFileIdentity(containing address: UInt) -> FileIdentity? {
        // /proc files report size 0; the reader reads to the end whatever the size says.
        guard let maps = try? LocalFileSystem().contents("/proc/self/maps", maximumSize: 64 << 20) else { return nil }
        return maps.withUnsafeBufferPointer { bytes in
            var lineStart = 0
            while lineStart < bytes.count {
                let lineEnd = bytes[lineStart...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
                defer { lineStart = lineEnd + 1 }
                if let path = MapsLine(bytes[lineStart..<lineEnd]).path(ifContaining: address) {
                    return FileIdentity(path: path)
                }
            }
            return nil
        }
    }
}

/// One line of /proc/self/maps: "start-end perms offset dev inode   path" (proc(5)).
struct MapsLine {
    private let bytes: Slice<UnsafeBufferPointer<UInt8>>

    init(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) { self.bytes = bytes }

    /// The mapped file's path when the mapping holds `address`; nil otherwise or for anonymous
    /// mappings.
    func path(ifContaining address: UInt) -> String? {
        var index = bytes.startIndex
        guard let start = hex(&index), index < bytes.endIndex, bytes[index] == UInt8(ascii: "-") else { return nil }
        index += 1
        guard let end = hex(&index), start <= address, address < end else { return nil }
        // Skip perms, offset, dev and inode, then the padding before the path.
        for _ in 0..<4 {
            while index < bytes.endIndex, bytes[index] == UInt8(ascii: " ") { index += 1 }
            while index < bytes.endIndex, bytes[index] != UInt8(ascii: " ") { index += 1 }
        }
        while index < bytes.endIndex, bytes[index] == UInt8(ascii: " ") { index += 1 }
        guard index < bytes.endIndex, bytes[index] == UInt8(ascii: "/") else { return nil }
        return String(decoding: UnsafeBufferPointer(rebasing: bytes[index...]), as: UTF8.self)
    }

    private func hex(_ index: inout Int) -> UInt? {
        var value: UInt = 0
        let first = index
        while index < bytes.endIndex, index - first < 16 {
            let byte = bytes[index]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            default: return index > first ? value : nil
            }
            value = value << 4 | UInt(digit)
            index += 1
        }
        return index > first ? value : nil
    }
}
