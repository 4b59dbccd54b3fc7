// CK_MECHANISM in a trace, with the parameters people debug most decoded: RSA-OAEP, RSA-PSS,
// AES-GCM, CBC IVs, ECDH1 derivation, and the ML-DSA / SLH-DSA signing contexts of PKCS#11 3.2.
// A parameter whose length does not match its structure is shown as bytes rather than read past
// its end.
import CPKCS11
import P11ProxyNames

enum TraceMechanism {
    static func append(_ out: inout TraceBuffer, json: Bool, _ mechanism: CK_MECHANISM) {
        var object = TraceObject(&out, json: json)
        object.member(&out, "mechanism")
        TraceValue.named(&out, json: json, mechanism.mechanism, PKCS11Name.mechanism)
        let parameter = mechanism.pParameter, length = mechanism.ulParameterLen
        func fits<T>(_: T.Type) -> UnsafeMutablePointer<T>? {
            guard let parameter, length == CK_ULONG(MemoryLayout<T>.size) else { return nil }
            return parameter.assumingMemoryBound(to: T.self)
        }
        switch mechanism.mechanism {
        case CK_MECHANISM_TYPE(CKM_RSA_PKCS_OAEP):
            if let oaep = fits(CK_RSA_PKCS_OAEP_PARAMS.self)?.pointee {
                object.member(&out, "hashAlg")
                TraceValue.named(&out, json: json, oaep.hashAlg, PKCS11Name.mechanism)
                object.member(&out, "mgf")
                TraceValue.named(&out, json: json, oaep.mgf, PKCS11Name.mgf)
                object.member(&out, "source")
                TraceValue.named(&out, json: json, oaep.source, PKCS11Name.oaepSource)
                object.member(&out, "pSourceData")
                TraceValue.bytes(&out, json: json, UnsafeRawPointer(oaep.pSourceData), oaep.ulSourceDataLen, redact: false)
                return object.close(&out)
            }
        case CK_MECHANISM_TYPE(CKM_RSA_PKCS_PSS), CK_MECHANISM_TYPE(CKM_SHA1_RSA_PKCS_PSS),
             CK_MECHANISM_TYPE(CKM_SHA224_RSA_PKCS_PSS), CK_MECHANISM_TYPE(CKM_SHA256_RSA_PKCS_PSS),
             CK_MECHANISM_TYPE(CKM_SHA384_RSA_PKCS_PSS), CK_MECHANISM_TYPE(CKM_SHA512_RSA_PKCS_PSS):
            if let pss = fits(CK_RSA_PKCS_PSS_PARAMS.self)?.pointee {
                object.member(&out, "hashAlg")
                TraceValue.named(&out, json: json, pss.hashAlg, PKCS11Name.mechanism)
                object.member(&out, "mgf")
                TraceValue.named(&out, json: json, pss.mgf, PKCS11Name.mgf)
                object.member(&out, "sLen")
                TraceValue.ulong(&out, json: json, pss.sLen)
                return object.close(&out)
            }
        case CK_MECHANISM_TYPE(CKM_AES_GCM):
            if let gcm = fits(CK_GCM_PARAMS.self)?.pointee {
                object.member(&out, "pIv")
                TraceValue.bytes(&out, json: json, UnsafeRawPointer(gcm.pIv), gcm.ulIvLen, redact: false)
                object.member(&out, "ulIvBits")
                TraceValue.ulong(&out, json: json, gcm.ulIvBits)
                object.member(&out, "pAAD")
                TraceValue.bytes(&out, json: json, UnsafeRawPointer(gcm.pAAD), gcm.ulAADLen, redact: false)
                object.member(&out, "ulTagBits")
                TraceValue.ulong(&out, json: json, gcm.ulTagBits)
                return object.close(&out)
            }
        case CK_MECHANISM_TYPE(CKM_AES_CBC), CK_MECHANISM_TYPE(CKM_AES_CBC_PAD),
             CK_MECHANISM_TYPE(CKM_DES3_CBC), CK_MECHANISM_TYPE(CKM_DES3_CBC_PAD):
            object.member(&out, "iv")
            TraceValue.bytes(&out, json: json, UnsafeRawPointer(parameter), length, redact: false)
            return object.close(&out)
        case CK_MECHANISM_TYPE(CKM_ECDH1_DERIVE), CK_MECHANISM_TYPE(CKM_ECDH1_COFACTOR_DERIVE):
            if let ecdh = fits(CK_ECDH1_DERIVE_PARAMS.self)?.pointee {
                object.member(&out, "kdf")
                TraceValue.named(&out, json: json, ecdh.kdf, PKCS11Name.kdf)
                object.member(&out, "pSharedData")
                TraceValue.bytes(&out, json: json, UnsafeRawPointer(ecdh.pSharedData), ecdh.ulSharedDataLen, redact: false)
                object.member(&out, "pPublicData")
                TraceValue.bytes(&out, json: json, UnsafeRawPointer(ecdh.pPublicData), ecdh.ulPublicDataLen, redact: false)
                return object.close(&out)
            }
        case CK_MECHANISM_TYPE(CKM_HASH_ML_DSA), CK_MECHANISM_TYPE(CKM_HASH_SLH_DSA):
            // The pre-hash variants that name their hash in the parameter.
            if let context = fits(CK_HASH_SIGN_ADDITIONAL_CONTEXT.self)?.pointee {
                appendSigningContext(&out, &object, json: json, context.hedgeVariant, context.pContext, context.ulContextLen)
                object.member(&out, "hash")
                TraceValue.named(&out, json: json, context.hash, PKCS11Name.mechanism)
                return object.close(&out)
            }
        case _ where takesSigningContext(mechanism.mechanism):
            if let context = fits(CK_SIGN_ADDITIONAL_CONTEXT.self)?.pointee {
                appendSigningContext(&out, &object, json: json, context.hedgeVariant, context.pContext, context.ulContextLen)
                return object.close(&out)
            }
        default:
            break
        }
        object.member(&out, "pParameter")
        TraceValue.bytes(&out, json: json, UnsafeRawPointer(parameter), length, redact: false)
        object.close(&out)
    }

    /// The key type a key-pair generation mechanism makes, where a template's values depend on
    /// it (PKCS#11 3.2: CKA_PARAMETER_SET).
    static func keyType(generatedBy mechanism: CK_MECHANISM_TYPE) -> CK_KEY_TYPE? {
        switch mechanism {
        case CK_MECHANISM_TYPE(CKM_ML_DSA_KEY_PAIR_GEN): CK_KEY_TYPE(CKK_ML_DSA)
        case CK_MECHANISM_TYPE(CKM_SLH_DSA_KEY_PAIR_GEN): CK_KEY_TYPE(CKK_SLH_DSA)
        case CK_MECHANISM_TYPE(CKM_ML_KEM_KEY_PAIR_GEN): CK_KEY_TYPE(CKK_ML_KEM)
        default: nil
        }
    }

    /// PKCS#11 3.2 (ML-DSA and SLH-DSA mechanisms): pure ML-DSA and SLH-DSA, and their pre-hash
    /// variants with a fixed hash, take an optional CK_SIGN_ADDITIONAL_CONTEXT.
    static func takesSigningContext(_ mechanism: CK_MECHANISM_TYPE) -> Bool {
        switch mechanism {
        case CK_MECHANISM_TYPE(CKM_ML_DSA), CK_MECHANISM_TYPE(CKM_SLH_DSA),
             CK_MECHANISM_TYPE(CKM_HASH_ML_DSA_SHA224)...CK_MECHANISM_TYPE(CKM_HASH_ML_DSA_SHAKE256),
             CK_MECHANISM_TYPE(CKM_HASH_SLH_DSA_SHA224)...CK_MECHANISM_TYPE(CKM_HASH_SLH_DSA_SHAKE256):
            true
        default: false
        }
    }

    /// The members CK_SIGN_ADDITIONAL_CONTEXT and CK_HASH_SIGN_ADDITIONAL_CONTEXT share: the hedge
    /// variant by name and the context string (public: it is signed along with the message).
    static func appendSigningContext(_ out: inout TraceBuffer, _ object: inout TraceObject, json: Bool,
                                     _ hedge: CK_HEDGE_TYPE, _ context: CK_BYTE_PTR?, _ length: CK_ULONG) {
        object.member(&out, "hedgeVariant")
        TraceValue.named(&out, json: json, hedge, PKCS11Name.hedge)
        object.member(&out, "pContext")
        TraceValue.bytes(&out, json: json, UnsafeRawPointer(context), length, redact: false)
    }

    /// True when a message parameter has members a module fills in (IV or nonce, tag or MAC).
    static func hasOutputs(_ value: UnsafeMutableRawPointer?, _ length: CK_ULONG) -> Bool {
        value != nil && (length == CK_ULONG(MemoryLayout<CK_GCM_MESSAGE_PARAMS>.size)
                         || length == CK_ULONG(MemoryLayout<CK_CCM_MESSAGE_PARAMS>.size))
    }

    /// CK_GCM_MESSAGE_PARAMS (48 bytes) or CK_CCM_MESSAGE_PARAMS (56 bytes), told apart by size;
    /// `output` shows only what the module may have written (IV/nonce, tag/MAC).
    static func messageParameter(_ out: inout TraceBuffer, json: Bool, _ value: UnsafeMutableRawPointer?,
                                 _ length: CK_ULONG, output: Bool) {
        guard let value else { return TraceValue.bytes(&out, json: json, nil, length, redact: false) }
        if length == CK_ULONG(MemoryLayout<CK_GCM_MESSAGE_PARAMS>.size) {
            let gcm = value.load(as: CK_GCM_MESSAGE_PARAMS.self)
            var object = TraceObject(&out, json: json)
            object.member(&out, "pIv")
            TraceValue.bytes(&out, json: json, UnsafeRawPointer(gcm.pIv), gcm.ulIvLen, redact: false)
            if !output {
                object.member(&out, "ulIvFixedBits")
                TraceValue.ulong(&out, json: json, gcm.ulIvFixedBits)
                object.member(&out, "ivGenerator")
                TraceValue.named(&out, json: json, gcm.ivGenerator, generatorName)
                object.member(&out, "ulTagBits")
                TraceValue.ulong(&out, json: json, gcm.ulTagBits)
            }
            object.member(&out, "pTag")
            // Bits to bytes without `+ 7`: ulTagBits is the caller's, and may be anything (an
            // overflow would trap and take the caller's process down).
            let tagBytes = gcm.ulTagBits / 8 + (gcm.ulTagBits % 8 == 0 ? 0 : 1)
            TraceValue.bytes(&out, json: json, UnsafeRawPointer(gcm.pTag), tagBytes, redact: false)
            return object.close(&out)
        }
        if length == CK_ULONG(MemoryLayout<CK_CCM_MESSAGE_PARAMS>.size) {
            let ccm = value.load(as: CK_CCM_MESSAGE_PARAMS.self)
            var object = TraceObject(&out, json: json)
            if !output {
                object.member(&out, "ulDataLen")
                TraceValue.ulong(&out, json: json, ccm.ulDataLen)
            }
            object.member(&out, "pNonce")
            TraceValue.bytes(&out, json: json, UnsafeRawPointer(ccm.pNonce), ccm.ulNonceLen, redact: false)
            if !output {
                object.member(&out, "ulNonceFixedBits")
                TraceValue.ulong(&out, json: json, ccm.ulNonceFixedBits)
                object.member(&out, "nonceGenerator")
                TraceValue.named(&out, json: json, ccm.nonceGenerator, generatorName)
            }
            object.member(&out, "pMAC")
            TraceValue.bytes(&out, json: json, UnsafeRawPointer(ccm.pMAC), ccm.ulMACLen, redact: false)
            return object.close(&out)
        }
        TraceValue.bytes(&out, json: json, value, length, redact: false)
    }

    /// CK_GENERATOR_FUNCTION values; they share the CKG_ prefix (and values) with the MGF names,
    /// so they have their own table.
    static func generatorName(_ value: CK_ULONG) -> StaticString? {
        switch value {
        case CKG_NO_GENERATE: "CKG_NO_GENERATE"
        case CKG_GENERATE: "CKG_GENERATE"
        case CKG_GENERATE_COUNTER: "CKG_GENERATE_COUNTER"
        case CKG_GENERATE_RANDOM: "CKG_GENERATE_RANDOM"
        case CKG_GENERATE_COUNTER_XOR: "CKG_GENERATE_COUNTER_XOR"
        default: nil
        }
    }
}
