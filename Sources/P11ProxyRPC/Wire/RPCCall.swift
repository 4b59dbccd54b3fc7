// p11-kit's call table: id, name and the request and response signatures, exactly as
// p11-kit/rpc-message.h lists them (ids 1-65 in 0.24.1; 66-87, the PKCS#11 3.0 calls, and 88-89
// from 0.25.0 on). A server checks a request's signature byte for byte against its own table and
// drops the connection on an id it does not know, so a call goes out only when the negotiated
// protocol version says the server has it (`minimumVersion`).
//
// Signature letters (rpc-message.h): y byte, u CK_ULONG (64 bits), v CK_VERSION, s space-padded
// string, z string, ay byte array, au ulong array, aA attribute array, M mechanism, fy/fu/fA
// buffers the server fills, P mechanism parameter update.

/// The protocol versions a server answers in the handshake byte.
public enum RPCProtocolVersion {
    /// p11-kit 0.24.1 and older: calls 1-65 only.
    public static let original: UInt8 = 0
    /// p11-kit 0.25.0: C_InitToken2; the 3.0 calls (66-87) arrived in the same release.
    public static let initToken2: UInt8 = 1
    /// p11-kit 0.25.6: C_DeriveKey2.
    public static let deriveKey2: UInt8 = 2
    /// What we ask for; the server answers min(this, its own).
    public static let newest: UInt8 = 2
}

struct RPCCall: Equatable, Sendable {
    let id: UInt32
    let name: StaticString
    let request: StaticString
    let response: StaticString
    /// The lowest negotiated version whose servers know this call.
    let minimumVersion: UInt8

    init(id: UInt32, name: StaticString, request: StaticString, response: StaticString, minimumVersion: UInt8) {
        self.id = id
        self.name = name
        self.request = request
        self.response = response
        self.minimumVersion = minimumVersion
    }

    static func == (lhs: RPCCall, rhs: RPCCall) -> Bool { lhs.id == rhs.id }

    /// The error reply: call id 0 and one CK_RV (rpc-message.h, P11_RPC_CALL_ERROR).
    static let error = RPCCall(id: 0, name: "ERROR", request: "", response: "u", minimumVersion: 0)

    static let initialize = RPCCall(id: 1, name: "C_Initialize", request: "ayyay", response: "", minimumVersion: 0)
    static let finalize = RPCCall(id: 2, name: "C_Finalize", request: "", response: "", minimumVersion: 0)
    static let getInfo = RPCCall(id: 3, name: "C_GetInfo", request: "", response: "vsusv", minimumVersion: 0)
    static let getSlotList = RPCCall(id: 4, name: "C_GetSlotList", request: "yfu", response: "au", minimumVersion: 0)
    static let getSlotInfo = RPCCall(id: 5, name: "C_GetSlotInfo", request: "u", response: "ssuvv", minimumVersion: 0)
    static let getTokenInfo = RPCCall(id: 6, name: "C_GetTokenInfo", request: "u", response: "ssssuuuuuuuuuuuvvs", minimumVersion: 0)
    static let getMechanismList = RPCCall(id: 7, name: "C_GetMechanismList", request: "ufu", response: "au", minimumVersion: 0)
    static let getMechanismInfo = RPCCall(id: 8, name: "C_GetMechanismInfo", request: "uu", response: "uuu", minimumVersion: 0)
    static let initToken = RPCCall(id: 9, name: "C_InitToken", request: "uayz", response: "", minimumVersion: 0)
    static let openSession = RPCCall(id: 10, name: "C_OpenSession", request: "uu", response: "u", minimumVersion: 0)
    static let closeSession = RPCCall(id: 11, name: "C_CloseSession", request: "u", response: "", minimumVersion: 0)
    static let closeAllSessions = RPCCall(id: 12, name: "C_CloseAllSessions", request: "u", response: "", minimumVersion: 0)
    static let getSessionInfo = RPCCall(id: 13, name: "C_GetSessionInfo", request: "u", response: "uuuu", minimumVersion: 0)
    static let initPIN = RPCCall(id: 14, name: "C_InitPIN", request: "uay", response: "", minimumVersion: 0)
    static let setPIN = RPCCall(id: 15, name: "C_SetPIN", request: "uayay", response: "", minimumVersion: 0)
    static let getOperationState = RPCCall(id: 16, name: "C_GetOperationState", request: "ufy", response: "ay", minimumVersion: 0)
    static let setOperationState = RPCCall(id: 17, name: "C_SetOperationState", request: "uayuu", response: "", minimumVersion: 0)
    static let login = RPCCall(id: 18, name: "C_Login", request: "uuay", response: "", minimumVersion: 0)
    static let logout = RPCCall(id: 19, name: "C_Logout", request: "u", response: "", minimumVersion: 0)
    static let createObject = RPCCall(id: 20, name: "C_CreateObject", request: "uaA", response: "u", minimumVersion: 0)
    static let copyObject = RPCCall(id: 21, name: "C_CopyObject", request: "uuaA", response: "u", minimumVersion: 0)
    static let destroyObject = RPCCall(id: 22, name: "C_DestroyObject", request: "uu", response: "", minimumVersion: 0)
    static let getObjectSize = RPCCall(id: 23, name: "C_GetObjectSize", request: "uu", response: "u", minimumVersion: 0)
    static let getAttributeValue = RPCCall(id: 24, name: "C_GetAttributeValue", request: "uufA", response: "aAu", minimumVersion: 0)
    static let setAttributeValue = RPCCall(id: 25, name: "C_SetAttributeValue", request: "uuaA", response: "", minimumVersion: 0)
    static let findObjectsInit = RPCCall(id: 26, name: "C_FindObjectsInit", request: "uaA", response: "", minimumVersion: 0)
    static let findObjects = RPCCall(id: 27, name: "C_FindObjects", request: "ufu", response: "au", minimumVersion: 0)
    static let findObjectsFinal = RPCCall(id: 28, name: "C_FindObjectsFinal", request: "u", response: "", minimumVersion: 0)
    static let encryptInit = RPCCall(id: 29, name: "C_EncryptInit", request: "uMu", response: "", minimumVersion: 0)
    static let encrypt = RPCCall(id: 30, name: "C_Encrypt", request: "uayfy", response: "ay", minimumVersion: 0)
    static let encryptUpdate = RPCCall(id: 31, name: "C_EncryptUpdate", request: "uayfy", response: "ay", minimumVersion: 0)
    static let encryptFinal = RPCCall(id: 32, name: "C_EncryptFinal", request: "ufy", response: "ay", minimumVersion: 0)
    static let decryptInit = RPCCall(id: 33, name: "C_DecryptInit", request: "uMu", response: "", minimumVersion: 0)
    static let decrypt = RPCCall(id: 34, name: "C_Decrypt", request: "uayfy", response: "ay", minimumVersion: 0)
    static let decryptUpdate = RPCCall(id: 35, name: "C_DecryptUpdate", request: "uayfy", response: "ay", minimumVersion: 0)
    static let decryptFinal = RPCCall(id: 36, name: "C_DecryptFinal", request: "ufy", response: "ay", minimumVersion: 0)
    static let digestInit = RPCCall(id: 37, name: "C_DigestInit", request: "uM", response: "", minimumVersion: 0)
    static let digest = RPCCall(id: 38, name: "C_Digest", request: "uayfy", response: "ay", minimumVersion: 0)
    static let digestUpdate = RPCCall(id: 39, name: "C_DigestUpdate", request: "uay", response: "", minimumVersion: 0)
    static let digestKey = RPCCall(id: 40, name: "C_DigestKey", request: "uu", response: "", minimumVersion: 0)
    static let digestFinal = RPCCall(id: 41, name: "C_DigestFinal", request: "ufy", response: "ay", minimumVersion: 0)
    static let signInit = RPCCall(id: 42, name: "C_SignInit", request: "uMu", response: "", minimumVersion: 0)
    static let sign = RPCCall(id: 43, name: "C_Sign", request: "uayfy", response: "ay", minimumVersion: 0)
    static let signUpdate = RPCCall(id: 44, name: "C_SignUpdate", request: "uay", response: "", minimumVersion: 0)
    static let signFinal = RPCCall(id: 45, name: "C_SignFinal", request: "ufy", response: "ay", minimumVersion: 0)
    static let signRecoverInit = RPCCall(id: 46, name: "C_SignRecoverInit", request: "uMu", response: "", minimumVersion: 0)
    static let signRecover = RPCCall(id: 47, name: "C_SignRecover", request: "uayfy", response: "ay", minimumVersion: 0)
    static let verifyInit = RPCCall(id: 48, name: "C_VerifyInit", request: "uMu", response: "", minimumVersion: 0)
    static let verify = RPCCall(id: 49, name: "C_Verify", request: "uayay", response: "", minimumVersion: 0)
    static let verifyUpdate = RPCCall(id: 50, name: "C_VerifyUpdate", request: "uay", response: "", minimumVersion: 0)
    static let verifyFinal = RPCCall(id: 51, name: "C_VerifyFinal", request: "uay", response: "", minimumVersion: 0)
    static let verifyRecoverInit = RPCCall(id: 52, name: "C_VerifyRecoverInit", request: "uMu", response: "", minimumVersion: 0)
    static let verifyRecover = RPCCall(id: 53, name: "C_VerifyRecover", request: "uayfy", response: "ay", minimumVersion: 0)
    static let digestEncryptUpdate = RPCCall(id: 54, name: "C_DigestEncryptUpdate", request: "uayfy", response: "ay", minimumVersion: 0)
    static let decryptDigestUpdate = RPCCall(id: 55, name: "C_DecryptDigestUpdate", request: "uayfy", response: "ay", minimumVersion: 0)
    static let signEncryptUpdate = RPCCall(id: 56, name: "C_SignEncryptUpdate", request: "uayfy", response: "ay", minimumVersion: 0)
    static let decryptVerifyUpdate = RPCCall(id: 57, name: "C_DecryptVerifyUpdate", request: "uayfy", response: "ay", minimumVersion: 0)
    static let generateKey = RPCCall(id: 58, name: "C_GenerateKey", request: "uMaA", response: "u", minimumVersion: 0)
    static let generateKeyPair = RPCCall(id: 59, name: "C_GenerateKeyPair", request: "uMaAaA", response: "uu", minimumVersion: 0)
    static let wrapKey = RPCCall(id: 60, name: "C_WrapKey", request: "uMuufy", response: "ay", minimumVersion: 0)
    static let unwrapKey = RPCCall(id: 61, name: "C_UnwrapKey", request: "uMuayaA", response: "u", minimumVersion: 0)
    static let deriveKey = RPCCall(id: 62, name: "C_DeriveKey", request: "uMuaA", response: "u", minimumVersion: 0)
    static let seedRandom = RPCCall(id: 63, name: "C_SeedRandom", request: "uay", response: "", minimumVersion: 0)
    static let generateRandom = RPCCall(id: 64, name: "C_GenerateRandom", request: "ufy", response: "ay", minimumVersion: 0)
    static let waitForSlotEvent = RPCCall(id: 65, name: "C_WaitForSlotEvent", request: "u", response: "u", minimumVersion: 0)
    static let loginUser = RPCCall(id: 66, name: "C_LoginUser", request: "uuayay", response: "", minimumVersion: 1)
    static let sessionCancel = RPCCall(id: 67, name: "C_SessionCancel", request: "uu", response: "", minimumVersion: 1)
    static let messageEncryptInit = RPCCall(id: 68, name: "C_MessageEncryptInit", request: "uMu", response: "", minimumVersion: 1)
    static let encryptMessage = RPCCall(id: 69, name: "C_EncryptMessage", request: "uayayayfy", response: "ay", minimumVersion: 1)
    static let encryptMessageBegin = RPCCall(id: 70, name: "C_EncryptMessageBegin", request: "uayay", response: "", minimumVersion: 1)
    static let encryptMessageNext = RPCCall(id: 71, name: "C_EncryptMessageNext", request: "uayayfyu", response: "ay", minimumVersion: 1)
    static let messageEncryptFinal = RPCCall(id: 72, name: "C_MessageEncryptFinal", request: "u", response: "", minimumVersion: 1)
    static let messageDecryptInit = RPCCall(id: 73, name: "C_MessageDecryptInit", request: "uMu", response: "", minimumVersion: 1)
    static let decryptMessage = RPCCall(id: 74, name: "C_DecryptMessage", request: "uayayayfy", response: "ay", minimumVersion: 1)
    static let decryptMessageBegin = RPCCall(id: 75, name: "C_DecryptMessageBegin", request: "uayay", response: "", minimumVersion: 1)
    static let decryptMessageNext = RPCCall(id: 76, name: "C_DecryptMessageNext", request: "uayayfyu", response: "ay", minimumVersion: 1)
    static let messageDecryptFinal = RPCCall(id: 77, name: "C_MessageDecryptFinal", request: "u", response: "", minimumVersion: 1)
    static let messageSignInit = RPCCall(id: 78, name: "C_MessageSignInit", request: "uMu", response: "", minimumVersion: 1)
    static let signMessage = RPCCall(id: 79, name: "C_SignMessage", request: "uayayfy", response: "ay", minimumVersion: 1)
    static let signMessageBegin = RPCCall(id: 80, name: "C_SignMessageBegin", request: "uay", response: "", minimumVersion: 1)
    static let signMessageNext = RPCCall(id: 81, name: "C_SignMessageNext", request: "uayayyfy", response: "ay", minimumVersion: 1)
    static let messageSignFinal = RPCCall(id: 82, name: "C_MessageSignFinal", request: "u", response: "", minimumVersion: 1)
    static let messageVerifyInit = RPCCall(id: 83, name: "C_MessageVerifyInit", request: "uMu", response: "", minimumVersion: 1)
    static let verifyMessage = RPCCall(id: 84, name: "C_VerifyMessage", request: "uayayay", response: "", minimumVersion: 1)
    static let verifyMessageBegin = RPCCall(id: 85, name: "C_VerifyMessageBegin", request: "uay", response: "", minimumVersion: 1)
    static let verifyMessageNext = RPCCall(id: 86, name: "C_VerifyMessageNext", request: "uayayay", response: "", minimumVersion: 1)
    static let messageVerifyFinal = RPCCall(id: 87, name: "C_MessageVerifyFinal", request: "u", response: "", minimumVersion: 1)
    static let initToken2 = RPCCall(id: 88, name: "C_InitToken2", request: "uays", response: "", minimumVersion: 1)
    static let deriveKey2 = RPCCall(id: 89, name: "C_DeriveKey2", request: "uMuaA", response: "uPu", minimumVersion: 2)

    /// Every call by id (index = id - 1).
    static let all: [RPCCall] = [
        initialize, finalize, getInfo, getSlotList, getSlotInfo, getTokenInfo,
        getMechanismList, getMechanismInfo, initToken, openSession, closeSession, closeAllSessions,
        getSessionInfo, initPIN, setPIN, getOperationState, setOperationState, login,
        logout, createObject, copyObject, destroyObject, getObjectSize, getAttributeValue,
        setAttributeValue, findObjectsInit, findObjects, findObjectsFinal, encryptInit, encrypt,
        encryptUpdate, encryptFinal, decryptInit, decrypt, decryptUpdate, decryptFinal,
        digestInit, digest, digestUpdate, digestKey, digestFinal, signInit,
        sign, signUpdate, signFinal, signRecoverInit, signRecover, verifyInit,
        verify, verifyUpdate, verifyFinal, verifyRecoverInit, verifyRecover, digestEncryptUpdate,
        decryptDigestUpdate, signEncryptUpdate, decryptVerifyUpdate, generateKey, generateKeyPair, wrapKey,
        unwrapKey, deriveKey, seedRandom, generateRandom, waitForSlotEvent, loginUser,
        sessionCancel, messageEncryptInit, encryptMessage, encryptMessageBegin, encryptMessageNext, messageEncryptFinal,
        messageDecryptInit, decryptMessage, decryptMessageBegin, decryptMessageNext, messageDecryptFinal, messageSignInit,
        signMessage, signMessageBegin, signMessageNext, messageSignFinal, messageVerifyInit, verifyMessage,
        verifyMessageBegin, verifyMessageNext, messageVerifyFinal, initToken2, deriveKey2,
    ]
}

extension StaticString {
    /// The signature's bytes, for comparing with what came over the wire.
    var bytes: UnsafeBufferPointer<UInt8> { UnsafeBufferPointer(start: utf8Start, count: utf8CodeUnitCount) }
}
