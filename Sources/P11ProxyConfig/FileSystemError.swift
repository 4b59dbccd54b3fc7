// Why a file operation failed: an errno value (kept raw, so no failure is lost) or a
// kind mismatch found after opening. The named errno constants live in Syscalls.swift.

public enum FileSystemError: Error, Sendable, Equatable, CustomStringConvertible {
    case errno(Int32)
    /// The path was opened but turned out not to be a regular file (it changed after stat).
    case notRegularFile

    /// ENOENT or ENOTDIR: nothing there. p11-kit treats these as "no config" (CONF_IGNORE_MISSING).
    public var isMissing: Bool {
        self == .noSuchFile || self == .notDirectory
    }

    public var description: String {
        switch self {
        case .notRegularFile: return "not a regular file"
        case .errno(let code): return Self.errnoDescription(code)
        }
    }
}
