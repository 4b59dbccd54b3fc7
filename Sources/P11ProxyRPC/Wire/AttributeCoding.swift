// Templates on the wire. "aA" (a template with values, e.g. C_CreateObject): u32 count, then per
// attribute u32 type, u8 validity (0 when ulValueLen is CK_UNAVAILABLE_INFORMATION, nothing
// follows), u32 length (the sender's native ulValueLen) and the value in its kind's encoding
// (rpc-message.c p11_rpc_buffer_add_attribute). "fA" (C_GetAttributeValue's request): u32 count,
// then per attribute u32 type and the u32 capacity of the caller's buffer (0 for NULL).
//
// The reply to C_GetAttributeValue is decoded completely and checked before anything is written
// to the caller's template: a length that disagrees with the value that follows it
// (CVE-2020-29363), a count or type other than the ones asked for, or a value larger than the
// caller's buffer never reaches the caller's memory.
import CPKCS11

/// CK_UNAVAILABLE_INFORMATION, (CK_ULONG)-1.
let unavailableInformation = CK_ULONG.max

extension RPCRequest {
    /// "aA" from a caller's template. Values that p11-kit would mis-encode or that its server
    /// rejects are refused here with the code a module would give.
    mutating func attributes(_ template: UnsafeMutablePointer<CK_ATTRIBUTE>?, count: CK_ULONG) throws(RPCError) {
        expect("aA")
        guard count == 0 || template != nil else { throw .code(CK_RV(CKR_ARGUMENTS_BAD)) }
        guard WireLimits.fitsUInt32(count) else { throw .code(CK_RV(CKR_ARGUMENTS_BAD)) }
        writer.uint32(UInt32(count))
        for index in 0..<Int(count) {
            try Self.encode(template![index], into: &writer)
        }
    }

    private static func encode(_ attribute: CK_ATTRIBUTE, into writer: inout WireWriter) throws(RPCError) {
        guard let type = UInt32(exactly: attribute.type) else { throw .code(CK_RV(CKR_ATTRIBUTE_TYPE_INVALID)) }
        writer.uint32(type)
        if attribute.ulValueLen == unavailableInformation {
            writer.byte(0)
            return
        }
        writer.byte(1)
        let length = attribute.ulValueLen
        guard WireLimits.fitsByteArray(length) else { throw .code(CK_RV(CKR_ATTRIBUTE_VALUE_INVALID)) }
        guard length == 0 || attribute.pValue != nil else { throw .code(CK_RV(CKR_ARGUMENTS_BAD)) }
        writer.uint32(UInt32(length))
        let value = UnsafeRawPointer(attribute.pValue)
        switch AttributeValueKind(attribute.type) {
        case .byte:
            // The server decodes one byte and rejects a wire length shorter than that.
            guard length == 1, let value else { throw .code(CK_RV(CKR_ATTRIBUTE_VALUE_INVALID)) }
            writer.byte(value.load(as: UInt8.self))
        case .ulong:
            guard length == CK_ULONG(MemoryLayout<CK_ULONG>.size), let value else {
                throw .code(CK_RV(CKR_ATTRIBUTE_VALUE_INVALID))
            }
            writer.uint64(UInt64(value.loadUnaligned(as: CK_ULONG.self)))
        case .template:
            // p11-kit 0.24.1's server answers a nested template with a parse error (rpc-server.c
            // proto_read_attribute_array, IS_ATTRIBUTE_ARRAY); say so before sending.
            throw .code(CK_RV(CKR_ATTRIBUTE_TYPE_INVALID))
        case .mechanismArray:
            let size = CK_ULONG(MemoryLayout<CK_MECHANISM_TYPE>.size)
            guard length % size == 0 else { throw .code(CK_RV(CKR_ATTRIBUTE_VALUE_INVALID)) }
            let count = Int(length / size)
            writer.uint32(UInt32(count))
            for index in 0..<count {
                writer.uint64(UInt64(value!.loadUnaligned(fromByteOffset: index * Int(size), as: CK_MECHANISM_TYPE.self)))
            }
        case .date:
            guard length == 0 || length == 8 else { throw .code(CK_RV(CKR_ATTRIBUTE_VALUE_INVALID)) }
            // An empty date goes as the NULL marker, as rpc-message.c add_date_value sends it.
            if length == 0 { writer.nullByteArray() } else { writer.byteArray(value, count: 8) }
        case .bytes:
            writer.byteArray(value, count: Int(length))
        }
    }

    /// "fA": the types asked for and the capacity of each caller buffer. Capacities beyond what
    /// a byte array can carry are capped: the server then reports the real length if it is larger.
    mutating func attributeBuffer(_ template: UnsafeMutablePointer<CK_ATTRIBUTE>, count: Int,
                                  skipping skipped: [Bool]) throws(RPCError) {
        expect("fA")
        var sent = 0
        for index in 0..<count where !skipped[index] { sent += 1 }
        writer.uint32(UInt32(sent))
        for index in 0..<count where !skipped[index] {
            let attribute = template[index]
            guard let type = UInt32(exactly: attribute.type) else { throw .code(CK_RV(CKR_ATTRIBUTE_TYPE_INVALID)) }
            writer.uint32(type)
            let capacity = attribute.pValue == nil ? 0 : min(attribute.ulValueLen, CK_ULONG(WireLimits.maximumArray - 1))
            writer.uint32(UInt32(capacity))
        }
    }
}

/// One attribute of a C_GetAttributeValue reply, decoded and checked, not yet given to the caller.
enum DecodedAttribute: Equatable {
    /// Validity 0: the server's ulValueLen was CK_UNAVAILABLE_INFORMATION.
    case unavailable
    /// Only the length (the caller passed no buffer); in the caller's native units.
    case length(CK_ULONG)
    /// Raw bytes of the value in `WireReader.bytes`.
    case bytes(Range<Int>)
    /// A CK_BBOOL.
    case byte(UInt8)
    /// A CK_ULONG.
    case ulong(CK_ULONG)
    /// CKA_ALLOWED_MECHANISMS.
    case mechanisms([CK_MECHANISM_TYPE])
}

extension RPCReply {
    /// "aA" of a C_GetAttributeValue reply: exactly `types.count` attributes in the same order;
    /// `hadBuffer[i]` says whether we sent a capacity for the i-th, which decides how 0.24.1's
    /// server encodes a length-only answer (for CKA_ALLOWED_MECHANISMS: a count and no values).
    mutating func attributeValues(types: [CK_ATTRIBUTE_TYPE], hadBuffer: [Bool]) throws(RPCError) -> [DecodedAttribute] {
        try expect("aA")
        let count = try reader.uint32("attribute count")
        guard Int(count) == types.count else { throw .malformed("\(count) attributes for \(types.count) asked") }
        var result: [DecodedAttribute] = []
        result.reserveCapacity(types.count)
        for index in 0..<types.count {
            let type = try reader.uint32("attribute type")
            guard CK_ATTRIBUTE_TYPE(type) == types[index] else { throw .malformed("attribute \(index) has another type") }
            if try reader.byte("attribute validity") == 0 {
                result.append(.unavailable)
                continue
            }
            let length = try reader.uint32("attribute length")
            result.append(try decodeValue(type: types[index], wireLength: length, hadBuffer: hadBuffer[index]))
        }
        return result
    }

    private mutating func decodeValue(type: CK_ATTRIBUTE_TYPE, wireLength: UInt32,
                                      hadBuffer: Bool) throws(RPCError) -> DecodedAttribute {
        switch AttributeValueKind(type) {
        case .byte:
            let value = try reader.byte("bool attribute")
            guard wireLength == 1 else { throw .malformed("bool attribute of length \(wireLength)") }
            return hadBuffer ? .byte(value) : .length(1)
        case .ulong:
            let value = try reader.ulong("ulong attribute")
            // The length is the server's sizeof(CK_ULONG): 8, or 4 on a 32-bit server.
            guard wireLength == 8 || wireLength == 4 else { throw .malformed("ulong attribute of length \(wireLength)") }
            return hadBuffer ? .ulong(value) : .length(CK_ULONG(MemoryLayout<CK_ULONG>.size))
        case .template:
            throw .malformed("nested template in a reply")
        case .mechanismArray:
            let count = try reader.uint32("mechanism count")
            guard UInt64(count) * 8 == UInt64(wireLength) || UInt64(count) * 4 == UInt64(wireLength) else {
                throw .malformed("mechanism array of \(count) with length \(wireLength)")
            }
            let native = CK_ULONG(count) * CK_ULONG(MemoryLayout<CK_MECHANISM_TYPE>.size)
            guard hadBuffer else { return .length(native) }
            guard UInt64(count) * 8 <= UInt64(reader.remaining) else { throw .malformed("mechanism array runs past the end") }
            var values: [CK_MECHANISM_TYPE] = []
            values.reserveCapacity(Int(count))
            for _ in 0..<count { values.append(try reader.ulong("mechanism")) }
            return .mechanisms(values)
        case .date, .bytes:
            let isDate = AttributeValueKind(type) == .date
            guard let range = try reader.byteArray("attribute value") else {
                // NULL data: the server had no buffer and reports only the length.
                if isDate && wireLength != 0 && wireLength != 8 { throw .malformed("date of length \(wireLength)") }
                return .length(CK_ULONG(wireLength))
            }
            guard range.count == Int(wireLength) else {
                throw .malformed("attribute length \(wireLength) but \(range.count) value bytes")
            }
            if isDate && range.count != 0 && range.count != 8 { throw .malformed("date of \(range.count) bytes") }
            return hadBuffer ? .bytes(range) : .length(CK_ULONG(wireLength))
        }
    }

    /// Writes decoded values into the caller's template. A value that does not fit its buffer
    /// gets CK_UNAVAILABLE_INFORMATION and the call CKR_BUFFER_TOO_SMALL, as a local module
    /// would answer (PKCS#11 2.40 section 5.7.5 C_GetAttributeValue).
    func apply(_ decoded: [DecodedAttribute], to template: UnsafeMutablePointer<CK_ATTRIBUTE>,
               indices: [Int]) -> Bool {
        var fitted = true
        for (position, index) in indices.enumerated() {
            let capacity = template[index].ulValueLen
            let destination = template[index].pValue
            func deliver(_ length: Int, _ copy: (UnsafeMutableRawPointer) -> Void) {
                guard let destination else {
                    template[index].ulValueLen = CK_ULONG(length)
                    return
                }
                guard CK_ULONG(length) <= capacity else {
                    template[index].ulValueLen = unavailableInformation
                    fitted = false
                    return
                }
                copy(destination)
                template[index].ulValueLen = CK_ULONG(length)
            }
            switch decoded[position] {
            case .unavailable:
                template[index].ulValueLen = unavailableInformation
            case .length(let length):
                if destination == nil || length == 0 {
                    // No buffer, or an empty value in a zero-capacity buffer (sent as capacity 0).
                    template[index].ulValueLen = length
                } else {
                    // We sent a buffer and got only a length back: the server's module found it too small.
                    template[index].ulValueLen = unavailableInformation
                    fitted = false
                }
            case .byte(let value):
                deliver(1) { $0.storeBytes(of: value, as: UInt8.self) }
            case .ulong(let value):
                deliver(MemoryLayout<CK_ULONG>.size) { $0.storeBytes(of: value, toByteOffset: 0, as: CK_ULONG.self) }
            case .mechanisms(let values):
                deliver(values.count * MemoryLayout<CK_MECHANISM_TYPE>.size) { pointer in
                    for (slot, value) in values.enumerated() {
                        pointer.storeBytes(of: value, toByteOffset: slot * MemoryLayout<CK_MECHANISM_TYPE>.size,
                                           as: CK_MECHANISM_TYPE.self)
                    }
                }
            case .bytes(let range):
                deliver(range.count) { reader.copy(range, to: $0) }
            }
        }
        return fitted
    }
}
