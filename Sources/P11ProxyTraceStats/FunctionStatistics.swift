// What is known about one function's calls (in one group): how many, which failed with what,
// and their durations: the exact total, minimum and maximum, and the histogram the
// percentiles come from.

struct FunctionStatistics {
    var calls = 0
    /// Nanoseconds; a duration is at most 10^18 ns, so no count of calls overflows it.
    var total: UInt128 = 0
    var minimum = UInt64.max
    var maximum: UInt64 = 0
    /// Calls by return value other than CKR_OK (return-value numbers of TraceStatistics).
    var failures: [(returnValue: Int, count: Int)] = []
    var histogram = DurationHistogram()

    @inline(__always)
    mutating func add(duration: UInt64, returnValue: Int) {
        calls += 1
        total += UInt128(duration)
        if duration < minimum { minimum = duration }
        if duration > maximum { maximum = duration }
        histogram.record(duration)
        if returnValue != TraceStatistics.okReturnValue { addFailures(returnValue, 1) }
    }

    mutating func merge(_ other: FunctionStatistics) {
        calls += other.calls
        total += other.total
        minimum = min(minimum, other.minimum)
        maximum = max(maximum, other.maximum)
        histogram.merge(other.histogram)
        for failure in other.failures { addFailures(failure.returnValue, failure.count) }
    }

    private mutating func addFailures(_ returnValue: Int, _ count: Int) {
        for index in failures.indices where failures[index].returnValue == returnValue {
            failures[index].count += count
            return
        }
        failures.append((returnValue, count))
    }
}
