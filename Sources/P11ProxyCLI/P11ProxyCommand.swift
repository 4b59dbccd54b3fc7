// `p11proxy`: look at what the p11proxy module would load (list), find what is wrong with its
// configuration (check), watch a program's PKCS#11 calls through it (trace), and see where a
// trace's time went (stats).
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
            `trace` runs a program with the module's call tracing switched on; `stats` summarises \
            traces per function (calls, errors, durations).
            """,
        subcommands: [ListCommand.self, CheckCommand.self, TraceCommand.self, StatsCommand.self])
}
