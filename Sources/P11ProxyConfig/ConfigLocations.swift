// Where configuration is read from: p11-kit's global file, user file and the three module
// directories, or a single directory in P11PROXY_CONFIG_DIR mode. Paths only; nothing is read here.

public struct ConfigLocations: Sendable, Equatable {
    public var globalConfigFile: String?
    public var userConfigFile: String?
    public var userModulesDirectory: String?
    public var systemModulesDirectory: String?
    public var packageModulesDirectory: String?
    /// Where relative `module:` paths resolve (p11-kit's P11_MODULE_PATH, e.g. /usr/lib/x86_64-linux-gnu/pkcs11).
    public var moduleDirectory: String

    public init(globalConfigFile: String? = nil, userConfigFile: String? = nil,
                userModulesDirectory: String? = nil, systemModulesDirectory: String? = nil,
                packageModulesDirectory: String? = nil, moduleDirectory: String) {
        self.globalConfigFile = globalConfigFile
        self.userConfigFile = userConfigFile
        self.userModulesDirectory = userModulesDirectory
        self.systemModulesDirectory = systemModulesDirectory
        self.packageModulesDirectory = packageModulesDirectory
        self.moduleDirectory = moduleDirectory
    }

    /// p11-kit's layout. The user files live under `$XDG_CONFIG_HOME/pkcs11` or `~/.config/pkcs11`
    /// (p11-kit expands `~/.config` to `$XDG_CONFIG_HOME` when that is set, common/path.c).
    /// No user locations when `userConfigAllowed` is false, or when neither variable names an
    /// absolute directory (p11-kit would ask getpwuid; a relative one would depend on the host's
    /// working directory, and the XDG base directory spec says to ignore it).
    public static func p11kit(systemConfigFile: String, systemModulesDirectory: String,
                              packageModulesDirectory: String, moduleDirectory: String,
                              environment: EnvironmentVariables, userConfigAllowed: Bool) -> ConfigLocations {
        var locations = ConfigLocations(globalConfigFile: systemConfigFile,
                                        systemModulesDirectory: systemModulesDirectory,
                                        packageModulesDirectory: packageModulesDirectory,
                                        moduleDirectory: moduleDirectory)
        if userConfigAllowed, let configHome = userConfigHome(environment) {
            let pkcs11 = joinPath(configHome, "pkcs11")
            locations.userConfigFile = joinPath(pkcs11, "pkcs11.conf")
            locations.userModulesDirectory = joinPath(pkcs11, "modules")
        }
        return locations
    }

    /// P11PROXY_CONFIG_DIR mode: `DIR/pkcs11.conf` (optional) and `DIR/modules/*.module`, nothing
    /// else, so a test or a container sees exactly the configuration it wrote.
    public static func configDirectory(_ directory: String, moduleDirectory: String) -> ConfigLocations {
        ConfigLocations(globalConfigFile: joinPath(directory, "pkcs11.conf"),
                        systemModulesDirectory: joinPath(directory, "modules"),
                        moduleDirectory: moduleDirectory)
    }

    static func userConfigHome(_ environment: EnvironmentVariables) -> String? {
        if let xdg = environment["XDG_CONFIG_HOME"], xdg.hasPrefix("/") { return xdg }
        if let home = environment["HOME"], home.hasPrefix("/") { return joinPath(home, ".config") }
        return nil
    }
}

/// `base/name` with one slash between, like p11_path_build; an absolute `name` stands alone.
func joinPath(_ base: String, _ name: String) -> String {
    if name.hasPrefix("/") || base.isEmpty { return name }
    return base.hasSuffix("/") ? base + name : base + "/" + name
}
