// `p11proxy stats FILE...`: where the time of a traced program went, strace -c style: per
// function the calls, errors, total time and duration percentiles, read from text or JSON traces.
import ArgumentParser
import P11ProxyTraceStats

struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Summarise traces: calls, errors and durations per function.",
        discussion: SummaryOptions.discussion + """


            FILEs are traces p11proxy wrote, text or JSON (told apart line by line); - reads standard \
            input. Files of any size are read in bounded memory. Records that cannot be counted (a last \
            record cut off, another writer's lines in between, garbage) are skipped with a warning on \
            standard error giving FILE:LINE; the exit status is 0 even then, 1 when a FILE cannot be read.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, json
    }

    @OptionGroup var summary: SummaryOptions

    @Option(help: "Output format: text (tables) or json (one object, for scripts).")
    var format: Format = .text

    @Argument(help: ArgumentHelp("Trace files; - for standard input.", valueName: "FILE"))
    var files: [String] = []

    func validate() throws {
        if files.isEmpty { throw ValidationError("Missing FILE (- for standard input): p11proxy stats [OPTIONS] FILE ...") }
    }

    func run() throws {
        var statistics = TraceStatistics(grouping: summary.grouping)
        let failures = TraceInput.read(files, into: &statistics)
        TraceInput.printWarnings(statistics, prefix: "p11proxy stats")
        for failure in failures { printError("p11proxy stats: \(failure)") }
        switch format {
        case .text: print(StatsReport.text(statistics.summary, histogram: summary.histogram), terminator: "")
        case .json: print(StatsReport.json(statistics.summary, histogram: summary.histogram), terminator: "")
        }
        if !failures.isEmpty { throw ExitCode(1) }
    }
}
