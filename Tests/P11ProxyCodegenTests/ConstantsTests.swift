// The constants description must parse, agree with p11-kit's 2.40 header where both name a
// value, hold the 3.0 values we looked up, and match the committed Names.generated.swift.
import Foundation
import Testing
@testable import P11ProxyCodegen

private let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

private func describedConstants() throws -> [ConstantDescription] {
    let text = try String(contentsOf: repositoryRoot.appendingPathComponent(ConstantsEmitter.descriptionPath),
                          encoding: .utf8)
    return try ConstantsDescriptionParser.parse(text)
}

/// The `#define NAME VALUE` lines of a C header whose value is a constant expression of numbers,
/// earlier names, `|`, `<<`, parentheses and `(unsigned long)` casts, as p11-kit writes them:
/// `(0x1b1UL)`, `((unsigned long) (1UL << 31))`, `(CKF_ARRAY_ATTRIBUTE | 0x211UL)`.
private func headerDefines(_ text: String) -> [String: UInt64] {
    var defines: [String: UInt64] = [:]
    for line in text.split(separator: "\n") {
        let words = line.split(maxSplits: 2, whereSeparator: { $0 == " " || $0 == "\t" })
        guard words.count == 3, words[0] == "#define", !words[1].contains("(") else { continue }
        var tokens = HeaderExpression.tokens(String(words[2]))
        if let value = HeaderExpression.evaluate(&tokens, defines), tokens.isEmpty {
            defines[String(words[1])] = value
        }
    }
    return defines
}

private enum HeaderExpression {
    static func tokens(_ text: String) -> [String] {
        var tokens: [String] = []
        var current = ""
        func flush() { if !current.isEmpty { tokens.append(current); current = "" } }
        var characters = Array(text)[...]
        if let comment = text.range(of: "/*") { characters = Array(text[..<comment.lowerBound])[...] }
        while let character = characters.popFirst() {
            switch character {
            case " ", "\t": flush()
            case "(", ")", "|": flush(); tokens.append(String(character))
            case "<" where characters.first == "<": flush(); characters.removeFirst(); tokens.append("<<")
            default: current.append(character)
            }
        }
        flush()
        // `(unsigned long) x` is x.
        var result: [String] = []
        for token in tokens {
            result.append(token)
            if result.suffix(4) == ["(", "unsigned", "long", ")"] { result.removeLast(4) }
        }
        return result
    }

    /// expression := shift ('|' shift)*; shift := primary ('<<' primary)*;
    /// primary := number | NAME | '(' expression ')'
    static func evaluate(_ tokens: inout [String], _ defines: [String: UInt64]) -> UInt64? {
        guard var value = shift(&tokens, defines) else { return nil }
        while tokens.first == "|" {
            tokens.removeFirst()
            guard let right = shift(&tokens, defines) else { return nil }
            value |= right
        }
        return value
    }

    static func shift(_ tokens: inout [String], _ defines: [String: UInt64]) -> UInt64? {
        guard var value = primary(&tokens, defines) else { return nil }
        while tokens.first == "<<" {
            tokens.removeFirst()
            guard let right = primary(&tokens, defines), right < 64 else { return nil }
            value <<= right
        }
        return value
    }

    static func primary(_ tokens: inout [String], _ defines: [String: UInt64]) -> UInt64? {
        guard !tokens.isEmpty else { return nil }
        let token = tokens.removeFirst()
        if token == "(" {
            guard let value = evaluate(&tokens, defines), tokens.first == ")" else { return nil }
            tokens.removeFirst()
            return value
        }
        if let value = defines[token] { return value }
        var digits = Substring(token)
        while let last = digits.last, last == "U" || last == "L" || last == "u" || last == "l" { digits.removeLast() }
        if digits.hasPrefix("0x") || digits.hasPrefix("0X") { return UInt64(digits.dropFirst(2), radix: 16) }
        return UInt64(digits, radix: 10)
    }
}

@Suite struct ConstantsTests {
    @Test func descriptionParsesWithEveryFamilyAndEveryAttributeTyped() throws {
        let constants = try describedConstants()
        for family in ConstantFamily.allCases {
            #expect(constants.contains { $0.family == family }, "no \(family.rawValue) constant")
        }
        let counts = Dictionary(grouping: constants.filter(\.isPreferred), by: \.family).mapValues(\.count)
        // The 3.2 header's counts of distinct values; a lost or doubled block of lines changes them.
        #expect(counts[.returnValue] == 105)
        #expect(counts[.attribute] == 158)
        #expect(counts[.mechanism] == 464)
        #expect(counts[.keyType] == 67)
        #expect(counts[.objectClass] == 13)
        #expect(counts[.mlDSAParameterSet] == 3)
        #expect(counts[.slhDSAParameterSet] == 12)
        #expect(counts[.mlKEMParameterSet] == 3)
        for attribute in constants where attribute.family == .attribute && attribute.isPreferred {
            #expect(attribute.valueType != nil, "\(attribute.name) has no type")
        }
    }

    @Test func valuesMatchP11KitForTheNamesBothHave() throws {
        let headerPath = "/usr/include/p11-kit-1/p11-kit/pkcs11.h"
        let header = try String(contentsOfFile: headerPath, encoding: .utf8)
        let p11kit = headerDefines(header)
        // p11-kit 0.24 numbers these five from 0x1C0; PKCS#11 2.40 and 3.0 say 0x1B5 ... 0x1B9.
        let knownP11KitErrors: [String: UInt64] = [
            "CKR_EXCEEDED_MAX_ITERATIONS": 0x1C0, "CKR_FIPS_SELF_TEST_FAILED": 0x1C1,
            "CKR_LIBRARY_LOAD_FAILED": 0x1C2, "CKR_PIN_TOO_WEAK": 0x1C3, "CKR_PUBLIC_KEY_INVALID": 0x1C4,
        ]
        let compared: Set<ConstantFamily> = [.returnValue, .attribute, .mechanism, .objectClass, .keyType,
                                              .userType, .sessionState]
        var checked = 0
        var described = Set<String>()
        for constant in try describedConstants() where compared.contains(constant.family) {
            described.insert(constant.name)
            guard let theirs = p11kit[constant.name] else { continue }
            checked += 1
            if let wrong = knownP11KitErrors[constant.name], theirs == wrong { continue }
            #expect(theirs == UInt64(constant.value),
                    "\(constant.name): described 0x\(String(constant.value, radix: 16)), p11-kit 0x\(String(theirs, radix: 16))")
        }
        // Enough names compared that a broken header parser cannot pass unnoticed.
        #expect(checked > 500, "only \(checked) names compared with \(headerPath)")
        // And every 2.40 name p11-kit has in these families is described.
        let prefixes = ["CKR_", "CKA_", "CKM_", "CKO_", "CKK_", "CKU_", "CKS_"]
        let missing = p11kit.keys.filter { name in prefixes.contains { name.hasPrefix($0) } && !described.contains(name) }
        #expect(missing.isEmpty, "described nowhere: \(missing.sorted())")
    }

    @Test func noTwoPreferredNamesOfOneFamilyShareAValue() throws {
        let constants = try describedConstants()
        for family in ConstantFamily.allCases {
            let preferred = constants.filter { $0.family == family && $0.isPreferred }
            let values = Dictionary(grouping: preferred, by: \.value)
            for (value, names) in values where names.count > 1 {
                Issue.record("\(family.rawValue) 0x\(String(value, radix: 16)): \(names.map(\.name))")
            }
        }
        let byName = Dictionary(uniqueKeysWithValues: constants.map { ($0.name, $0) })
        #expect(byName["CKK_ECDSA"]?.aliasOf == "CKK_EC")
        #expect(byName["CKM_ECDSA_KEY_PAIR_GEN"]?.aliasOf == "CKM_EC_KEY_PAIR_GEN")
        #expect(byName["CKA_ECDSA_PARAMS"]?.aliasOf == "CKA_EC_PARAMS")
        #expect(byName["CKK_EC"]?.isPreferred == true)
    }

    @Test func threeZeroValuesAreThoseOfTheSpecification() throws {
        let constants = try describedConstants()
        func value(_ name: String, _ family: ConstantFamily) -> UInt32? {
            constants.first { $0.name == name && $0.family == family }?.value
        }
        #expect(value("CKM_EDDSA", .mechanism) == 0x1057)
        #expect(value("CKM_XEDDSA", .mechanism) == 0x4029)
        #expect(value("CKM_SHA3_256", .mechanism) == 0x2B0)
        #expect(value("CKM_AES_GCM", .mechanism) == 0x1087)
        #expect(value("CKM_HKDF_DERIVE", .mechanism) == 0x402A)
        #expect(value("CKM_SP800_108_COUNTER_KDF", .mechanism) == 0x3AC)
        #expect(value("CKM_EC_EDWARDS_KEY_PAIR_GEN", .mechanism) == 0x1055)
        #expect(value("CKK_EC_EDWARDS", .keyType) == 0x40)
        #expect(value("CKK_EC_MONTGOMERY", .keyType) == 0x41)
        #expect(value("CKK_SHA512_T_HMAC", .keyType) == 0x45)
        #expect(value("CKA_PROFILE_ID", .attribute) == 0x601)
        #expect(value("CKA_UNIQUE_ID", .attribute) == 0x4)
        #expect(value("CKA_ALLOWED_MECHANISMS", .attribute) == 0x4000_0600)
        #expect(value("CKO_PROFILE", .objectClass) == 9)
        #expect(value("CKP_PUBLIC_CERTIFICATES_TOKEN", .profile) == 4)
        #expect(value("CKR_OPERATION_CANCEL_FAILED", .returnValue) == 0x202)
        #expect(value("CKR_AEAD_DECRYPT_FAILED", .returnValue) == 0x42)
        #expect(value("CKR_PIN_TOO_WEAK", .returnValue) == 0x1B8)
        #expect(value("CKG_MGF1_SHA3_512", .mgf) == 9)
        #expect(value("CKD_BLAKE2B_512_KDF", .kdf) == 0x1A)
        #expect(value("CKF_END_OF_MESSAGE", .messageFlags) == 1)
        #expect(value("CKF_INTERFACE_FORK_SAFE", .interfaceFlags) == 1)
        #expect(value("CKF_DONT_BLOCK", .waitFlags) == 1)
        #expect(value("CKF_EC_CURVENAME", .mechanismFlags) == 0x0400_0000)
        #expect(value("CKF_ERROR_STATE", .tokenFlags) == 0x0100_0000)
    }

    /// Every name our 3.2 header (written from OASIS's published 3.2 pkcs11t.h) defines is
    /// described with the header's value, and the other way round for the 3.1/3.2 families.
    @Test func valuesMatchOurThreeTwoHeader() throws {
        let header = try String(contentsOf: repositoryRoot.appendingPathComponent("include/pkcs11_3_2.h"), encoding: .utf8)
        let defines = headerDefines(header).filter { $0.key.hasPrefix("CK") && $0.key.dropFirst(3).hasPrefix("_") }
        #expect(defines.count > 120, "only \(defines.count) names read from include/pkcs11_3_2.h")
        let constants = try describedConstants()
        let byName = Dictionary(uniqueKeysWithValues: constants.map { ($0.name, $0) })
        for (name, value) in defines where !name.hasPrefix("CKG_") {
            #expect(byName[name].map { UInt64($0.value) } == value, "\(name): header 0x\(String(value, radix: 16))")
        }
        let threeTwoFamilies: Set<ConstantFamily> = [.mlDSAParameterSet, .slhDSAParameterSet, .mlKEMParameterSet,
                                                     .sessionValidation, .hedge, .trust, .validationAuthority,
                                                     .validationType]
        for constant in constants where threeTwoFamilies.contains(constant.family) {
            #expect(defines[constant.name] != nil, "\(constant.name) is not in include/pkcs11_3_2.h")
        }
    }

    @Test func threeTwoValuesAreThoseOfTheSpecification() throws {
        let constants = try describedConstants()
        func value(_ name: String, _ family: ConstantFamily) -> UInt32? {
            constants.first { $0.name == name && $0.family == family }?.value
        }
        #expect(value("CKR_PENDING", .returnValue) == 0x204)
        #expect(value("CKR_PARAMETER_SET_NOT_SUPPORTED", .returnValue) == 0x209)
        #expect(value("CKM_ML_KEM", .mechanism) == 0x17)
        #expect(value("CKM_ML_DSA", .mechanism) == 0x1D)
        #expect(value("CKM_HASH_SLH_DSA_SHAKE256", .mechanism) == 0x3F)
        #expect(value("CKK_ML_KEM", .keyType) == 0x49)
        #expect(value("CKK_SLH_DSA", .keyType) == 0x4B)
        #expect(value("CKA_PARAMETER_SET", .attribute) == 0x61D)
        #expect(value("CKA_ENCAPSULATE", .attribute) == 0x633)
        #expect(value("CKA_SEED", .attribute) == 0x637)
        #expect(value("CKP_ML_DSA_87", .mlDSAParameterSet) == 3)
        #expect(value("CKP_SLH_DSA_SHAKE_256F", .slhDSAParameterSet) == 0xC)
        #expect(value("CKP_ML_KEM_1024", .mlKEMParameterSet) == 3)
        #expect(value("CKH_DETERMINISTIC_REQUIRED", .hedge) == 2)
        #expect(value("CKF_ASYNC_SESSION", .sessionFlags) == 8)
        #expect(value("CKF_ENCAPSULATE", .mechanismFlags) == 0x1000_0000)
        let byName = Dictionary(uniqueKeysWithValues: constants.map { ($0.name, $0) })
        #expect(byName["CKA_SEED"]?.sensitivity == .always)
        #expect(byName["CKA_PARAMETER_SET"]?.valueType == .parameterSet)
    }

    @Test func attributesCarryTheirTypeAndSensitivity() throws {
        let byName = Dictionary(uniqueKeysWithValues: try describedConstants().map { ($0.name, $0) })
        #expect(byName["CKA_LABEL"]?.valueType == .utf8)
        #expect(byName["CKA_CLASS"]?.valueType == .objectClass)
        #expect(byName["CKA_START_DATE"]?.valueType == .date)
        #expect(byName["CKA_WRAP_TEMPLATE"]?.valueType == .attributes)
        #expect(byName["CKA_ALLOWED_MECHANISMS"]?.valueType == .mechanisms)
        #expect(byName["CKA_VALUE"]?.sensitivity == .ifKey)
        for name in ["CKA_PRIVATE_EXPONENT", "CKA_PRIME_1", "CKA_PRIME_2", "CKA_EXPONENT_1", "CKA_EXPONENT_2",
                     "CKA_COEFFICIENT"] {
            #expect(byName[name]?.sensitivity == .always, "\(name)")
            #expect(byName[name]?.valueType == .bigint, "\(name)")
        }
        // Domain parameters and public halves are printed.
        for name in ["CKA_PRIME", "CKA_SUBPRIME", "CKA_BASE", "CKA_MODULUS", "CKA_PUBLIC_EXPONENT", "CKA_EC_POINT"] {
            #expect(byName[name]?.sensitivity == .never, "\(name)")
        }
    }

    @Test func malformedLinesAreRejectedWithTheirLineNumber() {
        func error(_ text: String) -> ConstantsDescriptionError? {
            do { _ = try ConstantsDescriptionParser.parse(text) } catch { return error }
            return nil
        }
        #expect(error("# fine\nCKK CKK_RSA 0x0\nCKK CKK_EC 0x3\nCKK CKK_ECDSA 0x3 alias-of=CKK_EC  # old\n") == nil)
        #expect(error("\nCKX CKX_FOO 0x1")?.line == 2)
        #expect(error("CKK CKA_LABEL 0x3")?.message.contains("not a CKK name") == true)
        #expect(error("CKK CKK_RSA 0x123456789")?.message.contains("value") == true)
        #expect(error("CKK CKK_RSA -1") != nil)
        #expect(error("CKA CKA_LABEL 0x3")?.message.contains("type=") == true)
        #expect(error("CKA CKA_LABEL 0x3 type=text")?.message.contains("unknown type") == true)
        #expect(error("CKK CKK_RSA 0x0 sensitive")?.message.contains("only CKA") == true)
        #expect(error("CKF.token CKF_TWO_BITS 0x3")?.message.contains("single bit") == true)
        let collision = error("CKK CKK_EC 0x3\n\nCKK CKK_ECDSA 0x3")
        #expect(collision?.line == 3)
        #expect(collision?.message.contains("share a value") == true)
        #expect(error("CKK CKK_EC 0x3\nCKK CKK_EC 0x3")?.message.contains("already described") == true)
        #expect(error("CKK CKK_EC 0x3\nCKK CKK_ECDSA 0x4 alias-of=CKK_EC")?.message.contains("another value") == true)
        #expect(error("CKK CKK_EC 0x3\nCKO CKO_EC 0x3 alias-of=CKK_EC")?.message.contains("another family") == true)
        #expect(error("CKK CKK_ECDSA 0x3 alias-of=CKK_EC")?.message.contains("not described") == true)
        // Values may repeat across families: CKO_DATA and CKK_RSA are both 0.
        #expect(error("CKO CKO_DATA 0x0\nCKK CKK_RSA 0x0\nCKF.slot CKF_TOKEN_PRESENT 0x1\nCKF.token CKF_RNG 0x1") == nil)
    }

    @Test func emittedSwitchesUsePreferredNamesOnly() throws {
        let file = ConstantsEmitter.namesFile(try describedConstants())
        #expect(file.hasPrefix(SwiftEmitter.header + "\n"))
        #expect(file.contains("case 0x00001057: return \"CKM_EDDSA\""))
        #expect(file.contains("case 0x00000003: return \"CKK_EC\""))
        #expect(!file.contains("\"CKK_ECDSA\""))
        #expect(!file.contains("\"CKF_MULTI_MESSGE\""))
        #expect(file.contains("if value & 0x00000001 != 0 { body(\"CKF_END_OF_MESSAGE\") }"))
        #expect(file.contains("static func mechanism(_ value: CK_ULONG) -> StaticString?"))
        #expect(!file.contains("import Foundation"))
    }

    @Test func committedNamesFileIsNotStale() throws {
        let generated = ConstantsEmitter.file(for: try describedConstants())
        let committed = try String(contentsOf: repositoryRoot.appendingPathComponent(generated.path), encoding: .utf8)
        #expect(committed == generated.contents, "\(generated.path) is stale: run `make generate`")
    }
}
