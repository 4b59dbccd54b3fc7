// One call's body in each direction: u32 call id, the signature as a byte array, then the
// arguments in signature order (p11-kit/rpc-message.c p11_rpc_message_prep / _parse). The request
// checks each argument against the call table as it is written, as p11-kit's asserts do; the reply
// checks the id, the signature and then every field against the bytes actually received.
import CPKCS11

/// A request being encoded. Writing an argument the signature does not expect is a programming
/// error in this library (a precondition), never something a server can cause.
struct RPCRequest {
    let call: RPCCall
    var writer = WireWriter()
    private var position = 0

    init(_ call: RPCCall) {
        self.call = call
        writer.uint32(call.id)
        let signature = call.request.bytes
        writer.byteArray(UnsafeRawPointer(signature.baseAddress!), count: signature.count)
    }

    /// Advances past `part` of the request signature.
    mutating func expect(_ part: StaticString) {
        let signature = call.request.bytes
        let piece = part.bytes
        precondition(position + piece.count <= signature.count
                     && signature[position..<(position + piece.count)].elementsEqual(piece),
                     "argument out of signature order")
        position += piece.count
    }

    /// The finished body; every argument of the signature must have been written.
    var body: [UInt8] {
        precondition(position == call.request.utf8CodeUnitCount, "arguments missing")
        return writer.bytes
    }

    mutating func byte(_ value: UInt8) {
        expect("y")
        writer.byte(value)
    }

    mutating func ulong(_ value: CK_ULONG) {
        expect("u")
        writer.uint64(UInt64(value))
    }

    /// "ay": a valid byte then a byte array. A NULL input array is sent as valid + the NULL
    /// marker: p11-kit 0.24.1's server (rpc-server.c proto_read_byte_array) does not consume the
    /// length that follows a 0 valid byte, so [00][len] would shift every later field; newer
    /// servers read [01][FFFFFFFF] as NULL too.
    mutating func byteArray(_ pointer: UnsafeRawPointer?, count: CK_ULONG) throws(RPCError) {
        expect("ay")
        guard WireLimits.fitsByteArray(count) else { throw .code(CK_RV(CKR_ARGUMENTS_BAD)) }
        writer.byte(1)
        if let pointer {
            writer.byteArray(pointer, count: Int(count))
        } else {
            guard count == 0 else { throw .code(CK_RV(CKR_ARGUMENTS_BAD)) }
            writer.nullByteArray()
        }
    }

    mutating func byteArray(_ bytes: [UInt8]) {
        expect("ay")
        writer.byte(1)
        writer.byteArray(bytes)
    }

    /// "fy": the capacity of an output buffer; 0 asks for the length only.
    mutating func byteBuffer(capacity: UInt32) {
        expect("fy")
        writer.uint32(capacity)
    }

    /// "fu": the capacity of a CK_ULONG output array; 0 asks for the count only.
    mutating func ulongBuffer(capacity: UInt32) {
        expect("fu")
        writer.uint32(capacity)
    }

    /// "z": a string without its NUL (rpc-message.c write_zero_string).
    mutating func zeroString(_ bytes: [UInt8]) {
        expect("z")
        writer.byteArray(bytes)
    }

    /// "s": a fixed-size space-padded field, sent as a byte array of exactly its size.
    mutating func spaceString(_ bytes: [UInt8]) {
        expect("s")
        writer.byteArray(bytes)
    }
}

/// A reply being decoded. Its initialiser checks the frame's call id and signature; each read
/// then consumes its part of the signature and bytes of the body, and `finish` requires both to
/// be used up exactly.
struct RPCReply {
    let call: RPCCall
    var reader: WireReader
    private var position = 0

    /// Throws the server's CK_RV for an error reply, CKR_DEVICE_ERROR for anything malformed.
    init(_ body: [UInt8], for call: RPCCall) throws(RPCError) {
        self.call = call
        reader = WireReader(body)
        let id = try reader.uint32("call id")
        if id == RPCCall.error.id {
            try Self.checkSignature(&reader, RPCCall.error.response)
            let code = try reader.uint64("error code")
            // rpc-client.c call_run: an error reply carrying CKR_OK (or nothing) is malformed.
            guard code != 0, let value = CK_RV(exactly: code) else { throw .malformed("error reply without an error") }
            guard reader.isAtEnd else { throw .malformed("bytes after the error code") }
            throw .code(value)
        }
        guard id == call.id else { throw .malformed("reply for call \(id), expected \(call.id) (\(call.name))") }
        try Self.checkSignature(&reader, call.response)
    }

    private static func checkSignature(_ reader: inout WireReader, _ expected: StaticString) throws(RPCError) {
        guard let range = try reader.byteArray("signature") else { throw .malformed("NULL signature") }
        guard reader.slice(range).elementsEqual(expected.bytes) else { throw .malformed("signature does not match") }
    }

    mutating func expect(_ part: StaticString) throws(RPCError) {
        let signature = call.response.bytes
        let piece = part.bytes
        // A mismatch here is a decoding bug of ours; still a DEVICE_ERROR rather than a trap.
        guard position + piece.count <= signature.count,
              signature[position..<(position + piece.count)].elementsEqual(piece) else {
            throw .malformed("decoded out of signature order")
        }
        position += piece.count
    }

    mutating func finish() throws(RPCError) {
        guard position == call.response.utf8CodeUnitCount else { throw .malformed("reply decoded only in part") }
        guard reader.isAtEnd else { throw .malformed("\(reader.remaining) bytes after the last field") }
    }

    mutating func byte() throws(RPCError) -> UInt8 {
        try expect("y")
        return try reader.byte()
    }

    mutating func ulong() throws(RPCError) -> CK_ULONG {
        try expect("u")
        return try reader.ulong()
    }

    mutating func version() throws(RPCError) -> CK_VERSION {
        try expect("v")
        let major = try reader.byte("version")
        let minor = try reader.byte("version")
        return CK_VERSION(major: major, minor: minor)
    }

    /// "s" into a fixed field of `size` bytes: the length must equal the field's size exactly
    /// (rpc-message.c read_space_string).
    mutating func spaceString(into destination: UnsafeMutableRawPointer, size: Int) throws(RPCError) {
        try expect("s")
        guard let range = try reader.byteArray("space-padded string"), range.count == size else {
            throw .malformed("space-padded string is not \(size) bytes")
        }
        reader.copy(range, to: destination)
    }

    /// An "ay" reply: the bytes, or only the length the server would have needed.
    enum ByteArray: Equatable {
        case bytes(Range<Int>)
        case lengthOnly(UInt32)
    }

    mutating func byteArray() throws(RPCError) -> ByteArray {
        try expect("ay")
        if try reader.byte("array validity") == 0 { return .lengthOnly(try reader.uint32("array length")) }
        guard let range = try reader.byteArray() else { throw .malformed("valid byte array with NULL data") }
        return .bytes(range)
    }

    /// An "au" reply: the values, or only the count.
    enum ULongArray: Equatable {
        case values([CK_ULONG])
        case countOnly(UInt32)
    }

    mutating func ulongArray() throws(RPCError) -> ULongArray {
        try expect("au")
        let valid = try reader.byte("array validity")
        let count = try reader.uint32("array count")
        if valid == 0 { return .countOnly(count) }
        // Checked before allocating: a count is only believed when its bytes are there.
        guard UInt64(count) * 8 <= UInt64(reader.remaining) else { throw .malformed("ulong array of \(count) runs past the end") }
        var values: [CK_ULONG] = []
        values.reserveCapacity(Int(count))
        for _ in 0..<count { values.append(try reader.ulong()) }
        return .values(values)
    }
}
