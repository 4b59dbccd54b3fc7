// The reply side of p11-kit's message buffer: a bounds-checked cursor over one received frame's
// body. Every read checks the length against what is left *after* the length prefix, the check
// whose absence was CVE-2020-29362 (p11-kit bda2f54), and nothing is allocated from a wire count
// before the bytes it describes are known to be there (CVE-2020-29361, 5307a1d).
import CPKCS11

struct WireReader {
    let bytes: [UInt8]
    private(set) var offset: Int = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }
    var isAtEnd: Bool { offset == bytes.count }

    mutating func byte(_ what: StaticString = "byte") throws(RPCError) -> UInt8 {
        guard remaining >= 1 else { throw .malformed("truncated at \(what)") }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func uint32(_ what: StaticString = "u32") throws(RPCError) -> UInt32 {
        guard remaining >= 4 else { throw .malformed("truncated at \(what)") }
        var value: UInt32 = 0
        for index in offset..<(offset + 4) { value = value << 8 | UInt32(bytes[index]) }
        offset += 4
        return value
    }

    mutating func uint64(_ what: StaticString = "u64") throws(RPCError) -> UInt64 {
        let high = try uint32(what)
        let low = try uint32(what)
        return UInt64(high) << 32 | UInt64(low)
    }

    /// A CK_ULONG: 64 bits on the wire; a value that does not fit the host's CK_ULONG is refused
    /// rather than truncated (only matters on 32-bit hosts).
    mutating func ulong(_ what: StaticString = "ulong") throws(RPCError) -> CK_ULONG {
        let value = try uint64(what)
        guard let narrowed = CK_ULONG(exactly: value) else { throw .malformed("\(what) does not fit CK_ULONG") }
        return narrowed
    }

    /// A length-prefixed byte array: nil for the NULL marker, else the range of its bytes in
    /// `bytes` (no copy). Lengths p11-kit itself refuses (>= 0x7FFFFFFF) are malformed.
    mutating func byteArray(_ what: StaticString = "byte array") throws(RPCError) -> Range<Int>? {
        let length = try uint32(what)
        if length == WireLimits.nullArray { return nil }
        guard length < WireLimits.maximumArray else { throw .malformed("\(what) length \(length) too large") }
        guard Int(length) <= remaining else {
            throw .malformed("\(what) length \(length) runs past the end (\(remaining) left)")
        }
        defer { offset += Int(length) }
        return offset..<(offset + Int(length))
    }

    /// Copies `range` (from byteArray) to a caller's buffer that is known to be large enough.
    func copy(_ range: Range<Int>, to destination: UnsafeMutableRawPointer) {
        bytes.withUnsafeBytes { source in
            destination.copyMemory(from: source.baseAddress! + range.lowerBound, byteCount: range.count)
        }
    }

    func slice(_ range: Range<Int>) -> ArraySlice<UInt8> { bytes[range] }
}
