// The file p11proxy itself was loaded from, so it never loads itself as one of its modules.
import Glibc
import P11ProxyLoader

extension ModuleLoader {
    /// The mapping in /proc/self/maps that contains P11ProxyLibrary.marker (dladdr needs
    /// _GNU_SOURCE, which Swift's Glibc module lacks).
    static let ownIdentity: FileIdentity? = {
        let address = UInt(bitPattern: P11ProxyLibrary.marker.utf8Start)
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
}
