// libFuzzer entry for the RPC reply decoder (`make fuzz`, Tests/Fuzz/run.sh rpc): compiled
// together with Sources/P11ProxyRPC by `swiftc -sanitize=fuzzer,address`. An input is a reply
// body as a server would send it, preceded by two bytes that pick what it answers and the
// caller's buffers. Caller buffers are heap blocks of exactly their size, so a write or read past
// one is an AddressSanitizer report; broken invariants trap.
//
// Input layout: byte 0 selects the call (modulo the list below), byte 1 the caller's buffer
// capacities (bits), the rest is the body (u32 call id, signature, fields).
import CPKCS11

func require(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError("invariant violated: \(message())") }
}

/// An exactly sized caller buffer; nil for capacity nil (a NULL pointer).
func callerBuffer(_ capacity: Int?) -> UnsafeMutableRawPointer? {
    guard let capacity else { return nil }
    let pointer = UnsafeMutableRawPointer.allocate(byteCount: max(capacity, 1), alignment: 8)
    pointer.initializeMemory(as: UInt8.self, repeating: 0xEE, count: max(capacity, 1))
    return pointer
}

func decodeStruct(_ body: [UInt8], _ call: RPCCall) {
    guard var reply = try? RPCReply(body, for: call) else { return }
    switch call.id {
    case RPCCall.getInfo.id: _ = try? reply.info()
    case RPCCall.getSlotInfo.id: _ = try? reply.slotInfo()
    case RPCCall.getTokenInfo.id: _ = try? reply.tokenInfo()
    case RPCCall.getSessionInfo.id: _ = try? reply.sessionInfo()
    default: _ = try? reply.mechanismInfo()
    }
    _ = try? reply.finish()
}

func decodeBytes(_ body: [UInt8], flags: UInt8) {
    guard var reply = try? RPCReply(body, for: .sign), let answer = try? reply.byteArray() else { return }
    guard (try? reply.finish()) != nil else { return }
    let capacity = Int(flags & 0x3F)
    if case .bytes(let range) = answer, range.count <= capacity, let buffer = callerBuffer(capacity) {
        reply.reader.copy(range, to: buffer)
        buffer.deallocate()
    }
}

func decodeULongs(_ body: [UInt8]) {
    guard var reply = try? RPCReply(body, for: .getSlotList), let answer = try? reply.ulongArray() else { return }
    if case .values(let values) = answer { require(values.count * 8 <= body.count, "more values than bytes") }
}

/// The template asked for: one attribute of each value kind.
let fuzzTypes: [CK_ATTRIBUTE_TYPE] = [
    CK_ULONG(CKA_LABEL), CK_ULONG(CKA_CLASS), CK_ULONG(CKA_TOKEN), CK_ULONG(CKA_ALLOWED_MECHANISMS),
    CK_ULONG(CKA_START_DATE), CK_ULONG(CKA_MODULUS),
]

func decodeAttributes(_ body: [UInt8], flags: UInt8) {
    // Bit i set: attribute i has a buffer of 8 + 8 * i bytes; clear: NULL (a size query).
    let capacities: [Int?] = fuzzTypes.indices.map { flags & (1 << $0) != 0 ? 8 + 8 * $0 : nil }
    let buffers = capacities.map(callerBuffer)
    defer { for buffer in buffers { buffer?.deallocate() } }
    var template = fuzzTypes.indices.map {
        CK_ATTRIBUTE(type: fuzzTypes[$0], pValue: buffers[$0], ulValueLen: CK_ULONG(capacities[$0] ?? 0))
    }
    guard var reply = try? RPCReply(body, for: .getAttributeValue),
          let values = try? reply.attributeValues(types: fuzzTypes, hadBuffer: capacities.map { $0 != nil }),
          (try? reply.ulong()) != nil, (try? reply.finish()) != nil else { return }
    _ = template.withUnsafeMutableBufferPointer { reply.apply(values, to: $0.baseAddress!, indices: Array(fuzzTypes.indices)) }
    for (index, attribute) in template.enumerated() {
        if let capacity = capacities[index], attribute.ulValueLen != CK_ULONG.max {
            require(attribute.ulValueLen <= CK_ULONG(capacity), "attribute \(index) reports \(attribute.ulValueLen) > \(capacity)")
        }
    }
}

func decodeFrameHeader(_ body: [UInt8]) {
    guard body.count >= 12 else { return }
    let header = FrameHeader(Array(body.prefix(12)))
    if (try? header.checkReply(to: 0x10, maximumOptions: 4096, maximumBody: 1 << 20)) != nil {
        require(header.bodyLength <= 1 << 20 && header.optionsLength <= 4096, "limits not applied")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRPCReply(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size >= 2 else { return 0 }
    let selector = data[0], flags = data[1]
    let body = Array(UnsafeBufferPointer(start: data + 2, count: size - 2))
    switch selector % 9 {
    case 0: decodeStruct(body, .getInfo)
    case 1: decodeStruct(body, .getSlotInfo)
    case 2: decodeStruct(body, .getTokenInfo)
    case 3: decodeStruct(body, .getSessionInfo)
    case 4: decodeStruct(body, .getMechanismInfo)
    case 5: decodeBytes(body, flags: flags)
    case 6: decodeULongs(body)
    case 7: decodeAttributes(body, flags: flags)
    default: decodeFrameHeader(body)
    }
    return 0
}
