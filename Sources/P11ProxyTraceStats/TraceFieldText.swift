// The fields both trace formats share, checked byte by byte: names (function, return value),
// whole numbers (caller, thread) and durations in microseconds ("12.345").

enum TraceFieldText {
    /// Longest function or return-value name accepted (the longest PKCS#11 name is 41 bytes).
    static let nameLimit = 64
    /// Longest duration accepted, 10^18 ns (31 years), so totals cannot overflow.
    static let durationLimit: UInt64 = 1_000_000_000_000_000_000

    @inline(__always)
    static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"): true
        default: false
        }
    }

    /// `C_` and name bytes: a PKCS#11 function as the tracer names it.
    static func isFunction(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count > 2 && bytes.count <= nameLimit && bytes[0] == UInt8(ascii: "C") && bytes[1] == UInt8(ascii: "_")
            && bytes.allSatisfy(isNameByte)
    }

    /// `CKR_...`, or hex `0x...` for a code without a name.
    static func isReturnValue(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count > 2 && bytes.count <= nameLimit && bytes.allSatisfy(isNameByte)
    }

    /// Digits with an optional '-', at most 20 bytes (caller numbers, thread ids).
    static func isWholeNumber(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard !bytes.isEmpty, bytes.count <= 20 else { return false }
        let digits = bytes[0] == UInt8(ascii: "-") ? UnsafeRawBufferPointer(rebasing: bytes.dropFirst()) : bytes
        return !digits.isEmpty && digits.allSatisfy { $0 &- UInt8(ascii: "0") < 10 }
    }

    /// Nanoseconds of "12.345" microseconds (digits, optionally '.' and digits; digits past the
    /// third decimal dropped), or nil when malformed or over `durationLimit`.
    static func nanoseconds(microseconds bytes: UnsafeRawBufferPointer) -> UInt64? {
        var whole: UInt64 = 0
        var index = 0
        while index < bytes.count, bytes[index] &- UInt8(ascii: "0") < 10 {
            whole = whole * 10 + UInt64(bytes[index] &- UInt8(ascii: "0"))
            index += 1
            // 10^15 us is the limit; a 17th digit would be over it whatever it is.
            if index > 16 { return nil }
        }
        guard index > 0 else { return nil }
        var fraction: UInt64 = 0
        var scale: UInt64 = 100
        if index < bytes.count {
            guard bytes[index] == UInt8(ascii: "."), index + 1 < bytes.count else { return nil }
            index += 1
            while index < bytes.count {
                let digit = bytes[index] &- UInt8(ascii: "0")
                guard digit < 10 else { return nil }
                fraction += UInt64(digit) * scale
                scale /= 10
                index += 1
            }
        }
        let nanoseconds = whole * 1000 + fraction
        return nanoseconds <= durationLimit ? nanoseconds : nil
    }
}
