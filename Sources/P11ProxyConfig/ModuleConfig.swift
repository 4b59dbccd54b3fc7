// One module's merged configuration: every key from its `.module` files (unknown ones too) and
// typed readings of the keys pkcs11.conf(5) defines, with p11-kit's defaults.

public struct ModuleConfig: Sendable, Equatable {
    /// The file name without `.module`: how p11-kit names a module.
    public var name: String
    /// All keys; for a key set in several directories, the value from the earliest one.
    public var values: [String: ConfigValue]
    /// The files that contributed, earliest directory first.
    public var files: [String]
    /// Where a relative `module:` resolves.
    public var moduleDirectory: String

    public init(name: String, values: [String: ConfigValue], files: [String], moduleDirectory: String) {
        self.name = name
        self.values = values
        self.files = files
        self.moduleDirectory = moduleDirectory
    }

    public func string(_ key: String) -> String? {
        values[key]?.value
    }

    /// The library to load, absolute. Relative paths resolve against `moduleDirectory` as
    /// p11-kit's `load_module_from_file_inlock` does. Nil when `module:` is absent or blank;
    /// pkcs11.conf(5): a blank value means "do not load", which lets a user file mask a system module.
    public var modulePath: String? {
        guard let path = string(ConfigKey.module), !path.isEmpty else { return nil }
        return joinPath(moduleDirectory, path)
    }

    /// A critical module that fails to load or initialize fails the whole load (pkcs11.conf(5)). Default no.
    public var isCritical: Bool { boolean(ConfigKey.critical, default: false) }

    /// Higher loads first; ties by name (p11-kit's `compar_priority`). Default 0, and 0 when invalid.
    public var priority: Int { values[ConfigKey.priority]?.integer ?? 0 }

    /// Module-level `managed:`; default yes. A global `managed:` overrides it: use
    /// `ProxyConfiguration.isManaged(_:)` for the effective value.
    public var isManaged: Bool { boolean(ConfigKey.managed, default: true) }

    /// Module-level `log-calls:`; default no. See `ProxyConfiguration.logCalls(_:)` for the effective value.
    public var logCalls: Bool { boolean(ConfigKey.logCalls, default: false) }

    /// Passed as CK_C_INITIALIZE_ARGS.pReserved, as p11-kit does. Present-but-empty is "", not nil.
    public var initReserved: String? { string(ConfigKey.initReserved) }

    /// Program names from `enable-in:`; nil when the key is absent. Present but empty means the
    /// module is enabled nowhere (p11-kit finds no name in an empty list).
    public var enableIn: [String]? { values[ConfigKey.enableIn]?.list }

    /// Program names from `disable-in:`; nil when the key is absent.
    public var disableIn: [String]? { values[ConfigKey.disableIn]?.list }

    /// `remote:` present: the module is reached over p11-kit's RPC protocol instead of loaded.
    public var isRemote: Bool { values[ConfigKey.remote] != nil }

    /// `remote:`'s value: `unix:path=/abs` or `|command args` (p11-kit's forms).
    public var remoteAddress: String? { string(ConfigKey.remote) }

    /// `x-remote-timeout:` in seconds (a remote call that takes longer fails with
    /// CKR_DEVICE_ERROR); nil when absent or not a positive whole number (valueProblems says so).
    public var remoteTimeoutSeconds: Int? {
        guard let value = values[ConfigKey.remoteTimeout], let seconds = value.integer, seconds > 0 else { return nil }
        return seconds
    }

    func boolean(_ key: String, default defaultValue: Bool) -> Bool {
        values[key]?.boolean ?? defaultValue
    }

    /// Values that are present but unreadable; each falls back to its default, as in p11-kit.
    func valueProblems() -> [ConfigDiagnostic] {
        var problems: [ConfigDiagnostic] = []
        for key in [ConfigKey.critical, ConfigKey.managed, ConfigKey.logCalls] {
            if let value = values[key], value.boolean == nil {
                problems.append(invalidBoolean(value, key: key))
            }
        }
        if let value = values[ConfigKey.priority], value.integer == nil {
            problems.append(ConfigDiagnostic(
                file: value.file, line: value.line,
                message: "priority: '\(value.value)' is not a whole number; using 0"))
        }
        if let value = values[ConfigKey.remoteTimeout], (value.integer ?? 0) <= 0 {
            problems.append(ConfigDiagnostic(
                file: value.file, line: value.line,
                message: "x-remote-timeout: '\(value.value)' is not a positive number of seconds; using the default"))
        }
        if let enable = values[ConfigKey.enableIn], values[ConfigKey.disableIn] != nil {
            // pkcs11.conf(5) forbids both; p11-kit warns and then only looks at enable-in.
            problems.append(ConfigDiagnostic(
                file: enable.file, line: enable.line,
                message: "module '\(name)' has both enable-in and disable-in; disable-in is ignored"))
        }
        return problems
    }

    /// Whether the module loads in a process known by `programNames`, and if not, why not.
    /// Follows p11-kit's `is_module_enabled_unlocked`: enable-in wins when both are set.
    func enablement(programNames: [String]) -> (enabled: Bool, reason: String, value: ConfigValue?) {
        let names = programNames.filter { !$0.isEmpty }
        if let enable = values[ConfigKey.enableIn] {
            if let match = names.first(where: enable.list.contains) {
                return (true, "enable-in names '\(match)'", enable)
            }
            return (false, "enable-in: '\(enable.value)' does not name this program (\(names.joined(separator: ", ")))", enable)
        }
        if let disable = values[ConfigKey.disableIn] {
            if let match = names.first(where: disable.list.contains) {
                return (false, "disable-in: '\(disable.value)' names '\(match)'", disable)
            }
            return (true, "disable-in does not name this program", disable)
        }
        return (true, "no enable-in or disable-in", nil)
    }
}

func invalidBoolean(_ value: ConfigValue, key: String) -> ConfigDiagnostic {
    ConfigDiagnostic(file: value.file, line: value.line,
                     message: "\(key): '\(value.value)' is not yes, no, true or false; using the default")
}
