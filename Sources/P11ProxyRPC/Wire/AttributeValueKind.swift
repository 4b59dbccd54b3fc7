// How an attribute's value travels, by attribute type (p11-kit/rpc-message.c
// map_attribute_to_value_type): a bool as one byte, a CK_ULONG as 64 bits, CKA_ALLOWED_MECHANISMS
// as a count and 64-bit values, dates as 0 or 8 bytes, nested templates (refused by both sides of
// p11-kit 0.24.1), everything else as a byte array. Both ends pick the encoding from the type
// alone, so this table must be p11-kit's: 0.24.1's, which newer releases extend only with IBM
// vendor attributes and CKA_DERIVE_TEMPLATE.
import CPKCS11

enum AttributeValueKind: Equatable {
    case byte, ulong, template, mechanismArray, date, bytes

    init(_ type: CK_ATTRIBUTE_TYPE) {
        switch type {
        case CKA_TOKEN, CKA_PRIVATE, CKA_TRUSTED, CKA_SENSITIVE, CKA_ENCRYPT, CKA_DECRYPT,
             CKA_WRAP, CKA_UNWRAP, CKA_SIGN, CKA_SIGN_RECOVER, CKA_VERIFY, CKA_VERIFY_RECOVER,
             CKA_DERIVE, CKA_EXTRACTABLE, CKA_LOCAL, CKA_NEVER_EXTRACTABLE, CKA_ALWAYS_SENSITIVE,
             CKA_MODIFIABLE, CKA_COPYABLE, CKA_SECONDARY_AUTH, CKA_ALWAYS_AUTHENTICATE,
             CKA_WRAP_WITH_TRUSTED, CKA_RESET_ON_INIT, CKA_HAS_RESET, CKA_COLOR:
            self = .byte
        case CKA_CLASS, CKA_CERTIFICATE_TYPE, CKA_CERTIFICATE_CATEGORY,
             CKA_JAVA_MIDP_SECURITY_DOMAIN, CKA_KEY_TYPE, CKA_MODULUS_BITS, CKA_PRIME_BITS,
             CKA_SUB_PRIME_BITS, CKA_VALUE_BITS, CKA_VALUE_LEN, CKA_KEY_GEN_MECHANISM,
             CKA_AUTH_PIN_FLAGS, CKA_HW_FEATURE_TYPE, CKA_PIXEL_X, CKA_PIXEL_Y, CKA_RESOLUTION,
             CKA_CHAR_ROWS, CKA_CHAR_COLUMNS, CKA_BITS_PER_PIXEL, CKA_MECHANISM_TYPE:
            self = .ulong
        case CKA_WRAP_TEMPLATE, CKA_UNWRAP_TEMPLATE, AttributeValueKind.deriveTemplate:
            self = .template
        case CKA_ALLOWED_MECHANISMS:
            self = .mechanismArray
        case CKA_START_DATE, CKA_END_DATE:
            self = .date
        default:
            self = .bytes
        }
    }

    /// CKA_DERIVE_TEMPLATE (PKCS#11 3.0, CKF_ARRAY_ATTRIBUTE | 0x213): not in p11-kit 0.24's header.
    static let deriveTemplate: CK_ATTRIBUTE_TYPE = 0x4000_0213
}
