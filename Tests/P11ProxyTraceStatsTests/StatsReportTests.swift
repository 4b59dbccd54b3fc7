// The tables and JSON of `p11proxy stats`: the golden traces in Tests/golden/stats, whose tables
// were computed by hand (README.md there), in both formats and in chunks; and the units.

import Foundation
import Testing
@testable import P11ProxyTraceStats

@Suite struct StatsReportTests {
    static let golden = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../golden/stats").standardized

    static func file(_ name: String) throws -> String {
        try String(contentsOf: golden.appendingPathComponent(name), encoding: .utf8)
    }

    @Test(arguments: ["calls.txt", "calls.jsonl"])
    func goldenTables(trace: String) throws {
        let text = try Self.file(trace)
        #expect(StatsReport.text(statistics(text, chunk: 100).summary) == (try Self.file("calls.table")))
        #expect(StatsReport.text(statistics(text, grouping: .module).summary) == (try Self.file("calls-by-module.table")))
    }

    @Test(arguments: ["damaged.txt", "damaged.jsonl"])
    func damagedGoldenTablesAndWarnings(trace: String) throws {
        let read = statistics(try Self.file(trace), chunk: 5, source: "Tests/golden/stats/" + trace)
        #expect(StatsReport.text(read.summary) == (try Self.file(trace + ".table")))
        #expect(read.warnings.map { "p11proxy stats: " + $0.text + "\n" }.joined() == (try Self.file(trace + ".warnings")))
    }

    @Test func jsonHasTheSameNumbersInMicroseconds() throws {
        let json = StatsReport.json(statistics(try Self.file("calls.jsonl")).summary, histogram: true)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["calls"] as? Int == 20 && object["errors"] as? Int == 4 && object["records"] as? Int == 20)
        #expect(object["span_us"] as? Double == 3_000_000 && object["first_start"] as? String == "2026-11-22T01:56:34.000000Z")
        let groups = try #require(object["groups"] as? [[String: Any]])
        let functions = try #require(groups.first?["functions"] as? [[String: Any]])
        #expect(functions.map { $0["function"] as? String } == ["C_WaitForSlotEvent", "C_Login", "C_Sign", "C_GetAttributeValue", "C_GetSlotList"])
        let sign = functions[2]
        #expect(sign["calls"] as? Int == 10 && sign["errors"] as? Int == 2)
        #expect(sign["errors_by_return_value"] as? [String: Int] == ["CKR_DEVICE_ERROR": 1, "CKR_KEY_HANDLE_INVALID": 1])
        #expect(sign["total_us"] as? Double == 246 && sign["mean_us"] as? Double == 24.6 && sign["min_us"] as? Double == 10)
        #expect(sign["p50_us"] as? Double == 14 && sign["p95_us"] as? Double == 120 && sign["max_us"] as? Double == 120)
        let histogram = try #require(sign["histogram"] as? [[String: Double]])
        #expect(histogram.map { $0["from_us"]! } == [10, 11, 12, 13, 14, 15, 16, 17, 18, 120])
        let attributes = functions[3]
        #expect(attributes["p50_us"] as? Double == 1 && attributes["p99_us"] as? Double == 2.34 && attributes["max_us"] as? Double == 2.345)
    }

    @Test func histogramRowsFollowOneTwoFive() throws {
        let sign = statistics(try Self.file("calls.txt")).summary.groups[0].functions.first { $0.name == "C_Sign" }!
        #expect(DurationChart.text(sign) == """
            C_Sign: 10 calls
                10us .. 20us |########################################| 9
                20us .. 50us |                                        | 0
               50us .. 100us |                                        | 0
              100us .. 200us |#####                                   | 1

            """)
    }

    @Test func durationsInTheLargestUnit() {
        #expect(DurationText.text(UInt64(0)) == "0ns")
        #expect(DurationText.text(UInt64(999)) == "999ns")
        #expect(DurationText.text(UInt64(1000)) == "1.000us")
        #expect(DurationText.text(UInt64(999_999)) == "999.999us")
        #expect(DurationText.text(UInt64(1_000_000)) == "1.000ms")
        #expect(DurationText.text(UInt64(1_234_500)) == "1.235ms")
        #expect(DurationText.text(UInt64(999_999_600)) == "1.000s")
        #expect(DurationText.text(UInt128(86_400_000_000_000)) == "86400.000s")
        #expect(DurationText.microseconds(1_234_567) == "1234.567")
    }

    @Test func anEmptyTraceHasOnlyTheLastLine() {
        #expect(StatsReport.text(statistics("").summary) == "0 calls, 0 errors, 0ns in calls\n")
        #expect(StatsReport.json(statistics("").summary) == "{\"grouping\":\"none\",\"records\":0,\"warnings\":0,\"calls\":0,\"errors\":0,\"total_us\":0.000,\"span_us\":0.000,\"groups\":[]}\n")
    }
}
