// Writes Sources/P11ProxyNames/Names.generated.swift, the name tables of the tracer and of the
// `p11proxy` command, from the constants description: one switch per family, so a lookup costs
// no allocation and no setup.

public enum ConstantsEmitter {
    public static let descriptionPath = "codegen/pkcs11-constants.txt"
    public static let outputPath = "Sources/P11ProxyNames/Names.generated.swift"

    /// The generated file and where it goes, in the shape of `SwiftEmitter.files`.
    public static func file(for constants: [ConstantDescription]) -> (path: String, contents: String) {
        (outputPath, namesFile(constants))
    }

    /// The lookup function of each family that names whole values, and what it is for.
    static let valueFunctions: [(family: ConstantFamily, function: String, summary: String)] = [
        (.returnValue, "returnValue", "CK_RV"),
        (.attribute, "attribute", "CK_ATTRIBUTE_TYPE"),
        (.mechanism, "mechanism", "CK_MECHANISM_TYPE"),
        (.objectClass, "objectClass", "CK_OBJECT_CLASS"),
        (.keyType, "keyType", "CK_KEY_TYPE"),
        (.certificateType, "certificateType", "CK_CERTIFICATE_TYPE"),
        (.userType, "userType", "CK_USER_TYPE"),
        (.sessionState, "sessionState", "CK_STATE"),
        (.hardwareFeature, "hardwareFeature", "CK_HW_FEATURE_TYPE"),
        (.mgf, "mgf", "CK_RSA_PKCS_MGF_TYPE"),
        (.kdf, "kdf", "CK_EC_KDF_TYPE and CK_X9_42_DH_KDF_TYPE"),
        (.profile, "profile", "CK_PROFILE_ID"),
        (.mlDSAParameterSet, "mlDSAParameterSet", "CK_ML_DSA_PARAMETER_SET_TYPE"),
        (.slhDSAParameterSet, "slhDSAParameterSet", "CK_SLH_DSA_PARAMETER_SET_TYPE"),
        (.mlKEMParameterSet, "mlKEMParameterSet", "CK_ML_KEM_PARAMETER_SET_TYPE"),
        (.sessionValidation, "sessionValidation", "CK_SESSION_VALIDATION_FLAGS_TYPE"),
        (.hedge, "hedge", "CK_HEDGE_TYPE"),
        (.trust, "trust", "CK_TRUST"),
        (.validationAuthority, "validationAuthority", "CK_VALIDATION_AUTHORITY_TYPE"),
        (.validationType, "validationType", "CK_VALIDATION_TYPE"),
        (.oaepSource, "oaepSource", "CK_RSA_PKCS_OAEP_SOURCE_TYPE"),
        (.saltSource, "saltSource", "CK_PKCS5_PBKDF2_SALT_SOURCE_TYPE"),
    ]

    /// The `FlagFamily` case of each flags family, and the field it describes.
    static let flagCases: [(family: ConstantFamily, caseName: String, summary: String)] = [
        (.slotFlags, "slot", "CK_SLOT_INFO.flags"),
        (.tokenFlags, "token", "CK_TOKEN_INFO.flags"),
        (.sessionFlags, "session", "CK_SESSION_INFO.flags and C_OpenSession"),
        (.mechanismFlags, "mechanism", "CK_MECHANISM_INFO.flags and C_SessionCancel"),
        (.initializeFlags, "initialize", "CK_C_INITIALIZE_ARGS.flags"),
        (.waitFlags, "wait", "C_WaitForSlotEvent"),
        (.messageFlags, "message", "C_EncryptMessageNext and the other *MessageNext functions"),
        (.interfaceFlags, "interface", "CK_INTERFACE.flags and C_GetInterface"),
    ]

    /// The generated `AttributeValueKind` case of each description type.
    static func kindCase(_ type: AttributeValueType) -> String {
        switch type {
        case .bool: "bool"
        case .ulong: "ulong"
        case .objectClass: "objectClass"
        case .keyType: "keyType"
        case .certificateType: "certificateType"
        case .mechanismType: "mechanismType"
        case .hardwareFeature: "hardwareFeature"
        case .profile: "profile"
        case .trust: "trust"
        case .validationType: "validationType"
        case .validationAuthority: "validationAuthority"
        case .parameterSet: "parameterSet"
        case .utf8: "utf8"
        case .date: "date"
        case .bytes: "bytes"
        case .bigint: "bigint"
        case .attributes: "attributes"
        case .mechanisms: "mechanisms"
        }
    }

    static func hex(_ value: UInt32) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return "0x" + String(repeating: "0", count: 8 - digits.count) + digits
    }

    /// The preferred names of one family, by value (aliases are never printed).
    static func preferred(_ constants: [ConstantDescription], _ family: ConstantFamily) -> [ConstantDescription] {
        constants.filter { $0.family == family && $0.isPreferred }.sorted { $0.value < $1.value }
    }

    public static func namesFile(_ constants: [ConstantDescription]) -> String {
        var out = SwiftEmitter.header + "\n"
        out += "// Source: \(descriptionPath), the names of the PKCS#11 3.0, 3.1 and 3.2 constants.\n\n"
        out += "import CPKCS11\n\n"

        out += "/// The CK_FLAGS fields whose bits have names; the same bit has other names in other fields.\n"
        out += "package enum FlagFamily: CaseIterable, Sendable {\n"
        for entry in flagCases {
            out += "    /// \(entry.family.rawValue): \(entry.summary).\n"
            out += "    case \(entry.caseName)\n"
        }
        out += "}\n\n"

        out += "/// How an attribute's value is printed: the `type=` of its line in the description.\n"
        out += "package enum AttributeValueKind: Sendable {\n"
        for type in AttributeValueType.allCases {
            out += "    case \(kindCase(type))\n"
        }
        out += "}\n\n"

        out += "/// Whether an attribute's value is private or secret key material, never to be printed.\n"
        out += "package enum AttributeSensitivity: Sendable {\n"
        out += "    case never\n"
        out += "    case always\n"
        out += "    /// Key material on CKO_SECRET_KEY, CKO_PRIVATE_KEY and CKO_OTP_KEY objects only (CKA_VALUE);\n"
        out += "    /// public on certificates, data objects and public keys.\n"
        out += "    case ifKey\n"
        out += "}\n\n"

        out += "/// The spec's names of PKCS#11 constants, one lookup per C type, and what the tracer needs\n"
        out += "/// to know about each attribute. Only preferred names are returned (CKK_EC, never CKK_ECDSA).\n"
        out += "/// A value with no name, vendor-defined ones included, gives nil: print it in hex.\n"
        out += "package enum PKCS11Name {\n"
        for entry in valueFunctions {
            out += "    /// \(entry.family.rawValue): \(entry.summary).\n"
            out += "    package static func \(entry.function)(_ value: CK_ULONG) -> StaticString? {\n"
            out += "        switch value {\n"
            for constant in preferred(constants, entry.family) {
                out += "        case \(hex(constant.value)): return \"\(constant.name)\"\n"
            }
            out += "        default: return nil\n"
            out += "        }\n"
            out += "    }\n\n"
        }

        out += "    /// The names of the bits of `value` that `family` defines, lowest bit first, then the bits\n"
        out += "    /// it does not define as one hexadecimal number (\"0x...\"), if any. Empty for 0.\n"
        out += "    package static func flags(_ value: CK_ULONG, _ family: FlagFamily) -> [String] {\n"
        out += "        var names: [String] = []\n"
        out += "        let unknown = flagNames(value, family) { names.append($0.description) }\n"
        out += "        if unknown != 0 { names.append(\"0x\" + String(unknown, radix: 16, uppercase: true)) }\n"
        out += "        return names\n"
        out += "    }\n\n"
        out += "    /// Calls `body` with the name of each bit of `value` that `family` defines, lowest bit\n"
        out += "    /// first, without allocating (the tracer's path); returns the bits it does not define.\n"
        out += "    package static func flagNames(_ value: CK_ULONG, _ family: FlagFamily, _ body: (StaticString) -> Void) -> CK_ULONG {\n"
        out += "        let known: CK_ULONG\n"
        out += "        switch family {\n"
        for entry in flagCases {
            let bits = preferred(constants, entry.family)
            out += "        case .\(entry.caseName):\n"
            for bit in bits {
                out += "            if value & \(hex(bit.value)) != 0 { body(\"\(bit.name)\") }\n"
            }
            out += "            known = \(hex(bits.reduce(0) { $0 | $1.value }))\n"
        }
        out += "        }\n"
        out += "        return value & ~known\n"
        out += "    }\n\n"

        let attributes = preferred(constants, .attribute)
        out += "    /// How to print the value of attribute `type`; `.bytes` for attributes without a name.\n"
        out += "    package static func attributeKind(_ type: CK_ULONG) -> AttributeValueKind {\n"
        out += "        switch type {\n"
        for kind in AttributeValueType.allCases where kind != .bytes {
            let values = attributes.filter { $0.valueType == kind }.map { hex($0.value) }
            guard !values.isEmpty else { continue }
            out += caseLine(values, result: "." + kindCase(kind))
        }
        out += "        default: return .bytes\n"
        out += "        }\n"
        out += "    }\n\n"

        out += "    /// Whether the value of attribute `type` is key material; `.never` for attributes without\n"
        out += "    /// a name, whose meaning only their vendor knows.\n"
        out += "    package static func attributeSensitivity(_ type: CK_ULONG) -> AttributeSensitivity {\n"
        out += "        switch type {\n"
        for (sensitivity, result) in [(ConstantSensitivity.always, ".always"), (.ifKey, ".ifKey")] {
            let values = attributes.filter { $0.sensitivity == sensitivity }.map { hex($0.value) }
            guard !values.isEmpty else { continue }
            out += caseLine(values, result: result)
        }
        out += "        default: return .never\n"
        out += "        }\n"
        out += "    }\n"
        out += "}\n"
        return out
    }

    /// `case a, b, c: return result`, wrapped so that no line is much longer than 100 columns.
    static func caseLine(_ values: [String], result: String) -> String {
        var lines: [String] = []
        var current = ""
        for value in values {
            if current.count + value.count > 84 {
                lines.append(current)
                current = ""
            }
            current += current.isEmpty ? value : ", " + value
        }
        lines.append(current)
        return "        case " + lines.joined(separator: ",\n             ") + ":\n            return \(result)\n"
    }
}
