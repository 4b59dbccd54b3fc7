/* pkcs11_3_2.h: the PKCS#11 3.1 and 3.2 additions, written from the OASIS "PKCS #11
 * Specification Version 3.2" (2025) and its published headers (oasis-tcs/pkcs11,
 * published/3-02/pkcs11f.h and pkcs11t.h): the twelve 3.2 functions, CK_FUNCTION_LIST_3_2,
 * the structures they and the post-quantum mechanisms take, and the 3.1/3.2 constants.
 * 3.1 added constants only. Numbers are OASIS's: p11-kit 0.26's header declares
 * C_DecapsulateKey with a pointer for ulCiphertextLen, and OASIS passes it by value.
 * Guarded so a newer system header that already defines them wins. */
#ifndef P11PROXY_PKCS11_3_2_H
#define P11PROXY_PKCS11_3_2_H

#include "pkcs11_3_0.h"

/* Return values (3.2 section 5.1). */
#ifndef CKR_PENDING
#define CKR_KEY_EXHAUSTED               (0x00000203UL)
#define CKR_PENDING                     (0x00000204UL)
#define CKR_SESSION_ASYNC_NOT_SUPPORTED (0x00000205UL)
#define CKR_SEED_RANDOM_REQUIRED        (0x00000206UL)
#define CKR_OPERATION_NOT_VALIDATED     (0x00000207UL)
#define CKR_TOKEN_NOT_INITIALIZED       (0x00000208UL)
#define CKR_PARAMETER_SET_NOT_SUPPORTED (0x00000209UL)
#endif

/* Token flags (CK_TOKEN_INFO.flags). */
#ifndef CKF_ASYNC_SESSION_SUPPORTED
#define CKF_SEED_RANDOM_REQUIRED    (0x02000000UL)
#define CKF_ASYNC_SESSION_SUPPORTED (0x04000000UL)
#endif

/* Session flags: C_OpenSession's CKF_ASYNC_SESSION. */
#ifndef CKF_ASYNC_SESSION
#define CKF_ASYNC_SESSION (0x00000008UL)
#endif

/* Mechanism flags (CK_MECHANISM_INFO.flags). */
#ifndef CKF_ENCAPSULATE
#define CKF_ENCAPSULATE (0x10000000UL)
#define CKF_DECAPSULATE (0x20000000UL)
#endif

/* Object classes. */
#ifndef CKO_VALIDATION
#define CKO_VALIDATION (0x0000000AUL)
#define CKO_TRUST      (0x0000000BUL)
#endif

/* Profile IDs. */
#ifndef CKP_COMPLETE_PROVIDER
#define CKP_COMPLETE_PROVIDER (0x00000005UL)
#define CKP_HKDF_TLS_TOKEN    (0x00000006UL)
#endif

/* Key types. */
#ifndef CKK_ML_KEM
#define CKK_HSS     (0x00000046UL)
#define CKK_XMSS    (0x00000047UL)
#define CKK_XMSSMT  (0x00000048UL)
#define CKK_ML_KEM  (0x00000049UL)
#define CKK_ML_DSA  (0x0000004AUL)
#define CKK_SLH_DSA (0x0000004BUL)
#endif

/* Attributes. */
#ifndef CKA_PARAMETER_SET
#define CKA_HSS_LEVELS                        (0x00000617UL)
#define CKA_HSS_LMS_TYPE                      (0x00000618UL)
#define CKA_HSS_LMOTS_TYPE                    (0x00000619UL)
#define CKA_HSS_LMS_TYPES                     (0x0000061AUL)
#define CKA_HSS_LMOTS_TYPES                   (0x0000061BUL)
#define CKA_HSS_KEYS_REMAINING                (0x0000061CUL)
#define CKA_PARAMETER_SET                     (0x0000061DUL)
#define CKA_OBJECT_VALIDATION_FLAGS           (0x0000061EUL)
#define CKA_VALIDATION_TYPE                   (0x0000061FUL)
#define CKA_VALIDATION_VERSION                (0x00000620UL)
#define CKA_VALIDATION_LEVEL                  (0x00000621UL)
#define CKA_VALIDATION_MODULE_ID              (0x00000622UL)
#define CKA_VALIDATION_FLAG                   (0x00000623UL)
#define CKA_VALIDATION_AUTHORITY_TYPE         (0x00000624UL)
#define CKA_VALIDATION_COUNTRY                (0x00000625UL)
#define CKA_VALIDATION_CERTIFICATE_IDENTIFIER (0x00000626UL)
#define CKA_VALIDATION_CERTIFICATE_URI        (0x00000627UL)
#define CKA_VALIDATION_VENDOR_URI             (0x00000628UL)
#define CKA_VALIDATION_PROFILE                (0x00000629UL)
#define CKA_ENCAPSULATE_TEMPLATE              (0x0000062AUL)
#define CKA_DECAPSULATE_TEMPLATE              (0x0000062BUL)
#define CKA_TRUST_SERVER_AUTH                 (0x0000062CUL)
#define CKA_TRUST_CLIENT_AUTH                 (0x0000062DUL)
#define CKA_TRUST_CODE_SIGNING                (0x0000062EUL)
#define CKA_TRUST_EMAIL_PROTECTION            (0x0000062FUL)
#define CKA_TRUST_IPSEC_IKE                   (0x00000630UL)
#define CKA_TRUST_TIME_STAMPING               (0x00000631UL)
#define CKA_TRUST_OCSP_SIGNING                (0x00000632UL)
#define CKA_ENCAPSULATE                       (0x00000633UL)
#define CKA_DECAPSULATE                       (0x00000634UL)
#define CKA_HASH_OF_CERTIFICATE               (0x00000635UL)
#define CKA_PUBLIC_CRC64_VALUE                (0x00000636UL)
#define CKA_SEED                              (0x00000637UL)
#endif

/* Mechanisms (3.1 and 3.2); CKM_TLS10_MAC_SERVER/CLIENT, which the 3.0 header lacked, come
 * with p11-kit's 2.40 header. */
#ifndef CKM_ML_KEM
#define CKM_AES_KEY_WRAP_PKCS7                  (0x0000210CUL)
#define CKM_IKE2_PRF_PLUS_DERIVE                (0x0000402EUL)
#define CKM_IKE_PRF_DERIVE                      (0x0000402FUL)
#define CKM_IKE1_PRF_DERIVE                     (0x00004030UL)
#define CKM_IKE1_EXTENDED_DERIVE                (0x00004031UL)
#define CKM_HSS_KEY_PAIR_GEN                    (0x00004032UL)
#define CKM_HSS                                 (0x00004033UL)
#define CKM_XMSS_KEY_PAIR_GEN                   (0x00004034UL)
#define CKM_XMSSMT_KEY_PAIR_GEN                 (0x00004035UL)
#define CKM_XMSS                                (0x00004036UL)
#define CKM_XMSSMT                              (0x00004037UL)
#define CKM_ECDH_X_AES_KEY_WRAP                 (0x00004038UL)
#define CKM_ECDH_COF_AES_KEY_WRAP               (0x00004039UL)
#define CKM_PUB_KEY_FROM_PRIV_KEY               (0x0000403AUL)
#define CKM_ML_KEM_KEY_PAIR_GEN                 (0x0000000FUL)
#define CKM_ML_KEM                              (0x00000017UL)
#define CKM_ML_DSA_KEY_PAIR_GEN                 (0x0000001CUL)
#define CKM_ML_DSA                              (0x0000001DUL)
#define CKM_HASH_ML_DSA                         (0x0000001FUL)
#define CKM_HASH_ML_DSA_SHA224                  (0x00000023UL)
#define CKM_HASH_ML_DSA_SHA256                  (0x00000024UL)
#define CKM_HASH_ML_DSA_SHA384                  (0x00000025UL)
#define CKM_HASH_ML_DSA_SHA512                  (0x00000026UL)
#define CKM_HASH_ML_DSA_SHA3_224                (0x00000027UL)
#define CKM_HASH_ML_DSA_SHA3_256                (0x00000028UL)
#define CKM_HASH_ML_DSA_SHA3_384                (0x00000029UL)
#define CKM_HASH_ML_DSA_SHA3_512                (0x0000002AUL)
#define CKM_HASH_ML_DSA_SHAKE128                (0x0000002BUL)
#define CKM_HASH_ML_DSA_SHAKE256                (0x0000002CUL)
#define CKM_SLH_DSA_KEY_PAIR_GEN                (0x0000002DUL)
#define CKM_SLH_DSA                             (0x0000002EUL)
#define CKM_HASH_SLH_DSA                        (0x00000034UL)
#define CKM_HASH_SLH_DSA_SHA224                 (0x00000036UL)
#define CKM_HASH_SLH_DSA_SHA256                 (0x00000037UL)
#define CKM_HASH_SLH_DSA_SHA384                 (0x00000038UL)
#define CKM_HASH_SLH_DSA_SHA512                 (0x00000039UL)
#define CKM_HASH_SLH_DSA_SHA3_224               (0x0000003AUL)
#define CKM_HASH_SLH_DSA_SHA3_256               (0x0000003BUL)
#define CKM_HASH_SLH_DSA_SHA3_384               (0x0000003CUL)
#define CKM_HASH_SLH_DSA_SHA3_512               (0x0000003DUL)
#define CKM_HASH_SLH_DSA_SHAKE128               (0x0000003EUL)
#define CKM_HASH_SLH_DSA_SHAKE256               (0x0000003FUL)
#define CKM_TLS12_EXTENDED_MASTER_KEY_DERIVE    (0x00000056UL)
#define CKM_TLS12_EXTENDED_MASTER_KEY_DERIVE_DH (0x00000057UL)
#endif

/* Generator functions of GCM/CCM IVs (3.1). */
#ifndef CKG_GENERATE_COUNTER_XOR
#define CKG_GENERATE_COUNTER_XOR (0x00000004UL)
#endif

/* CK_SESSION_VALIDATION_FLAGS_TYPE values (C_GetSessionValidationFlags). */
#ifndef CKS_LAST_VALIDATION_OK
#define CKS_LAST_VALIDATION_OK (0x00000001UL)
#endif

/* CK_VALIDATION_AUTHORITY_TYPE and CK_VALIDATION_TYPE values (CKO_VALIDATION objects). */
#ifndef CKV_TYPE_HYBRID
#define CKV_AUTHORITY_TYPE_UNSPECIFIED     (0x00000000UL)
#define CKV_AUTHORITY_TYPE_NIST_CMVP       (0x00000001UL)
#define CKV_AUTHORITY_TYPE_COMMON_CRITERIA (0x00000002UL)
#define CKV_TYPE_UNSPECIFIED               (0x00000000UL)
#define CKV_TYPE_SOFTWARE                  (0x00000001UL)
#define CKV_TYPE_HARDWARE                  (0x00000002UL)
#define CKV_TYPE_FIRMWARE                  (0x00000003UL)
#define CKV_TYPE_HYBRID                    (0x00000004UL)
#endif

/* CK_HEDGE_TYPE: the hedge variant of ML-DSA and SLH-DSA signatures. */
#ifndef CKH_HEDGE_PREFERRED
#define CKH_HEDGE_PREFERRED        (0x00000000UL)
#define CKH_HEDGE_REQUIRED         (0x00000001UL)
#define CKH_DETERMINISTIC_REQUIRED (0x00000002UL)
#endif

/* Parameter sets (CKA_PARAMETER_SET) of ML-DSA keys. */
#ifndef CKP_ML_DSA_44
#define CKP_ML_DSA_44 (0x00000001UL)
#define CKP_ML_DSA_65 (0x00000002UL)
#define CKP_ML_DSA_87 (0x00000003UL)
#endif

/* Parameter sets of SLH-DSA keys. */
#ifndef CKP_SLH_DSA_SHA2_128S
#define CKP_SLH_DSA_SHA2_128S  (0x00000001UL)
#define CKP_SLH_DSA_SHAKE_128S (0x00000002UL)
#define CKP_SLH_DSA_SHA2_128F  (0x00000003UL)
#define CKP_SLH_DSA_SHAKE_128F (0x00000004UL)
#define CKP_SLH_DSA_SHA2_192S  (0x00000005UL)
#define CKP_SLH_DSA_SHAKE_192S (0x00000006UL)
#define CKP_SLH_DSA_SHA2_192F  (0x00000007UL)
#define CKP_SLH_DSA_SHAKE_192F (0x00000008UL)
#define CKP_SLH_DSA_SHA2_256S  (0x00000009UL)
#define CKP_SLH_DSA_SHAKE_256S (0x0000000AUL)
#define CKP_SLH_DSA_SHA2_256F  (0x0000000BUL)
#define CKP_SLH_DSA_SHAKE_256F (0x0000000CUL)
#endif

/* Parameter sets of ML-KEM keys. */
#ifndef CKP_ML_KEM_512
#define CKP_ML_KEM_512  (0x00000001UL)
#define CKP_ML_KEM_768  (0x00000002UL)
#define CKP_ML_KEM_1024 (0x00000003UL)
#endif

/* CK_TRUST values (CKA_TRUST_* of CKO_TRUST objects). */
#ifndef CKT_TRUSTED
#define CKT_TRUST_UNKNOWN           (0x00000000UL)
#define CKT_TRUSTED                 (0x00000001UL)
#define CKT_TRUST_ANCHOR            (0x00000002UL)
#define CKT_NOT_TRUSTED             (0x00000003UL)
#define CKT_TRUST_MUST_VERIFY_TRUST (0x00000004UL)
#endif

/* Types of the 3.2 functions and mechanisms. */
typedef CK_ULONG *CK_FLAGS_PTR;
typedef CK_ULONG CK_SESSION_VALIDATION_FLAGS_TYPE;
typedef CK_ULONG CK_HEDGE_TYPE;
typedef CK_ULONG CK_ML_DSA_PARAMETER_SET_TYPE;
typedef CK_ULONG CK_SLH_DSA_PARAMETER_SET_TYPE;
typedef CK_ULONG CK_ML_KEM_PARAMETER_SET_TYPE;
typedef CK_ULONG CK_TRUST;

/* C_AsyncComplete's result: what a pending operation produced. */
typedef struct CK_ASYNC_DATA {
    CK_ULONG ulVersion;
    CK_BYTE_PTR pValue;
    CK_ULONG ulValue;
    CK_OBJECT_HANDLE hObject;
    CK_OBJECT_HANDLE hAdditionalObject;
} CK_ASYNC_DATA;
typedef CK_ASYNC_DATA *CK_ASYNC_DATA_PTR;

/* The parameter of CKM_ML_DSA, CKM_SLH_DSA and their pre-hash variants with a fixed hash
 * (CKM_HASH_ML_DSA_SHA256...). */
typedef struct CK_SIGN_ADDITIONAL_CONTEXT {
    CK_HEDGE_TYPE hedgeVariant;
    CK_BYTE_PTR pContext;
    CK_ULONG ulContextLen;
} CK_SIGN_ADDITIONAL_CONTEXT;
typedef CK_SIGN_ADDITIONAL_CONTEXT *CK_SIGN_ADDITIONAL_CONTEXT_PTR;

/* The parameter of CKM_HASH_ML_DSA and CKM_HASH_SLH_DSA: the hash is named in it. */
typedef struct CK_HASH_SIGN_ADDITIONAL_CONTEXT {
    CK_HEDGE_TYPE hedgeVariant;
    CK_BYTE_PTR pContext;
    CK_ULONG ulContextLen;
    CK_MECHANISM_TYPE hash;
} CK_HASH_SIGN_ADDITIONAL_CONTEXT;
typedef CK_HASH_SIGN_ADDITIONAL_CONTEXT *CK_HASH_SIGN_ADDITIONAL_CONTEXT_PTR;

/* The twelve 3.2 functions (pkcs11f.h after CK_PKCS11_3_0_ONLY). */
typedef CK_RV (*CK_C_EncapsulateKey)(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                                     CK_OBJECT_HANDLE hPublicKey, CK_ATTRIBUTE_PTR pTemplate,
                                     CK_ULONG ulAttributeCount, CK_BYTE_PTR pCiphertext,
                                     CK_ULONG_PTR pulCiphertextLen, CK_OBJECT_HANDLE_PTR phKey);
typedef CK_RV (*CK_C_DecapsulateKey)(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                                     CK_OBJECT_HANDLE hPrivateKey, CK_ATTRIBUTE_PTR pTemplate,
                                     CK_ULONG ulAttributeCount, CK_BYTE_PTR pCiphertext,
                                     CK_ULONG ulCiphertextLen, CK_OBJECT_HANDLE_PTR phKey);
typedef CK_RV (*CK_C_VerifySignatureInit)(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                                          CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pSignature,
                                          CK_ULONG ulSignatureLen);
typedef CK_RV (*CK_C_VerifySignature)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData,
                                      CK_ULONG ulDataLen);
typedef CK_RV (*CK_C_VerifySignatureUpdate)(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart,
                                            CK_ULONG ulPartLen);
typedef CK_RV (*CK_C_VerifySignatureFinal)(CK_SESSION_HANDLE hSession);
typedef CK_RV (*CK_C_GetSessionValidationFlags)(CK_SESSION_HANDLE hSession,
                                                CK_SESSION_VALIDATION_FLAGS_TYPE type,
                                                CK_FLAGS_PTR pFlags);
typedef CK_RV (*CK_C_AsyncComplete)(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pFunctionName,
                                    CK_ASYNC_DATA_PTR pResult);
typedef CK_RV (*CK_C_AsyncGetID)(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pFunctionName,
                                 CK_ULONG_PTR pulID);
typedef CK_RV (*CK_C_AsyncJoin)(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pFunctionName,
                                CK_ULONG ulID, CK_BYTE_PTR pData, CK_ULONG ulData);
typedef CK_RV (*CK_C_WrapKeyAuthenticated)(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                                           CK_OBJECT_HANDLE hWrappingKey, CK_OBJECT_HANDLE hKey,
                                           CK_BYTE_PTR pAssociatedData,
                                           CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pWrappedKey,
                                           CK_ULONG_PTR pulWrappedKeyLen);
typedef CK_RV (*CK_C_UnwrapKeyAuthenticated)(CK_SESSION_HANDLE hSession,
                                             CK_MECHANISM_PTR pMechanism,
                                             CK_OBJECT_HANDLE hUnwrappingKey,
                                             CK_BYTE_PTR pWrappedKey, CK_ULONG ulWrappedKeyLen,
                                             CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount,
                                             CK_BYTE_PTR pAssociatedData,
                                             CK_ULONG ulAssociatedDataLen,
                                             CK_OBJECT_HANDLE_PTR phKey);

/* pkcs11.h: the 3.2 list is the 3.0 list (same order) followed by the twelve entries, so a
 * caller holding it as a 3.0 or 2.40 list reads a valid prefix. */
typedef struct CK_FUNCTION_LIST_3_2 {
    CK_VERSION version;
    CK_C_Initialize C_Initialize;
    CK_C_Finalize C_Finalize;
    CK_C_GetInfo C_GetInfo;
    CK_C_GetFunctionList C_GetFunctionList;
    CK_C_GetSlotList C_GetSlotList;
    CK_C_GetSlotInfo C_GetSlotInfo;
    CK_C_GetTokenInfo C_GetTokenInfo;
    CK_C_GetMechanismList C_GetMechanismList;
    CK_C_GetMechanismInfo C_GetMechanismInfo;
    CK_C_InitToken C_InitToken;
    CK_C_InitPIN C_InitPIN;
    CK_C_SetPIN C_SetPIN;
    CK_C_OpenSession C_OpenSession;
    CK_C_CloseSession C_CloseSession;
    CK_C_CloseAllSessions C_CloseAllSessions;
    CK_C_GetSessionInfo C_GetSessionInfo;
    CK_C_GetOperationState C_GetOperationState;
    CK_C_SetOperationState C_SetOperationState;
    CK_C_Login C_Login;
    CK_C_Logout C_Logout;
    CK_C_CreateObject C_CreateObject;
    CK_C_CopyObject C_CopyObject;
    CK_C_DestroyObject C_DestroyObject;
    CK_C_GetObjectSize C_GetObjectSize;
    CK_C_GetAttributeValue C_GetAttributeValue;
    CK_C_SetAttributeValue C_SetAttributeValue;
    CK_C_FindObjectsInit C_FindObjectsInit;
    CK_C_FindObjects C_FindObjects;
    CK_C_FindObjectsFinal C_FindObjectsFinal;
    CK_C_EncryptInit C_EncryptInit;
    CK_C_Encrypt C_Encrypt;
    CK_C_EncryptUpdate C_EncryptUpdate;
    CK_C_EncryptFinal C_EncryptFinal;
    CK_C_DecryptInit C_DecryptInit;
    CK_C_Decrypt C_Decrypt;
    CK_C_DecryptUpdate C_DecryptUpdate;
    CK_C_DecryptFinal C_DecryptFinal;
    CK_C_DigestInit C_DigestInit;
    CK_C_Digest C_Digest;
    CK_C_DigestUpdate C_DigestUpdate;
    CK_C_DigestKey C_DigestKey;
    CK_C_DigestFinal C_DigestFinal;
    CK_C_SignInit C_SignInit;
    CK_C_Sign C_Sign;
    CK_C_SignUpdate C_SignUpdate;
    CK_C_SignFinal C_SignFinal;
    CK_C_SignRecoverInit C_SignRecoverInit;
    CK_C_SignRecover C_SignRecover;
    CK_C_VerifyInit C_VerifyInit;
    CK_C_Verify C_Verify;
    CK_C_VerifyUpdate C_VerifyUpdate;
    CK_C_VerifyFinal C_VerifyFinal;
    CK_C_VerifyRecoverInit C_VerifyRecoverInit;
    CK_C_VerifyRecover C_VerifyRecover;
    CK_C_DigestEncryptUpdate C_DigestEncryptUpdate;
    CK_C_DecryptDigestUpdate C_DecryptDigestUpdate;
    CK_C_SignEncryptUpdate C_SignEncryptUpdate;
    CK_C_DecryptVerifyUpdate C_DecryptVerifyUpdate;
    CK_C_GenerateKey C_GenerateKey;
    CK_C_GenerateKeyPair C_GenerateKeyPair;
    CK_C_WrapKey C_WrapKey;
    CK_C_UnwrapKey C_UnwrapKey;
    CK_C_DeriveKey C_DeriveKey;
    CK_C_SeedRandom C_SeedRandom;
    CK_C_GenerateRandom C_GenerateRandom;
    CK_C_GetFunctionStatus C_GetFunctionStatus;
    CK_C_CancelFunction C_CancelFunction;
    CK_C_WaitForSlotEvent C_WaitForSlotEvent;
    CK_C_GetInterfaceList C_GetInterfaceList;
    CK_C_GetInterface C_GetInterface;
    CK_C_LoginUser C_LoginUser;
    CK_C_SessionCancel C_SessionCancel;
    CK_C_MessageEncryptInit C_MessageEncryptInit;
    CK_C_EncryptMessage C_EncryptMessage;
    CK_C_EncryptMessageBegin C_EncryptMessageBegin;
    CK_C_EncryptMessageNext C_EncryptMessageNext;
    CK_C_MessageEncryptFinal C_MessageEncryptFinal;
    CK_C_MessageDecryptInit C_MessageDecryptInit;
    CK_C_DecryptMessage C_DecryptMessage;
    CK_C_DecryptMessageBegin C_DecryptMessageBegin;
    CK_C_DecryptMessageNext C_DecryptMessageNext;
    CK_C_MessageDecryptFinal C_MessageDecryptFinal;
    CK_C_MessageSignInit C_MessageSignInit;
    CK_C_SignMessage C_SignMessage;
    CK_C_SignMessageBegin C_SignMessageBegin;
    CK_C_SignMessageNext C_SignMessageNext;
    CK_C_MessageSignFinal C_MessageSignFinal;
    CK_C_MessageVerifyInit C_MessageVerifyInit;
    CK_C_VerifyMessage C_VerifyMessage;
    CK_C_VerifyMessageBegin C_VerifyMessageBegin;
    CK_C_VerifyMessageNext C_VerifyMessageNext;
    CK_C_MessageVerifyFinal C_MessageVerifyFinal;
    CK_C_EncapsulateKey C_EncapsulateKey;
    CK_C_DecapsulateKey C_DecapsulateKey;
    CK_C_VerifySignatureInit C_VerifySignatureInit;
    CK_C_VerifySignature C_VerifySignature;
    CK_C_VerifySignatureUpdate C_VerifySignatureUpdate;
    CK_C_VerifySignatureFinal C_VerifySignatureFinal;
    CK_C_GetSessionValidationFlags C_GetSessionValidationFlags;
    CK_C_AsyncComplete C_AsyncComplete;
    CK_C_AsyncGetID C_AsyncGetID;
    CK_C_AsyncJoin C_AsyncJoin;
    CK_C_WrapKeyAuthenticated C_WrapKeyAuthenticated;
    CK_C_UnwrapKeyAuthenticated C_UnwrapKeyAuthenticated;
} CK_FUNCTION_LIST_3_2;
typedef CK_FUNCTION_LIST_3_2 *CK_FUNCTION_LIST_3_2_PTR;
typedef CK_FUNCTION_LIST_3_2 **CK_FUNCTION_LIST_3_2_PTR_PTR;

#endif
