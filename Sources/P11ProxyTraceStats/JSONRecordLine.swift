// One record of a JSON trace: an object per line (TraceRecord.swift in the module writes it),
// of which only the call's identity, duration and result are read; "in" and "out", which hold
// nearly all of the bytes, are skipped by matching brackets and strings, not decoded.
//   {"time":"...","thread":4242,"module":"softhsm2","caller":1,"function":"C_Sign",
//    "duration_us":12.345,"in":{...},"out":{...},"rv":"CKR_OK","rv_value":0}
// C_WaitForSlotEvent's early half has "phase":"waiting" instead of "duration_us".

enum JSONRecordLine {
    struct Fields {
        var function: UnsafeRawBufferPointer
        /// The string's bytes as written: `moduleEscaped` says whether it holds escapes.
        var module: UnsafeRawBufferPointer
        var moduleEscaped: Bool
        var caller: UnsafeRawBufferPointer
        var thread: UnsafeRawBufferPointer
        var time: UnsafeRawBufferPointer
        var duration: UInt64
        var returnValue: UnsafeRawBufferPointer
    }

    enum Parsed {
        case record(Fields)
        case waiting
        case malformed(String)
    }

    /// `line` starts with '{'.
    static func parse(_ line: UnsafeRawBufferPointer) -> Parsed {
        var scanner = JSONScanner(bytes: line)
        var function: UnsafeRawBufferPointer?, module: UnsafeRawBufferPointer?, caller: UnsafeRawBufferPointer?
        var thread: UnsafeRawBufferPointer?, time: UnsafeRawBufferPointer?, duration: UnsafeRawBufferPointer?
        var returnValue: UnsafeRawBufferPointer?
        var moduleEscaped = false, waiting = false
        func failure() -> Parsed {
            .malformed(scanner.atEnd ? "JSON record is cut off" : "malformed JSON record (at byte \(scanner.index + 1))")
        }
        guard scanner.consume(UInt8(ascii: "{")) else { return failure() }
        scanner.skipSpace()
        if !scanner.consume(UInt8(ascii: "}")) {
            while true {
                scanner.skipSpace()
                guard scanner.consume(UInt8(ascii: "\"")), let (key, _) = scanner.stringBody() else { return failure() }
                scanner.skipSpace()
                guard scanner.consume(UInt8(ascii: ":")) else { return failure() }
                scanner.skipSpace()
                switch key.count {
                case 2 where equal(key, "rv"): returnValue = scanner.string()?.bytes
                case 4 where equal(key, "time"): time = scanner.string()?.bytes
                case 5 where equal(key, "phase"):
                    guard let phase = scanner.string() else { return failure() }
                    waiting = equal(phase.bytes, "waiting")
                case 6 where equal(key, "thread"): thread = scanner.scalar()
                case 6 where equal(key, "module"):
                    guard let string = scanner.string() else { return failure() }
                    (module, moduleEscaped) = (string.bytes, string.escaped)
                case 6 where equal(key, "caller"): caller = scanner.scalar()
                case 8 where equal(key, "function"): function = scanner.string()?.bytes
                case 11 where equal(key, "duration_us"): duration = scanner.scalar()
                default: guard scanner.skipValue() else { return failure() }
                }
                scanner.skipSpace()
                if scanner.consume(UInt8(ascii: ",")) { continue }
                if scanner.consume(UInt8(ascii: "}")) { break }
                return failure()
            }
        }
        scanner.skipSpace()
        guard scanner.atEnd else { return .malformed("text after the JSON record (at byte \(scanner.index + 1))") }
        if waiting { return .waiting }
        // (A field of the wrong type stopped the scan above, as malformed.)
        guard let function, TraceFieldText.isFunction(function) else { return .malformed("JSON record without a \"function\" name") }
        var name: String { String(decoding: function, as: UTF8.self) }
        guard let time else { return .malformed("\(name) JSON record without a \"time\" string") }
        guard let module, !module.isEmpty else { return .malformed("\(name) JSON record without a \"module\" string") }
        guard let thread, TraceFieldText.isWholeNumber(thread) else { return .malformed("\(name) JSON record without a \"thread\" number") }
        guard let caller, TraceFieldText.isWholeNumber(caller) else { return .malformed("\(name) JSON record without a \"caller\" number") }
        guard let duration, let nanoseconds = TraceFieldText.nanoseconds(microseconds: duration) else {
            return .malformed("\(name) JSON record without a \"duration_us\" number of microseconds up to 10^15")
        }
        guard let returnValue, TraceFieldText.isReturnValue(returnValue) else {
            return .malformed("\(name) JSON record without an \"rv\" name")
        }
        return .record(Fields(function: function, module: module, moduleEscaped: moduleEscaped, caller: caller,
                              thread: thread, time: time, duration: nanoseconds, returnValue: returnValue))
    }

    @inline(__always)
    static func equal(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        guard bytes.count == text.utf8CodeUnitCount else { return false }
        for index in 0..<bytes.count where bytes[index] != text.utf8Start[index] { return false }
        return true
    }

    /// The bytes of a JSON string's contents with its escapes undone (\uXXXX as UTF-8; a lone
    /// surrogate as U+FFFD); contents that are not valid escapes are kept as written.
    static func unescaped(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            guard byte == UInt8(ascii: "\\"), index + 1 < bytes.count else {
                result.append(byte)
                index += 1
                continue
            }
            let escape = bytes[index + 1]
            index += 2
            switch escape {
            case UInt8(ascii: "n"): result.append(0x0A)
            case UInt8(ascii: "t"): result.append(0x09)
            case UInt8(ascii: "r"): result.append(0x0D)
            case UInt8(ascii: "b"): result.append(0x08)
            case UInt8(ascii: "f"): result.append(0x0C)
            case UInt8(ascii: "u"):
                var scalar: UInt32 = 0
                var digits = 0
                while digits < 4, index < bytes.count, let digit = hexValue(bytes[index]) {
                    scalar = scalar << 4 | digit
                    digits += 1
                    index += 1
                }
                result.append(contentsOf: String(Character(Unicode.Scalar(scalar) ?? "\u{FFFD}")).utf8)
            default: result.append(escape)
            }
        }
        return result
    }

    private static func hexValue(_ byte: UInt8) -> UInt32? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt32(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt32(byte - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt32(byte - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}

/// Reads JSON one value at a time over a line's bytes; never reads past them.
struct JSONScanner {
    let bytes: UnsafeRawBufferPointer
    var index = 0

    var atEnd: Bool { index >= bytes.count }

    @inline(__always)
    mutating func skipSpace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    @inline(__always)
    mutating func consume(_ byte: UInt8) -> Bool {
        guard index < bytes.count, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    /// After the opening quote: the contents up to the closing one, which is consumed.
    @inline(__always)
    mutating func stringBody() -> (bytes: UnsafeRawBufferPointer, escaped: Bool)? {
        let start = index
        var escaped = false
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return (UnsafeRawBufferPointer(rebasing: bytes[start..<(index - 1)]), escaped)
            }
            if byte == UInt8(ascii: "\\") {
                escaped = true
                index += 1
            }
            index += 1
        }
        return nil
    }

    /// A string value; nil (nothing consumed) when the value is not a string.
    mutating func string() -> (bytes: UnsafeRawBufferPointer, escaped: Bool)? {
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { return nil }
        index += 1
        return stringBody()
    }

    /// A number or literal (true, false, null): its bytes; nil (nothing consumed) for anything else.
    mutating func scalar() -> UnsafeRawBufferPointer? {
        let start = index
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                 UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: "E"):
                index += 1
            default:
                return index > start ? UnsafeRawBufferPointer(rebasing: bytes[start..<index]) : nil
            }
        }
        return index > start ? UnsafeRawBufferPointer(rebasing: bytes[start..<index]) : nil
    }

    /// Any value, nested ones by counting brackets outside strings (not checked to pair up:
    /// the values skipped are not used).
    mutating func skipValue() -> Bool {
        guard index < bytes.count else { return false }
        switch bytes[index] {
        case UInt8(ascii: "\""):
            index += 1
            return stringBody() != nil
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            var depth = 0
            repeat {
                guard index < bytes.count else { return false }
                let byte = bytes[index]
                index += 1
                switch byte {
                case UInt8(ascii: "\""): guard stringBody() != nil else { return false }
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
                default: break
                }
            } while depth > 0
            return true
        default:
            return scalar() != nil
        }
    }
}
