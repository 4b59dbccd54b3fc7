// The walk through a token that P11KitInteropTests runs over each kind of address: slots and
// token info against SoftHSM2 directly, login, RSA and EC keys, signatures (RSA-PKCS, PSS,
// ECDSA), encryption (RSA-OAEP, AES-CBC, AES-GCM's refusal on protocol 0), digest, random,
// objects and attributes, and the buffer conventions of a local module.
import CPKCS11
import Foundation
import Testing
@testable import P11ProxyRPC

func exercise(_ module: RemoteModule, direct: DirectModule, sameSlotIDs: Bool) throws {
    #expect(module.C_Initialize(nil) == ok, "\(module.lastErrorMessage)")
    #expect(module.negotiatedVersion == 0, "Debian 12's p11-kit 0.24.1 speaks protocol 0")
    #expect(module.C_Initialize(nil) == CK_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED))

    // CK_INFO: p11-kit's server forwards its module's (through its filter for a token URI).
    var info = CK_INFO()
    #expect(module.C_GetInfo(&info) == ok)
    #expect(text(info.manufacturerID).hasPrefix(sameSlotIDs ? "SoftHSM" : "PKCS#11 Kit"))

    // Slot lists: size query, too-small buffer, full buffer. SoftHSM2 shows the token "t" and
    // a free one; p11-kit's server renumbers slots from 0x11 (its proxy layer).
    let directSlots = direct.slots()
    var count: CK_ULONG = 0
    #expect(module.C_GetSlotList(1, nil, &count) == ok)
    #expect(count == CK_ULONG(directSlots.count))
    var slots = [CK_SLOT_ID](repeating: 0, count: 4)
    var none: CK_ULONG = 0
    #expect(module.C_GetSlotList(1, &slots, &none) == CK_RV(CKR_BUFFER_TOO_SMALL))
    #expect(none == count)
    count = 4
    #expect(module.C_GetSlotList(1, &slots, &count) == ok)
    if sameSlotIDs { #expect(Array(slots.prefix(Int(count))) == directSlots) }
    let slot = slots[0]
    let directSlot = directSlots[0]

    var token = CK_TOKEN_INFO(), directToken = CK_TOKEN_INFO()
    #expect(module.C_GetTokenInfo(slot, &token) == ok)
    #expect(direct.functions.pointee.C_GetTokenInfo(directSlot, &directToken) == ok)
    #expect(text(token.label) == text(directToken.label))
    #expect(text(token.label).hasPrefix("t "))
    #expect(text(token.serialNumber) == text(directToken.serialNumber))
    #expect(text(token.model) == text(directToken.model))
    #expect(token.ulMaxPinLen == directToken.ulMaxPinLen && token.flags == directToken.flags)
    #expect(module.C_GetTokenInfo(0xDEAD, &token) == CK_RV(CKR_SLOT_ID_INVALID))

    var mechanismCount: CK_ULONG = 0
    #expect(module.C_GetMechanismList(slot, nil, &mechanismCount) == ok)
    var mechanisms = [CK_MECHANISM_TYPE](repeating: 0, count: Int(mechanismCount))
    #expect(module.C_GetMechanismList(slot, &mechanisms, &mechanismCount) == ok)
    #expect(Set(mechanisms) == Set(direct.mechanisms(directSlot)))
    var mechanismInfo = CK_MECHANISM_INFO(), directMechanismInfo = CK_MECHANISM_INFO()
    #expect(module.C_GetMechanismInfo(slot, CK_ULONG(CKM_RSA_PKCS_KEY_PAIR_GEN), &mechanismInfo) == ok)
    _ = direct.functions.pointee.C_GetMechanismInfo(directSlot, CK_ULONG(CKM_RSA_PKCS_KEY_PAIR_GEN), &directMechanismInfo)
    #expect(mechanismInfo.ulMaxKeySize == directMechanismInfo.ulMaxKeySize && mechanismInfo.flags == directMechanismInfo.flags)

    // Sessions and login.
    var session: CK_SESSION_HANDLE = 0
    #expect(module.C_OpenSession(slot, CK_FLAGS(CKF_SERIAL_SESSION | CKF_RW_SESSION), nil, nil, &session) == ok)
    var sessionInfo = CK_SESSION_INFO()
    #expect(module.C_GetSessionInfo(session, &sessionInfo) == ok)
    #expect(sessionInfo.state == CK_ULONG(CKS_RW_PUBLIC_SESSION))
    var wrongPin: [UInt8] = Array("9999".utf8), pin: [UInt8] = Array("1234".utf8)
    #expect(module.C_Login(session, CK_ULONG(CKU_USER), &wrongPin, 4) == CK_RV(CKR_PIN_INCORRECT))
    #expect(module.C_Login(session, CK_ULONG(CKU_USER), &pin, 4) == ok)
    #expect(module.C_GetSessionInfo(session, &sessionInfo) == ok && sessionInfo.state == CK_ULONG(CKS_RW_USER_FUNCTIONS))

    try rsa(module, session)
    try ec(module, session)
    try aes(module, session)

    #expect(sha256(module, session, Array("abc".utf8)) == abcDigest)
    var random = [UInt8](repeating: 0, count: 64)
    #expect(module.C_GenerateRandom(session, &random, 64) == ok)
    #expect(random.contains { $0 != 0 })

    #expect(module.C_Logout(session) == ok)
    #expect(module.C_CloseSession(session) == ok)
    #expect(module.C_CloseSession(session) == CK_RV(CKR_SESSION_HANDLE_INVALID))
    #expect(module.C_Finalize(nil) == ok)
    #expect(module.C_GetInfo(&info) == CK_RV(CKR_CRYPTOKI_NOT_INITIALIZED))
    #expect(module.C_Finalize(nil) == CK_RV(CKR_CRYPTOKI_NOT_INITIALIZED))
}

/// A template built from values kept alive for the duration of `body`.
struct Template {
    private var storage: [[UInt8]] = []
    private var entries: [(CK_ATTRIBUTE_TYPE, Int)] = []

    mutating func add(_ type: CK_ULONG, bytes: [UInt8]) { entries.append((type, storage.count)); storage.append(bytes) }
    mutating func add(_ type: CK_ULONG, bool: Bool) { add(type, bytes: [bool ? 1 : 0]) }
    mutating func add(_ type: CK_ULONG, ulong: CK_ULONG) { add(type, bytes: withUnsafeBytes(of: ulong) { Array($0) }) }

    func with<R>(_ body: (UnsafeMutablePointer<CK_ATTRIBUTE>, CK_ULONG) -> R) -> R {
        var buffers = storage
        var attributes: [CK_ATTRIBUTE] = []
        for index in buffers.indices {
            let pointer = buffers[index].withUnsafeMutableBytes { $0.baseAddress }
            attributes.append(CK_ATTRIBUTE(type: entries[index].0, pValue: pointer, ulValueLen: CK_ULONG(buffers[index].count)))
        }
        return withExtendedLifetime(buffers) {
            attributes.withUnsafeMutableBufferPointer { body($0.baseAddress!, CK_ULONG($0.count)) }
        }
    }
}

func generateKeyPair(_ module: RemoteModule, _ session: CK_SESSION_HANDLE, _ type: CK_MECHANISM_TYPE,
                     _ publicTemplate: Template, _ privateTemplate: Template) -> (CK_OBJECT_HANDLE, CK_OBJECT_HANDLE) {
    var mechanism = CK_MECHANISM(mechanism: type, pParameter: nil, ulParameterLen: 0)
    var publicKey: CK_OBJECT_HANDLE = 0, privateKey: CK_OBJECT_HANDLE = 0
    let rv = publicTemplate.with { pub, pubCount in
        privateTemplate.with { priv, privCount in
            module.C_GenerateKeyPair(session, &mechanism, pub, pubCount, priv, privCount, &publicKey, &privateKey)
        }
    }
    #expect(rv == ok)
    return (publicKey, privateKey)
}

func sign(_ module: RemoteModule, _ session: CK_SESSION_HANDLE, _ mechanism: inout CK_MECHANISM,
          _ key: CK_OBJECT_HANDLE, _ data: [UInt8]) -> [UInt8]? {
    guard module.C_SignInit(session, &mechanism, key) == ok else { return nil }
    var input = data
    var length: CK_ULONG = 0
    guard module.C_Sign(session, &input, CK_ULONG(input.count), nil, &length) == ok, length > 0 else { return nil }
    var signature = [UInt8](repeating: 0, count: Int(length))
    guard module.C_Sign(session, &input, CK_ULONG(input.count), &signature, &length) == ok else { return nil }
    return Array(signature.prefix(Int(length)))
}

func verify(_ module: RemoteModule, _ session: CK_SESSION_HANDLE, _ mechanism: inout CK_MECHANISM,
            _ key: CK_OBJECT_HANDLE, _ data: [UInt8], _ signature: [UInt8]) -> CK_RV {
    let rv = module.C_VerifyInit(session, &mechanism, key)
    guard rv == ok else { return rv }
    var input = data, signatureBytes = signature
    return module.C_Verify(session, &input, CK_ULONG(input.count), &signatureBytes, CK_ULONG(signature.count))
}

func rsa(_ module: RemoteModule, _ session: CK_SESSION_HANDLE) throws {
    var publicTemplate = Template(), privateTemplate = Template()
    publicTemplate.add(CK_ULONG(CKA_MODULUS_BITS), ulong: 2048)
    publicTemplate.add(CK_ULONG(CKA_PUBLIC_EXPONENT), bytes: [1, 0, 1])
    publicTemplate.add(CK_ULONG(CKA_VERIFY), bool: true)
    publicTemplate.add(CK_ULONG(CKA_ENCRYPT), bool: true)
    publicTemplate.add(CK_ULONG(CKA_LABEL), bytes: Array("rsa".utf8))
    privateTemplate.add(CK_ULONG(CKA_SIGN), bool: true)
    privateTemplate.add(CK_ULONG(CKA_DECRYPT), bool: true)
    privateTemplate.add(CK_ULONG(CKA_SENSITIVE), bool: true)
    privateTemplate.add(CK_ULONG(CKA_LABEL), bytes: Array("rsa".utf8))
    let (publicKey, privateKey) = generateKeyPair(module, session, CK_ULONG(CKM_RSA_PKCS_KEY_PAIR_GEN), publicTemplate, privateTemplate)

    // RSA PKCS#1 v1.5 with SHA-256: deterministic, verified, tampering detected, short buffer.
    let data: [UInt8] = Array("message".utf8)
    var pkcs = CK_MECHANISM(mechanism: CK_ULONG(CKM_SHA256_RSA_PKCS), pParameter: nil, ulParameterLen: 0)
    let signature = try #require(sign(module, session, &pkcs, privateKey, data))
    #expect(signature.count == 256)
    #expect(sign(module, session, &pkcs, privateKey, data) == signature)
    #expect(verify(module, session, &pkcs, publicKey, data, signature) == ok)
    #expect(verify(module, session, &pkcs, publicKey, data + [0], signature) == CK_RV(CKR_SIGNATURE_INVALID))
    #expect(module.C_SignInit(session, &pkcs, privateKey) == ok)
    var input = data
    var small = [UInt8](repeating: 0xEE, count: 16)
    var smallLength: CK_ULONG = 16
    #expect(module.C_Sign(session, &input, CK_ULONG(input.count), &small, &smallLength) == CK_RV(CKR_BUFFER_TOO_SMALL))
    #expect(smallLength == 256 && small.allSatisfy { $0 == 0xEE })
    var full = [UInt8](repeating: 0, count: 256)
    var fullLength: CK_ULONG = 256
    #expect(module.C_Sign(session, &input, CK_ULONG(input.count), &full, &fullLength) == ok)
    #expect(full == signature, "the operation survived the short buffer, as PKCS#11 5.2 requires")

    // PSS: CKM_RSA_PKCS_PSS over a digest (p11-kit's PSS encoder) and CKM_SHA256_RSA_PKCS_PSS
    // (raw parameter bytes on protocol 0).
    var pssParameters = CK_RSA_PKCS_PSS_PARAMS(hashAlg: CK_ULONG(CKM_SHA256), mgf: CK_ULONG(CKG_MGF1_SHA256), sLen: 32)
    withUnsafeMutableBytes(of: &pssParameters) { raw in
        var pss = CK_MECHANISM(mechanism: CK_ULONG(CKM_RSA_PKCS_PSS), pParameter: raw.baseAddress, ulParameterLen: CK_ULONG(raw.count))
        let pssSignature = sign(module, session, &pss, privateKey, abcDigest)
        #expect(pssSignature?.count == 256)
        #expect(verify(module, session, &pss, publicKey, abcDigest, pssSignature ?? []) == ok)
        var hashed = CK_MECHANISM(mechanism: CK_ULONG(CKM_SHA256_RSA_PKCS_PSS), pParameter: raw.baseAddress, ulParameterLen: CK_ULONG(raw.count))
        let hashedSignature = sign(module, session, &hashed, privateKey, data)
        #expect(hashedSignature?.count == 256)
        #expect(verify(module, session, &hashed, publicKey, data, hashedSignature ?? []) == ok)
    }

    // OAEP (SHA-1, as SoftHSM2 2.6 supports): encrypt, decrypt, same plaintext.
    var oaepParameters = CK_RSA_PKCS_OAEP_PARAMS(hashAlg: CK_ULONG(CKM_SHA_1), mgf: CK_ULONG(CKG_MGF1_SHA1),
                                                  source: CK_ULONG(CKZ_DATA_SPECIFIED), pSourceData: nil, ulSourceDataLen: 0)
    withUnsafeMutableBytes(of: &oaepParameters) { raw in
        var oaep = CK_MECHANISM(mechanism: CK_ULONG(CKM_RSA_PKCS_OAEP), pParameter: raw.baseAddress, ulParameterLen: CK_ULONG(raw.count))
        var plain: [UInt8] = Array("secret".utf8)
        var cipher = [UInt8](repeating: 0, count: 256)
        var cipherLength: CK_ULONG = 256
        #expect(module.C_EncryptInit(session, &oaep, publicKey) == ok)
        #expect(module.C_Encrypt(session, &plain, CK_ULONG(plain.count), &cipher, &cipherLength) == ok)
        #expect(cipherLength == 256)
        var decrypted = [UInt8](repeating: 0, count: 256)
        var decryptedLength: CK_ULONG = 256
        #expect(module.C_DecryptInit(session, &oaep, privateKey) == ok)
        #expect(module.C_Decrypt(session, &cipher, cipherLength, &decrypted, &decryptedLength) == ok)
        #expect(Array(decrypted.prefix(Int(decryptedLength))) == plain)
    }

    // Attributes of the public key: size query, values, a sensitive one, a too-small buffer.
    var modulus = [UInt8](repeating: 0, count: 256)
    var bits: CK_ULONG = 0, keyType: CK_ULONG = 0
    var label = [UInt8](repeating: 0xEE, count: 2)
    var isToken: CK_BBOOL = 9
    let attributes = withUnsafeMutableBytes(of: &bits) { bitsRaw in
        withUnsafeMutableBytes(of: &keyType) { typeRaw in
            withUnsafeMutableBytes(of: &isToken) { tokenRaw in
                modulus.withUnsafeMutableBytes { modulusRaw in
                    label.withUnsafeMutableBytes { labelRaw in
                        var template = [
                            CK_ATTRIBUTE(type: CK_ULONG(CKA_MODULUS), pValue: nil, ulValueLen: 0),
                            CK_ATTRIBUTE(type: CK_ULONG(CKA_MODULUS_BITS), pValue: bitsRaw.baseAddress, ulValueLen: 8),
                            CK_ATTRIBUTE(type: CK_ULONG(CKA_KEY_TYPE), pValue: typeRaw.baseAddress, ulValueLen: 8),
                            CK_ATTRIBUTE(type: CK_ULONG(CKA_TOKEN), pValue: tokenRaw.baseAddress, ulValueLen: 1),
                        ]
                        let sizes = module.C_GetAttributeValue(session, publicKey, &template, 4)
                        let sizeLengths = template.map(\.ulValueLen)
                        template[0].pValue = modulusRaw.baseAddress
                        template[0].ulValueLen = 256
                        let values = module.C_GetAttributeValue(session, publicKey, &template, 4)
                        var short = [CK_ATTRIBUTE(type: CK_ULONG(CKA_LABEL), pValue: labelRaw.baseAddress, ulValueLen: 2),
                                     CK_ATTRIBUTE(type: CK_ULONG(CKA_WRAP_TEMPLATE), pValue: nil, ulValueLen: 0)]
                        let shortRV = module.C_GetAttributeValue(session, publicKey, &short, 2)
                        var sensitive = [CK_ATTRIBUTE(type: CK_ULONG(CKA_PRIVATE_EXPONENT), pValue: nil, ulValueLen: 0)]
                        let sensitiveRV = module.C_GetAttributeValue(session, privateKey, &sensitive, 1)
                        return (sizes, sizeLengths, values, shortRV, short.map(\.ulValueLen), sensitiveRV, sensitive[0].ulValueLen)
                    }
                }
            }
        }
    }
    #expect(attributes.0 == ok && attributes.1 == [256, 8, 8, 1])
    #expect(attributes.2 == ok && bits == 2048 && keyType == CK_ULONG(CKK_RSA) && isToken == 0)
    #expect(modulus.contains { $0 != 0 })
    #expect(attributes.3 == CK_RV(CKR_BUFFER_TOO_SMALL))
    #expect(attributes.4 == [CK_ULONG.max, CK_ULONG.max] && label == [0xEE, 0xEE])
    #expect(attributes.5 == CK_RV(CKR_ATTRIBUTE_SENSITIVE) && attributes.6 == CK_ULONG.max)

    // Finding it by label: both keys, and nothing written past the handle array.
    var find = Template()
    find.add(CK_ULONG(CKA_LABEL), bytes: Array("rsa".utf8))
    #expect(find.with { module.C_FindObjectsInit(session, $0, $1) } == ok)
    var handles: [CK_OBJECT_HANDLE] = [0, 0, 0xEE]
    var found: CK_ULONG = 0
    #expect(module.C_FindObjects(session, &handles, 2, &found) == ok)
    #expect(found == 2 && Set(handles.prefix(2)) == [publicKey, privateKey] && handles[2] == 0xEE)
    #expect(module.C_FindObjects(session, &handles, 2, &found) == ok && found == 0)
    #expect(module.C_FindObjectsFinal(session) == ok)
    var size: CK_ULONG = 0
    let sizeRV = module.C_GetObjectSize(session, publicKey, &size)
    #expect(sizeRV == ok || sizeRV == CK_RV(CKR_FUNCTION_NOT_SUPPORTED))
    #expect(module.C_DestroyObject(session, publicKey) == ok)
    #expect(module.C_DestroyObject(session, privateKey) == ok)
}

func ec(_ module: RemoteModule, _ session: CK_SESSION_HANDLE) throws {
    var publicTemplate = Template(), privateTemplate = Template()
    publicTemplate.add(CK_ULONG(CKA_EC_PARAMS), bytes: hex("06082A8648CE3D030107"))  // prime256v1
    publicTemplate.add(CK_ULONG(CKA_VERIFY), bool: true)
    privateTemplate.add(CK_ULONG(CKA_SIGN), bool: true)
    let (publicKey, privateKey) = generateKeyPair(module, session, CK_ULONG(CKM_EC_KEY_PAIR_GEN), publicTemplate, privateTemplate)
    var ecdsa = CK_MECHANISM(mechanism: CK_ULONG(CKM_ECDSA), pParameter: nil, ulParameterLen: 0)
    let signature = try #require(sign(module, session, &ecdsa, privateKey, abcDigest))
    #expect(signature.count == 64)
    #expect(verify(module, session, &ecdsa, publicKey, abcDigest, signature) == ok)
    var other = abcDigest
    other[0] ^= 1
    #expect(verify(module, session, &ecdsa, publicKey, other, signature) == CK_RV(CKR_SIGNATURE_INVALID))
    var point = [CK_ATTRIBUTE(type: CK_ULONG(CKA_EC_POINT), pValue: nil, ulValueLen: 0)]
    #expect(module.C_GetAttributeValue(session, publicKey, &point, 1) == ok)
    #expect(point[0].ulValueLen == 67)  // DER OCTET STRING of an uncompressed P-256 point
}

func aes(_ module: RemoteModule, _ session: CK_SESSION_HANDLE) throws {
    var template = Template()
    template.add(CK_ULONG(CKA_VALUE_LEN), ulong: 32)
    template.add(CK_ULONG(CKA_ENCRYPT), bool: true)
    template.add(CK_ULONG(CKA_DECRYPT), bool: true)
    var generate = CK_MECHANISM(mechanism: CK_ULONG(CKM_AES_KEY_GEN), pParameter: nil, ulParameterLen: 0)
    var key: CK_OBJECT_HANDLE = 0
    #expect(template.with { module.C_GenerateKey(session, &generate, $0, $1, &key) } == ok)

    var iv = [UInt8](repeating: 0x24, count: 16)
    let plain: [UInt8] = Array("seventeen bytes!!".utf8)
    iv.withUnsafeMutableBytes { raw in
        var cbc = CK_MECHANISM(mechanism: CK_ULONG(CKM_AES_CBC_PAD), pParameter: raw.baseAddress, ulParameterLen: 16)
        // Multi-part: an update with nowhere to put output yet (a non-NULL buffer of length 0)
        // must still consume its input.
        #expect(module.C_EncryptInit(session, &cbc, key) == ok)
        var input = Array(plain.prefix(5))
        var nothing = [UInt8](repeating: 0xEE, count: 1)
        var nothingLength: CK_ULONG = 0
        #expect(module.C_EncryptUpdate(session, &input, 5, &nothing, &nothingLength) == ok)
        #expect(nothingLength == 0 && nothing == [0xEE])
        var rest = Array(plain.dropFirst(5))
        var cipher = [UInt8](repeating: 0, count: 64)
        var cipherLength: CK_ULONG = 64
        #expect(module.C_EncryptUpdate(session, &rest, CK_ULONG(rest.count), &cipher, &cipherLength) == ok)
        #expect(cipherLength == 16)
        var last = [UInt8](repeating: 0, count: 16)
        var lastLength: CK_ULONG = 16
        #expect(module.C_EncryptFinal(session, &last, &lastLength) == ok)
        #expect(lastLength == 16)
        let ciphertext = Array(cipher.prefix(16)) + Array(last.prefix(16))

        #expect(module.C_DecryptInit(session, &cbc, key) == ok)
        var encrypted = ciphertext
        var needed: CK_ULONG = 0
        #expect(module.C_Decrypt(session, &encrypted, 32, nil, &needed) == ok)
        #expect(needed >= 17)
        var decrypted = [UInt8](repeating: 0, count: Int(needed))
        #expect(module.C_Decrypt(session, &encrypted, 32, &decrypted, &needed) == ok)
        #expect(Array(decrypted.prefix(Int(needed))) == plain)
    }

    // AES-GCM's parameters hold pointers; p11-kit 0.24.1's protocol can only copy them as raw
    // bytes, which would hand the server our addresses. Refused before anything is sent.
    var nonce = [UInt8](repeating: 1, count: 12)
    nonce.withUnsafeMutableBufferPointer { buffer in
        var gcmParameters = CK_GCM_PARAMS(pIv: buffer.baseAddress, ulIvLen: 12, ulIvBits: 96, pAAD: nil, ulAADLen: 0, ulTagBits: 128)
        withUnsafeMutableBytes(of: &gcmParameters) { raw in
            var gcm = CK_MECHANISM(mechanism: CK_ULONG(CKM_AES_GCM), pParameter: raw.baseAddress, ulParameterLen: CK_ULONG(raw.count))
            #expect(module.C_EncryptInit(session, &gcm, key) == CK_RV(CKR_MECHANISM_INVALID))
        }
    }
    var digestInfo = CK_SESSION_INFO()
    #expect(module.C_GetSessionInfo(session, &digestInfo) == ok, "the connection is still fine")
    #expect(module.C_DestroyObject(session, key) == ok)
}
