// The tracer's value formatting, where a C-level golden trace cannot pin it down
// deterministically (pointers inside structures, invalid UTF-8, dates far from today).
import CPKCS11
import Foundation
import Testing
@testable import P11Proxy
import P11ProxyNames

@Suite struct TraceFormattingTests {
    private func render(_ body: (inout TraceBuffer) -> Void) -> String {
        var out = TraceBuffer(capacity: 8)
        defer { out.deallocate() }
        body(&out)
        return String(decoding: out.bytes, as: UTF8.self)
    }

    @Test func gcmMessageParametersAreDecodedNotDumped() throws {
        var iv: [UInt8] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
        var tag = [UInt8](repeating: 0xAB, count: 16)
        let text = iv.withUnsafeMutableBufferPointer { ivBuffer in
            tag.withUnsafeMutableBufferPointer { tagBuffer in
                var parameters = CK_GCM_MESSAGE_PARAMS(pIv: ivBuffer.baseAddress, ulIvLen: 12, ulIvFixedBits: 0,
                                                       ivGenerator: CK_ULONG(CKG_NO_GENERATE),
                                                       pTag: tagBuffer.baseAddress, ulTagBits: 128)
                return withUnsafeMutableBytes(of: &parameters) { raw in
                    render { TraceMechanism.messageParameter(&$0, json: true, raw.baseAddress, CK_ULONG(raw.count), output: false) }
                }
            }
        }
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect((object["pIv"] as? [String: Any])?["hex"] as? String == "000102030405060708090A0B")
        #expect(object["ivGenerator"] as? String == "CKG_NO_GENERATE")
        #expect(object["ulTagBits"] as? Int == 128)
        #expect((object["pTag"] as? [String: Any])?["len"] as? Int == 16)
    }

    @Test func jsonStringsStayValidWhateverTheBytes() throws {
        let bytes: [UInt8] = [0x61, 0x22, 0x5C, 0x0A, 0xFF, 0xC3, 0xA9, 0xE0, 0x80, 0x80, 0xED, 0xA0, 0x80]
        let text = bytes.withUnsafeBytes { raw in render { TraceText.appendJSONString(raw, to: &$0) } }
        let decoded = try JSONSerialization.jsonObject(with: Data("[\(text)]".utf8)) as? [String]
        #expect(decoded?.first?.hasPrefix("a\"\\\n\u{FF}é") == true)
    }

    @Test func timestampsAreUTCWithMicroseconds() {
        let cache = TraceScratch()
        let instant = TraceInstant(wallSeconds: 1_795_312_569, wallNanoseconds: 123_456_789, monotonicNanoseconds: 0)
        #expect(render { instant.appendISO8601(to: &$0, cache: cache) } == "2026-11-22T01:56:09.123456Z")
        let leap = TraceInstant(wallSeconds: 951_782_400, wallNanoseconds: 0, monotonicNanoseconds: 0)
        #expect(render { leap.appendISO8601(to: &$0, cache: cache) } == "2000-02-29T00:00:00.000000Z")
    }

    @Test func buffersGrowWithoutLosingBytes() {
        let text = render { out in
            for index in 0..<1000 { TraceText.appendDecimal(UInt(index % 10), to: &out) }
        }
        #expect(text.count == 1000)
        #expect(text.hasPrefix("0123456789") && text.hasSuffix("0123456789"))
    }

    @Test func flagsAndUnknownValues() {
        let flags = CK_FLAGS(CKF_RW_SESSION | CKF_SERIAL_SESSION) | 0x1000_0000
        #expect(render { TraceValue.flags(&$0, json: false, flags, .session) }
                == "268435462 = CKF_RW_SESSION | CKF_SERIAL_SESSION | 0x10000000")
        #expect(render { TraceValue.named(&$0, json: false, 0x8000_1234, PKCS11Name.mechanism) } == "0x80001234")
        #expect(render { TraceValue.named(&$0, json: true, CK_ULONG(CKR_PIN_INCORRECT), PKCS11Name.returnValue) }
                == "\"CKR_PIN_INCORRECT\"")
    }

    @Test func redactedBytesNeverShowTheirContent() {
        let secret: [UInt8] = [0x31, 0x32, 0x33, 0x34]
        let text = secret.withUnsafeBytes { raw in render { TraceValue.bytes(&$0, json: false, raw.baseAddress, 4, redact: true) } }
        #expect(text == "(4) <redacted>")
        let shown = secret.withUnsafeBytes { raw in render { TraceValue.bytes(&$0, json: false, raw.baseAddress, 4, redact: false) } }
        #expect(shown == "(4) 31323334")
    }

    @Test func keyValuesAreRedactedButPublicAttributesOfSensitiveKeysAreNot() {
        let sensitiveKey = ObjectTraits(isKey: true, isSensitive: true)
        #expect(TraceTemplate.shouldRedact(CK_ATTRIBUTE_TYPE(CKA_VALUE)) { sensitiveKey })
        #expect(TraceTemplate.shouldRedact(CK_ATTRIBUTE_TYPE(CKA_PRIVATE_EXPONENT)) { ObjectTraits() })
        #expect(!TraceTemplate.shouldRedact(CK_ATTRIBUTE_TYPE(CKA_ID)) { sensitiveKey })
        #expect(!TraceTemplate.shouldRedact(CK_ATTRIBUTE_TYPE(CKA_MODULUS)) { sensitiveKey })
        #expect(!TraceTemplate.shouldRedact(CK_ATTRIBUTE_TYPE(CKA_VALUE)) { ObjectTraits(isKey: false, isSensitive: nil) })
        #expect(TraceTemplate.shouldRedact(CK_ATTRIBUTE_TYPE(CKA_VALUE)) { ObjectTraits() }, "unknown class: redacted")
        #expect(TraceTemplate.shouldRedact(0x8000_0042) { sensitiveKey }, "vendor attribute of a sensitive key")
        #expect(!TraceTemplate.shouldRedact(0x8000_0042) { ObjectTraits(isKey: true, isSensitive: false) })
    }

    // A module that reports more than the caller's buffer holds. Tests/C/test_trace_overreport.c
    // checks the calls through the proxy with guard pages; these pin down the formats and the nested case.
    @Test func outputsNeverShowMoreThanTheBufferHolds() throws {
        let bytes: [UInt8] = [0xDE, 0xAD, 0xBE, 0xEF]
        let text = bytes.withUnsafeBytes { raw in
            render { TraceValue.bytes(&$0, json: false, raw.baseAddress, 1004, redact: false, capacity: 4) }
        }
        #expect(text == "(1004) DEADBEEF [module reported 1004 bytes, buffer holds 4]")
        let redacted = bytes.withUnsafeBytes { raw in
            render { TraceValue.bytes(&$0, json: false, raw.baseAddress, 1004, redact: true, capacity: 4) }
        }
        #expect(redacted == "(1004) <redacted> [module reported 1004 bytes, buffer holds 4]")
        let json = bytes.withUnsafeBytes { raw in
            render { TraceValue.bytes(&$0, json: true, raw.baseAddress, 1004, redact: false, capacity: 4) }
        }
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["len"] as? Int == 1004 && object["hex"] as? String == "DEADBEEF")
        #expect(object["capacity"] as? Int == 4 && object["overreported"] as? Bool == true)
        #expect(bytes.withUnsafeBytes { raw in
            render { TraceValue.bytes(&$0, json: false, raw.baseAddress, 4, redact: false, capacity: 4) }
        } == "(4) DEADBEEF", "a length within the buffer: as always")

        var handles: [CK_ULONG] = [7, 8]
        let list = render { TraceValue.handleList(&$0, json: false, &handles, 1002, .object, capacity: 2) }
        #expect(list == "(1002) [ H7, H8 ] [module reported 1002 objects, buffer holds 2]")
        let listJSON = render { TraceValue.handleList(&$0, json: true, &handles, 1002, .slot, capacity: 2) }
        let listObject = try #require(try JSONSerialization.jsonObject(with: Data(listJSON.utf8)) as? [String: Any])
        #expect(listObject["items"] as? [Int] == [7, 8] && listObject["capacity"] as? Int == 2)
    }

    /// C_GetAttributeValue with a nested template: the module overreports a nested value's length
    /// and rewrites its pValue; the record reads only what the caller supplied.
    @Test func attributeValuesAreReadFromWhatTheCallerSupplied() {
        let label = UnsafeMutablePointer<UInt8>.allocate(capacity: 4)
        defer { label.deallocate() }
        label.initialize(from: Array("abcd".utf8), count: 4)
        let nested = UnsafeMutablePointer<CK_ATTRIBUTE>.allocate(capacity: 1)
        defer { nested.deallocate() }
        nested.initialize(to: CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(CKA_LABEL), pValue: UnsafeMutableRawPointer(label), ulValueLen: 4))
        let size = CK_ULONG(MemoryLayout<CK_ATTRIBUTE>.size)
        var template = [CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(CKA_WRAP_TEMPLATE), pValue: UnsafeMutableRawPointer(nested), ulValueLen: size),
                        CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(CKA_ID), pValue: UnsafeMutableRawPointer(label), ulValueLen: 2)]
        var store = TraceBuffer(capacity: 8)
        defer { store.deallocate() }
        template.withUnsafeMutableBufferPointer { SuppliedTemplate.remember($0.baseAddress!, 2, into: &store) }
        // What a misbehaving module leaves: lengths beyond the buffers, a pointer it made up.
        nested.pointee.ulValueLen = 1004
        nested.pointee.pValue = UnsafeMutableRawPointer(bitPattern: 0x10)
        template[1].ulValueLen = 1002
        template[1].pValue = UnsafeMutableRawPointer(bitPattern: 0x20)
        let text = template.withUnsafeMutableBufferPointer { buffer in
            render { out in
                TraceTemplate.append(&out, json: false, buffer.baseAddress, 2, showValues: true, secrets: true,
                                     supplied: SuppliedTemplate(store.bytes, count: 2)) { ObjectTraits() }
            }
        }
        #expect(text == "(2) [ { CKA_WRAP_TEMPLATE = (1) [ { CKA_LABEL = (1004) 61626364 [module reported 1004 bytes, buffer holds 4] } ] }, "
            + "{ CKA_ID = (1002) 6162 [module reported 1002 bytes, buffer holds 2] } ]")
        // The nested template itself overreported: its bytes, as far as the caller's array goes.
        template[0].ulValueLen = size + 1000
        let outer = template.withUnsafeMutableBufferPointer { buffer in
            render { out in
                TraceTemplate.append(&out, json: false, buffer.baseAddress, 1, showValues: true, secrets: true,
                                     supplied: SuppliedTemplate(store.bytes, count: 2)) { ObjectTraits() }
            }
        }
        #expect(outer.hasPrefix("(1) [ { CKA_WRAP_TEMPLATE = (\(size + 1000)) ")
                && outer.hasSuffix(" [module reported \(size + 1000) bytes, buffer holds \(size)] } ]"))
    }
}
