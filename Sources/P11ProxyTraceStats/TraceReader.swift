// Reads one trace (a file, standard input) from chunks of any size, in bounded memory: lines
// are taken from the chunk in place, and only a line cut by a chunk's end is copied (up to
// maximumLineLength). Each line is a JSON record ('{'), a text record's first or result line
// ("C_"), or one of its argument lines (indented), so text and JSON traces, and a file holding
// both, are told apart line by line. What cannot be counted becomes a TraceWarning with its
// line number, and reading goes on.
import Glibc

public struct TraceReader {
    public let source: String
    public private(set) var lineNumber = 0
    /// A line begun in an earlier chunk.
    private var pending: [UInt8] = []
    /// The current line has passed maximumLineLength: it is dropped, not stored.
    private var overlong = false
    /// A text record whose first line has been read, but not its result line.
    private var open: OpenRecord?
    /// Argument lines with no record open: their first line is missing. Warned once per run.
    private var orphaned = false
    private var timestamps = TimestampCache()
    /// The line being read is the input's last and has no newline: the tracer ends every line
    /// with one, so it was cut off while being written (a JSON record that is whole still counts).
    private var unterminated = false

    /// Longer lines are skipped with a warning. The tracer's records stay far below it: at most
    /// 1024 template entries of 1024 bytes (2 KiB of hex) each, in and out.
    public static let maximumLineLength = 16 << 20

    private struct OpenRecord {
        var line: Int
        var function: Int
        var group: Int
        var start: Int128
        var startText: TimestampText
        /// Nil: C_WaitForSlotEvent's early half, which ends without a result line.
        var duration: UInt64?
    }

    public init(source: String) {
        self.source = source
    }

    /// Counts the records of the complete lines in `chunk` (with what earlier chunks left).
    public mutating func read(_ chunk: UnsafeRawBufferPointer, into statistics: inout TraceStatistics) {
        guard let base = chunk.baseAddress, !chunk.isEmpty else { return }
        var start = 0
        while start < chunk.count {
            guard let found = memchr(base + start, 0x0A, chunk.count - start) else {
                keep(UnsafeRawBufferPointer(rebasing: chunk[start...]))
                return
            }
            let newline = UnsafeRawPointer(found) - base
            let piece = UnsafeRawBufferPointer(rebasing: chunk[start..<newline])
            if overlong || !pending.isEmpty {
                keep(piece)
                finishPending(into: &statistics)
            } else {
                line(piece, into: &statistics)
            }
            start = newline + 1
        }
    }

    /// The end of the input: a last line without a newline, and a text record still open.
    public mutating func finish(into statistics: inout TraceStatistics) {
        if overlong || !pending.isEmpty { finishPending(into: &statistics, last: true) }
        if let open, open.duration != nil {
            statistics.warn(source, open.line, "\(functionName(open, statistics)) record is cut off at the end of the input (no result line); skipped")
        }
        open = nil
    }

    private mutating func keep(_ bytes: UnsafeRawBufferPointer) {
        guard !overlong else { return }
        if pending.count + bytes.count > Self.maximumLineLength {
            overlong = true
            pending = []
        } else {
            pending.append(contentsOf: bytes)
        }
    }

    private mutating func finishPending(into statistics: inout TraceStatistics, last: Bool = false) {
        if overlong {
            lineNumber += 1
            statistics.warn(source, lineNumber, "line longer than \(Self.maximumLineLength >> 20) MiB; skipped")
            overlong = false
            return
        }
        // Taken out of self, so the line can be read while self changes.
        var bytes = pending
        pending = []
        unterminated = last
        bytes.withUnsafeBytes { line($0, into: &statistics) }
        unterminated = false
        bytes.removeAll(keepingCapacity: true)
        pending = bytes
    }

    // MARK: Lines

    private mutating func line(_ raw: UnsafeRawBufferPointer, into statistics: inout TraceStatistics) {
        lineNumber += 1
        var line = raw
        if line.last == 0x0D { line = UnsafeRawBufferPointer(rebasing: line.dropLast()) }
        guard let first = line.first else { return }
        switch first {
        case UInt8(ascii: " "), UInt8(ascii: "\t"):
            if open == nil && !orphaned {
                orphaned = true
                statistics.warn(source, lineNumber, "argument line outside a record (its first line is missing); skipped with the lines after it")
            }
        case UInt8(ascii: "{"):
            closeOpenRecord(into: &statistics)
            orphaned = false
            json(line, into: &statistics)
        case UInt8(ascii: "C") where line.count > 1 && line[1] == UInt8(ascii: "_"):
            text(line, into: &statistics)
        default:
            statistics.warn(source, lineNumber, "not a trace line; skipped")
        }
    }

    private mutating func json(_ line: UnsafeRawBufferPointer, into statistics: inout TraceStatistics) {
        switch JSONRecordLine.parse(line) {
        case .waiting:
            return
        case .malformed(let message):
            statistics.warn(source, lineNumber, message + "; skipped")
        case .record(let fields):
            guard let start = timestamps.nanoseconds(fields.time) else {
                return statistics.warn(source, lineNumber, "JSON record's \"time\" is not 'YYYY-MM-DDTHH:MM:SS.ffffffZ'; skipped")
            }
            let group: Int
            if fields.moduleEscaped && statistics.grouping == .module {
                group = JSONRecordLine.unescaped(fields.module).withUnsafeBytes {
                    statistics.groupNumber(module: $0, caller: fields.caller, thread: fields.thread, source, lineNumber)
                }
            } else {
                group = statistics.groupNumber(module: fields.module, caller: fields.caller, thread: fields.thread, source, lineNumber)
            }
            statistics.add(group: group, function: statistics.functionNumber(fields.function, source, lineNumber),
                           startNanoseconds: start, startText: fields.time, duration: fields.duration,
                           returnValue: statistics.returnValueNumber(fields.returnValue, source, lineNumber))
        }
    }

    private mutating func text(_ line: UnsafeRawBufferPointer, into statistics: inout TraceStatistics) {
        switch TextRecordLine.parse(line) {
        case .malformed(let message):
            statistics.warn(source, lineNumber, message + "; skipped")
        case .malformedHeader(let message):
            closeOpenRecord(into: &statistics)
            // Its argument and result lines are skipped as this record's, without more warnings.
            orphaned = true
            statistics.warn(source, lineNumber, message + "; skipped")
        case .header(let header):
            closeOpenRecord(into: &statistics)
            orphaned = false
            guard let start = timestamps.nanoseconds(header.time) else {
                // Its argument and result lines are skipped as this record's, without more warnings.
                orphaned = true
                return statistics.warn(source, lineNumber, "record's start time is not 'YYYY-MM-DDTHH:MM:SS.ffffffZ'; skipped")
            }
            open = OpenRecord(line: lineNumber, function: statistics.functionNumber(header.function, source, lineNumber),
                              group: statistics.groupNumber(module: header.module, caller: header.caller,
                                                            thread: header.thread, source, lineNumber),
                              start: start, startText: TimestampText(header.time), duration: header.duration)
        case .result(let function, let returnValue):
            guard let record = open else {
                if !orphaned {
                    statistics.warn(source, lineNumber, "result line of \(String(decoding: function, as: UTF8.self)) without its record; skipped")
                }
                orphaned = false
                return
            }
            open = nil
            guard !unterminated else {
                return statistics.warn(source, lineNumber, "\(functionName(record, statistics)) record's result line is cut off "
                                       + "at the end of the input; skipped")
            }
            let number = statistics.functionNumber(function, source, lineNumber)
            guard number == record.function, let duration = record.duration else {
                return statistics.warn(source, lineNumber, "result line of \(String(decoding: function, as: UTF8.self)) does not end the "
                                       + "\(functionName(record, statistics)) record of line \(record.line); both skipped")
            }
            let returnValueNumber = statistics.returnValueNumber(returnValue, source, lineNumber)
            record.startText.withBytes {
                statistics.add(group: record.group, function: record.function, startNanoseconds: record.start,
                               startText: $0, duration: duration, returnValue: returnValueNumber)
            }
        }
    }

    /// A new record begins while a text record is open: that one never got its result line.
    private mutating func closeOpenRecord(into statistics: inout TraceStatistics) {
        guard let record = open else { return }
        open = nil
        // The early half of a blocking C_WaitForSlotEvent: the whole record comes later.
        guard record.duration != nil else { return }
        statistics.warn(source, record.line, "\(functionName(record, statistics)) record has no result line "
                        + "(cut off, or another writer's lines in between); skipped")
    }

    private func functionName(_ record: OpenRecord, _ statistics: TraceStatistics) -> String {
        statistics.functionNames.name(record.function)
    }
}
