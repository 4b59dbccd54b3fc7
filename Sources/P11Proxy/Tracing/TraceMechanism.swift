// CK_MECHANISM in a trace, with the parameters people debug most decoded: RSA-OAEP, RSA-PSS,
// AES-GCM, CBC IVs and ECDH1 derivation. A parameter whose length does not match its
// structure is shown as bytes rather than read past its end.
import CPKCS11

enum TraceMechanism {
    static func append(_ out: inout [UInt8], json: Bool, _ mechanism: CK_MECHANISM) {
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
                TraceValue.ulong(&out, json: json, oaep.source)
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
        default:
            break
        }
        object.member(&out, "pParameter")
        TraceValue.bytes(&out, json: json, UnsafeRawPointer(parameter), length, redact: false)
        object.close(&out)
    }
}
