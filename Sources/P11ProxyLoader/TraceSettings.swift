// Whether and how a module's calls are traced, from its .module file, pkcs11.conf and the
// environment (which overrides both, for a quick look without editing files). The module and
// `p11proxy list`/`check` resolve them here, with the same complaints about bad values.
import P11ProxyConfig

package struct TraceSettings: Equatable, Sendable {
    package enum Format: Equatable, Sendable { case text, json }

    package var enabled = false
    /// Nil: standard error.
    package var path: String?
    package var format = Format.text
    package var secrets = false

    package init() {}

    /// What ModuleEntry.traceMode holds, read on every call.
    package var mode: TraceMode {
        guard enabled else { return [] }
        var mode: TraceMode = .enabled
        if format == .json { mode.insert(.json) }
        if secrets { mode.insert(.secrets) }
        return mode
    }

    /// `report` gets each value that cannot be used (the module's Diagnostics.report).
    package static func resolve(module: ModuleConfig, configuration: ProxyConfiguration,
                                environment: EnvironmentVariables, report: (String) -> Void) -> TraceSettings {
        func configured(_ key: String) -> ConfigValue? {
            module.values[key] ?? configuration.global[key]
        }
        func flag(_ variable: String, _ key: String, _ fallback: Bool) -> Bool {
            if let value = environment[variable], !value.isEmpty {
                if let parsed = parseBoolean(value) { return parsed }
                report("\(variable)='\(value)' is not yes or no; ignored")
            }
            guard let value = configured(key) else { return fallback }
            if let parsed = value.boolean { return parsed }
            report("\(value.file):\(value.line): \(key): '\(value.value)' is not yes or no; using no")
            return false
        }
        var settings = TraceSettings()
        settings.enabled = flag("P11PROXY_LOG_CALLS", "log-calls", configuration.logCalls(module))
        guard settings.enabled else { return settings }
        settings.secrets = flag("P11PROXY_LOG_SECRETS", "x-log-secrets", false)
        if let path = environment["P11PROXY_LOG_FILE"], !path.isEmpty {
            settings.path = path
        } else if let value = configured("x-log-file"), !value.value.isEmpty {
            settings.path = value.value
        }
        let format: (text: String, origin: String)?
        if let value = environment["P11PROXY_LOG_FORMAT"], !value.isEmpty {
            format = (value, "P11PROXY_LOG_FORMAT")
        } else if let value = configured("x-log-format") {
            format = (value.value, "\(value.file):\(value.line): x-log-format")
        } else {
            format = nil
        }
        switch format?.text {
        case nil, "text": settings.format = .text
        case "json": settings.format = .json
        case let other?:
            report("\(format!.origin): '\(other)' is not text or json; using text")
        }
        return settings
    }

    package static func parseBoolean(_ text: String) -> Bool? {
        switch text.lowercased() {
        case "yes", "true", "1", "on": true
        case "no", "false", "0", "off": false
        default: nil
        }
    }
}
