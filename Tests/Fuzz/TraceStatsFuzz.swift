// libFuzzer entry for the trace statistics reader (`make fuzz`, Tests/Fuzz/run.sh): compiled
// together with Sources/P11ProxyTraceStats by `swiftc -sanitize=fuzzer,address`. Every
// invariant below traps, which libFuzzer reports as a crash together with the input.
//
// Input layout: the first byte chooses how the rest is fed to the reader (chunks of 1 + byte % 64
// bytes) and the grouping (byte / 64: none, module, caller, thread); the rest is the trace.

/// Stops the run with a message libFuzzer shows above its crash report.
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fatalError("invariant violated: \(message())") }
}

func read(_ trace: UnsafeRawBufferPointer, chunk: Int, grouping: TraceGrouping) -> TraceStatistics {
    var statistics = TraceStatistics(grouping: grouping)
    var reader = TraceReader(source: "fuzz")
    var start = 0
    while start < trace.count {
        let end = min(start + chunk, trace.count)
        reader.read(UnsafeRawBufferPointer(rebasing: trace[start..<end]), into: &statistics)
        start = end
    }
    reader.finish(into: &statistics)
    return statistics
}

/// A row is self-consistent: counts add up, percentiles are ordered and within the durations.
func checkRow(_ row: FunctionSummary, _ what: String) {
    require(row.calls > 0, "\(what): a row without calls")
    require(row.errors <= row.calls && row.failures.reduce(0, { $0 + $1.count }) == row.errors, "\(what): errors do not add up")
    require(!row.failures.contains { $0.name == "CKR_OK" }, "\(what): CKR_OK counted as an error")
    require(row.histogram.count == row.calls, "\(what): histogram holds \(row.histogram.count) of \(row.calls) calls")
    require(DurationHistogram.truncated(row.minimum) <= row.p50 && row.p50 <= row.p95 && row.p95 <= row.p99
                && row.p99 <= row.maximum, "\(what): percentiles out of order")
    require(row.minimum <= row.mean && row.mean <= row.maximum, "\(what): mean outside min...max")
    require(UInt128(row.minimum) * UInt128(row.calls) <= row.total && row.total <= UInt128(row.maximum) * UInt128(row.calls),
            "\(what): total outside calls * min...max")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTraceReader(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 0 else { return 0 }
    let control = data[0]
    let trace = UnsafeRawBufferPointer(start: data + 1, count: size - 1)
    let grouping = TraceGrouping.allCases[Int(control) / 64]
    let whole = read(trace, chunk: max(trace.count, 1), grouping: grouping)
    let chunked = read(trace, chunk: 1 + Int(control) % 64, grouping: grouping)
    require(whole.summary == chunked.summary, "chunks changed the counts")
    require(whole.warnings == chunked.warnings && whole.warningCount == chunked.warningCount, "chunks changed the warnings")

    var lines = 0
    for byte in trace where byte == 0x0A { lines += 1 }
    if trace.last.map({ $0 != 0x0A }) == true { lines += 1 }
    for warning in whole.warnings {
        require((1...max(lines, 1)).contains(warning.line), "warning on line \(warning.line) of \(lines): \(warning.text)")
        require(!warning.message.isEmpty, "a warning without a message")
    }
    require(whole.warnings.count == min(whole.warningCount, TraceStatistics.keptWarnings), "warnings kept")

    let summary = whole.summary
    require(summary.records <= lines, "\(summary.records) records from \(lines) lines")
    var calls = 0
    var total: UInt128 = 0
    for group in summary.groups {
        require(group.functions.reduce(0, { $0 + $1.calls }) == group.total.calls, "group \(group.key): calls do not add up")
        require(group.functions.reduce(0, { $0 + $1.total }) == group.total.total, "group \(group.key): time does not add up")
        for row in group.functions { checkRow(row, "\(group.key) \(row.name)") }
        checkRow(group.total, "\(group.key) total")
        calls += group.total.calls
        total += group.total.total
    }
    require(calls == summary.records && calls == summary.total.calls && total == summary.total.total, "totals do not add up")
    require((summary.firstStart == nil) == (summary.records == 0), "a span without calls")
    if summary.records > 0 { checkRow(summary.total, "total") }
    _ = StatsReport.text(summary, histogram: true)
    _ = StatsReport.json(summary, histogram: true)
    return 0
}
