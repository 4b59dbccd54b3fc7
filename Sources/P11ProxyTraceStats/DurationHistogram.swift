// Call durations counted in fixed log-scale buckets, so a trace of any length is summarised in
// bounded memory: each duration (nanoseconds) is kept to its first three significant decimal
// digits (12345 ns counts as 12300 ns), exactly below 1 us. Percentiles read from it are the
// nearest-rank value so truncated: never above the exact value and less than 1% below it.

public struct DurationHistogram: Equatable, Sendable {
    /// Counts by decade, each allocated when first used: decade 0 holds 0...999 ns one by one;
    /// decade d (1...17) holds 10^(d+2) ... 10^(d+3)-1 ns in 900 buckets of 10^d ns.
    private var decades: [[Int]] = []
    public private(set) var count = 0

    public init() {}

    static let powersOfTen: [UInt64] = (0...19).map { exponent in
        var value: UInt64 = 1
        for _ in 0..<exponent { value *= 10 }
        return value
    }

    /// The decade and the bucket within it of `nanoseconds`.
    @inline(__always)
    static func bucket(of nanoseconds: UInt64) -> (decade: Int, index: Int) {
        if nanoseconds < 1000 { return (0, Int(nanoseconds)) }
        var decade = 1
        while decade < 17 && nanoseconds >= powersOfTen[decade + 3] { decade += 1 }
        return (decade, Int(nanoseconds / powersOfTen[decade]) - 100)
    }

    /// The smallest duration that falls into a bucket.
    static func lowerBound(decade: Int, index: Int) -> UInt64 {
        decade == 0 ? UInt64(index) : UInt64(index + 100) * powersOfTen[decade]
    }

    /// `nanoseconds` as the histogram keeps it: its first three significant digits.
    public static func truncated(_ nanoseconds: UInt64) -> UInt64 {
        let (decade, index) = bucket(of: nanoseconds)
        return lowerBound(decade: decade, index: index)
    }

    @inline(__always)
    public mutating func record(_ nanoseconds: UInt64) {
        let (decade, index) = Self.bucket(of: nanoseconds)
        if decade >= decades.count { decades.append(contentsOf: repeatElement([], count: decade + 1 - decades.count)) }
        if decades[decade].isEmpty { decades[decade] = [Int](repeating: 0, count: decade == 0 ? 1000 : 900) }
        decades[decade][index] += 1
        count += 1
    }

    public mutating func merge(_ other: DurationHistogram) {
        for (decade, counts) in other.decades.enumerated() {
            for (index, bucketCount) in counts.enumerated() where bucketCount > 0 {
                if decade >= decades.count { decades.append(contentsOf: repeatElement([], count: decade + 1 - decades.count)) }
                if decades[decade].isEmpty { decades[decade] = [Int](repeating: 0, count: decade == 0 ? 1000 : 900) }
                decades[decade][index] += bucketCount
            }
        }
        count += other.count
    }

    /// The non-empty buckets in increasing order: each bucket's smallest duration and its count.
    public var buckets: [(lowerBound: UInt64, count: Int)] {
        var result: [(lowerBound: UInt64, count: Int)] = []
        for (decade, counts) in decades.enumerated() {
            for (index, bucketCount) in counts.enumerated() where bucketCount > 0 {
                result.append((Self.lowerBound(decade: decade, index: index), bucketCount))
            }
        }
        return result
    }

    /// The `rank`-th smallest duration (1-based), truncated to three significant digits.
    public func value(atRank rank: Int) -> UInt64 {
        var seen = 0
        for (decade, counts) in decades.enumerated() {
            for (index, bucketCount) in counts.enumerated() where bucketCount > 0 {
                seen += bucketCount
                if seen >= rank { return Self.lowerBound(decade: decade, index: index) }
            }
        }
        return 0
    }

    /// Nearest rank: the smallest recorded duration with at least `percent`% of the durations
    /// at or below it (rank ceil(percent/100 * count)), as the histogram keeps it.
    public func percentile(_ percent: Int) -> UInt64 {
        guard count > 0 else { return 0 }
        let rank = max(1, (percent * count + 99) / 100)
        return value(atRank: min(rank, count))
    }
}
