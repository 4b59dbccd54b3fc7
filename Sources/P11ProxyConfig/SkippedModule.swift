// A module that was configured but will not be loaded, and why: disabled for this program,
// a blank remote:, no library, or a config file that could not be read whole.

public struct SkippedModule: Sendable, Equatable {
    /// Why, as data, so callers need not match on `reason` text.
    public enum Cause: Sendable, Equatable {
        /// `enable-in` does not name this program, or `disable-in` does.
        case disabledForProgram
        /// `module:` present but blank: pkcs11.conf(5)'s way to mask a module.
        case blankModulePath
        /// No `module:` key (p11-kit skips such a module without a message).
        case noModulePath
        /// `remote:` is blank: no server to reach.
        case remote
        /// A file of this module cannot be read: permission, dangling symlink, not a regular file, too large.
        case unreadableConfig
        /// A file of this module has a line that is not `key: value`.
        case malformedConfig
        /// Its library is already loaded under another module name.
        case duplicateLibrary

        /// The configuration itself asks for the module to stay out. p11-kit never fails a load
        /// for these, even when the module says `critical: yes`.
        public var isDeliberate: Bool {
            self == .disabledForProgram || self == .blankModulePath
        }
    }

    public var name: String
    public var cause: Cause
    /// The file (and line) behind the reason, when there is one.
    public var file: String?
    public var line: Int?
    /// For people: starts with the key involved where there is one (`enable-in: ...`, `remote: ...`).
    public var reason: String
    /// The module's files said `critical: yes`. p11-kit fails the whole load when a critical module
    /// cannot load; the caller decides (see `Cause.isDeliberate`).
    public var isCritical: Bool

    public init(name: String, cause: Cause, file: String?, line: Int?, reason: String, isCritical: Bool = false) {
        self.name = name
        self.cause = cause
        self.file = file
        self.line = line
        self.reason = reason
        self.isCritical = isCritical
    }
}
