// Names of the configuration keys the proxy reads, spelled once. Keys are documented in
// pkcs11.conf(5); the `x-` ones are this project's extensions (p11-kit's advice for new keys).

public enum ConfigKey {
    public static let module = "module"
    public static let critical = "critical"
    public static let priority = "priority"
    public static let enableIn = "enable-in"
    public static let disableIn = "disable-in"
    public static let managed = "managed"
    public static let logCalls = "log-calls"
    public static let remote = "remote"
    public static let initReserved = "x-init-reserved"
    public static let trustPolicy = "trust-policy"
    public static let userConfig = "user-config"
    public static let logFile = "x-log-file"
    public static let logFormat = "x-log-format"
    public static let logSecrets = "x-log-secrets"
    public static let remoteTimeout = "x-remote-timeout"
    public static let onlyTokens = "x-only-tokens"
    public static let hideTokens = "x-hide-tokens"
}
