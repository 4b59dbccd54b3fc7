// Attribute templates in a trace: typed values (booleans, numbers, named constants, strings,
// dates, byte strings), and the redaction that keeps key material out unless x-log-secrets.
import CPKCS11
import P11ProxyNames

enum TraceTemplate {
    /// Text: `(2) [ { CKA_CLASS = CKO_SECRET_KEY }, { CKA_VALUE = (16) <redacted> } ]`, or with
    /// types only `(2) [ CKA_CLASS, CKA_VALUE ]`. JSON: an array of
    /// `{"type":"CKA_CLASS","len":8,"value":"CKO_SECRET_KEY"}`.
    /// `supplied`: a template the module has filled in (C_GetAttributeValue); values are read only
    /// from the buffers the caller supplied, and no further than they hold.
    /// `keyType`: the key type the template's object has when the template does not say
    /// (C_GenerateKeyPair's mechanism says it), for the values named by key type (CKA_PARAMETER_SET).
    static func append(_ out: inout TraceBuffer, json: Bool, _ template: UnsafeMutablePointer<CK_ATTRIBUTE>?,
                       _ count: CK_ULONG, showValues: Bool, secrets: Bool, depth: Int = 0,
                       supplied: SuppliedTemplate? = nil, keyType: CK_KEY_TYPE? = nil, traits: () -> ObjectTraits) {
        guard let template, count > 0 else {
            if json { return TraceText.append(template == nil && count > 0 ? "null" : "[]", to: &out) }
            out.append(UInt8(ascii: "("))
            TraceText.appendDecimal(count, to: &out)
            return TraceText.append(template == nil && count > 0 ? ") NULL" : ") NONE", to: &out)
        }
        guard count <= CK_ULONG(TraceRecord.elementLimit) else {
            TraceText.append(json ? "{\"count\":" : "(", to: &out)
            TraceText.appendDecimal(count, to: &out)
            return TraceText.append(json ? ",\"items\":null}" : ") too many to show", to: &out)
        }
        var objectTraits: ObjectTraits?
        if !json {
            out.append(UInt8(ascii: "("))
            TraceText.appendDecimal(count, to: &out)
            TraceText.append(") [ ", to: &out)
        } else {
            out.append(UInt8(ascii: "["))
        }
        for index in 0..<Int(count) {
            if index > 0 { TraceText.append(json ? "," : ", ", to: &out) }
            let attribute = template[index]
            let given = supplied?[index]
            var redact = false
            if showValues && !secrets && (given.map { $0.pointer } ?? attribute.pValue) != nil
                && attribute.ulValueLen != CK_ULONG.max {
                redact = shouldRedact(attribute.type) {
                    if let objectTraits { return objectTraits }
                    let found = traits()
                    objectTraits = found
                    return found
                }
            }
            var objectKeyType = keyType
            if showValues && PKCS11Name.attributeKind(attribute.type) == .parameterSet {
                objectKeyType = Self.keyType(in: template, count, supplied: supplied) ?? keyType
            }
            appendAttribute(&out, json: json, attribute, showValue: showValues, redact: redact, secrets: secrets, depth: depth,
                            supplied: given, keyType: objectKeyType)
        }
        TraceText.append(json ? "]" : " ]", to: &out)
    }

    static func appendAttribute(_ out: inout TraceBuffer, json: Bool, _ attribute: CK_ATTRIBUTE, showValue: Bool,
                                redact: Bool, secrets: Bool, depth: Int, supplied: SuppliedValue? = nil,
                                keyType: CK_KEY_TYPE? = nil) {
        if json {
            TraceText.append("{\"type\":", to: &out)
            TraceValue.named(&out, json: true, attribute.type, PKCS11Name.attribute)
            guard showValue else { return out.append(UInt8(ascii: "}")) }
            TraceText.append(",\"len\":", to: &out)
            TraceValue.ulong(&out, json: true, attribute.ulValueLen)
            TraceText.append(",\"value\":", to: &out)
            appendValue(&out, json: true, attribute, redact: redact, secrets: secrets, depth: depth, supplied: supplied,
                        keyType: keyType)
            return out.append(UInt8(ascii: "}"))
        }
        if showValue { TraceText.append("{ ", to: &out) }
        TraceValue.named(&out, json: false, attribute.type, PKCS11Name.attribute)
        guard showValue else { return }
        TraceText.append(" = ", to: &out)
        appendValue(&out, json: false, attribute, redact: redact, secrets: secrets, depth: depth, supplied: supplied,
                    keyType: keyType)
        TraceText.append(" }", to: &out)
    }

    /// `supplied`: the buffer the caller gave for this value (nil: the template is the caller's
    /// own input, read as it is).
    static func appendValue(_ out: inout TraceBuffer, json: Bool, _ attribute: CK_ATTRIBUTE, redact: Bool,
                            secrets: Bool, depth: Int, supplied: SuppliedValue? = nil, keyType: CK_KEY_TYPE? = nil) {
        let length = attribute.ulValueLen
        guard length != CK_ULONG.max else {
            return TraceText.append(json ? "\"CK_UNAVAILABLE_INFORMATION\"" : "CK_UNAVAILABLE_INFORMATION", to: &out)
        }
        guard let value = supplied.map({ $0.pointer }) ?? attribute.pValue else {
            // A size query: only the length is known.
            return TraceValue.bytes(&out, json: json, nil, length, redact: false)
        }
        if let supplied, length > supplied.capacity {
            // The module reported more than the caller's buffer holds: the buffer, as bytes.
            return TraceValue.bytes(&out, json: json, value, length, redact: redact, capacity: supplied.capacity)
        }
        if redact { return TraceValue.bytes(&out, json: json, value, length, redact: true) }
        let ulongSize = CK_ULONG(MemoryLayout<CK_ULONG>.size)
        let number = { value.load(as: CK_ULONG.self) }
        switch PKCS11Name.attributeKind(attribute.type) {
        case .bool where length == 1:
            TraceValue.bool(&out, json: json, value.load(as: CK_BBOOL.self))
        case .ulong where length == ulongSize:
            TraceValue.ulong(&out, json: json, number())
        case .parameterSet where length == ulongSize:
            if let namer = parameterSetNamer(keyType) {
                TraceValue.named(&out, json: json, number(), namer)
            } else {
                TraceValue.ulong(&out, json: json, number())
            }
        case let kind where length == ulongSize && namer(for: kind) != nil:
            TraceValue.named(&out, json: json, number(), namer(for: kind)!)
        case .utf8 where length <= CK_ULONG(TraceRecord.byteLimit):
            TraceValue.string(&out, json: json, UnsafeRawBufferPointer(start: value, count: Int(length)))
        case .date where length == 8:
            // CK_DATE is "YYYYMMDD" in ASCII.
            let bytes = UnsafeRawBufferPointer(start: value, count: 8)
            if json { out.append(UInt8(ascii: "\"")) }
            out.append(contentsOf: bytes[0..<4]); out.append(UInt8(ascii: "-"))
            out.append(contentsOf: bytes[4..<6]); out.append(UInt8(ascii: "-"))
            out.append(contentsOf: bytes[6..<8])
            if json { out.append(UInt8(ascii: "\"")) }
        case .attributes where depth == 0 && length % CK_ULONG(MemoryLayout<CK_ATTRIBUTE>.size) == 0
                && (supplied == nil || CK_ULONG(supplied?.nested?.count ?? 0) >= length / CK_ULONG(MemoryLayout<CK_ATTRIBUTE>.size)):
            let nested = length / CK_ULONG(MemoryLayout<CK_ATTRIBUTE>.size)
            append(&out, json: json, value.assumingMemoryBound(to: CK_ATTRIBUTE.self), nested,
                   showValues: true, secrets: secrets, depth: depth + 1, supplied: supplied?.nested) { ObjectTraits() }
        case .mechanisms where length % ulongSize == 0:
            let list = value.assumingMemoryBound(to: CK_ULONG.self)
            TraceValue.handleList(&out, json: json, list, length / ulongSize, .mechanism)
        default:
            TraceValue.bytes(&out, json: json, value, length, redact: false)
        }
    }

    /// The name table for an attribute whose value is a named constant.
    static func namer(for kind: AttributeValueKind) -> ((CK_ULONG) -> StaticString?)? {
        switch kind {
        case .objectClass: PKCS11Name.objectClass
        case .keyType: PKCS11Name.keyType
        case .certificateType: PKCS11Name.certificateType
        case .mechanismType: PKCS11Name.mechanism
        case .hardwareFeature: PKCS11Name.hardwareFeature
        case .profile: PKCS11Name.profile
        case .trust: PKCS11Name.trust
        case .validationType: PKCS11Name.validationType
        case .validationAuthority: PKCS11Name.validationAuthority
        default: nil
        }
    }

    /// PKCS#11 3.2: CKA_PARAMETER_SET's numbers mean one thing per key type (1 is ML-DSA-44,
    /// SLH-DSA-SHA2-128s or ML-KEM-512); nil for other or unknown key types (XMSS and HSS
    /// parameter sets are the RFCs' numbers), which print as numbers.
    static func parameterSetNamer(_ keyType: CK_KEY_TYPE?) -> ((CK_ULONG) -> StaticString?)? {
        switch keyType {
        case CK_KEY_TYPE(CKK_ML_DSA): PKCS11Name.mlDSAParameterSet
        case CK_KEY_TYPE(CKK_SLH_DSA): PKCS11Name.slhDSAParameterSet
        case CK_KEY_TYPE(CKK_ML_KEM): PKCS11Name.mlKEMParameterSet
        default: nil
        }
    }

    /// The CKA_KEY_TYPE a template gives, read as `traits(of:)` reads (within supplied buffers).
    static func keyType(in template: UnsafeMutablePointer<CK_ATTRIBUTE>, _ count: CK_ULONG,
                        supplied: SuppliedTemplate?) -> CK_KEY_TYPE? {
        for index in 0..<Int(count) where template[index].type == CKA_KEY_TYPE {
            let attribute = template[index]
            let given = supplied?[index]
            guard let value = given.map({ $0.pointer }) ?? attribute.pValue,
                  attribute.ulValueLen == CK_ULONG(MemoryLayout<CK_ULONG>.size),
                  attribute.ulValueLen <= given?.capacity ?? CK_ULONG.max else { continue }
            return value.loadUnaligned(as: CK_ULONG.self)
        }
        return nil
    }

    /// PKCS#11 3.0 sections 4.8-4.9: private and secret key material. CKA_VALUE is secret only for
    /// keys (a certificate's CKA_VALUE is public); when the object's class is unknown, it is
    /// redacted. An attribute p11proxy has no name for (a vendor's) is redacted on an object the
    /// module marks CKA_SENSITIVE, since it may carry key material in the vendor's format; known
    /// public attributes of a sensitive key (CKA_ID, CKA_MODULUS, ...) stay visible.
    static func shouldRedact(_ type: CK_ATTRIBUTE_TYPE, traits: () -> ObjectTraits) -> Bool {
        switch PKCS11Name.attributeSensitivity(type) {
        case .always: return true
        case .ifKey: return traits().isKey ?? true
        case .never: return PKCS11Name.attribute(type) == nil && (traits().isSensitive ?? false)
        }
    }

    /// Classes whose CKA_VALUE is key material: secret, private and OTP keys.
    static func isKeyClass(_ objectClass: CK_OBJECT_CLASS) -> Bool {
        objectClass == CKO_SECRET_KEY || objectClass == CKO_PRIVATE_KEY || objectClass == CKO_OTP_KEY
    }

    /// What a template says about its object: CKA_CLASS, CKA_SENSITIVE, and the function's hint.
    /// `supplied` as for `append`.
    static func traits(of template: UnsafeMutablePointer<CK_ATTRIBUTE>?, _ count: CK_ULONG, hint: ObjectHint,
                       supplied: SuppliedTemplate? = nil) -> ObjectTraits {
        var traits = ObjectTraits()
        switch hint {
        case .key: traits.isKey = true
        case .publicObject: traits.isKey = false
        case .unknown: break
        }
        guard let template, count <= CK_ULONG(TraceRecord.elementLimit) else { return traits }
        for index in 0..<Int(count) {
            let attribute = template[index]
            let given = supplied?[index]
            guard let value = given.map({ $0.pointer }) ?? attribute.pValue,
                  attribute.ulValueLen <= given?.capacity ?? CK_ULONG.max else { continue }
            if attribute.type == CKA_CLASS && attribute.ulValueLen == CK_ULONG(MemoryLayout<CK_ULONG>.size) {
                let objectClass = value.loadUnaligned(as: CK_ULONG.self)
                traits.isKey = TraceTemplate.isKeyClass(objectClass)
            } else if attribute.type == CKA_SENSITIVE && attribute.ulValueLen == 1 {
                traits.isSensitive = value.load(as: CK_BBOOL.self) != 0
            }
        }
        return traits
    }
}
