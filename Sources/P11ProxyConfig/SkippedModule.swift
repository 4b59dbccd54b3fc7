// A module that was configured but will not be loaded, and why: disabled for this program,
// remote, no library, or a config file that could not be read whole.

public struct SkippedModule: Sendable, Equatable {
    public var name: String
    /// The file (and line) behind the reason, when there is one.
    public var file: String?
    public var line: Int?
    public var reason: String
    /// The module's files said `critical: yes`. p11-kit fails the whole load when a critical module
    /// cannot load; the caller decides whether to, since a disabled critical module is fine.
    public var isCritical: Bool

    public init(name: String, file: String?, line: Int?, reason: String, isCritical: Bool = false) {
        self.name = name
        self.file = file
        self.line = line
        self.reason = reason
        self.isCritical = isCritical
    }
}
