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
}
