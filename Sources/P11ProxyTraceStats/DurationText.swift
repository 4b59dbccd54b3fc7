// Durations for people: the largest unit that keeps the value at 1 or more, three decimals.

public enum DurationText {
    /// "850ns", "12.345us" (exact), "1.235ms", "2.500s" (rounded half up in the last decimal).
    public static func text(_ nanoseconds: UInt128) -> String {
        if nanoseconds < 1000 { return "\(nanoseconds)ns" }
        if nanoseconds < 1_000_000 { return decimals(nanoseconds, "us") }
        let microseconds = (nanoseconds + 500) / 1000
        if microseconds < 1_000_000 { return decimals(microseconds, "ms") }
        return decimals((nanoseconds + 500_000) / 1_000_000, "s")
    }

    public static func text(_ nanoseconds: UInt64) -> String { text(UInt128(nanoseconds)) }

    /// `value` thousandths of `suffix`.
    private static func decimals(_ value: UInt128, _ suffix: String) -> String {
        "\(value / 1000)." + TraceTimestamp.padded(Int(value % 1000), 3) + suffix
    }

    /// Microseconds with three decimals for JSON: "12.345" (exact to the nanosecond).
    public static func microseconds(_ nanoseconds: UInt128) -> String {
        "\(nanoseconds / 1000)." + TraceTimestamp.padded(Int(nanoseconds % 1000), 3)
    }

    /// A bound of a histogram row, 1, 2 or 5 times a power of ten nanoseconds: "500ns", "2us", "10ms", "5s".
    static func bound(_ nanoseconds: UInt64) -> String {
        switch nanoseconds {
        case ..<1000: "\(nanoseconds)ns"
        case ..<1_000_000: "\(nanoseconds / 1000)us"
        case ..<1_000_000_000: "\(nanoseconds / 1_000_000)ms"
        default: "\(nanoseconds / 1_000_000_000)s"
        }
    }
}
