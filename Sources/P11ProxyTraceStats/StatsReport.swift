// `p11proxy stats` and `trace --summary` output: one table per group, functions by total time,
// a totals row, and a last line with the totals of everything and the wall-clock span; or the
// same as one JSON object. `histogram` adds each function's durations as a log-scale chart.

public enum StatsReport {
    static let columns = ["function", "calls", "errors", "total", "mean", "p50", "p95", "p99", "max", "errors by return value"]

    public static func text(_ summary: StatsSummary, histogram: Bool = false) -> String {
        var out = ""
        for (position, group) in summary.groups.enumerated() {
            if position > 0 { out += "\n" }
            if summary.grouping != .none { out += "\(summary.grouping.rawValue) \(printable(group.key))\n" }
            out += table(group)
            if histogram {
                for function in group.functions { out += "\n" + DurationChart.text(function) }
            }
        }
        if !summary.groups.isEmpty { out += "\n" }
        out += lastLine(summary) + "\n"
        return out
    }

    static func table(_ group: GroupSummary) -> String {
        var rows = [columns]
        for function in group.functions + [group.total] {
            rows.append([printable(function.name), String(function.calls), String(function.errors),
                         DurationText.text(function.total), DurationText.text(function.mean),
                         DurationText.text(function.p50), DurationText.text(function.p95),
                         DurationText.text(function.p99), DurationText.text(function.maximum),
                         function.failures.map { "\($0.name):\($0.count)" }.joined(separator: " ")])
        }
        var widths = [Int](repeating: 0, count: columns.count)
        for row in rows {
            for (column, cell) in row.enumerated() { widths[column] = max(widths[column], cell.count) }
        }
        var out = ""
        for row in rows {
            var line = ""
            for (column, cell) in row.enumerated() {
                let padding = String(repeating: " ", count: widths[column] - cell.count)
                switch column {
                case 0: line += cell + padding
                case columns.count - 1: line += "  " + cell
                default: line += "  " + padding + cell
                }
            }
            while line.last == " " { line.removeLast() }
            out += line + "\n"
        }
        return out
    }

    static func lastLine(_ summary: StatsSummary) -> String {
        var line = counted(summary.total.calls, "call") + ", " + counted(summary.total.errors, "error")
            + ", \(DurationText.text(summary.total.total)) in calls"
        if let first = summary.firstStart {
            line += ", wall-clock span \(DurationText.text(summary.span)) from \(printable(first))"
        }
        if summary.warningCount > 0 { line += ", " + counted(summary.warningCount, "warning") }
        return line
    }

    /// "1 call", "2 calls".
    static func counted(_ count: Int, _ noun: String) -> String { "\(count) \(noun)\(count == 1 ? "" : "s")" }

    /// Control characters (a module name may hold any byte) as '?', so a table cannot move the cursor.
    static func printable(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? "?" : $0 }))
    }

    // MARK: JSON

    public static func json(_ summary: StatsSummary, histogram: Bool = false) -> String {
        var out = "{\"grouping\":\(jsonString(summary.grouping.rawValue)),\"records\":\(summary.records),"
            + "\"warnings\":\(summary.warningCount),\"calls\":\(summary.total.calls),\"errors\":\(summary.total.errors),"
            + "\"total_us\":\(DurationText.microseconds(summary.total.total)),\"span_us\":\(DurationText.microseconds(summary.span))"
        if let first = summary.firstStart { out += ",\"first_start\":\(jsonString(first))" }
        out += ",\"groups\":["
        for (position, group) in summary.groups.enumerated() {
            if position > 0 { out += "," }
            out += "{\"key\":\(jsonString(group.key)),\"functions\":["
            out += group.functions.map { "{\"function\":\(jsonString($0.name))," + jsonFields($0, histogram: histogram) + "}" }
                .joined(separator: ",")
            out += "],\"total\":{" + jsonFields(group.total, histogram: false) + "}}"
        }
        return out + "]}\n"
    }

    static func jsonFields(_ row: FunctionSummary, histogram: Bool) -> String {
        var out = "\"calls\":\(row.calls),\"errors\":\(row.errors),\"errors_by_return_value\":{"
            + row.failures.map { "\(jsonString($0.name)):\($0.count)" }.joined(separator: ",") + "}"
        let durations: [(String, UInt128)] = [
            ("total_us", row.total), ("mean_us", UInt128(row.mean)), ("min_us", UInt128(row.minimum)),
            ("p50_us", UInt128(row.p50)), ("p95_us", UInt128(row.p95)), ("p99_us", UInt128(row.p99)),
            ("max_us", UInt128(row.maximum)),
        ]
        for (key, value) in durations { out += ",\"\(key)\":\(DurationText.microseconds(value))" }
        if histogram {
            // Each bucket holds the durations from its own "from_us" up to the next three-digit value.
            out += ",\"histogram\":[" + row.histogram.buckets
                .map { "{\"from_us\":\(DurationText.microseconds(UInt128($0.lowerBound))),\"count\":\($0.count)}" }
                .joined(separator: ",") + "]"
        }
        return out
    }

    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
