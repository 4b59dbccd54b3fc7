// The real file system, through Syscalls. Stateless, so any number of readers may share it.

public struct LocalFileSystem: FileSystem {
    public init() {}

    public func directoryEntries(_ path: String) throws(FileSystemError) -> [[UInt8]] {
        try Syscalls.directoryEntries(path)
    }

    public func status(_ path: String) throws(FileSystemError) -> FileStatus {
        try Syscalls.status(path, followingLinks: true)
    }

    public func linkStatus(_ path: String) throws(FileSystemError) -> FileStatus {
        try Syscalls.status(path, followingLinks: false)
    }

    public func contents(_ path: String, maximumSize: Int) throws(FileSystemError) -> [UInt8] {
        try Syscalls.contents(path, maximumSize: maximumSize)
    }
}
