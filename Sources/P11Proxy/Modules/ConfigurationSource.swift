// Which configuration the module reads, in order of precedence:
//   P11PROXY_MODULE=PATH       spy mode: exactly that one module, no config files;
//   P11PROXY_CONFIG_DIR=DIR    DIR/pkcs11.conf and DIR/modules/*.module only;
//   pReserved "config-dir=DIR" (x-init-reserved in p11proxy's own .module file) likewise;
//   otherwise p11-kit's locations, from `pkg-config p11-kit-1` at build time.
import CPKCS11
import P11ProxyConfig

enum ConfigurationSource {
    /// The environment p11proxy reads. In a setuid/setgid process the P11PROXY_* variables are
    /// ignored: they name a library to load and a file to write, which a less privileged
    /// caller must not choose.
    static func environment() -> [String: String] {
        let environment = CurrentProcess.environment()
        guard ProcessIdentity.current().isSecureExecution else { return environment }
        return environment.filter { !$0.key.hasPrefix("P11PROXY_") }
    }

    static func current(options: InitializeOptions, environment: [String: String]) -> ProxyConfiguration {
        let programNames = CurrentProcess.programNamesForProxy()
        if let module = environment["P11PROXY_MODULE"], !module.isEmpty {
            return spyConfiguration(module: module)
        }
        if let directory = environment["P11PROXY_CONFIG_DIR"], !directory.isEmpty {
            return readConfiguration(.configDirectory(directory, moduleDirectory: P11PROXY_P11_MODULE_PATH),
                                     programNames: programNames)
        }
        if let directory = options.configDirectory {
            return readConfiguration(.configDirectory(directory, moduleDirectory: P11PROXY_P11_MODULE_PATH),
                                     programNames: programNames)
        }
        let locations = ConfigLocations.p11kit(
            systemConfigFile: P11PROXY_P11_SYSTEM_CONFIG,
            systemModulesDirectory: P11PROXY_P11_SYSTEM_CONFIG_MODULES,
            packageModulesDirectory: P11PROXY_P11_PACKAGE_CONFIG_MODULES,
            moduleDirectory: P11PROXY_P11_MODULE_PATH,
            environment: environment,
            userConfigAllowed: userConfigAllowed(environment: environment))
        return readConfiguration(locations, programNames: programNames)
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

