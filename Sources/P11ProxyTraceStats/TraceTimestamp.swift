// The start time of a traced call, "2026-11-22T01:56:34.123456Z" (UTC; TraceClock.swift in the
// module writes it), as nanoseconds since the epoch. Consecutive records mostly share their
// second, so the date arithmetic is done once per second (TimestampCache).

enum TraceTimestamp {
    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil).
    static func days(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// `count` decimal digits at `offset`, or nil.
    @inline(__always)
    static func digits(_ bytes: UnsafeRawBufferPointer, _ offset: Int, _ count: Int) -> Int? {
        var value = 0
        for index in offset..<offset + count {
            let digit = bytes[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return nil }
            value = value * 10 + Int(digit)
        }
        return value
    }

    /// Seconds since the epoch of "YYYY-MM-DDTHH:MM:SS" (exactly 19 bytes), or nil.
    static func seconds(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.count == 19, bytes[4] == UInt8(ascii: "-"), bytes[7] == UInt8(ascii: "-"),
              bytes[10] == UInt8(ascii: "T"), bytes[13] == UInt8(ascii: ":"), bytes[16] == UInt8(ascii: ":"),
              let year = digits(bytes, 0, 4), let month = digits(bytes, 5, 2), let day = digits(bytes, 8, 2),
              let hour = digits(bytes, 11, 2), let minute = digits(bytes, 14, 2), let second = digits(bytes, 17, 2),
              (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second <= 60
        else { return nil }
        return days(year: year, month: month, day: day) * 86400 + hour * 3600 + minute * 60 + second
    }

    static func padded(_ value: Int, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }
}

/// The last "YYYY-MM-DDTHH:MM:SS" read and its seconds.
struct TimestampCache {
    private var prefix: (UInt64, UInt64, UInt32) = (0, 0, 0)
    private var seconds: Int?

    /// Nanoseconds since the epoch of a whole timestamp: 19 bytes to the second, then '.', 1 to
    /// 9 digits and 'Z'.
    mutating func nanoseconds(_ bytes: UnsafeRawBufferPointer) -> Int128? {
        guard bytes.count >= 22, bytes.count <= 29, bytes[19] == UInt8(ascii: "."),
              bytes[bytes.count - 1] == UInt8(ascii: "Z") else { return nil }
        let key = (bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
                   bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self),
                   UInt32(bytes[16]) | UInt32(bytes[17]) << 8 | UInt32(bytes[18]) << 16)
        if seconds == nil || key != prefix {
            seconds = TraceTimestamp.seconds(UnsafeRawBufferPointer(rebasing: bytes[0..<19]))
            prefix = key
        }
        guard let seconds else { return nil }
        let fractionDigits = bytes.count - 21
        guard var fraction = TraceTimestamp.digits(bytes, 20, fractionDigits) else { return nil }
        for _ in fractionDigits..<9 { fraction *= 10 }
        return Int128(seconds) * 1_000_000_000 + Int128(fraction)
    }
}

/// A timestamp's text kept inline (at most 32 bytes), for a text record whose result line has
/// not been read yet: no allocation per record.
struct TimestampText {
    private var storage: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    private var count = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        count = min(bytes.count, 32)
        withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[0..<count])) }
    }

    func withBytes<Result>(_ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        withUnsafeBytes(of: storage) { body(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
    }
}
