// The two lines of a text record that say which call it was and how it ended (TraceRecord.swift
// in the module writes them); the `  IN:` / ` OUT:` lines between them are not needed here.
//   C_Sign [softhsm2 caller=1 tid=4242 2026-11-22T01:56:34.123456Z 12.345us]
//   C_Sign = CKR_OK
// C_WaitForSlotEvent's early half, written before the call blocks, ends in ` waiting]` instead
// of a duration and has no result line; the whole record follows when the call returns.

enum TextRecordLine {
    struct Header {
        var function: UnsafeRawBufferPointer
        var module: UnsafeRawBufferPointer
        var caller: UnsafeRawBufferPointer
        var thread: UnsafeRawBufferPointer
        var time: UnsafeRawBufferPointer
        /// Nil for the early half of a blocking C_WaitForSlotEvent.
        var duration: UInt64?
    }

    enum Parsed {
        case header(Header)
        case result(function: UnsafeRawBufferPointer, returnValue: UnsafeRawBufferPointer)
        /// Why the line, which starts like a record's line, is not one.
        case malformed(String)
        /// A record's first line ("C_X [") that cannot be read: its other lines go with it.
        case malformedHeader(String)
    }

    /// `line` starts with "C_".
    static func parse(_ line: UnsafeRawBufferPointer) -> Parsed {
        var end = 0
        while end < line.count && TraceFieldText.isNameByte(line[end]) { end += 1 }
        let function = UnsafeRawBufferPointer(rebasing: line[0..<end])
        guard end < line.count - 1, line[end] == UInt8(ascii: " "), TraceFieldText.isFunction(function) else {
            return .malformed("not a trace line")
        }
        if line[end + 1] == UInt8(ascii: "[") {
            let parsed = header(function, UnsafeRawBufferPointer(rebasing: line[(end + 2)...]))
            if case .malformed(let message) = parsed { return .malformedHeader(message) }
            return parsed
        }
        guard line.count > end + 3, line[end + 1] == UInt8(ascii: "="), line[end + 2] == UInt8(ascii: " ") else {
            return .malformed("not a trace line")
        }
        let returnValue = UnsafeRawBufferPointer(rebasing: line[(end + 3)...])
        guard TraceFieldText.isReturnValue(returnValue) else {
            return .malformed("result line of \(String(decoding: function, as: UTF8.self)) without a return value name")
        }
        return .result(function: function, returnValue: returnValue)
    }

    /// `rest`: what follows "C_X [", up to and including the closing ']'. Read from the right:
    /// a module name may hold spaces.
    private static func header(_ function: UnsafeRawBufferPointer, _ rest: UnsafeRawBufferPointer) -> Parsed {
        // Only for a message: no String is made for a well-formed line.
        var name: String { String(decoding: function, as: UTF8.self) }
        guard let last = rest.last, last == UInt8(ascii: "]") else {
            return .malformed("\(name) record's first line does not end in ']' (cut off?)")
        }
        var fields = UnsafeRawBufferPointer(rebasing: rest.dropLast())
        func lastWord() -> UnsafeRawBufferPointer? {
            guard let space = fields.lastIndex(of: UInt8(ascii: " ")) else { return nil }
            let word = UnsafeRawBufferPointer(rebasing: fields[(space + 1)...])
            fields = UnsafeRawBufferPointer(rebasing: fields[..<space])
            return word
        }
        func afterPrefix(_ word: UnsafeRawBufferPointer?, _ prefix: StaticString) -> UnsafeRawBufferPointer? {
            let length = prefix.utf8CodeUnitCount
            guard let word, word.count > length else { return nil }
            for index in 0..<length where word[index] != prefix.utf8Start[index] { return nil }
            return UnsafeRawBufferPointer(rebasing: word[length...])
        }
        guard let durationWord = lastWord(), let time = lastWord(),
              let thread = afterPrefix(lastWord(), "tid="), let caller = afterPrefix(lastWord(), "caller="),
              !fields.isEmpty
        else { return .malformed("\(name) record's first line is not 'C_X [MODULE caller=N tid=N TIME DURATIONus]'") }
        guard TraceFieldText.isWholeNumber(caller), TraceFieldText.isWholeNumber(thread) else {
            return .malformed("\(name) record's caller or tid is not a number")
        }
        var duration: UInt64?
        if !durationWord.elementsEqual("waiting".utf8) {
            guard durationWord.count > 2, durationWord[durationWord.count - 2] == UInt8(ascii: "u"),
                  durationWord[durationWord.count - 1] == UInt8(ascii: "s"),
                  let nanoseconds = TraceFieldText.nanoseconds(microseconds: UnsafeRawBufferPointer(rebasing: durationWord.dropLast(2)))
            else { return .malformed("\(name) record's duration is not a number of microseconds ('12.345us') up to 10^15") }
            duration = nanoseconds
        }
        return .header(Header(function: function, module: fields, caller: caller, thread: thread, time: time,
                              duration: duration))
    }
}
