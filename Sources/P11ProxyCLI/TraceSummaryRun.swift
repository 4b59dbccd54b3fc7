// `p11proxy trace --summary`: COMMAND as a child (posix_spawn) rather than in place of this
// process, so the trace can be summarised when it exits. Like system(3), this process ignores
// SIGINT and SIGQUIT while it waits: Ctrl-C stops COMMAND, and the summary is still printed.
import ArgumentParser
import Glibc
import P11ProxyTraceStats

struct TraceSummaryRun {
    let commandLine: [String]
    let traceFile: String
    /// The trace is --summary's own temporary file, not --output.
    let removeAfterwards: Bool
    let options: SummaryOptions

    /// An empty file, mode 0600, for a trace nobody asked to keep.
    static func makeTemporaryFile() throws -> String {
        let directory = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 } ?? "/tmp"
        var template = Array((directory + "/p11proxy-trace.XXXXXX").utf8CString)
        let descriptor = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard descriptor >= 0 else {
            printError("p11proxy trace: cannot create a temporary trace file in \(directory): \(String(cString: strerror(errno)))")
            throw ExitCode(1)
        }
        close(descriptor)
        return String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Runs COMMAND, prints the summary, and ends as COMMAND ended.
    func run() throws -> Never {
        let status = spawnAndWait()
        var statistics = TraceStatistics(grouping: options.grouping)
        let failures = TraceInput.read([traceFile], into: &statistics)
        if removeAfterwards { unlink(traceFile) }
        if case .failedToStart(let error) = status {
            printError("p11proxy trace: cannot run \(commandLine[0]): \(String(cString: strerror(error)))")
            throw ExitCode(error == ENOENT ? 127 : 126)
        }
        TraceInput.printWarnings(statistics, prefix: "p11proxy trace")
        for failure in failures { printError("p11proxy trace: \(failure)") }
        printError("p11proxy trace: summary of \(commandLine[0])'s PKCS#11 calls"
                   + (removeAfterwards ? "" : " (trace in \(traceFile))") + "\n"
                   + StatsReport.text(statistics.summary, histogram: options.histogram), newline: false)
        switch status {
        case .exited(let code):
            throw ExitCode(code)
        case .signalled(let signalNumber):
            // Ended the way COMMAND ended, as a shell would see it.
            signal(signalNumber, SIG_DFL)
            raise(signalNumber)
            throw ExitCode(128 + signalNumber)
        case .failedToStart:
            throw ExitCode(126)
        }
    }

    enum Status {
        case exited(Int32)
        case signalled(Int32)
        case failedToStart(Int32)
    }

    private func spawnAndWait() -> Status {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGQUIT)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF))

        let previousInterrupt = signal(SIGINT, SIG_IGN)
        let previousQuit = signal(SIGQUIT, SIG_IGN)
        defer {
            signal(SIGINT, previousInterrupt)
            signal(SIGQUIT, previousQuit)
        }
        let arguments = commandLine.map { strdup($0) } + [nil]
        defer { for argument in arguments { free(argument) } }
        var child: pid_t = 0
        let error = posix_spawnp(&child, commandLine[0], nil, &attributes, arguments, environ)
        guard error == 0 else { return .failedToStart(error) }
        var status: Int32 = 0
        while waitpid(child, &status, 0) < 0 {
            if errno != EINTR { return .exited(127) }
        }
        // WIFEXITED / WTERMSIG, which are macros C gives Swift no access to.
        let signalNumber = status & 0x7F
        return signalNumber == 0 ? .exited((status >> 8) & 0xFF) : .signalled(signalNumber)
    }
}
