// Messages to stderr, prefixed "p11proxy:", each distinct message printed once per process
// (a module that fails on every C_Initialize should not flood the caller's stderr).
import Glibc

enum Diagnostics {
    // Who may touch it: `report` only, under `lock`.
    private nonisolated(unsafe) static var printed = Set<String>()
    private static let lock = ProcessLock()

    static func report(_ message: String) {
        let isNew = lock.withLock { printed.insert(message).inserted }
        guard isNew else { return }
        var line = Array("p11proxy: \(message)\n".utf8)
        line.withUnsafeMutableBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = write(2, buffer.baseAddress! + offset, buffer.count - offset)
                if written <= 0 { break }
                offset += written
            }
        }
    }

    /// Held across fork, so the child's copy of `printed` is whole.
    static func forkPrepare() { lock.lock() }
    static func forkParent() { lock.unlock() }
    static func forkChild() { lock.reinitializeInChild() }

    static func warmUp() { _ = lock }
}
