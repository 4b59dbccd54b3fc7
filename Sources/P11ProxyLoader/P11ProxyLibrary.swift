// How a p11proxy build is recognised: the module finds its own file by the address of a marker
// string, and the `p11proxy` command, which is not loaded from that file, finds the same marker
// in a library's bytes, so that both leave p11proxy out of the modules it loads.
import Glibc
import P11ProxyConfig

package enum P11ProxyLibrary {
    /// A string literal lives in .rodata, which is mapped from the library's file (a variable
    /// could sit in the anonymous part of .bss, whose mapping names no file).
    package static let marker: StaticString = "p11proxy: who am I"

    /// Whether the file at `path` is a p11proxy build (any copy, under any name): it carries the
    /// marker. Reads the file once, in chunks; false when it cannot be read.
    package static func isBuild(path: String) -> Bool {
        let descriptor = Syscalls.openExisting(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return false }
        defer { close(descriptor) }
        let needle = Array(UnsafeBufferPointer(start: marker.utf8Start, count: marker.utf8CodeUnitCount))
        var window: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return false }
            // The last needle.count - 1 bytes of the previous chunk, so a marker split by the chunk
            // boundary is still found.
            window = Array(window.suffix(needle.count - 1)) + chunk[0..<count]
            if contains(window, needle) { return true }
        }
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard let first = needle.first, haystack.count >= needle.count else { return false }
        var index = 0
        let last = haystack.count - needle.count
        while index <= last {
            if haystack[index] == first && haystack[index..<index + needle.count].elementsEqual(needle) { return true }
            index += 1
        }
        return false
    }
}
