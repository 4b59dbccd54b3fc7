// Byte-level formatting for trace records: numbers, hex, escaped strings, appended to a
// TraceBuffer; a traced call must cost well under a microsecond.
enum TraceText {
    static let hexDigits: StaticString = "0123456789ABCDEF"

    @inline(__always)
    static func hexDigit(_ value: Int) -> UInt8 { hexDigits.utf8Start[value] }

    @inline(__always)
    static func append(_ text: StaticString, to out: inout TraceBuffer) {
        out.append(text)
    }


    static func appendDecimal(_ value: UInt, to out: inout TraceBuffer) {
        var length = 1
        var bound: UInt = 10
        while length < 20 && value >= bound {
            length += 1
            bound = bound &* 10
        }
        out.append(length: length) { destination in
            var rest = value
            for index in stride(from: length - 1, through: 0, by: -1) {
                destination[index] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            }
        }
    }

    static func appendSigned(_ value: Int, to out: inout TraceBuffer) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        appendDecimal(value.magnitude, to: &out)
    }

    /// `value` in exactly `width` decimal digits (leading zeros; higher digits dropped).
    static func appendPadded(_ value: Int, width: Int, to out: inout TraceBuffer) {
        out.append(length: width) { destination in
            var rest = value.magnitude
            for index in stride(from: width - 1, through: 0, by: -1) {
                destination[index] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            }
        }
    }

    static func appendHex(_ value: UInt, to out: inout TraceBuffer) {
        append("0x", to: &out)
        var started = false
        for shift in stride(from: 60, through: 0, by: -4) {
            let digit = Int((value >> UInt(shift)) & 0xF)
            if digit != 0 || started || shift == 0 {
                started = true
                out.append(hexDigit(digit))
            }
        }
    }

    static func appendHexBytes(_ bytes: UnsafeRawBufferPointer, to out: inout TraceBuffer) {
        let digits = hexDigits.utf8Start
        out.append(length: bytes.count * 2) { destination in
            var index = 0
            for byte in bytes {
                destination[index] = digits[Int(byte >> 4)]
                destination[index + 1] = digits[Int(byte & 0xF)]
                index += 2
            }
        }
    }

    /// Microseconds with three decimals: "12.345".
    static func appendMicroseconds(nanoseconds: UInt64, to out: inout TraceBuffer) {
        appendDecimal(UInt(nanoseconds / 1000), to: &out)
        out.append(UInt8(ascii: "."))
        appendPadded(Int(nanoseconds % 1000), width: 3, to: &out)
    }

    /// A string for text traces: printable ASCII as is, the rest as \xNN, in double quotes.
    static func appendQuoted(_ bytes: UnsafeRawBufferPointer, to out: inout TraceBuffer) {
        out.append(UInt8(ascii: "\""))
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                out.append(UInt8(ascii: "\\"))
                out.append(byte)
            case 0x20..<0x7F:
                out.append(byte)
            default:
                append("\\x", to: &out)
                out.append(hexDigit(Int(byte >> 4)))
                out.append(hexDigit(Int(byte & 0xF)))
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// A JSON string: valid UTF-8 passes through; control characters and invalid bytes are
    /// escaped (invalid bytes as \u00NN of the byte, so the line always parses).
    static func appendJSONString(_ bytes: UnsafeRawBufferPointer, to out: inout TraceBuffer) {
        out.append(UInt8(ascii: "\""))
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""): append("\\\"", to: &out)
            case UInt8(ascii: "\\"): append("\\\\", to: &out)
            case 0x20..<0x80: out.append(byte)
            case 0x00..<0x20: appendJSONEscape(byte, to: &out)
            default:
                let length = utf8SequenceLength(bytes, at: index)
                if length == 0 {
                    appendJSONEscape(byte, to: &out)
                } else {
                    for offset in 0..<length { out.append(bytes[index + offset]) }
                    index += length
                    continue
                }
            }
            index += 1
        }
        out.append(UInt8(ascii: "\""))
    }

    static func appendJSONString(_ text: StaticString, to out: inout TraceBuffer) {
        appendJSONString(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount), to: &out)
    }

    static func appendJSONString(_ text: String, to out: inout TraceBuffer) {
        var text = text
        text.withUTF8 { appendJSONString(UnsafeRawBufferPointer($0), to: &out) }
    }

    private static func appendJSONEscape(_ byte: UInt8, to out: inout TraceBuffer) {
        append("\\u00", to: &out)
        out.append(hexDigit(Int(byte >> 4)))
        out.append(hexDigit(Int(byte & 0xF)))
    }

    /// Length of a well-formed UTF-8 sequence starting at `index`, or 0.
    private static func utf8SequenceLength(_ bytes: UnsafeRawBufferPointer, at index: Int) -> Int {
        let first = bytes[index]
        let length: Int
        switch first {
        case 0xC2...0xDF: length = 2
        case 0xE0...0xEF: length = 3
        case 0xF0...0xF4: length = 4
        default: return 0
        }
        guard index + length <= bytes.count else { return 0 }
        for offset in 1..<length where bytes[index + offset] & 0xC0 != 0x80 { return 0 }
        // No overlong forms, no surrogates, nothing above U+10FFFF (RFC 3629 section 4).
        let second = bytes[index + 1]
        switch first {
        case 0xE0 where second < 0xA0, 0xED where second > 0x9F, 0xF0 where second < 0x90, 0xF4 where second > 0x8F:
            return 0
        default:
            return length
        }
    }
}
