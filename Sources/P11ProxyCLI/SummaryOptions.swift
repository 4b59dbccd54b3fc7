// How `stats` and `trace --summary` group and draw their tables.
import ArgumentParser
import P11ProxyTraceStats

struct SummaryOptions: ParsableArguments {
    enum Grouping: String, ExpressibleByArgument, CaseIterable {
        case module, caller, thread
    }

    @Option(help: "One table per module, caller number or thread id instead of one for all calls.")
    var by: Grouping?

    @Flag(help: "Draw each function's durations as a log-scale histogram (1-2-5 steps per decade).")
    var histogram = false

    var grouping: TraceGrouping { by.flatMap { TraceGrouping(rawValue: $0.rawValue) } ?? .none }

    /// The part of the help that `stats` and `trace --summary` share.
    static let discussion = """
        Per function: calls, errors (calls that returned anything but CKR_OK, listed by return value), \
        total time, mean, p50, p95, p99 and max duration, sorted by total time; then a totals row, and \
        a last line with the totals of all tables and the wall-clock span from the first call's start to \
        the last call's end. Total, mean and max are exact. p50/p95/p99 come from a fixed log-scale \
        histogram, so any size of trace is read in bounded memory: each is the nearest-rank value (the \
        smallest duration with at least that share of calls at or below it) truncated to three \
        significant digits in nanoseconds (12.345us shows as 12.300us): never above the exact value \
        and less than 1% below it; exact for durations under 1us.
        """
}
