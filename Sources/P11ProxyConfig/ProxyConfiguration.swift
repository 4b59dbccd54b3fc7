// The result of reading all configuration: global keys, the modules to load in load order,
// the ones left out with reasons, and every problem found along the way.

public struct ProxyConfiguration: Sendable, Equatable {
    /// The pseudo program name pkcs11.conf(5) documents for "loaded by the proxy module"
    /// (p11-kit pull request #140); `enable-in`/`disable-in` lists may name it.
    public static let proxyProgramName = "p11-kit-proxy"

    /// Merged pkcs11.conf keys (user over system under `merge`): log-calls, managed, x-log-*, user-config...
    public var global: [String: ConfigValue]
    /// The mode that was applied; `.none` also when user config was not allowed or not available.
    public var userConfigMode: UserConfigMode
    /// Enabled modules: priority descending, then name ascending (p11-kit's `compar_priority`).
    public var modules: [ModuleConfig]
    public var skipped: [SkippedModule]
    public var diagnostics: [ConfigDiagnostic]

    public init(global: [String: ConfigValue] = [:], userConfigMode: UserConfigMode = .none,
                modules: [ModuleConfig] = [], skipped: [SkippedModule] = [],
                diagnostics: [ConfigDiagnostic] = []) {
        self.global = global
        self.userConfigMode = userConfigMode
        self.modules = modules
        self.skipped = skipped
        self.diagnostics = diagnostics
    }

    /// `managed:` for a module, where a global setting overrides the module's own
    /// (p11-kit's `lookup_managed_option` asks the global config first). Default yes.
    public func isManaged(_ module: ModuleConfig) -> Bool {
        effectiveBoolean(ConfigKey.managed, module, default: true)
    }

    /// `log-calls:` for a module, global first as above. Default no.
    public func logCalls(_ module: ModuleConfig) -> Bool {
        effectiveBoolean(ConfigKey.logCalls, module, default: false)
    }

    /// A global string setting such as `x-log-file`.
    public func globalString(_ key: String) -> String? {
        global[key]?.value
    }

    private func effectiveBoolean(_ key: String, _ module: ModuleConfig, default defaultValue: Bool) -> Bool {
        // An invalid global value falls to the default, not to the module's value, as in p11-kit.
        if let value = global[key] { return value.boolean ?? defaultValue }
        return module.boolean(key, default: defaultValue)
    }
}
