// `p11proxy`: look at what the p11proxy module would load (list), find what is wrong with its
// configuration (check), and watch a program's PKCS#11 calls through it (trace).
import ArgumentParser

@main
struct P11ProxyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "p11proxy",
        abstract: "Inspect and trace the p11proxy PKCS#11 proxy module.",
        discussion: """
            libp11proxy.so reads p11-kit's module configuration (or P11PROXY_CONFIG_DIR, or \
            P11PROXY_MODULE) when a program first calls its C_Initialize. `list` and `check` read \
            the same files the same way, load the same modules and report what the module would do; \
            `trace` runs a program with the module's call tracing switched on.
            """,
        subcommands: [ListCommand.self, CheckCommand.self, TraceCommand.self])
}
