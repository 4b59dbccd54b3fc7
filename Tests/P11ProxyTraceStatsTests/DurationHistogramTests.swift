// The histogram behind p50/p95/p99: what it keeps of a duration (three significant digits, all
// of one under 1 us), the error bound the help promises, and nearest-rank percentiles.

import Testing
@testable import P11ProxyTraceStats

@Suite struct DurationHistogramTests {
    @Test func keepsThreeSignificantDigitsAndEverythingUnderAMicrosecond() {
        #expect(DurationHistogram.truncated(0) == 0)
        #expect(DurationHistogram.truncated(999) == 999)
        #expect(DurationHistogram.truncated(1000) == 1000)
        #expect(DurationHistogram.truncated(1001) == 1000)
        #expect(DurationHistogram.truncated(12_345) == 12_300)
        #expect(DurationHistogram.truncated(999_999) == 999_000)
        #expect(DurationHistogram.truncated(203_682_000) == 203_000_000)
        #expect(DurationHistogram.truncated(TraceFieldText.durationLimit) == TraceFieldText.durationLimit)
        #expect(DurationHistogram.truncated(UInt64.max) == 18_400_000_000_000_000_000)
    }

    @Test func neverAboveTheExactValueAndLessThanOnePercentBelow() {
        var generator = SplitMix(seed: 42)
        for _ in 0..<200_000 {
            // Spread over every decade, not only the large ones.
            let value = generator.next() >> (generator.next() % 64)
            let kept = DurationHistogram.truncated(value)
            #expect(kept <= value)
            if value < 1000 { #expect(kept == value) } else { #expect((value - kept) * 100 < kept) }
        }
    }

    @Test func percentilesAreNearestRank() {
        var histogram = DurationHistogram()
        for value in 1...100 { histogram.record(UInt64(value)) }
        #expect(histogram.percentile(50) == 50)
        #expect(histogram.percentile(95) == 95)
        #expect(histogram.percentile(99) == 99)
        var ten = DurationHistogram()
        for value in [70, 10, 40, 20, 30, 100, 60, 90, 50, 80] as [UInt64] { ten.record(value) }
        // ranks ceil(5) = 5, ceil(9.5) = 10, ceil(9.9) = 10
        #expect(ten.percentile(50) == 50)
        #expect(ten.percentile(95) == 100)
        #expect(ten.percentile(99) == 100)
        #expect(DurationHistogram().percentile(50) == 0)
    }

    @Test func percentilesOfLargeDurationsAreTheTruncatedRankedValue() {
        var histogram = DurationHistogram()
        for value: UInt64 in [2_345_678, 1_234_567, 9_876_543_210] { histogram.record(value) }
        #expect(histogram.percentile(50) == 2_340_000)
        #expect(histogram.percentile(99) == 9_870_000_000)
        #expect(histogram.buckets.map(\.lowerBound) == [1_230_000, 2_340_000, 9_870_000_000])
    }

    @Test func mergingIsRecordingBoth() {
        var generator = SplitMix(seed: 7)
        var left = DurationHistogram(), right = DurationHistogram(), both = DurationHistogram()
        for index in 0..<5000 {
            let value = generator.next() % 50_000_000
            if index % 3 == 0 { left.record(value) } else { right.record(value) }
            both.record(value)
        }
        left.merge(right)
        #expect(left == both)
        #expect(left.count == 5000)
    }
}

/// A fixed pseudo-random sequence (SplitMix64), so a failure replays.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
