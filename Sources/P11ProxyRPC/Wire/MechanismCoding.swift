// Mechanisms on the wire ("M"), in the two formats p11-kit has used. Neither side checks the
// negotiated version before picking one, so we pick by it: a server that answered version 0 is
// p11-kit 0.24.1 or older, any later one answers 1 or more.
//
// Version 0 (0.24.1 rpc-message.c p11_rpc_buffer_add_mechanism / _get_mechanism): u32 type, then
// for CKM_RSA_PKCS_PSS three u64s, for CKM_RSA_PKCS_OAEP three u64s and a byte array, and for
// every other type one byte array: NULL for parameterless mechanisms, else the raw bytes of
// pParameter, which the server hands to its module as they are.
// Version 1 and later (0.25.0 on): u32 type alone for the mechanisms p11-kit lists as
// parameterless; otherwise a has-parameter byte and, when 1, a per-mechanism encoding
// (PSS, OAEP, AES and DES IVs, GCM here). A NULL mechanism is type 0xFFFFFFFF (cancel an operation).
//
// Raw bytes are only sent for parameters without pointers (IVs, CK_RSA_PKCS_PSS_PARAMS): a
// pointer means nothing in the server's process. Anything else is CKR_MECHANISM_INVALID here,
// as p11-kit's own client answers (rpc-client.c proto_write_mechanism); notably AES-GCM needs a
// version 1 server.
import CPKCS11

enum MechanismCoding {
    /// 0.24.1's list of mechanisms sent without parameters (mechanism_has_no_parameters).
    static func isParameterlessInOriginal(_ type: CK_MECHANISM_TYPE) -> Bool {
        switch type {
        case CKM_RSA_PKCS_KEY_PAIR_GEN, CKM_RSA_X9_31_KEY_PAIR_GEN, CKM_RSA_PKCS, CKM_RSA_9796,
             CKM_RSA_X_509, CKM_RSA_X9_31, CKM_MD2_RSA_PKCS, CKM_MD5_RSA_PKCS, CKM_SHA1_RSA_PKCS,
             CKM_SHA256_RSA_PKCS, CKM_SHA384_RSA_PKCS, CKM_SHA512_RSA_PKCS, CKM_RIPEMD128_RSA_PKCS,
             CKM_RIPEMD160_RSA_PKCS, CKM_SHA1_RSA_X9_31, CKM_DSA_KEY_PAIR_GEN, CKM_DSA_PARAMETER_GEN,
             CKM_DSA, CKM_DSA_SHA1, CKM_FORTEZZA_TIMESTAMP, CKM_EC_KEY_PAIR_GEN, CKM_ECDSA,
             CKM_ECDSA_SHA1, CKM_DH_PKCS_KEY_PAIR_GEN, CKM_DH_PKCS_PARAMETER_GEN,
             CKM_X9_42_DH_KEY_PAIR_GEN, CKM_X9_42_DH_PARAMETER_GEN, CKM_KEA_KEY_PAIR_GEN,
             CKM_GENERIC_SECRET_KEY_GEN, CKM_RC2_KEY_GEN, CKM_RC4_KEY_GEN, CKM_RC4, CKM_RC5_KEY_GEN,
             CKM_AES_KEY_GEN, CKM_AES_ECB, CKM_AES_MAC, CKM_DES_KEY_GEN, CKM_DES2_KEY_GEN,
             CKM_DES3_KEY_GEN, CKM_CDMF_KEY_GEN, CKM_CAST_KEY_GEN, CKM_CAST3_KEY_GEN,
             CKM_CAST128_KEY_GEN, CKM_IDEA_KEY_GEN, CKM_SSL3_PRE_MASTER_KEY_GEN,
             CKM_TLS_PRE_MASTER_KEY_GEN, CKM_SKIPJACK_KEY_GEN, CKM_BATON_KEY_GEN, CKM_JUNIPER_KEY_GEN,
             CKM_RC2_ECB, CKM_DES_ECB, CKM_DES3_ECB, CKM_CDMF_ECB, CKM_CAST_ECB, CKM_CAST3_ECB,
             CKM_CAST128_ECB, CKM_RC5_ECB, CKM_IDEA_ECB, CKM_RC2_MAC, CKM_DES_MAC, CKM_DES3_MAC,
             CKM_CDMF_MAC, CKM_CAST_MAC, CKM_CAST3_MAC, CKM_RC5_MAC, CKM_IDEA_MAC, CKM_SSL3_MD5_MAC,
             CKM_SSL3_SHA1_MAC, CKM_SKIPJACK_WRAP, CKM_BATON_WRAP, CKM_JUNIPER_WRAP, CKM_MD2,
             CKM_MD2_HMAC, CKM_MD5, CKM_MD5_HMAC, CKM_SHA_1, CKM_SHA_1_HMAC, CKM_SHA256,
             CKM_SHA256_HMAC, CKM_SHA384, CKM_SHA384_HMAC, CKM_SHA512, CKM_SHA512_HMAC, CKM_FASTHASH,
             CKM_RIPEMD128, CKM_RIPEMD128_HMAC, CKM_RIPEMD160, CKM_RIPEMD160_HMAC, CKM_KEY_WRAP_LYNKS:
            return true
        default:
            return false
        }
    }

    /// The longer list from 0.25 on: sent as the type alone, no has-parameter byte.
    static func isParameterlessFromVersion1(_ type: CK_MECHANISM_TYPE) -> Bool {
        if isParameterlessInOriginal(type) { return true }
        switch type {
        case CKM_SHA224_RSA_PKCS, CKM_ECDSA_SHA224, CKM_ECDSA_SHA256, CKM_ECDSA_SHA384,
             CKM_ECDSA_SHA512, CKM_AES_CMAC, CKM_DES3_CMAC, CKM_SHA1_KEY_DERIVATION, CKM_SHA224,
             CKM_SHA224_HMAC, CKM_SHA224_KEY_DERIVATION, CKM_SHA256_KEY_DERIVATION,
             CKM_SHA384_KEY_DERIVATION, CKM_SHA512_KEY_DERIVATION, CKM_SHA512_T, CKM_SHA512_T_HMAC,
             CKM_SHA512_T_KEY_DERIVATION, CKM_SHA512_224, CKM_SHA512_224_HMAC,
             CKM_SHA512_224_KEY_DERIVATION, CKM_SHA512_256, CKM_SHA512_256_HMAC,
             CKM_SHA512_256_KEY_DERIVATION:
            return true
        // IBM vendor mechanisms on p11-kit's list (common/pkcs11x.h, CKM_VENDOR_DEFINED + ...).
        case 0x80010001, 0x80010002, 0x80010003, 0x80010004, 0x80010007, 0x80010023, 0x80010025, 0x80010026, 0x80010027, 0x80010028, 0x8001001C, 0x8001001F:
            return true
        default:
            return false
        }
    }

    /// Mechanisms whose parameter is an IV and nothing else, with its length.
    static func initializationVectorLength(_ type: CK_MECHANISM_TYPE) -> Int? {
        switch type {
        case CKM_AES_CBC, CKM_AES_CBC_PAD, CKM_AES_OFB, CKM_AES_CFB8, CKM_AES_CFB64, CKM_AES_CFB128,
             CKM_AES_CTS, MechanismCoding.aesCFB1:
            return 16
        case CKM_DES_CBC, CKM_DES_CBC_PAD, CKM_DES3_CBC, CKM_DES3_CBC_PAD, CKM_DES_CFB8, CKM_DES_CFB64,
             CKM_DES_OFB64:
            return 8
        default:
            return nil
        }
    }

    /// CKM_AES_CFB1 (PKCS#11 2.40 0x2108), missing from p11-kit 0.24's header.
    static let aesCFB1: CK_MECHANISM_TYPE = 0x2108

    static func isPSS(_ type: CK_MECHANISM_TYPE) -> Bool {
        switch type {
        case CKM_RSA_PKCS_PSS, CKM_SHA1_RSA_PKCS_PSS, CKM_SHA224_RSA_PKCS_PSS, CKM_SHA256_RSA_PKCS_PSS,
             CKM_SHA384_RSA_PKCS_PSS, CKM_SHA512_RSA_PKCS_PSS:
            return true
        default:
            return false
        }
    }
}

extension RPCRequest {
    mutating func mechanism(_ mechanism: UnsafePointer<CK_MECHANISM>?, version: UInt8) throws(RPCError) {
        expect("M")
        guard let mechanism else {
            // Only 0.25's servers know the cancel marker.
            guard version >= RPCProtocolVersion.initToken2 else { throw .code(CK_RV(CKR_ARGUMENTS_BAD)) }
            writer.uint32(0xFFFF_FFFF)
            return
        }
        let type = mechanism.pointee.mechanism
        guard let wireType = UInt32(exactly: type), wireType != 0xFFFF_FFFF else { throw .code(CK_RV(CKR_MECHANISM_INVALID)) }
        let parameter = UnsafeRawPointer(mechanism.pointee.pParameter)
        let length = mechanism.pointee.ulParameterLen
        guard parameter != nil || length == 0 else { throw .code(CK_RV(CKR_MECHANISM_PARAM_INVALID)) }
        writer.uint32(wireType)
        if version == RPCProtocolVersion.original {
            try encodeOriginal(type, parameter, Int(length))
        } else {
            try encodeFromVersion1(type, parameter, Int(length))
        }
    }

    private mutating func encodeOriginal(_ type: CK_MECHANISM_TYPE, _ parameter: UnsafeRawPointer?,
                                         _ length: Int) throws(RPCError) {
        if MechanismCoding.isParameterlessInOriginal(type) || parameter == nil {
            // What 0.24.1's client sends for its parameterless list; its server gives the module
            // a NULL parameter for any type sent this way.
            return writer.nullByteArray()
        }
        switch type {
        case CKM_RSA_PKCS_PSS:
            try encodePSS(parameter!, length)
        case CKM_RSA_PKCS_OAEP:
            try encodeOAEP(parameter!, length)
        default:
            // Raw bytes only where they hold no pointer: IVs, and the PSS parameters of the
            // hash-and-sign variants (three CK_ULONGs; 0.24.1's server has no PSS decoder for them).
            if let ivLength = MechanismCoding.initializationVectorLength(type) {
                guard length == ivLength else { throw .code(CK_RV(CKR_MECHANISM_PARAM_INVALID)) }
            } else if MechanismCoding.isPSS(type) {
                guard length == MemoryLayout<CK_RSA_PKCS_PSS_PARAMS>.size else {
                    throw .code(CK_RV(CKR_MECHANISM_PARAM_INVALID))
                }
            } else {
                throw .code(CK_RV(CKR_MECHANISM_INVALID))
            }
            writer.byteArray(parameter, count: length)
        }
    }

    private mutating func encodeFromVersion1(_ type: CK_MECHANISM_TYPE, _ parameter: UnsafeRawPointer?,
                                             _ length: Int) throws(RPCError) {
        if MechanismCoding.isParameterlessFromVersion1(type) { return }
        guard let parameter else { return writer.byte(0) }
        writer.byte(1)
        if MechanismCoding.isPSS(type) {
            try encodePSS(parameter, length)
        } else if type == CKM_RSA_PKCS_OAEP {
            try encodeOAEP(parameter, length)
        } else if let ivLength = MechanismCoding.initializationVectorLength(type) {
            guard length == ivLength else { throw .code(CK_RV(CKR_MECHANISM_PARAM_INVALID)) }
            writer.byteArray(parameter, count: length)
        } else if type == CKM_AES_GCM {
            guard length == MemoryLayout<CK_GCM_PARAMS>.size else { throw .code(CK_RV(CKR_MECHANISM_PARAM_INVALID)) }
            let gcm = parameter.loadUnaligned(as: CK_GCM_PARAMS.self)
            try sendParameterBytes(UnsafeRawPointer(gcm.pIv), gcm.ulIvLen)
            writer.uint64(UInt64(gcm.ulIvBits))
            try sendParameterBytes(UnsafeRawPointer(gcm.pAAD), gcm.ulAADLen)
            writer.uint64(UInt64(gcm.ulTagBits))
        } else {
            throw .code(CK_RV(CKR_MECHANISM_INVALID))
        }
    }

    private mutating func encodePSS(_ parameter: UnsafeRawPointer, _ length: Int) throws(RPCError) {
        guard length == MemoryLayout<CK_RSA_PKCS_PSS_PARAMS>.size else { throw .code(CK_RV(CKR_MECHANISM_PARAM_INVALID)) }
        let pss = parameter.loadUnaligned(as: CK_RSA_PKCS_PSS_PARAMS.self)
        writer.uint64(UInt64(pss.hashAlg))
        writer.uint64(UInt64(pss.mgf))
        writer.uint64(UInt64(pss.sLen))
    }

    private mutating func encodeOAEP(_ parameter: UnsafeRawPointer, _ length: Int) throws(RPCError) {
        guard length == MemoryLayout<CK_RSA_PKCS_OAEP_PARAMS>.size else { throw .code(CK_RV(CKR_MECHANISM_PARAM_INVALID)) }
        let oaep = parameter.loadUnaligned(as: CK_RSA_PKCS_OAEP_PARAMS.self)
        writer.uint64(UInt64(oaep.hashAlg))
        writer.uint64(UInt64(oaep.mgf))
        writer.uint64(UInt64(oaep.source))
        try sendParameterBytes(UnsafeRawPointer(oaep.pSourceData), oaep.ulSourceDataLen)
    }

    private mutating func sendParameterBytes(_ pointer: UnsafeRawPointer?, _ count: CK_ULONG) throws(RPCError) {
        guard WireLimits.fitsByteArray(count), pointer != nil || count == 0 else {
            throw .code(CK_RV(CKR_MECHANISM_PARAM_INVALID))
        }
        writer.byteArray(pointer, count: Int(count))
    }
}
