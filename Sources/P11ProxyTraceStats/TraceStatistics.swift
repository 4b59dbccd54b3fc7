// Every counted call of one or more traces, per group (module, caller, thread, or one group for
// all) and function, and the warnings met on the way. Memory grows with the number of distinct
// groups and functions (both capped), never with the number of records.

public enum TraceGrouping: String, CaseIterable, Sendable {
    case none, module, caller, thread
}

public struct TraceStatistics {
    public let grouping: TraceGrouping
    var functionNames = NameTable()
    var groupNames = NameTable()
    /// CKR_OK is number 0 (okReturnValue).
    var returnValueNames = NameTable()
    /// [group][function]: the index in `cells`, -1 for none yet.
    var cellIndex: [[Int32]] = []
    var cells: [(group: Int, function: Int, statistics: FunctionStatistics)] = []
    public private(set) var records = 0
    /// Earliest start and latest end of a counted call, nanoseconds since the epoch.
    var firstStart = Int128.max
    var lastEnd = Int128.min
    /// The earliest start as the trace wrote it (so no date arithmetic is needed to show it).
    var firstStartText: [UInt8] = []
    public private(set) var warnings: [TraceWarning] = []
    public private(set) var warningCount = 0
    var overflowWarned: Set<String> = []

    static let okReturnValue = 0
    /// Warnings kept with their text; the rest are only counted.
    public static let keptWarnings = 20
    /// Beyond these many distinct names, further ones are counted under `(other)`: a trace of
    /// garbage that happens to parse must not grow memory without bound. PKCS#11 3.0 has 94
    /// functions; thousands of modules or threads would make unreadable tables anyway.
    public static let functionLimit = 1024
    public static let groupLimit = 4096
    public static let returnValueLimit = 1024
    static let other = "(other)"

    public init(grouping: TraceGrouping = .none) {
        self.grouping = grouping
        _ = returnValueNames.number(of: "CKR_OK")
        if grouping == .none { _ = groupNames.number(of: "all") }
    }

    mutating func warn(_ source: String, _ line: Int, _ message: String) {
        warningCount += 1
        if warnings.count < Self.keptWarnings {
            warnings.append(TraceWarning(source: source, line: line, message: message))
        }
    }

    public mutating func warn(_ warning: TraceWarning) { warn(warning.source, warning.line, warning.message) }

    // MARK: Names

    mutating func functionNumber(_ name: UnsafeRawBufferPointer, _ source: String, _ line: Int) -> Int {
        let (number, overflowed) = Self.number(&functionNames, name, limit: Self.functionLimit)
        if overflowed { warnOverflow("function names", Self.functionLimit, source, line) }
        return number
    }

    mutating func returnValueNumber(_ name: UnsafeRawBufferPointer, _ source: String, _ line: Int) -> Int {
        let (number, overflowed) = Self.number(&returnValueNames, name, limit: Self.returnValueLimit)
        if overflowed { warnOverflow("return values", Self.returnValueLimit, source, line) }
        return number
    }

    /// The group of a record by this statistics' grouping, from the record's fields.
    mutating func groupNumber(module: UnsafeRawBufferPointer, caller: UnsafeRawBufferPointer,
                              thread: UnsafeRawBufferPointer, _ source: String, _ line: Int) -> Int {
        let key: UnsafeRawBufferPointer
        switch grouping {
        case .none: return 0
        case .module: key = module
        case .caller: key = caller
        case .thread: key = thread
        }
        let (number, overflowed) = Self.number(&groupNames, key, limit: Self.groupLimit)
        if overflowed { warnOverflow("\(grouping.rawValue)s", Self.groupLimit, source, line) }
        return number
    }

    /// A name's number, or that of `(other)` when `limit` names are known (overflowed: true).
    private static func number(_ table: inout NameTable, _ name: UnsafeRawBufferPointer, limit: Int) -> (Int, overflowed: Bool) {
        if let number = table.number(of: name, limit: limit) { return (number, false) }
        return (table.number(of: other), true)
    }

    private mutating func warnOverflow(_ what: String, _ limit: Int, _ source: String, _ line: Int) {
        if overflowWarned.insert(what).inserted {
            warn(source, line, "more than \(limit) distinct \(what); the rest are counted as \(Self.other)")
        }
    }

    // MARK: Counting

    @inline(__always)
    mutating func add(group: Int, function: Int, startNanoseconds: Int128, startText: UnsafeRawBufferPointer,
                      duration: UInt64, returnValue: Int) {
        while cellIndex.count <= group { cellIndex.append([]) }
        if cellIndex[group].count <= function {
            cellIndex[group].append(contentsOf: repeatElement(-1, count: function + 1 - cellIndex[group].count))
        }
        var index = Int(cellIndex[group][function])
        if index < 0 {
            index = cells.count
            cells.append((group, function, FunctionStatistics()))
            cellIndex[group][function] = Int32(index)
        }
        cells[index].statistics.add(duration: duration, returnValue: returnValue)
        records += 1
        if startNanoseconds < firstStart {
            firstStart = startNanoseconds
            firstStartText = Array(startText)
        }
        let end = startNanoseconds + Int128(duration)
        if end > lastEnd { lastEnd = end }
    }

    // MARK: Results

    /// The tables to print: groups and, in each, functions by total time (largest first; ties
    /// by name), each group with its totals, and the totals of everything.
    public var summary: StatsSummary {
        var groups: [GroupSummary] = []
        var everything = FunctionStatistics()
        for group in 0..<groupNames.count {
            var functions: [FunctionSummary] = []
            var groupTotal = FunctionStatistics()
            for index in group < cellIndex.count ? cellIndex[group] : [] where index >= 0 {
                let cell = cells[Int(index)]
                functions.append(summarise(functionNames.name(cell.function), cell.statistics))
                groupTotal.merge(cell.statistics)
            }
            guard groupTotal.calls > 0 else { continue }
            everything.merge(groupTotal)
            functions.sort { ($0.total, $1.name) > ($1.total, $0.name) }
            groups.append(GroupSummary(key: groupNames.name(group), functions: functions,
                                       total: summarise("total", groupTotal)))
        }
        groups.sort { ($0.total.total, $1.key) > ($1.total.total, $0.key) }
        return StatsSummary(grouping: grouping, groups: groups, total: summarise("total", everything),
                            records: records, firstStart: records > 0 ? String(decoding: firstStartText, as: UTF8.self) : nil,
                            span: records > 0 ? UInt128(lastEnd - firstStart) : 0, warningCount: warningCount)
    }

    private func summarise(_ name: String, _ statistics: FunctionStatistics) -> FunctionSummary {
        let failures = statistics.failures
            .map { ReturnValueCount(name: returnValueNames.name($0.returnValue), count: $0.count) }
            .sorted { ($0.count, $1.name) > ($1.count, $0.name) }
        return FunctionSummary(
            name: name, calls: statistics.calls, errors: failures.reduce(0) { $0 + $1.count }, failures: failures,
            total: statistics.total, minimum: statistics.calls > 0 ? statistics.minimum : 0, maximum: statistics.maximum,
            p50: statistics.histogram.percentile(50), p95: statistics.histogram.percentile(95),
            p99: statistics.histogram.percentile(99), histogram: statistics.histogram)
    }
}

public struct ReturnValueCount: Equatable, Sendable {
    public let name: String
    public let count: Int
}

/// One row of a table. Durations in nanoseconds; p50/p95/p99 as DurationHistogram gives them.
public struct FunctionSummary: Equatable, Sendable {
    public let name: String
    public let calls: Int
    /// Calls that returned anything but CKR_OK.
    public let errors: Int
    /// Those calls by return value, most frequent first.
    public let failures: [ReturnValueCount]
    public let total: UInt128
    public let minimum: UInt64
    public let maximum: UInt64
    public let p50: UInt64
    public let p95: UInt64
    public let p99: UInt64
    public let histogram: DurationHistogram

    /// Rounded to the nearest nanosecond.
    public var mean: UInt64 { calls == 0 ? 0 : UInt64((total + UInt128(calls / 2)) / UInt128(calls)) }
}

public struct GroupSummary: Equatable, Sendable {
    /// The module name, caller or thread number; `all` when not grouped.
    public let key: String
    public let functions: [FunctionSummary]
    public let total: FunctionSummary
}

public struct StatsSummary: Equatable, Sendable {
    public let grouping: TraceGrouping
    public let groups: [GroupSummary]
    public let total: FunctionSummary
    public let records: Int
    /// The earliest call start, as the trace wrote it; nil when no call was counted.
    public let firstStart: String?
    /// Wall-clock time from the earliest call start to the latest call end, nanoseconds.
    public let span: UInt128
    public let warningCount: Int
}
