// Reading traces: both formats give the same counts, a record split across chunks anywhere is
// read the same, and what cannot be counted is a warning with its line, never a crash.

import Testing
@testable import P11ProxyTraceStats

/// Reads `text` as one trace, fed in chunks of `chunk` bytes (0: all at once).
func statistics(_ text: String, chunk: Int = 0, grouping: TraceGrouping = .none, source: String = "t") -> TraceStatistics {
    var statistics = TraceStatistics(grouping: grouping)
    var reader = TraceReader(source: source)
    let bytes = Array(text.utf8)
    bytes.withUnsafeBytes { all in
        let size = chunk > 0 ? chunk : max(all.count, 1)
        var start = 0
        while start < all.count {
            let end = min(start + size, all.count)
            reader.read(UnsafeRawBufferPointer(rebasing: all[start..<end]), into: &statistics)
            start = end
        }
    }
    reader.finish(into: &statistics)
    return statistics
}

func textRecord(_ function: String, module: String = "softhsm2", caller: Int = 1, tid: Int = 7,
                time: String = "2026-11-22T01:56:34.000000Z", _ duration: String, _ rv: String = "CKR_OK") -> String {
    "\(function) [\(module) caller=\(caller) tid=\(tid) \(time) \(duration)us]\n  IN: hSession = S1\n"
        + "  IN: pTemplate = (1) [\n\t{ CKA_CLASS = CKO_DATA }\n      ]\n\(function) = \(rv)\n"
}

func jsonRecord(_ function: String, module: String = "softhsm2", caller: Int = 1, tid: Int = 7,
                time: String = "2026-11-22T01:56:34.000000Z", _ duration: String, _ rv: String = "CKR_OK") -> String {
    "{\"time\":\"\(time)\",\"thread\":\(tid),\"module\":\"\(module)\",\"caller\":\(caller),\"function\":\"\(function)\","
        + "\"duration_us\":\(duration),\"in\":{\"hSession\":1,\"pTemplate\":[{\"type\":\"CKA_LABEL\",\"len\":3,"
        + "\"value\":\"a}\\\"]\"}]},\"out\":{},\"rv\":\"\(rv)\",\"rv_value\":0}\n"
}

func rows(_ statistics: TraceStatistics) -> [String] {
    statistics.summary.groups.flatMap { group in
        group.functions.map { "\(group.key) \($0.name) \($0.calls) \($0.errors) \($0.total) \($0.p50) \($0.maximum)" }
    }
}

func warnings(_ statistics: TraceStatistics) -> [String] { statistics.warnings.map(\.text) }

@Suite struct TraceReaderTests {
    static let calls: [(function: String, duration: String, rv: String, module: String)] = [
        ("C_Sign", "12.345", "CKR_OK", "softhsm2"), ("C_Sign", "100.000", "CKR_DEVICE_ERROR", "mock a"),
        ("C_Login", "2500.5", "CKR_PIN_INCORRECT", "softhsm2"), ("C_GetSlotList", "0.250", "CKR_OK", "mock a"),
    ]
    static var text: String { calls.map { textRecord($0.function, module: $0.module, $0.duration, $0.rv) }.joined() }
    static var json: String { calls.map { jsonRecord($0.function, module: $0.module, $0.duration, $0.rv) }.joined() }

    @Test func textAndJSONCountTheSame() {
        let fromText = statistics(Self.text, grouping: .module), fromJSON = statistics(Self.json, grouping: .module)
        #expect(rows(fromText) == [
            "softhsm2 C_Login 1 1 2500500 2500000 2500500", "softhsm2 C_Sign 1 0 12345 12300 12345",
            "mock a C_Sign 1 1 100000 100000 100000", "mock a C_GetSlotList 1 0 250 250 250",
        ])
        #expect(rows(fromJSON) == rows(fromText))
        #expect(fromText.summary == fromJSON.summary)
        #expect(fromText.warningCount == 0 && fromJSON.warningCount == 0)
    }

    @Test(arguments: [1, 2, 3, 7, 64, 333])
    func chunkBoundariesChangeNothing(chunk: Int) {
        let damaged = Self.text + "garbage\n" + String(Self.json.dropLast(9)) + "\n" + Self.text.prefix(60)
        let whole = statistics(damaged)
        let chunked = statistics(damaged, chunk: chunk)
        #expect(chunked.summary == whole.summary)
        #expect(warnings(chunked) == warnings(whole))
        #expect(whole.records == 7 && whole.warningCount == 3)
    }

    @Test func aCutOffLastRecordIsAWarningWithItsLine() {
        let text = statistics(textRecord("C_Sign", "1.000") + "C_Verify [softhsm2 caller=1 tid=7 2026-11-22T01:56:34.000000Z 2.000us]\n  IN: hSes")
        #expect(text.records == 1)
        #expect(warnings(text) == ["t:7: C_Verify record is cut off at the end of the input (no result line); skipped"])
        let json = statistics(jsonRecord("C_Sign", "1.000") + String(jsonRecord("C_Verify", "2.000").prefix(80)))
        #expect(json.records == 1)
        #expect(warnings(json) == ["t:2: JSON record is cut off; skipped"])
        let result = statistics(textRecord("C_Sign", "1.000") + "C_Verify [softhsm2 caller=1 tid=7 2026-11-22T01:56:34.000000Z 2.000us]\nC_Verify = CKR_SIGNATURE_INV")
        #expect(warnings(result) == ["t:8: C_Verify record's result line is cut off at the end of the input; skipped"])
        // A whole JSON record without its newline still counts: only the newline is missing.
        #expect(statistics(String(jsonRecord("C_Sign", "1.000").dropLast())).records == 1)
    }

    @Test func interleavedWritersCostOnlyTheBrokenRecords() {
        let header = "C_Encrypt [softhsm2 caller=2 tid=8 2026-11-22T01:56:34.000000Z 3.000us]\n  IN: hSession = S2\n"
        let read = statistics(header + textRecord("C_Sign", "1.000") + "  IN: pData = (2) 0102\nC_Encrypt = CKR_OK\n" + textRecord("C_Sign", "1.000"))
        #expect(read.records == 2)
        #expect(warnings(read) == [
            "t:1: C_Encrypt record has no result line (cut off, or another writer's lines in between); skipped",
            "t:9: argument line outside a record (its first line is missing); skipped with the lines after it",
        ])
        let mismatch = statistics("C_Sign [m caller=1 tid=1 2026-11-22T01:56:34.000000Z 1.000us]\nC_Verify = CKR_OK\n")
        #expect(warnings(mismatch) == ["t:2: result line of C_Verify does not end the C_Sign record of line 1; both skipped"])
    }

    @Test func garbageIsCountedAndSkipped() {
        let read = statistics("\u{0}\u{1}binary\n" + textRecord("C_Sign", "1.000") + "C_\nC_Sign [x]\n{\"a\":1}\n{]\n\n" + jsonRecord("C_Sign", "2.000"))
        #expect(read.records == 2)
        #expect(warnings(read) == [
            "t:1: not a trace line; skipped",
            "t:8: not a trace line; skipped",
            "t:9: C_Sign record's first line is not 'C_X [MODULE caller=N tid=N TIME DURATIONus]'; skipped",
            "t:10: JSON record without a \"function\" name; skipped",
            "t:11: malformed JSON record (at byte 2); skipped",
        ])
    }

    @Test func badFieldsAreRefused() {
        for (duration, accepted) in [("1", true), ("1.5", true), ("0.0001", true), ("-1", false), ("1e3", false),
                                     ("1.", false), (".5", false), ("1000000000000000", true), ("1000000000000001", false)] {
            #expect(statistics(textRecord("C_Sign", duration)).records == (accepted ? 1 : 0), "\(duration)us")
            #expect(statistics(jsonRecord("C_Sign", duration)).records == (accepted ? 1 : 0), "\(duration)us")
        }
        for time in ["2026-13-22T01:56:34.000000Z", "2026-11-22 01:56:34.000000Z", "2026-11-22T01:56:34Z", "2026-11-22T01:56:34.0000000000Z"] {
            #expect(statistics(textRecord("C_Sign", time: time, "1.0")).records == 0, "\(time)")
            #expect(statistics(jsonRecord("C_Sign", time: time, "1.0")).records == 0, "\(time)")
        }
        #expect(statistics(textRecord("C_Sign", "1.0", "CKR OK")).records == 0)
        #expect(statistics(jsonRecord("C_Sign", "1.0", "0x80000001")).summary.total.failures == [ReturnValueCount(name: "0x80000001", count: 1)])
    }

    @Test func theWaitingHalfOfWaitForSlotEventIsNotACall() {
        let text = "C_WaitForSlotEvent [m caller=1 tid=1 2026-11-22T01:56:34.000000Z waiting]\n  IN: flags = 0\n"
            + textRecord("C_Sign", "1.000")
            + "C_WaitForSlotEvent [m caller=1 tid=1 2026-11-22T01:56:34.000000Z 5000.000us]\n  IN: flags = 0\nC_WaitForSlotEvent = CKR_OK\n"
        let read = statistics(text)
        #expect(read.records == 2 && read.warningCount == 0)
        let json = "{\"time\":\"2026-11-22T01:56:34.000000Z\",\"thread\":1,\"module\":\"m\",\"caller\":1,\"function\":\"C_WaitForSlotEvent\",\"phase\":\"waiting\",\"in\":{}}\n"
        #expect(statistics(json).records == 0 && statistics(json).warningCount == 0)
    }

    @Test func theSpanRunsFromTheFirstStartToTheLastEnd() {
        let read = statistics(textRecord("C_Sign", time: "2026-11-22T01:56:35.500000Z", "250000.000")
                                + jsonRecord("C_Sign", time: "2026-11-22T01:56:34.999999Z", "1.000")
                                + textRecord("C_Sign", time: "2026-11-22T01:56:35.600000Z", "1.000"))
        #expect(read.summary.firstStart == "2026-11-22T01:56:34.999999Z")
        #expect(read.summary.span == 750_001_000)
        // 2026-11-22T01:56:34Z is 1795312594 s after the epoch (date -u -d ... +%s).
        var cache = TimestampCache()
        let nanoseconds = Array("2026-11-22T01:56:34.123456Z".utf8).withUnsafeBytes { cache.nanoseconds($0) }
        #expect(nanoseconds == 1_795_312_594_123_456_000)
        let epoch = Array("1970-01-01T00:00:00.1Z".utf8).withUnsafeBytes { cache.nanoseconds($0) }
        #expect(epoch == 100_000_000)
    }

    @Test func groupsByModuleCallerAndThreadAlike() {
        let text = textRecord("C_Sign", module: "a b", caller: 1, tid: 10, "1") + jsonRecord("C_Sign", module: "a b", caller: 2, tid: 10, "2")
            + jsonRecord("C_Sign", module: "a\\u0020b", caller: 2, tid: 11, "3") + textRecord("C_Sign", module: "c", caller: 1, tid: 11, "4")
        #expect(statistics(text, grouping: .module).summary.groups.map { "\($0.key)=\($0.total.calls)" } == ["a b=3", "c=1"])
        #expect(statistics(text, grouping: .caller).summary.groups.map { "\($0.key)=\($0.total.calls)" } == ["1=2", "2=2"])
        #expect(statistics(text, grouping: .thread).summary.groups.map { "\($0.key)=\($0.total.calls)" } == ["11=2", "10=2"])
    }

    @Test func tooManyDistinctNamesAreCountedAsOther() {
        var text = ""
        for index in 0...TraceStatistics.functionLimit { text += jsonRecord("C_F\(index)", "1") }
        let read = statistics(text)
        #expect(read.records == TraceStatistics.functionLimit + 1)
        #expect(read.summary.groups[0].functions.count == TraceStatistics.functionLimit + 1)
        #expect(read.summary.groups[0].functions.contains { $0.name == "(other)" && $0.calls == 1 })
        #expect(warnings(read) == ["t:1025: more than 1024 distinct function names; the rest are counted as (other)"])
    }

    @Test func aLineOverTheLimitIsSkippedWithoutBeingKept() {
        let long = "{\"time\":\"" + String(repeating: "x", count: TraceReader.maximumLineLength) + "\"}\n"
        let read = statistics(textRecord("C_Sign", "1") + long + textRecord("C_Sign", "1"), chunk: 1 << 20)
        #expect(read.records == 2)
        #expect(warnings(read) == ["t:7: line longer than 16 MiB; skipped"])
    }

    @Test func crlfLinesAreRead() {
        let read = statistics((textRecord("C_Sign", "1") + jsonRecord("C_Sign", "1")).split(separator: "\n").joined(separator: "\r\n") + "\r\n")
        #expect(read.records == 2 && read.warningCount == 0)
    }
}
