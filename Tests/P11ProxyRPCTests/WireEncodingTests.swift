// Requests byte for byte as p11-kit's rpc-message.c writes them: the primitives, representative
// calls, mechanisms in both protocol formats, and templates of every value kind.
import CPKCS11
import Testing
@testable import P11ProxyRPC

@Suite struct WirePrimitiveTests {
    @Test func integersAreBigEndianAndULongIs64Bits() {
        var writer = WireWriter()
        writer.byte(0xAB)
        writer.uint32(0x0102_0304)
        writer.uint64(0x0A0B_0C0D_0E0F_1011)
        #expect(writer.bytes == hex("AB 01020304 0A0B0C0D 0E0F1011"))
    }

    @Test func byteArraysCarryTheirLengthAndNullIsAllOnes() {
        var writer = WireWriter()
        writer.byteArray([0x41, 0x42])
        writer.nullByteArray()
        let empty: [UInt8] = [0]
        empty.withUnsafeBytes { writer.byteArray($0.baseAddress, count: 0) }
        #expect(writer.bytes == hex("00000002 4142 FFFFFFFF 00000000"))
    }

    @Test func readerRefusesLengthsPastTheEndAndP11KitsLimit() {
        var short = WireReader(hex("00000005 4142"))
        #expect(thrownCode { _ = try short.byteArray() } == deviceError)
        var limit = WireReader(hex("7FFFFFFF"))
        #expect(thrownCode { _ = try limit.byteArray() } == deviceError)
        var null = WireReader(hex("FFFFFFFF"))
        #expect((try? null.byteArray()) == .some(nil))
        var exact = WireReader(hex("00000002 4142"))
        #expect((try? exact.byteArray()) == .some(4..<6))
        #expect(exact.isAtEnd)
    }

    @Test func everyTruncationOfAULongFails() {
        let bytes = hex("0000000000000007")
        for length in 0..<bytes.count {
            var reader = WireReader(Array(bytes.prefix(length)))
            #expect(thrownCode { _ = try reader.ulong() } == deviceError)
        }
    }
}

@Suite struct RequestEncodingTests {
    @Test func callTableHasP11KitsIdsAndSignatures() {
        #expect(RPCCall.all.count == 89)
        for (index, call) in RPCCall.all.enumerated() { #expect(call.id == UInt32(index + 1)) }
        #expect(String(describing: RPCCall.getAttributeValue.request) == "uufA")
        #expect(String(describing: RPCCall.getAttributeValue.response) == "aAu")
        #expect(RPCCall.waitForSlotEvent.id == 65 && RPCCall.waitForSlotEvent.minimumVersion == 0)
        #expect(RPCCall.loginUser.id == 66 && RPCCall.loginUser.minimumVersion == 1)
        #expect(RPCCall.initToken2.id == 88 && RPCCall.deriveKey2.minimumVersion == 2)
    }

    @Test func getSlotListSizeQuery() {
        var request = RPCRequest(.getSlotList)
        request.byte(1)
        request.ulongBuffer(capacity: 0)
        #expect(request.body == hex("00000004 00000003 'yfu' 01 00000000"))
    }

    @Test func loginSendsThePinAsAValidByteArray() throws {
        var request = RPCRequest(.login)
        request.ulong(1)
        request.ulong(CK_ULONG(CKU_USER))
        let pin: [UInt8] = Array("1234".utf8)
        try pin.withUnsafeBytes { raw in try request.byteArray(raw.baseAddress, count: 4) }
        #expect(request.body == hex("00000012 00000004 'uuay' 0000000000000001 0000000000000001 01 00000004 '1234'"))
    }

    @Test func nullInputArrayIsValidPlusNullMarkerFor0241() throws {
        // 0.24.1's server does not read the length after a 0 validity byte.
        var request = RPCRequest(.seedRandom)
        request.ulong(7)
        try request.byteArray(nil, count: 0)
        #expect(request.body == hex("0000003F 00000003 'uay' 0000000000000007 01 FFFFFFFF"))
        var bad = RPCRequest(.seedRandom)
        bad.ulong(7)
        #expect(thrownCode { try bad.byteArray(nil, count: 3) } == CK_RV(CKR_ARGUMENTS_BAD))
    }

    @Test func initializeCarriesHandshakeAndReservedWithItsNul() {
        var request = RPCRequest(.initialize)
        request.byteArray(Array("PRIVATE-GNOME-KEYRING-PKCS11-PROTOCOL-V-1".utf8))
        request.byte(1)
        request.byteArray(Array("x=1".utf8) + [0])
        #expect(request.body == hex("00000001 00000005 'ayyay' 01 00000029 'PRIVATE-GNOME-KEYRING-PKCS11-PROTOCOL-V-1' 01 01 00000004 'x=1' 00"))
    }
}

@Suite struct MechanismEncodingTests {
    func encode(_ type: CK_MECHANISM_TYPE, _ parameter: [UInt8]?, version: UInt8) -> (bytes: [UInt8], code: CK_RV?) {
        var request = RPCRequest(.digestInit)
        request.ulong(1)
        var bytes = parameter ?? []
        let code = bytes.withUnsafeMutableBytes { raw in
            var mechanism = CK_MECHANISM(mechanism: type, pParameter: parameter == nil ? nil : raw.baseAddress,
                                         ulParameterLen: CK_ULONG(parameter?.count ?? 0))
            return thrownCode { try request.mechanism(&mechanism, version: version) }
        }
        return (code == nil ? Array(request.body.dropFirst(4 + 4 + 2 + 8)) : [], code)
    }

    func encode<P>(_ type: CK_MECHANISM_TYPE, structure parameter: P, version: UInt8) -> (bytes: [UInt8], code: CK_RV?) {
        var value = parameter
        return withUnsafeBytes(of: &value) { encode(type, Array($0), version: version) }
    }

    @Test func parameterlessIsNullArrayInVersion0AndTypeAloneLater() {
        #expect(encode(CK_MECHANISM_TYPE(CKM_SHA256_RSA_PKCS), nil, version: 0).bytes == hex("00000040 FFFFFFFF"))
        #expect(encode(CK_MECHANISM_TYPE(CKM_SHA256_RSA_PKCS), nil, version: 1).bytes == hex("00000040"))
        // Not on p11-kit's parameterless list, no parameter given: has-parameter byte 0.
        #expect(encode(CK_MECHANISM_TYPE(CKM_AES_CBC), nil, version: 2).bytes == hex("00001082 00"))
        #expect(encode(CK_MECHANISM_TYPE(CKM_AES_CBC), nil, version: 0).bytes == hex("00001082 FFFFFFFF"))
    }

    @Test func pssIsThreeULongs() {
        let pss = CK_RSA_PKCS_PSS_PARAMS(hashAlg: CK_ULONG(CKM_SHA256), mgf: CK_ULONG(CKG_MGF1_SHA256), sLen: 32)
        let fields = hex("0000000000000250 0000000000000002 0000000000000020")
        #expect(encode(CK_MECHANISM_TYPE(CKM_RSA_PKCS_PSS), structure: pss, version: 0).bytes == hex("0000000D") + fields)
        #expect(encode(CK_MECHANISM_TYPE(CKM_RSA_PKCS_PSS), structure: pss, version: 1).bytes == hex("0000000D 01") + fields)
        // 0.24.1 has no PSS decoder for the hash variants: their (pointer-free) struct goes raw.
        let raw = encode(CK_MECHANISM_TYPE(CKM_SHA256_RSA_PKCS_PSS), structure: pss, version: 0).bytes
        #expect(raw.prefix(8) == hex("00000043 00000018")[...])
        #expect(encode(CK_MECHANISM_TYPE(CKM_SHA256_RSA_PKCS_PSS), structure: pss, version: 1).bytes == hex("00000043 01") + fields)
    }

    @Test func oaepCarriesItsSourceData() {
        let label: [UInt8] = [0x61, 0x62]
        let bytes = label.withUnsafeBytes { raw in
            let oaep = CK_RSA_PKCS_OAEP_PARAMS(hashAlg: CK_ULONG(CKM_SHA_1), mgf: CK_ULONG(CKG_MGF1_SHA1),
                                               source: CK_ULONG(CKZ_DATA_SPECIFIED),
                                               pSourceData: UnsafeMutableRawPointer(mutating: raw.baseAddress),
                                               ulSourceDataLen: 2)
            return encode(CK_MECHANISM_TYPE(CKM_RSA_PKCS_OAEP), structure: oaep, version: 0).bytes
        }
        #expect(bytes == hex("00000009 0000000000000220 0000000000000001 0000000000000001 00000002 6162"))
    }

    @Test func gcmNeedsVersion1() {
        var iv: [UInt8] = Array(repeating: 7, count: 12)
        let bytes: (bytes: [UInt8], code: CK_RV?) = iv.withUnsafeMutableBufferPointer { buffer in
            let gcm = CK_GCM_PARAMS(pIv: buffer.baseAddress, ulIvLen: 12, ulIvBits: 96, pAAD: nil, ulAADLen: 0, ulTagBits: 128)
            #expect(encode(CK_MECHANISM_TYPE(CKM_AES_GCM), structure: gcm, version: 0).code == CK_RV(CKR_MECHANISM_INVALID))
            return encode(CK_MECHANISM_TYPE(CKM_AES_GCM), structure: gcm, version: 1)
        }
        #expect(bytes.bytes == hex("00001087 01 0000000C 070707070707070707070707 0000000000000060 FFFFFFFF 0000000000000080"))
    }

    @Test func ivMechanismsSendTheIVAndCheckItsLength() {
        let iv = [UInt8](repeating: 0xAA, count: 16)
        #expect(encode(CK_MECHANISM_TYPE(CKM_AES_CBC_PAD), iv, version: 0).bytes == hex("00001085 00000010") + iv)
        #expect(encode(CK_MECHANISM_TYPE(CKM_AES_CBC_PAD), iv, version: 1).bytes == hex("00001085 01 00000010") + iv)
        #expect(encode(CK_MECHANISM_TYPE(CKM_AES_CBC), Array(iv.prefix(8)), version: 0).code == CK_RV(CKR_MECHANISM_PARAM_INVALID))
    }

    @Test func unknownParametersArePointersAndRefused() {
        // CKM_ECDH1_DERIVE's parameter holds pointers; raw bytes would mean nothing to the server.
        let fake = [UInt8](repeating: 1, count: 40)
        #expect(encode(CK_MECHANISM_TYPE(CKM_ECDH1_DERIVE), fake, version: 0).code == CK_RV(CKR_MECHANISM_INVALID))
        #expect(encode(CK_MECHANISM_TYPE(CKM_ECDH1_DERIVE), fake, version: 2).code == CK_RV(CKR_MECHANISM_INVALID))
    }

    @Test func nullMechanismCancelsFromVersion1Only() {
        var request = RPCRequest(.digestInit)
        request.ulong(1)
        #expect(thrownCode { try request.mechanism(nil, version: 0) } == CK_RV(CKR_ARGUMENTS_BAD))
        var later = RPCRequest(.digestInit)
        later.ulong(1)
        #expect(thrownCode { try later.mechanism(nil, version: 1) } == nil)
        #expect(later.body.suffix(4) == hex("FFFFFFFF")[...])
    }
}

@Suite struct TemplateEncodingTests {
    func encode(_ attributes: inout [CK_ATTRIBUTE]) -> (bytes: [UInt8], code: CK_RV?) {
        var request = RPCRequest(.findObjectsInit)
        request.ulong(1)
        let count = CK_ULONG(attributes.count)
        let code = attributes.withUnsafeMutableBufferPointer { buffer in
            thrownCode { try request.attributes(buffer.baseAddress, count: count) }
        }
        return (code == nil ? Array(request.body.dropFirst(4 + 4 + 3 + 8)) : [], code)
    }

    @Test func eachKindHasP11KitsEncoding() {
        var objectClass = CK_OBJECT_CLASS(CKO_PRIVATE_KEY)
        var token = CK_BBOOL(1)
        var label: [UInt8] = Array("key".utf8)
        var mechanisms: [CK_MECHANISM_TYPE] = [CK_MECHANISM_TYPE(CKM_RSA_PKCS), CK_MECHANISM_TYPE(CKM_SHA256_RSA_PKCS)]
        var date: [UInt8] = Array("20261204".utf8)
        let bytes = withUnsafeMutableBytes(of: &objectClass) { classBytes in
            withUnsafeMutableBytes(of: &token) { tokenBytes in
                label.withUnsafeMutableBytes { labelBytes in
                    mechanisms.withUnsafeMutableBytes { mechanismBytes in
                        date.withUnsafeMutableBytes { dateBytes in
                            var template = [
                                CK_ATTRIBUTE(type: CK_ULONG(CKA_CLASS), pValue: classBytes.baseAddress, ulValueLen: 8),
                                CK_ATTRIBUTE(type: CK_ULONG(CKA_TOKEN), pValue: tokenBytes.baseAddress, ulValueLen: 1),
                                CK_ATTRIBUTE(type: CK_ULONG(CKA_LABEL), pValue: labelBytes.baseAddress, ulValueLen: 3),
                                CK_ATTRIBUTE(type: CK_ULONG(CKA_ALLOWED_MECHANISMS), pValue: mechanismBytes.baseAddress, ulValueLen: 16),
                                CK_ATTRIBUTE(type: CK_ULONG(CKA_START_DATE), pValue: dateBytes.baseAddress, ulValueLen: 8),
                                CK_ATTRIBUTE(type: CK_ULONG(CKA_ID), pValue: nil, ulValueLen: CK_ULONG.max),
                                CK_ATTRIBUTE(type: CK_ULONG(CKA_SUBJECT), pValue: nil, ulValueLen: 0),
                            ]
                            return encode(&template)
                        }
                    }
                }
            }
        }
        #expect(bytes.code == nil)
        #expect(bytes.bytes == hex("""
            00000007
            00000000 01 00000008 0000000000000003
            00000001 01 00000001 01
            00000003 01 00000003 00000003 'key'
            40000600 01 00000010 00000002 0000000000000001 0000000000000040
            00000110 01 00000008 00000008 '20261204'
            00000102 00
            00000101 01 00000000 FFFFFFFF
            """))
    }

    @Test func wrongSizesAndNestedTemplatesAreRefusedBeforeSending() {
        var wide: UInt64 = 1
        withUnsafeMutableBytes(of: &wide) { raw in
            var boolTooLong = [CK_ATTRIBUTE(type: CK_ULONG(CKA_TOKEN), pValue: raw.baseAddress, ulValueLen: 8)]
            #expect(encode(&boolTooLong).code == CK_RV(CKR_ATTRIBUTE_VALUE_INVALID))
            var ulongShort = [CK_ATTRIBUTE(type: CK_ULONG(CKA_CLASS), pValue: raw.baseAddress, ulValueLen: 4)]
            #expect(encode(&ulongShort).code == CK_RV(CKR_ATTRIBUTE_VALUE_INVALID))
            var nested = [CK_ATTRIBUTE(type: CK_ULONG(CKA_WRAP_TEMPLATE), pValue: raw.baseAddress, ulValueLen: 8)]
            #expect(encode(&nested).code == CK_RV(CKR_ATTRIBUTE_TYPE_INVALID))
            var nullWithLength = [CK_ATTRIBUTE(type: CK_ULONG(CKA_LABEL), pValue: nil, ulValueLen: 5)]
            #expect(encode(&nullWithLength).code == CK_RV(CKR_ARGUMENTS_BAD))
        }
    }

    @Test func attributeBufferSendsCapacitiesAndZeroForNull() throws {
        var value = [UInt8](repeating: 0, count: 300)
        try value.withUnsafeMutableBytes { raw in
            var template = [
                CK_ATTRIBUTE(type: CK_ULONG(CKA_MODULUS), pValue: nil, ulValueLen: 0),
                CK_ATTRIBUTE(type: CK_ULONG(CKA_LABEL), pValue: raw.baseAddress, ulValueLen: 300),
            ]
            var request = RPCRequest(.getAttributeValue)
            request.ulong(1)
            request.ulong(2)
            try template.withUnsafeMutableBufferPointer { buffer in
                try request.attributeBuffer(buffer.baseAddress!, count: 2, skipping: [false, false])
            }
            #expect(request.body.suffix(20) == hex("00000002 00000120 00000000 00000003 0000012C")[...])
        }
    }
}
