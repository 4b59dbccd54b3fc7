// The frame around every message (p11-kit/rpc-transport.c rpc_socket_write_inlock,
// p11_rpc_transport_read): u32 code, u32 options length, u32 body length, the options, the body.
// The client numbers its requests from 0x10 and the server echoes the code; the options carry
// the module's name. Lengths come from the peer, so a header is checked against limits before
// a byte is allocated for it (p11-kit allocates up to 2 x 4 GiB on the header's word).

struct FrameHeader: Equatable {
    static let size = 12

    var code: UInt32
    var optionsLength: UInt32
    var bodyLength: UInt32

    init(code: UInt32, optionsLength: UInt32, bodyLength: UInt32) {
        self.code = code
        self.optionsLength = optionsLength
        self.bodyLength = bodyLength
    }

    init(_ bytes: [UInt8]) {
        var reader = WireReader(bytes)
        // Twelve bytes were read: these cannot fail.
        code = (try? reader.uint32()) ?? 0
        optionsLength = (try? reader.uint32()) ?? 0
        bodyLength = (try? reader.uint32()) ?? 0
    }

    var bytes: [UInt8] {
        var writer = WireWriter(reservingCapacity: Self.size)
        writer.uint32(code)
        writer.uint32(optionsLength)
        writer.uint32(bodyLength)
        return writer.bytes
    }

    /// What a reply may carry: options at most `maximumOptions`, a body at most `maximumBody`,
    /// and the code of the request it answers.
    func checkReply(to code: UInt32, maximumOptions: Int, maximumBody: Int) throws(RPCError) {
        guard self.code == code else { throw .malformed("frame code \(self.code), expected \(code)") }
        guard Int(optionsLength) <= maximumOptions else { throw .malformed("options of \(optionsLength) bytes") }
        guard Int(bodyLength) <= maximumBody else { throw .malformed("body of \(bodyLength) bytes over the \(maximumBody) limit") }
        guard bodyLength >= 4 else { throw .malformed("body of \(bodyLength) bytes has no call id") }
    }

    static func frame(code: UInt32, options: [UInt8], body: [UInt8]) -> [UInt8] {
        var bytes = FrameHeader(code: code, optionsLength: UInt32(options.count), bodyLength: UInt32(body.count)).bytes
        bytes.reserveCapacity(size + options.count + body.count)
        bytes += options
        bytes += body
        return bytes
    }
}
