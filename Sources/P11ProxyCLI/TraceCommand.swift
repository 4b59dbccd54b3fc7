// `p11proxy trace -- COMMAND ...`: runs COMMAND with p11proxy's log-calls tracing switched on
// through the environment variables the module reads (P11ProxyLoader/TraceSettings.swift), replacing
// this process, so COMMAND's exit status, signals and standard streams are its own. With
// --summary it runs COMMAND as a child instead, and summarises the trace when it exits.
import ArgumentParser
import Glibc
import P11ProxyTraceStats

struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Run a command with p11proxy's call tracing switched on.",
        discussion: """
            Sets P11PROXY_LOG_CALLS=yes, P11PROXY_LOG_FORMAT and P11PROXY_LOG_SECRETS (and \
            P11PROXY_LOG_FILE with --output) and runs COMMAND in place of this process, so its exit \
            status is the command's own (127: not found, 126: not executable). Every p11proxy that \
            COMMAND loads traces every call into every module. PINs and key material are redacted \
            unless --secrets. Without --output, records go where the configuration's x-log-file \
            says, or to standard error.

            --summary (or --by, --histogram) runs COMMAND as a child instead and, when it exits, prints \
            the table of `p11proxy stats` to standard error, after COMMAND's own output; the exit status \
            is still COMMAND's (a signal that ended it ends p11proxy the same way). The trace goes to \
            --output, kept, or else to a temporary file (in TMPDIR, mode 0600) removed afterwards. \
            Interrupting with Ctrl-C stops COMMAND and still prints the summary.


            """ + SummaryOptions.discussion)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    @Option(help: "Record format: text (p11-kit's log-calls layout) or json (one object per line).")
    var format: Format = .text

    @Option(name: .shortAndLong, help: ArgumentHelp(
        "Write the records to FILE (created mode 0600, emptied first) instead of standard error.", valueName: "FILE"))
    var output: String?

    @Flag(help: "Show PINs and key material in the records (P11PROXY_LOG_SECRETS=yes).")
    var secrets = false

    @Option(name: .customLong("config-dir"), help: ArgumentHelp(
        "Have p11proxy read DIR/pkcs11.conf and DIR/modules/*.module (P11PROXY_CONFIG_DIR=DIR).", valueName: "DIR"))
    var configDirectory: String?

    @Option(name: .customLong("module"), help: ArgumentHelp(
        "Spy mode: have p11proxy wrap only the module at PATH (P11PROXY_MODULE=PATH).", valueName: "PATH"))
    var module: String?

    @Flag(help: "When COMMAND exits, print calls, errors and durations per function to standard error.")
    var summary = false

    @OptionGroup var summaryOptions: SummaryOptions

    var summarises: Bool { summary || summaryOptions.by != nil || summaryOptions.histogram }

    /// Everything after `--`, taken before options are parsed, so COMMAND's own options (and a
    /// `--help` meant for it) are never read as ours.
    @Argument(parsing: .postTerminator, help: ArgumentHelp(
        "The command to run, after `--`, with its arguments.", valueName: "COMMAND"))
    var commandLine: [String] = []

    func validate() throws {
        if commandLine.isEmpty { throw ValidationError("Missing COMMAND to run: p11proxy trace [OPTIONS] -- COMMAND ...") }
    }

    /// The variables to set (a nil value: unset), in the names and values TraceSettings reads.
    /// `logFile`: where the records go when not --output (--summary's temporary file).
    func environment(workingDirectory: String, logFile: String? = nil) -> [(name: String, value: String?)] {
        var variables: [(name: String, value: String?)] = [
            ("P11PROXY_LOG_CALLS", "yes"),
            ("P11PROXY_LOG_FORMAT", format.rawValue),
            ("P11PROXY_LOG_SECRETS", secrets ? "yes" : "no"),
            // COMMAND may change directory before it loads p11proxy.
            ("P11PROXY_LOG_FILE", output.map { $0.hasPrefix("/") ? $0 : workingDirectory + "/" + $0 } ?? logFile),
        ]
        if let configDirectory { variables.append(("P11PROXY_CONFIG_DIR", configDirectory)) }
        if let module { variables.append(("P11PROXY_MODULE", module)) }
        return variables
    }

    func run() throws {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let workingDirectory = getcwd(&buffer, buffer.count).map { String(cString: $0) } ?? "."
        var temporaryFile: String?
        if summarises && output == nil {
            temporaryFile = try TraceSummaryRun.makeTemporaryFile()
        }
        let variables = environment(workingDirectory: workingDirectory, logFile: temporaryFile)
        for (name, value) in variables {
            if let value { setenv(name, value, 1) } else { unsetenv(name) }
        }
        if let path = variables.first(where: { $0.name == "P11PROXY_LOG_FILE" })?.value {
            // Emptied now (the module appends), mode 0600 as the module creates trace files (an
            // existing file keeps its mode otherwise), and a path that cannot be written fails
            // here, not silently inside COMMAND.
            let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard descriptor >= 0, fchmod(descriptor, 0o600) == 0 else {
                printError("p11proxy trace: cannot write \(path): \(String(cString: strerror(errno)))")
                throw ExitCode(1)
            }
            close(descriptor)
        }
        if summarises {
            let path = variables.first(where: { $0.name == "P11PROXY_LOG_FILE" })!.value!
            try TraceSummaryRun(commandLine: commandLine, traceFile: path, removeAfterwards: temporaryFile != nil,
                                options: summaryOptions).run()
        }
        let arguments = commandLine.map { strdup($0) } + [nil]
        execvp(commandLine[0], arguments)
        let error = errno
        printError("p11proxy trace: cannot run \(commandLine[0]): \(String(cString: strerror(error)))")
        throw ExitCode(error == ENOENT ? 127 : 126)
    }
}
