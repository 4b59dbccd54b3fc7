// The parsed form of codegen/pkcs11-constants.txt: one entry per named PKCS#11 3.0-3.2 constant.

/// The C type a constant is a value of. Values collide across families (CKF_RNG and CKF_HW are
/// both 1, CKA_CLASS and CKO_DATA both 0) but never within one, so every lookup is per family.
public enum ConstantFamily: String, CaseIterable, Sendable {
    case returnValue = "CKR"
    case attribute = "CKA"
    case mechanism = "CKM"
    case objectClass = "CKO"
    case keyType = "CKK"
    case certificateType = "CKC"
    case userType = "CKU"
    case sessionState = "CKS"
    case hardwareFeature = "CKH"
    case mgf = "CKG"
    case kdf = "CKD"
    case profile = "CKP"
    case mlDSAParameterSet = "CKP.ml-dsa"
    case slhDSAParameterSet = "CKP.slh-dsa"
    case mlKEMParameterSet = "CKP.ml-kem"
    case sessionValidation = "CKS.validation"
    case hedge = "CKH.hedge"
    case trust = "CKT"
    case validationAuthority = "CKV.authority"
    case validationType = "CKV.type"
    case oaepSource = "CKZ.oaep"
    case saltSource = "CKZ.salt"
    case slotFlags = "CKF.slot"
    case tokenFlags = "CKF.token"
    case sessionFlags = "CKF.session"
    case mechanismFlags = "CKF.mechanism"
    case initializeFlags = "CKF.initialize"
    case waitFlags = "CKF.wait"
    case messageFlags = "CKF.message"
    case interfaceFlags = "CKF.interface"

    /// What every name of the family starts with: `CKR_`, `CKF_` for all the flag families.
    public var namePrefix: String { String(rawValue.prefix(3)) + "_" }

    /// A flags family names single bits of a CK_FLAGS field; the others name whole values.
    public var isFlags: Bool { rawValue.hasPrefix("CKF.") }
}

/// How the tracer prints an attribute's value (`type=` in the description).
public enum AttributeValueType: String, CaseIterable, Sendable {
    case bool, ulong
    case objectClass = "object-class", keyType = "key-type", certificateType = "cert-type"
    case mechanismType = "mechanism-type", hardwareFeature = "hw-feature", profile
    case trust, validationType = "validation-type", validationAuthority = "validation-authority"
    /// CKA_PARAMETER_SET: named by the key type (ML-DSA, SLH-DSA, ML-KEM) of its object.
    case parameterSet = "parameter-set"
    case utf8, date, bytes, bigint
    /// A nested CK_ATTRIBUTE template (CKA_WRAP_TEMPLATE and co.).
    case attributes
    /// An array of CK_MECHANISM_TYPE (CKA_ALLOWED_MECHANISMS).
    case mechanisms
}

/// Whether an attribute's value is key material (`sensitive`, `sensitive-if-key`).
public enum ConstantSensitivity: Sendable, Equatable {
    case never
    case always
    /// Only on CKO_SECRET_KEY, CKO_PRIVATE_KEY and CKO_OTP_KEY objects (CKA_VALUE).
    case ifKey
}

public struct ConstantDescription: Sendable, Equatable {
    public var family: ConstantFamily
    public var name: String
    /// Every PKCS#11 constant fits in 32 bits, whatever the size of CK_ULONG.
    public var value: UInt32
    /// The preferred name this one is another spelling of; nil for a preferred name.
    public var aliasOf: String?
    /// CKA only: set on every preferred attribute, nil on aliases and other families.
    public var valueType: AttributeValueType?
    public var sensitivity: ConstantSensitivity
    /// Where the constant is described, for error messages.
    public var line: Int

    public var isPreferred: Bool { aliasOf == nil }
}

public struct ConstantsDescriptionError: Error, CustomStringConvertible, Sendable {
    public var line: Int
    public var message: String
    public var description: String { "pkcs11-constants.txt:\(line): \(message)" }
}

public enum ConstantsDescriptionParser {
    /// Parses the whole description; a malformed line, or a line that contradicts another one
    /// (a repeated name, two preferred names for one value, a wrong alias), is an error naming it.
    public static func parse(_ text: String) throws(ConstantsDescriptionError) -> [ConstantDescription] {
        var constants: [ConstantDescription] = []
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = rawLine
            if let comment = line.firstIndex(of: "#") { line = line[..<comment] }
            line = line.trimmingWhitespace()
            if line.isEmpty { continue }
            constants.append(try parseLine(line, lineNumber: lineNumber))
        }
        try checkConsistency(constants)
        return constants
    }

    static func parseLine(_ line: Substring, lineNumber: Int) throws(ConstantsDescriptionError) -> ConstantDescription {
        func fail(_ message: String) -> ConstantsDescriptionError {
            ConstantsDescriptionError(line: lineNumber, message: message)
        }
        let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
        guard words.count >= 3 else { throw fail("expected FAMILY NAME VALUE [OPTION ...]") }
        guard let family = ConstantFamily(rawValue: String(words[0])) else {
            throw fail("unknown family \(words[0])")
        }
        let name = String(words[1])
        guard name.hasPrefix(family.namePrefix), name.count > family.namePrefix.count,
              name.utf8.allSatisfy({ ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z"))
                  || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "_") })
        else {
            throw fail("\(name) is not a \(family.rawValue) name (\(family.namePrefix) and upper-case letters, digits, _)")
        }
        guard let value = parseHex(words[2]) else {
            throw fail("\(name): value must be 0x and 1 to 8 hexadecimal digits, not \(words[2])")
        }
        var constant = ConstantDescription(family: family, name: name, value: value, aliasOf: nil,
                                           valueType: nil, sensitivity: .never, line: lineNumber)
        var sensitivitySet = false
        for option in words.dropFirst(3) {
            if option == "sensitive" || option == "sensitive-if-key" {
                guard family == .attribute else { throw fail("\(name): only CKA constants can be \(option)") }
                guard !sensitivitySet else { throw fail("\(name): sensitivity given twice") }
                sensitivitySet = true
                constant.sensitivity = option == "sensitive" ? .always : .ifKey
            } else if option.hasPrefix("type=") {
                guard family == .attribute else { throw fail("\(name): only CKA constants have a type") }
                guard constant.valueType == nil else { throw fail("\(name): type given twice") }
                let kind = option.dropFirst("type=".count)
                guard let type = AttributeValueType(rawValue: String(kind)) else {
                    let known = AttributeValueType.allCases.map(\.rawValue).joined(separator: " ")
                    throw fail("\(name): unknown type \(kind) (one of: \(known))")
                }
                constant.valueType = type
            } else if option.hasPrefix("alias-of=") {
                guard constant.aliasOf == nil else { throw fail("\(name): alias-of given twice") }
                constant.aliasOf = String(option.dropFirst("alias-of=".count))
            } else {
                throw fail("\(name): unknown option \(option)")
            }
        }
        if constant.aliasOf != nil {
            if constant.valueType != nil || sensitivitySet {
                throw fail("\(name): an alias takes its type and sensitivity from the name it is an alias of")
            }
        } else if family == .attribute, constant.valueType == nil {
            throw fail("\(name): every CKA constant needs type=KIND")
        }
        if family.isFlags, value == 0 || value & (value - 1) != 0 {
            throw fail("\(name): a flag is a single bit, not 0x\(String(value, radix: 16, uppercase: true))")
        }
        return constant
    }

    /// The checks that need the whole file: names are unique, one preferred name per value and
    /// family, and each alias points at a preferred name of its family with the same value.
    static func checkConsistency(_ constants: [ConstantDescription]) throws(ConstantsDescriptionError) {
        var byName: [String: ConstantDescription] = [:]
        var preferredByValue: [ConstantFamily: [UInt32: ConstantDescription]] = [:]
        for constant in constants {
            if let earlier = byName[constant.name] {
                throw ConstantsDescriptionError(line: constant.line,
                                                message: "\(constant.name) is already described on line \(earlier.line)")
            }
            byName[constant.name] = constant
            guard constant.isPreferred else { continue }
            if let earlier = preferredByValue[constant.family]?[constant.value] {
                throw ConstantsDescriptionError(
                    line: constant.line,
                    message: "\(constant.name) and \(earlier.name) (line \(earlier.line)) share a value: "
                        + "mark one alias-of the other")
            }
            preferredByValue[constant.family, default: [:]][constant.value] = constant
        }
        for constant in constants {
            guard let target = constant.aliasOf else { continue }
            func fail(_ message: String) -> ConstantsDescriptionError {
                ConstantsDescriptionError(line: constant.line, message: "\(constant.name): \(message)")
            }
            guard let preferred = byName[target] else { throw fail("alias-of=\(target) is not described") }
            guard preferred.isPreferred else { throw fail("\(target) is itself an alias") }
            guard preferred.family == constant.family else { throw fail("\(target) is in another family") }
            guard preferred.value == constant.value else { throw fail("\(target) has another value") }
        }
    }

    static func parseHex(_ word: Substring) -> UInt32? {
        guard word.hasPrefix("0x") else { return nil }
        let digits = word.dropFirst(2)
        guard (1...8).contains(digits.count), digits.allSatisfy(\.isHexDigit) else { return nil }
        return UInt32(digits, radix: 16)
    }
}
