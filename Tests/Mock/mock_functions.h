/* mock_functions.h: the one description of the PKCS#11 entry points the mock module
 * implements, as X-macros: X(name, kind, (parameters), (arguments)).
 * kind says how mock_module.c builds the entry:
 *   HAND  written by hand (init/finalize and the functions looked up before C_Initialize);
 *   OK    generic locked wrapper; in the MOCK_FAST variant a body that returns CKR_OK;
 *   FILL  generic locked wrapper; in the MOCK_FAST variant a hand-written body that
 *         still fills its outputs (the benchmark needs them).
 * The order is the order of CK_FUNCTION_LIST / CK_FUNCTION_LIST_3_0 / CK_FUNCTION_LIST_3_2;
 * the index enum in mock_control.h is built from the same lists. */
#ifndef P11PROXY_MOCK_FUNCTIONS_H
#define P11PROXY_MOCK_FUNCTIONS_H

#define MOCK_FUNCTIONS_2_40(X) \
    X(C_Initialize, HAND, (CK_VOID_PTR pInitArgs), (pInitArgs)) \
    X(C_Finalize, HAND, (CK_VOID_PTR pReserved), (pReserved)) \
    X(C_GetInfo, FILL, (CK_INFO_PTR pInfo), (pInfo)) \
    X(C_GetFunctionList, HAND, (CK_FUNCTION_LIST_PTR_PTR ppFunctionList), (ppFunctionList)) \
    X(C_GetSlotList, FILL, (CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount), \
      (tokenPresent, pSlotList, pulCount)) \
    X(C_GetSlotInfo, FILL, (CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo), (slotID, pInfo)) \
    X(C_GetTokenInfo, FILL, (CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo), (slotID, pInfo)) \
    X(C_GetMechanismList, FILL, \
      (CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList, CK_ULONG_PTR pulCount), \
      (slotID, pMechanismList, pulCount)) \
    X(C_GetMechanismInfo, OK, (CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo), \
      (slotID, type, pInfo)) \
    X(C_InitToken, OK, (CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pLabel), \
      (slotID, pPin, ulPinLen, pLabel)) \
    X(C_InitPIN, OK, (CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen), \
      (hSession, pPin, ulPinLen)) \
    X(C_SetPIN, OK, (CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen, \
                     CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen), \
      (hSession, pOldPin, ulOldLen, pNewPin, ulNewLen)) \
    X(C_OpenSession, FILL, (CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication, \
                            CK_NOTIFY Notify, CK_SESSION_HANDLE_PTR phSession), \
      (slotID, flags, pApplication, Notify, phSession)) \
    X(C_CloseSession, FILL, (CK_SESSION_HANDLE hSession), (hSession)) \
    X(C_CloseAllSessions, OK, (CK_SLOT_ID slotID), (slotID)) \
    X(C_GetSessionInfo, FILL, (CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo), (hSession, pInfo)) \
    X(C_GetOperationState, OK, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState, \
                                CK_ULONG_PTR pulOperationStateLen), \
      (hSession, pOperationState, pulOperationStateLen)) \
    X(C_SetOperationState, OK, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState, \
                                CK_ULONG ulOperationStateLen, CK_OBJECT_HANDLE hEncryptionKey, \
                                CK_OBJECT_HANDLE hAuthenticationKey), \
      (hSession, pOperationState, ulOperationStateLen, hEncryptionKey, hAuthenticationKey)) \
    X(C_Login, OK, (CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, \
                    CK_ULONG ulPinLen), \
      (hSession, userType, pPin, ulPinLen)) \
    X(C_Logout, OK, (CK_SESSION_HANDLE hSession), (hSession)) \
    X(C_CreateObject, OK, (CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount, \
                           CK_OBJECT_HANDLE_PTR phObject), \
      (hSession, pTemplate, ulCount, phObject)) \
    X(C_CopyObject, OK, (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate, \
                         CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phNewObject), \
      (hSession, hObject, pTemplate, ulCount, phNewObject)) \
    X(C_DestroyObject, OK, (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject), (hSession, hObject)) \
    X(C_GetObjectSize, OK, (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize), \
      (hSession, hObject, pulSize)) \
    X(C_GetAttributeValue, FILL, (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, \
                                  CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount), \
      (hSession, hObject, pTemplate, ulCount)) \
    X(C_SetAttributeValue, OK, (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, \
                                CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount), \
      (hSession, hObject, pTemplate, ulCount)) \
    X(C_FindObjectsInit, OK, (CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount), \
      (hSession, pTemplate, ulCount)) \
    X(C_FindObjects, FILL, (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject, \
                            CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount), \
      (hSession, phObject, ulMaxObjectCount, pulObjectCount)) \
    X(C_FindObjectsFinal, OK, (CK_SESSION_HANDLE hSession), (hSession)) \
    X(C_EncryptInit, OK, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey), \
      (hSession, pMechanism, hKey)) \
    X(C_Encrypt, OK, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, \
                      CK_BYTE_PTR pEncryptedData, CK_ULONG_PTR pulEncryptedDataLen), \
      (hSession, pData, ulDataLen, pEncryptedData, pulEncryptedDataLen)) \
    X(C_EncryptUpdate, OK, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen, \
                            CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen), \
      (hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen)) \
    X(C_EncryptFinal, OK, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastEncryptedPart, \
                           CK_ULONG_PTR pulLastEncryptedPartLen), \
      (hSession, pLastEncryptedPart, pulLastEncryptedPartLen)) \
    X(C_DecryptInit, OK, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey), \
      (hSession, pMechanism, hKey)) \
    X(C_Decrypt, OK, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedData, CK_ULONG ulEncryptedDataLen, \
                      CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen), \
      (hSession, pEncryptedData, ulEncryptedDataLen, pData, pulDataLen)) \
    X(C_DecryptUpdate, OK, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart, \
                            CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen), \
      (hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen)) \
    X(C_DecryptFinal, OK, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastPart, CK_ULONG_PTR pulLastPartLen), \
      (hSession, pLastPart, pulLastPartLen)) \
    X(C_DigestInit, OK, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism), (hSession, pMechanism)) \
    X(C_Digest, FILL, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, \
                       CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen), \
      (hSession, pData, ulDataLen, pDigest, pulDigestLen)) \
    X(C_DigestUpdate, OK, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen), \
      (hSession, pPart, ulPartLen)) \
    X(C_DigestKey, OK, (CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey), (hSession, hKey)) \
    X(C_DigestFinal, FILL, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen), \
      (hSession, pDigest, pulDigestLen)) \
    X(C_SignInit, OK, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey), \
      (hSession, pMechanism, hKey)) \
    X(C_Sign, OK, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, \
                   CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen), \
      (hSession, pData, ulDataLen, pSignature, pulSignatureLen)) \
    X(C_SignUpdate, OK, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen), \
      (hSession, pPart, ulPartLen)) \
    X(C_SignFinal, OK, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen), \
      (hSession, pSignature, pulSignatureLen)) \
    X(C_SignRecoverInit, OK, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, \
                              CK_OBJECT_HANDLE hKey), \
      (hSession, pMechanism, hKey)) \
    X(C_SignRecover, OK, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, \
                          CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen), \
      (hSession, pData, ulDataLen, pSignature, pulSignatureLen)) \
    X(C_VerifyInit, OK, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey), \
      (hSession, pMechanism, hKey)) \
    X(C_Verify, OK, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, \
                     CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen), \
      (hSession, pData, ulDataLen, pSignature, ulSignatureLen)) \
    X(C_VerifyUpdate, OK, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen), \
      (hSession, pPart, ulPartLen)) \
    X(C_VerifyFinal, OK, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen), \
      (hSession, pSignature, ulSignatureLen)) \
    X(C_VerifyRecoverInit, OK, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, \
                                CK_OBJECT_HANDLE hKey), \
      (hSession, pMechanism, hKey)) \
    X(C_VerifyRecover, OK, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen, \
                            CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen), \
      (hSession, pSignature, ulSignatureLen, pData, pulDataLen)) \
    X(C_DigestEncryptUpdate, OK, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen, \
                                  CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen), \
      (hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen)) \
    X(C_DecryptDigestUpdate, OK, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart, \
                                  CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen), \
      (hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen)) \
    X(C_SignEncryptUpdate, OK, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen, \
                                CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen), \
      (hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen)) \
    X(C_DecryptVerifyUpdate, OK, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart, \
                                  CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen), \
      (hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen)) \
    X(C_GenerateKey, OK, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, \
                          CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phKey), \
      (hSession, pMechanism, pTemplate, ulCount, phKey)) \
    X(C_GenerateKeyPair, OK, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, \
                              CK_ATTRIBUTE_PTR pPublicKeyTemplate, CK_ULONG ulPublicKeyAttributeCount, \
                              CK_ATTRIBUTE_PTR pPrivateKeyTemplate, CK_ULONG ulPrivateKeyAttributeCount, \
                              CK_OBJECT_HANDLE_PTR phPublicKey, CK_OBJECT_HANDLE_PTR phPrivateKey), \
      (hSession, pMechanism, pPublicKeyTemplate, ulPublicKeyAttributeCount, pPrivateKeyTemplate, \
       ulPrivateKeyAttributeCount, phPublicKey, phPrivateKey)) \
    X(C_WrapKey, OK, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, \
                      CK_OBJECT_HANDLE hWrappingKey, CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pWrappedKey, \
                      CK_ULONG_PTR pulWrappedKeyLen), \
      (hSession, pMechanism, hWrappingKey, hKey, pWrappedKey, pulWrappedKeyLen)) \
    X(C_UnwrapKey, OK, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, \
                        CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey, CK_ULONG ulWrappedKeyLen, \
                        CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey), \
      (hSession, pMechanism, hUnwrappingKey, pWrappedKey, ulWrappedKeyLen, pTemplate, ulAttributeCount, \
       phKey)) \
    X(C_DeriveKey, OK, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hBaseKey, \
                        CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey), \
      (hSession, pMechanism, hBaseKey, pTemplate, ulAttributeCount, phKey)) \
    X(C_SeedRandom, OK, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen), \
      (hSession, pSeed, ulSeedLen)) \
    X(C_GenerateRandom, OK, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR RandomData, CK_ULONG ulRandomLen), \
      (hSession, RandomData, ulRandomLen)) \
    X(C_GetFunctionStatus, OK, (CK_SESSION_HANDLE hSession), (hSession)) \
    X(C_CancelFunction, OK, (CK_SESSION_HANDLE hSession), (hSession)) \
    X(C_WaitForSlotEvent, FILL, (CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved), \
      (flags, pSlot, pReserved))

#define MOCK_FUNCTIONS_3_0(X) \
    X(C_GetInterfaceList, HAND, (CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount), \
      (pInterfacesList, pulCount)) \
    X(C_GetInterface, HAND, (CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion, \
                             CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags), \
      (pInterfaceName, pVersion, ppInterface, flags)) \
    X(C_LoginUser, OK, (CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, \
                        CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pUsername, CK_ULONG ulUsernameLen), \
      (hSession, userType, pPin, ulPinLen, pUsername, ulUsernameLen)) \
    X(C_SessionCancel, OK, (CK_SESSION_HANDLE hSession, CK_FLAGS flags), (hSession, flags)) \
    X(C_MessageEncryptInit, OK, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, \
                                 CK_OBJECT_HANDLE hKey), \
      (hSession, pMechanism, hKey)) \
    X(C_EncryptMessage, OK, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, \
                             CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen, \
                             CK_BYTE_PTR pPlaintext, CK_ULONG ulPlaintextLen, CK_BYTE_PTR pCiphertext, \
                             CK_ULONG_PTR pulCiphertextLen), \
      (hSession, pParameter, ulParameterLen, pAssociatedData, ulAssociatedDataLen, pPlaintext, \
       ulPlaintextLen, pCiphertext, pulCiphertextLen)) \
    X(C_EncryptMessageBegin, OK, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, \
                                  CK_ULONG ulParameterLen, CK_BYTE_PTR pAssociatedData, \
                                  CK_ULONG ulAssociatedDataLen), \
      (hSession, pParameter, ulParameterLen, pAssociatedData, ulAssociatedDataLen)) \
    X(C_EncryptMessageNext, OK, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, \
                                 CK_ULONG ulParameterLen, CK_BYTE_PTR pPlaintextPart, \
                                 CK_ULONG ulPlaintextPartLen, CK_BYTE_PTR pCiphertextPart, \
                                 CK_ULONG_PTR pulCiphertextPartLen, CK_FLAGS flags), \
      (hSession, pParameter, ulParameterLen, pPlaintextPart, ulPlaintextPartLen, pCiphertextPart, \
       pulCiphertextPartLen, flags)) \
    X(C_MessageEncryptFinal, OK, (CK_SESSION_HANDLE hSession), (hSession)) \
    X(C_MessageDecryptInit, OK, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, \
                                 CK_OBJECT_HANDLE hKey), \
      (hSession, pMechanism, hKey)) \
    X(C_DecryptMessage, OK, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, \
                             CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen, \
                             CK_BYTE_PTR pCiphertext, CK_ULONG ulCiphertextLen, CK_BYTE_PTR pPlaintext, \
                             CK_ULONG_PTR pulPlaintextLen), \
      (hSession, pParameter, ulParameterLen, pAssociatedData, ulAssociatedDataLen, pCiphertext, \
       ulCiphertextLen, pPlaintext, pulPlaintextLen)) \
    X(C_DecryptMessageBegin, OK, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, \
                                  CK_ULONG ulParameterLen, CK_BYTE_PTR pAssociatedData, \
                                  CK_ULONG ulAssociatedDataLen), \
      (hSession, pParameter, ulParameterLen, pAssociatedData, ulAssociatedDataLen)) \
    X(C_DecryptMessageNext, OK, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, \
                                 CK_ULONG ulParameterLen, CK_BYTE_PTR pCiphertextPart, \
                                 CK_ULONG ulCiphertextPartLen, CK_BYTE_PTR pPlaintextPart, \
                                 CK_ULONG_PTR pulPlaintextPartLen, CK_FLAGS flags), \
      (hSession, pParameter, ulParameterLen, pCiphertextPart, ulCiphertextPartLen, pPlaintextPart, \
       pulPlaintextPartLen, flags)) \
    X(C_MessageDecryptFinal, OK, (CK_SESSION_HANDLE hSession), (hSession)) \
    X(C_MessageSignInit, OK, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, \
                              CK_OBJECT_HANDLE hKey), \
      (hSession, pMechanism, hKey)) \
    X(C_SignMessage, OK, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, \
                          CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, \
                          CK_ULONG_PTR pulSignatureLen), \
      (hSession, pParameter, ulParameterLen, pData, ulDataLen, pSignature, pulSignatureLen)) \
    X(C_SignMessageBegin, OK, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen), \
      (hSession, pParameter, ulParameterLen)) \
    X(C_SignMessageNext, OK, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, \
                              CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, \
                              CK_ULONG_PTR pulSignatureLen), \
      (hSession, pParameter, ulParameterLen, pData, ulDataLen, pSignature, pulSignatureLen)) \
    X(C_MessageSignFinal, OK, (CK_SESSION_HANDLE hSession), (hSession)) \
    X(C_MessageVerifyInit, OK, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, \
                                CK_OBJECT_HANDLE hKey), \
      (hSession, pMechanism, hKey)) \
    X(C_VerifyMessage, OK, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen, \
                            CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature, \
                            CK_ULONG ulSignatureLen), \
      (hSession, pParameter, ulParameterLen, pData, ulDataLen, pSignature, ulSignatureLen)) \
    X(C_VerifyMessageBegin, OK, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, \
                                 CK_ULONG ulParameterLen), \
      (hSession, pParameter, ulParameterLen)) \
    X(C_VerifyMessageNext, OK, (CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, \
                                CK_ULONG ulParameterLen, CK_BYTE_PTR pData, CK_ULONG ulDataLen, \
                                CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen), \
      (hSession, pParameter, ulParameterLen, pData, ulDataLen, pSignature, ulSignatureLen)) \
    X(C_MessageVerifyFinal, OK, (CK_SESSION_HANDLE hSession), (hSession))

/* PKCS#11 3.2 (pkcs11f.h after CK_PKCS11_3_0_ONLY), in CK_FUNCTION_LIST_3_2 order. */
#define MOCK_FUNCTIONS_3_2(X) \
    X(C_EncapsulateKey, OK, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hPublicKey, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_BYTE_PTR pCiphertext, CK_ULONG_PTR pulCiphertextLen, CK_OBJECT_HANDLE_PTR phKey), \
      (hSession, pMechanism, hPublicKey, pTemplate, ulAttributeCount, pCiphertext, pulCiphertextLen, phKey)) \
    X(C_DecapsulateKey, OK, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hPrivateKey, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_BYTE_PTR pCiphertext, CK_ULONG ulCiphertextLen, CK_OBJECT_HANDLE_PTR phKey), \
      (hSession, pMechanism, hPrivateKey, pTemplate, ulAttributeCount, pCiphertext, ulCiphertextLen, phKey)) \
    X(C_VerifySignatureInit, OK, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen), \
      (hSession, pMechanism, hKey, pSignature, ulSignatureLen)) \
    X(C_VerifySignature, OK, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen), \
      (hSession, pData, ulDataLen)) \
    X(C_VerifySignatureUpdate, OK, (CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen), \
      (hSession, pPart, ulPartLen)) \
    X(C_VerifySignatureFinal, OK, (CK_SESSION_HANDLE hSession), \
      (hSession)) \
    X(C_GetSessionValidationFlags, OK, (CK_SESSION_HANDLE hSession, CK_SESSION_VALIDATION_FLAGS_TYPE type, CK_FLAGS_PTR pFlags), \
      (hSession, type, pFlags)) \
    X(C_AsyncComplete, OK, (CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pFunctionName, CK_ASYNC_DATA_PTR pResult), \
      (hSession, pFunctionName, pResult)) \
    X(C_AsyncGetID, OK, (CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pFunctionName, CK_ULONG_PTR pulID), \
      (hSession, pFunctionName, pulID)) \
    X(C_AsyncJoin, OK, (CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pFunctionName, CK_ULONG ulID, CK_BYTE_PTR pData, CK_ULONG ulData), \
      (hSession, pFunctionName, ulID, pData, ulData)) \
    X(C_WrapKeyAuthenticated, OK, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hWrappingKey, CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen, CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen), \
      (hSession, pMechanism, hWrappingKey, hKey, pAssociatedData, ulAssociatedDataLen, pWrappedKey, pulWrappedKeyLen)) \
    X(C_UnwrapKeyAuthenticated, OK, (CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey, CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen, CK_OBJECT_HANDLE_PTR phKey), \
      (hSession, pMechanism, hUnwrappingKey, pWrappedKey, ulWrappedKeyLen, pTemplate, ulAttributeCount, pAssociatedData, ulAssociatedDataLen, phKey))

#endif
