// One function's durations drawn in the terminal: rows of 1-2-5 steps per decade (a log scale),
// each with a bar scaled to the fullest row and its count. The histogram's buckets (three
// significant digits) never straddle a row's bound, so every count is in its exact row.

enum DurationChart {
    static let barWidth = 40

    /// 0, 1, 2, 5, 10, 20, 50, ... ns, up to 10^19 (past any duration read).
    static let bounds: [UInt64] = {
        var bounds: [UInt64] = [0]
        for power in DurationHistogram.powersOfTen.dropLast() {
            bounds += [power, power * 2, power * 5]
        }
        return bounds + [DurationHistogram.powersOfTen.last!]
    }()

    static func text(_ function: FunctionSummary) -> String {
        var rows = [Int](repeating: 0, count: bounds.count - 1)
        var row = 0
        for bucket in function.histogram.buckets {
            while bounds[row + 1] <= bucket.lowerBound { row += 1 }
            rows[row] += bucket.count
        }
        var out = "\(StatsReport.printable(function.name)): \(StatsReport.counted(function.calls, "call"))\n"
        guard let first = rows.firstIndex(where: { $0 > 0 }), let last = rows.lastIndex(where: { $0 > 0 }) else { return out }
        let fullest = rows.max()!
        let labels = (first...last).map { "\(DurationText.bound(bounds[$0])) .. \(DurationText.bound(bounds[$0 + 1]))" }
        let labelWidth = labels.map(\.count).max()!
        for (label, count) in zip(labels, rows[first...last]) {
            let length = (count * barWidth + fullest - 1) / fullest
            out += "  " + String(repeating: " ", count: labelWidth - label.count) + label + " |"
                + String(repeating: "#", count: length) + String(repeating: " ", count: barWidth - length) + "| \(count)\n"
        }
        return out
    }
}
