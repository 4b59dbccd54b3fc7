// Percent-encoding (RFC 3986 section 2.1) as p11-kit writes it, so that our URIs are the same
// strings p11tool and p11-kit print for the same token, byte for byte.

enum PercentEncoding {
    /// p11-kit's P11_URL_VERBATIM (common/url.h): letters, digits, '-', '.', '_'. Everything
    /// else is written %XX, '~' too although RFC 3986 would leave it, and in upper-case hex as
    /// p11-kit 0.24 writes it (p11tool 3.7.9 prints `a%7Eb%20c%2F%C3%A9` for "a~b c/é").
    static func isVerbatim(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }

    /// Appends `bytes` encoded; `everyByte` encodes letters and digits too (p11-kit does so for `id`).
    static func encode<Bytes: Sequence<UInt8>>(_ bytes: Bytes, everyByte: Bool = false, into out: inout [UInt8]) {
        for byte in bytes {
            if !everyByte && isVerbatim(byte) {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hexDigit(byte >> 4))
                out.append(hexDigit(byte & 0x0F))
            }
        }
    }

    /// The upper-case hex digit for 0...15.
    static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "A") + value - 10
    }

    /// The value of one hex digit, either case.
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
