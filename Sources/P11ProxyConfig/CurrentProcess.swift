// The running process's environment and program name, the two inputs configuration reading
// takes from outside. Kept apart so everything downstream takes them as plain values.

public enum CurrentProcess {
    /// The environment variables p11proxy reads (first definition of a
    /// duplicated name wins, as getenv does): P11PROXY_*, P11_KIT_*, HOME and XDG_CONFIG_HOME.
    public static func environment() -> EnvironmentVariables {
        Syscalls.environment(prefixes: ["P11PROXY_", "P11_KIT_"], names: ["HOME", "XDG_CONFIG_HOME"])
    }

    /// The base name of the executable, as p11-kit's getprogname() reports it; nil if unknown.
    public static func programName() -> String? {
        Syscalls.programName()
    }

    /// The names `enable-in`/`disable-in` are matched against from inside a proxy: the program's
    /// own name and `p11-kit-proxy`, which pkcs11.conf(5) documents for "loaded by the proxy
    /// module" (p11-kit-trust.module ships `disable-in: p11-kit-proxy`).
    public static func programNamesForProxy() -> [String] {
        (programName().map { [$0] } ?? []) + [ProxyConfiguration.proxyProgramName]
    }
}
