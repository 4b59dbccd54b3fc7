// Replies: what p11-kit's server writes decodes to the right values, and every malformed form
// (truncated, wrong id or signature, trailing bytes, huge or inconsistent lengths) is
// CKR_DEVICE_ERROR without touching anything beyond the received bytes.
import CPKCS11
import Testing
@testable import P11ProxyRPC

@Suite struct ReplyDecodingTests {
    @Test func errorReplyGivesTheServersCode() {
        let body = hex("00000000 00000001 'u' 00000000000000A0")
        #expect(thrownCode { _ = try RPCReply(body, for: .login) } == CK_RV(CKR_PIN_INCORRECT))
        let zero = hex("00000000 00000001 'u' 0000000000000000")
        #expect(thrownCode { _ = try RPCReply(zero, for: .login) } == deviceError)
        let trailing = hex("00000000 00000001 'u' 00000000000000A0 00")
        #expect(thrownCode { _ = try RPCReply(trailing, for: .login) } == deviceError)
    }

    @Test func wrongCallIdOrSignatureIsMalformed() {
        #expect(thrownCode { _ = try RPCReply(replyBody(.logout), for: .login) } == deviceError)
        #expect(thrownCode { _ = try RPCReply(hex("00000012 00000001 'u'"), for: .login) } == deviceError)
        #expect(thrownCode { _ = try RPCReply(hex("00000012 FFFFFFFF"), for: .login) } == deviceError)
        #expect(thrownCode { var reply = try RPCReply(replyBody(.login), for: .login); try reply.finish() } == nil)
    }

    @Test func byteArrayReplyAndLengthOnly() throws {
        var reply = try RPCReply(replyBody(.sign, hex("01 00000003 010203")), for: .sign)
        #expect(try reply.byteArray() == .bytes(15..<18))
        try reply.finish()
        var short = try RPCReply(replyBody(.sign, hex("00 00000100")), for: .sign)
        #expect(try short.byteArray() == .lengthOnly(256))
        var null = try RPCReply(replyBody(.sign, hex("01 FFFFFFFF")), for: .sign)
        #expect(thrownCode { _ = try null.byteArray() } == deviceError)
    }

    @Test func everyTruncationOfAValidReplyFails() throws {
        let body = replyBody(.getSessionInfo, u64(1) + u64(3) + u64(6) + u64(0))
        var full = try RPCReply(body, for: .getSessionInfo)
        let info = try full.sessionInfo()
        try full.finish()
        #expect(info.slotID == 1 && info.state == 3 && info.flags == 6)
        for length in 0..<body.count {
            let code = thrownCode {
                var reply = try RPCReply(Array(body.prefix(length)), for: .getSessionInfo)
                _ = try reply.sessionInfo()
                try reply.finish()
            }
            #expect(code == deviceError, "prefix of \(length) bytes")
        }
        #expect(thrownCode { var reply = try RPCReply(body + [0], for: .getSessionInfo); _ = try reply.sessionInfo(); try reply.finish() } == deviceError)
    }

    @Test func ulongArrayCountMustBeBackedByBytes() throws {
        var huge = try RPCReply(replyBody(.getSlotList, hex("01 FFFFFFFE 0000000000000001")), for: .getSlotList)
        #expect(thrownCode { _ = try huge.ulongArray() } == deviceError)
        var fine = try RPCReply(replyBody(.getSlotList, hex("01 00000002") + u64(5) + u64(6)), for: .getSlotList)
        #expect(try fine.ulongArray() == .values([5, 6]))
        var count = try RPCReply(replyBody(.getSlotList, hex("00 00000009")), for: .getSlotList)
        #expect(try count.ulongArray() == .countOnly(9))
    }

    @Test func tokenInfoFieldsAndFixedStringSizes() throws {
        let text32 = [UInt8](repeating: 0x20, count: 32), text16 = [UInt8](repeating: 0x41, count: 16)
        var fields = array(text32) + array(text32) + array(text16) + array(text16)
        for value in 0..<11 { fields += u64(UInt64(value)) }
        fields += hex("0201 0304") + array(text16)
        var reply = try RPCReply(replyBody(.getTokenInfo, fields), for: .getTokenInfo)
        let info = try reply.tokenInfo()
        try reply.finish()
        #expect(info.ulMaxPinLen == 5 && info.ulFreePrivateMemory == 10 && info.firmwareVersion.minor == 4)
        // A label of 31 bytes is not CK_TOKEN_INFO's 32 (rpc-message.c read_space_string).
        var wrong = try RPCReply(replyBody(.getTokenInfo, array(Array(text32.prefix(31)))), for: .getTokenInfo)
        #expect(thrownCode { _ = try wrong.tokenInfo() } == deviceError)
    }

    @Test func frameHeaderLimitsAreCheckedBeforeAllocating() {
        let header = FrameHeader(hex("00000010 00000000 FFFFFFFF"))
        #expect(thrownCode { try header.checkReply(to: 0x10, maximumOptions: 4096, maximumBody: 1 << 20) } == deviceError)
        #expect(thrownCode { try FrameHeader(hex("00000011 00000000 00000010")).checkReply(to: 0x10, maximumOptions: 4096, maximumBody: 64) } == deviceError)
        #expect(thrownCode { try FrameHeader(hex("00000010 00010000 00000010")).checkReply(to: 0x10, maximumOptions: 4096, maximumBody: 64) } == deviceError)
        #expect(thrownCode { try FrameHeader(hex("00000010 00000003 00000010")).checkReply(to: 0x10, maximumOptions: 4096, maximumBody: 64) } == nil)
        #expect(FrameHeader.frame(code: 0x10, options: [0x6D], body: [1, 2]) == hex("00000010 00000001 00000002 6D 0102"))
    }
}

@Suite struct AttributeReplyTests {
    /// Decodes an "aAu" reply for `types` into a template whose buffers are `capacities` bytes
    /// (nil: NULL pValue), returning the code, the lengths and the buffers.
    func decode(_ types: [CK_ATTRIBUTE_TYPE], capacities: [Int?], _ fields: [UInt8])
        -> (code: CK_RV?, lengths: [CK_ULONG], buffers: [[UInt8]]) {
        var buffers = capacities.map { [UInt8](repeating: 0xEE, count: ($0 ?? 0) + 8) }  // 8 guard bytes
        var lengths: [CK_ULONG] = []
        var code: CK_RV? = nil
        let pointers = buffers.indices.map { index in buffers[index].withUnsafeMutableBytes { $0.baseAddress! } }
        _ = pointers
        var template: [CK_ATTRIBUTE] = []
        var storage = buffers
        storage.withUnsafeMutableBufferPointer { all in
            for index in types.indices {
                let base = all[index].withUnsafeMutableBytes { $0.baseAddress }
                template.append(CK_ATTRIBUTE(type: types[index], pValue: capacities[index] == nil ? nil : base,
                                             ulValueLen: CK_ULONG(capacities[index] ?? 0)))
            }
            code = thrownCode {
                var reply = try RPCReply(replyBody(.getAttributeValue, fields), for: .getAttributeValue)
                let values = try reply.attributeValues(types: types, hadBuffer: capacities.map { ($0 ?? 0) > 0 })
                _ = try reply.ulong()
                try reply.finish()
                let fitted = template.withUnsafeMutableBufferPointer {
                    reply.apply(values, to: $0.baseAddress!, indices: Array(types.indices))
                }
                if !fitted { throw RPCError(CK_RV(CKR_BUFFER_TOO_SMALL), "") }
            }
        }
        buffers = storage
        lengths = template.map(\.ulValueLen)
        return (code, lengths, buffers)
    }

    @Test func valuesLandInTheCallersBuffers() {
        let result = decode([CK_ULONG(CKA_LABEL), CK_ULONG(CKA_CLASS), CK_ULONG(CKA_TOKEN)], capacities: [4, 8, 1], hex("""
            00000003
            00000003 01 00000003 00000003 'abc'
            00000000 01 00000008 0000000000000003
            00000001 01 00000001 01
            0000000000000000
            """))
        #expect(result.code == nil)
        #expect(result.lengths == [3, 8, 1])
        #expect(Array(result.buffers[0].prefix(4)) == hex("'abc' EE"))
        #expect(result.buffers[1].prefix(8).elementsEqual(withUnsafeBytes(of: CK_ULONG(3)) { Array($0) }))
        #expect(result.buffers[2].prefix(2).elementsEqual(hex("01 EE")))
    }

    @Test func sizeQueriesGetLengthsIncludingAllowedMechanismsCountOnly() {
        // 0.24.1's server writes a NULL byte array, a zero bool, and for CKA_ALLOWED_MECHANISMS
        // the count without values when it had no buffer.
        let result = decode([CK_ULONG(CKA_MODULUS), CK_ULONG(CKA_ALLOWED_MECHANISMS), CK_ULONG(CKA_ID)],
                            capacities: [nil, nil, nil], hex("""
            00000003
            00000120 01 00000100 FFFFFFFF
            40000600 01 00000018 00000003
            00000102 00
            0000000000000000
            """))
        #expect(result.code == nil)
        #expect(result.lengths == [256, 24, CK_ULONG.max])
    }

    @Test func lengthThatDisagreesWithTheValueIsRejected() {
        // CVE-2020-29363's shape: the attribute says 2 bytes, its byte array holds 6.
        let result = decode([CK_ULONG(CKA_LABEL)], capacities: [2], hex("""
            00000001 00000003 01 00000002 00000006 'abcdef' 0000000000000000
            """))
        #expect(result.code == deviceError)
        #expect(result.buffers[0].allSatisfy { $0 == 0xEE })
    }

    @Test func valueLargerThanTheCallersBufferIsNeverCopied() {
        let result = decode([CK_ULONG(CKA_LABEL)], capacities: [2], hex("""
            00000001 00000003 01 00000006 00000006 'abcdef' 0000000000000000
            """))
        #expect(result.code == CK_RV(CKR_BUFFER_TOO_SMALL))
        #expect(result.lengths == [CK_ULONG.max])
        #expect(result.buffers[0].allSatisfy { $0 == 0xEE })
    }

    @Test func wrongCountTypeOrKindLengthIsRejected() {
        let countMismatch = decode([CK_ULONG(CKA_LABEL)], capacities: [4], hex("00000002 0000000000000000"))
        #expect(countMismatch.code == deviceError)
        let typeMismatch = decode([CK_ULONG(CKA_LABEL)], capacities: [4], hex("00000001 00000004 00 0000000000000000"))
        #expect(typeMismatch.code == deviceError)
        let boolLength = decode([CK_ULONG(CKA_TOKEN)], capacities: [1], hex("00000001 00000001 01 00000002 01 0000000000000000"))
        #expect(boolLength.code == deviceError)
        let mechanismLength = decode([CK_ULONG(CKA_ALLOWED_MECHANISMS)], capacities: [16],
                                     hex("00000001 40000600 01 00000010 00000003 0000000000000001 0000000000000002 0000000000000003 0000000000000000"))
        #expect(mechanismLength.code == deviceError)
        let hugeCount = decode([CK_ULONG(CKA_ALLOWED_MECHANISMS)], capacities: [16], hex("00000001 40000600 01 FFFFFFF8 1FFFFFFF 0000000000000000"))
        #expect(hugeCount.code == deviceError)
        let nested = decode([CK_ULONG(CKA_WRAP_TEMPLATE)], capacities: [16], hex("00000001 40000211 01 00000000 00000000 0000000000000000"))
        #expect(nested.code == deviceError)
    }
}

@Suite struct RemoteAddressTests {
    @Test func unixPathsAreAbsoluteAndPercentDecoded() throws {
        #expect(try RemoteAddress(parsing: "unix:path=/run/p11%20kit/sock") == .unixSocket(path: "/run/p11 kit/sock"))
        #expect(thrownCode { _ = try RemoteAddress(parsing: "unix:path=relative") } != nil)
        #expect(thrownCode { _ = try RemoteAddress(parsing: "unix:path=/bad%2") } != nil)
        #expect(thrownCode { _ = try RemoteAddress(parsing: "vsock:cid=3;port=1") } != nil)
        #expect(thrownCode { _ = try RemoteAddress(parsing: "|   ") } != nil)
    }

    @Test func commandsSplitLikeP11KitArgv() throws {
        #expect(try RemoteAddress(parsing: "|p11-kit remote /usr/lib/softhsm/libsofthsm2.so")
                == .command(arguments: ["p11-kit", "remote", "/usr/lib/softhsm/libsofthsm2.so"]))
        #expect(try RemoteAddress(parsing: "|ssh 'host name' \"a \\\" b\" c\\ d ''")
                == .command(arguments: ["ssh", "host name", "a \" b", "c\\ d", ""]))
        #expect(try RemoteAddress(parsing: "|a   b\tc") == .command(arguments: ["a", "b", "c"]))
        #expect(thrownCode { _ = try RemoteAddress(parsing: "|a \\") } != nil)
    }
}
