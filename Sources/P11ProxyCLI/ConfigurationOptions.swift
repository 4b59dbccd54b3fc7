// The options `list` and `check` share: which configuration to read, and for which program.
import ArgumentParser
import P11ProxyConfig
import P11ProxyLoader

struct ConfigurationOptions: ParsableArguments {
    @Option(name: .customLong("config-dir"), help: ArgumentHelp(
        "Read only DIR/pkcs11.conf and DIR/modules/*.module, as the module does with P11PROXY_CONFIG_DIR=DIR "
            + "or x-init-reserved: config-dir=DIR.", valueName: "DIR"))
    var configDirectory: String?

    @Option(name: .customLong("program"), help: ArgumentHelp(
        "Match enable-in:/disable-in: as the module does inside PROGRAM (repeatable); "
            + "p11-kit-proxy, which every p11proxy matches, is always included.", valueName: "PROGRAM"))
    var programs: [String] = []

    /// --config-dir wins over the environment (it is the more explicit of the two); otherwise the
    /// module's own order: P11PROXY_MODULE, P11PROXY_CONFIG_DIR, p11-kit's files.
    var source: ConfigurationSource {
        if let configDirectory { return .directory(configDirectory, origin: "--config-dir") }
        return ConfigurationSource.select(configDirectory: nil, environment: ConfigurationSource.environment())
    }

    var programNames: [String] { programs + [ProxyConfiguration.proxyProgramName] }
}

extension ConfigurationSource {
    /// For the first lines of `list` and `check`: where the configuration comes from.
    var summary: [String] {
        switch self {
        case .spy(let module):
            return ["configuration: P11PROXY_MODULE=\(module) (spy mode: that module only, critical)"]
        case .directory(let directory, let origin):
            return ["configuration: \(directory) (\(origin)): pkcs11.conf and modules/*.module"]
        case .p11kit(let locations):
            var lines = ["configuration: p11-kit's files"]
            let files: [(String, String?)] = [
                ("user config", locations.userConfigFile), ("user modules", locations.userModulesDirectory),
                ("system config", locations.globalConfigFile), ("system modules", locations.systemModulesDirectory),
                ("package modules", locations.packageModulesDirectory),
            ]
            for case let (what, path?) in files { lines.append("    \(what): \(path)") }
            lines.append("    module directory (for relative module: paths): \(locations.moduleDirectory)")
            return lines
        }
    }
}
