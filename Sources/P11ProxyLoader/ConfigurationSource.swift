// Which configuration p11proxy reads, in order of precedence:
//   P11PROXY_MODULE=PATH       spy mode: exactly that one module, no config files;
//   P11PROXY_CONFIG_DIR=DIR    DIR/pkcs11.conf and DIR/modules/*.module only;
//   pReserved "config-dir=DIR" (x-init-reserved in p11proxy's own .module file) likewise;
//   otherwise p11-kit's locations, from `pkg-config p11-kit-1` at build time.
// The module and the `p11proxy` command both choose here, so they read the same files.
import CPKCS11
import P11ProxyConfig

package enum ConfigurationSource: Equatable, Sendable {
    /// P11PROXY_MODULE: one module, no files.
    case spy(module: String)
    /// P11PROXY_CONFIG_DIR or `config-dir=` (`origin` says which, for people).
    case directory(String, origin: String)
    /// p11-kit's files, user ones included where allowed.
    case p11kit(ConfigLocations)

    /// The environment p11proxy reads. In a setuid/setgid process the P11PROXY_* variables are
    /// ignored: they name a library to load and a file to write, which a less privileged
    /// caller must not choose.
    package static func environment() -> EnvironmentVariables {
        let environment = CurrentProcess.environment()
        guard ProcessIdentity.current().isSecureExecution else { return environment }
        return environment.filter { name, _ in !name.hasPrefix("P11PROXY_") }
    }

    /// `configDirectory`: from pReserved's `config-dir=` (the module) or `--config-dir` (the command).
    package static func select(configDirectory: String?, environment: EnvironmentVariables) -> ConfigurationSource {
        if let module = environment["P11PROXY_MODULE"], !module.isEmpty {
            return .spy(module: module)
        }
        if let directory = environment["P11PROXY_CONFIG_DIR"], !directory.isEmpty {
            return .directory(directory, origin: "P11PROXY_CONFIG_DIR")
        }
        if let configDirectory {
            return .directory(configDirectory, origin: "config-dir")
        }
        return .p11kit(ConfigLocations.p11kit(
            systemConfigFile: P11PROXY_P11_SYSTEM_CONFIG,
            systemModulesDirectory: P11PROXY_P11_SYSTEM_CONFIG_MODULES,
            packageModulesDirectory: P11PROXY_P11_PACKAGE_CONFIG_MODULES,
            moduleDirectory: P11PROXY_P11_MODULE_PATH,
            environment: environment,
            userConfigAllowed: userConfigAllowed(environment: environment)))
    }

    /// `programNames`: what `enable-in`/`disable-in` are matched against.
    package func read(programNames: [String]) -> ProxyConfiguration {
        switch self {
        case .spy(let module):
            return Self.spyConfiguration(module: module)
        case .directory(let directory, _):
            return readConfiguration(.configDirectory(directory, moduleDirectory: P11PROXY_P11_MODULE_PATH),
                                     programNames: programNames)
        case .p11kit(let locations):
            return readConfiguration(locations, programNames: programNames)
        }
    }

    /// One module, named after its file (`libsofthsm2.so` -> `libsofthsm2`), critical so that a
    /// typo in the path fails C_Initialize loudly instead of showing an empty slot list.
    static func spyConfiguration(module: String) -> ProxyConfiguration {
        var name = Substring(module.split(separator: "/").last ?? Substring(module))
        if name.hasSuffix(".so") { name = name.dropLast(3) }
        let origin = "P11PROXY_MODULE"
        let config = ModuleConfig(
            name: String(name),
            values: [
                "module": ConfigValue(value: module, file: origin, line: 0),
                "critical": ConfigValue(value: "yes", file: origin, line: 0),
            ],
            files: [origin],
            moduleDirectory: P11PROXY_P11_MODULE_PATH)
        return ProxyConfiguration(modules: [config])
    }
}
