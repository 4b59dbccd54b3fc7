// The few file operations configuration reading needs, as a protocol so tests can put a fault
// (permission denied, a file that changes kind) exactly where they want it. `LocalFileSystem` is the real one.

public protocol FileSystem: Sendable {
    /// Names in a directory, without `.` and `..`, as bytes: a name need not be valid UTF-8.
    func directoryEntries(_ path: String) throws(FileSystemError) -> [[UInt8]]
    /// Like stat(2): follows symbolic links.
    func status(_ path: String) throws(FileSystemError) -> FileStatus
    /// Like lstat(2): describes a symbolic link itself.
    func linkStatus(_ path: String) throws(FileSystemError) -> FileStatus
    /// The contents of a regular file, but never more than `maximumSize + 1` bytes, so a caller
    /// sees that a file is too large without reading all of it. Must not block on FIFOs or devices.
    func contents(_ path: String, maximumSize: Int) throws(FileSystemError) -> [UInt8]
}

public struct FileStatus: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case regular, directory, symbolicLink
        /// FIFO, socket or device: never read as configuration (opening a FIFO can block forever).
        case other
    }

    public var kind: Kind
    public var size: Int

    public init(kind: Kind, size: Int) {
        self.kind = kind
        self.size = size
    }
}
