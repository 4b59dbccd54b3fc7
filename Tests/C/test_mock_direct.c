/* test_mock_direct.c: checks the mock modules themselves, called directly without the
 * proxy, so that a fixture bug never passes for a proxy bug. argv[1] (the proxy) is
 * not used. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <dlfcn.h>

#include "p11test.h"

static CK_FUNCTION_LIST_3_0_PTR list_of(struct t_mock *m)
{
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(m->dl, "C_GetFunctionList");
    CK_FUNCTION_LIST_PTR f = NULL;
    if (!get || get(&f) != CKR_OK)
        return NULL;
    return (CK_FUNCTION_LIST_3_0_PTR)f;
}

static void check_lifecycle(struct t_mock *a, CK_FUNCTION_LIST_3_0_PTR f)
{
    CK_SLOT_ID slots[4];
    CK_ULONG n = 4;
    t_rv(f->C_GetSlotList(CK_FALSE, slots, &n), CKR_CRYPTOKI_NOT_INITIALIZED, "mock: GetSlotList before init");
    t_rv(f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED, "mock: Finalize before init");

    CK_C_INITIALIZE_ARGS partial = {0};
    partial.CreateMutex = (CK_CREATEMUTEX)1; /* never called: the check comes first */
    t_rv(f->C_Initialize(&partial), CKR_ARGUMENTS_BAD, "mock: partial mutex callbacks rejected");

    CK_C_INITIALIZE_ARGS args = {0};
    args.flags = CKF_OS_LOCKING_OK;
    args.pReserved = "reserved-text";
    t_rv(f->C_Initialize(&args), CKR_OK, "mock: Initialize with pReserved string");
    struct mock_stats s = t_mock_stats(a);
    t_str(s.last_init_reserved, "reserved-text", "mock: records pReserved");
    t_ul(s.last_init_flags, CKF_OS_LOCKING_OK, "mock: records flags");
    t_ul(s.last_init_had_mutex_callbacks, 0, "mock: records no mutex callbacks");
    t_rv(f->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED, "mock: second Initialize");
    s = t_mock_stats(a);
    t_ul(s.double_init_attempts, 1, "mock: counts double init");
    t_ul(s.calls_while_uninitialised, 1, "mock: counts calls while uninitialised");

    CK_INFO info;
    t_rv(f->C_GetInfo(&info), CKR_OK, "mock: GetInfo");
    t_ok(info.cryptokiVersion.major == 3 && info.cryptokiVersion.minor == 0, "mock-a: cryptoki 3.0");
    t_ok(f->version.major == 3 && f->version.minor == 0, "mock-a: C_GetFunctionList list is 3.0");
}

static void check_slots_sessions(struct t_mock *a, CK_FUNCTION_LIST_3_0_PTR f)
{
    CK_SLOT_ID slots[4];
    CK_ULONG n = 0;
    t_rv(f->C_GetSlotList(CK_TRUE, NULL, &n), CKR_OK, "mock: slot count query");
    t_ul(n, 2, "mock-a: 2 slots");
    n = 1;
    t_rv(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_BUFFER_TOO_SMALL, "mock: short slot buffer");
    t_ul(n, 2, "mock: short slot buffer sets count");
    n = 4;
    t_rv(f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK, "mock: slot list");
    t_ok(n == 2 && slots[0] == 1 && slots[1] == 5, "mock-a: slots 1 and 5");

    CK_TOKEN_INFO ti;
    char label[33];
    t_rv(f->C_GetTokenInfo(5, &ti), CKR_OK, "mock: token info");
    t_trim(label, ti.label, sizeof ti.label);
    t_str(label, "mock-a-5", "mock: token label");
    t_rv(f->C_GetTokenInfo(2, &ti), CKR_SLOT_ID_INVALID, "mock: invalid slot");

    CK_SESSION_HANDLE h1, h2, h3;
    t_rv(f->C_OpenSession(1, 0, NULL, NULL, &h1), CKR_SESSION_PARALLEL_NOT_SUPPORTED, "mock: no serial flag");
    t_rv(f->C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &h1), CKR_OK, "mock: open RO session");
    t_rv(f->C_OpenSession(1, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h2), CKR_OK, "mock: open RW");
    t_rv(f->C_OpenSession(5, CKF_SERIAL_SESSION, NULL, NULL, &h3), CKR_OK, "mock: open on slot 5");
    CK_SESSION_INFO si;
    t_rv(f->C_GetSessionInfo(h3, &si), CKR_OK, "mock: session info");
    t_ok(si.slotID == 5 && si.ulDeviceError == 0xA && si.state == CKS_RO_PUBLIC_SESSION,
         "mock: session info has real slot, tag, RO public state");
    t_ul(t_mock_stats(a).open_sessions, 3, "mock: 3 open sessions");

    t_rv(f->C_Login(h1, CKU_SO, (CK_UTF8CHAR_PTR) "12345678", 8), CKR_SESSION_READ_ONLY_EXISTS,
         "mock: SO login refused with RO session");
    t_rv(f->C_Login(h1, CKU_USER, (CK_UTF8CHAR_PTR) "9999", 4), CKR_PIN_INCORRECT, "mock: wrong PIN");
    t_rv(f->C_Login(h1, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4), CKR_OK, "mock: user login");
    t_rv(f->C_GetSessionInfo(h2, &si), CKR_OK, "mock: session info after login");
    t_ul(si.state, CKS_RW_USER_FUNCTIONS, "mock: login is token-wide");
    t_rv(f->C_Login(h2, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4), CKR_USER_ALREADY_LOGGED_IN, "mock: relogin");
    t_rv(f->C_Logout(h2), CKR_OK, "mock: logout");

    t_rv(f->C_CloseSession(h1), CKR_OK, "mock: close session");
    t_rv(f->C_GetSessionInfo(h1, &si), CKR_SESSION_HANDLE_INVALID, "mock: closed handle invalid");
    t_rv(f->C_CloseAllSessions(1), CKR_OK, "mock: close all on slot 1");
    t_rv(f->C_GetSessionInfo(h2, &si), CKR_SESSION_HANDLE_INVALID, "mock: close-all closed slot 1");
    t_rv(f->C_GetSessionInfo(h3, &si), CKR_OK, "mock: close-all kept slot 5");
    t_ul(t_mock_stats(a).open_sessions, 1, "mock: 1 open session");
    f->C_CloseSession(h3);
}

static void check_objects_crypto(CK_FUNCTION_LIST_3_0_PTR f)
{
    CK_SESSION_HANDLE h;
    t_rv(f->C_OpenSession(1, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h), CKR_OK, "mock: open");
    CK_OBJECT_CLASS cls = CKO_DATA;
    char label[] = "object-one";
    unsigned char value[] = {1, 2, 3, 4, 5};
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, label, sizeof label - 1}, {CKA_VALUE, value, sizeof value}};
    CK_OBJECT_HANDLE obj, found[4];
    t_rv(f->C_CreateObject(h, tmpl, 3, &obj), CKR_OK, "mock: create object");

    CK_ATTRIBUTE get = {CKA_VALUE, NULL, 0};
    t_rv(f->C_GetAttributeValue(h, obj, &get, 1), CKR_OK, "mock: attribute length query");
    t_ul(get.ulValueLen, sizeof value, "mock: attribute length");
    unsigned char small[2];
    get.pValue = small;
    get.ulValueLen = sizeof small;
    t_rv(f->C_GetAttributeValue(h, obj, &get, 1), CKR_BUFFER_TOO_SMALL, "mock: short attribute buffer");
    t_ul(get.ulValueLen, CK_UNAVAILABLE_INFORMATION, "mock: short buffer -> unavailable");
    CK_ATTRIBUTE missing = {CKA_MODULUS, NULL, 0};
    t_rv(f->C_GetAttributeValue(h, obj, &missing, 1), CKR_ATTRIBUTE_TYPE_INVALID, "mock: unknown attribute");

    CK_ATTRIBUTE find = {CKA_LABEL, label, sizeof label - 1};
    CK_ULONG count = 0;
    t_rv(f->C_FindObjectsInit(h, &find, 1), CKR_OK, "mock: find init");
    t_rv(f->C_FindObjects(h, found, 4, &count), CKR_OK, "mock: find");
    t_ok(count == 1 && found[0] == obj, "mock: find returns the object");
    t_rv(f->C_FindObjectsFinal(h), CKR_OK, "mock: find final");

    unsigned char data[] = "the quick brown fox";
    unsigned char want[MOCK_DIGEST_LEN], got[MOCK_DIGEST_LEN];
    mock_fake_digest(0xA, data, sizeof data, want);
    CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
    CK_ULONG len = 0;
    t_rv(f->C_DigestInit(h, &sha), CKR_OK, "mock: digest init");
    t_rv(f->C_Digest(h, data, sizeof data, NULL, &len), CKR_OK, "mock: digest length query");
    t_ul(len, MOCK_DIGEST_LEN, "mock: digest length");
    len = 4;
    t_rv(f->C_Digest(h, data, sizeof data, got, &len), CKR_BUFFER_TOO_SMALL, "mock: digest short buffer");
    len = sizeof got;
    t_rv(f->C_Digest(h, data, sizeof data, got, &len), CKR_OK, "mock: digest");
    t_ok(memcmp(got, want, sizeof want) == 0, "mock: digest matches mock_fake_digest");
    t_rv(f->C_DigestInit(h, &sha), CKR_OK, "mock: digest init again");
    f->C_DigestUpdate(h, data, 5);
    f->C_DigestUpdate(h, data + 5, sizeof data - 5);
    len = sizeof got;
    t_rv(f->C_DigestFinal(h, got, &len), CKR_OK, "mock: multi-part digest");
    t_ok(memcmp(got, want, sizeof want) == 0, "mock: multi-part digest == single-part");

    CK_MECHANISM gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0}, ecdsa = {CKM_ECDSA, NULL, 0};
    CK_OBJECT_HANDLE pub, priv;
    t_rv(f->C_GenerateKeyPair(h, &gen, NULL, 0, NULL, 0, &pub, &priv), CKR_OK, "mock: generate key pair");
    unsigned char sig[MOCK_DIGEST_LEN];
    len = sizeof sig;
    t_rv(f->C_SignInit(h, &ecdsa, priv), CKR_OK, "mock: sign init");
    t_rv(f->C_Sign(h, data, sizeof data, sig, &len), CKR_OK, "mock: sign");
    t_rv(f->C_VerifyInit(h, &ecdsa, pub), CKR_OK, "mock: verify init");
    t_rv(f->C_Verify(h, data, sizeof data, sig, len), CKR_OK, "mock: verify with public half");
    sig[0] ^= 1;
    t_rv(f->C_VerifyInit(h, &ecdsa, pub), CKR_OK, "mock: verify init again");
    t_rv(f->C_Verify(h, data, sizeof data, sig, len), CKR_SIGNATURE_INVALID, "mock: bad signature");

    CK_MECHANISM aesgen = {CKM_AES_KEY_GEN, NULL, 0}, gcm = {CKM_AES_GCM, NULL, 0};
    CK_OBJECT_HANDLE key;
    t_rv(f->C_GenerateKey(h, &aesgen, NULL, 0, &key), CKR_OK, "mock: generate key");
    unsigned char ct[sizeof data], pt[sizeof data];
    len = sizeof ct;
    f->C_EncryptInit(h, &gcm, key);
    t_rv(f->C_Encrypt(h, data, sizeof data, ct, &len), CKR_OK, "mock: encrypt");
    f->C_DecryptInit(h, &gcm, key);
    len = sizeof pt;
    t_rv(f->C_Decrypt(h, ct, sizeof ct, pt, &len), CKR_OK, "mock: decrypt");
    t_ok(memcmp(pt, data, sizeof data) == 0 && memcmp(ct, data, sizeof data) != 0, "mock: decrypt(encrypt(x)) == x");

    unsigned char wrapped[64];
    CK_MECHANISM wrap = {CKM_AES_KEY_WRAP, NULL, 0};
    CK_OBJECT_HANDLE wkey, unwrapped;
    f->C_GenerateKey(h, &aesgen, NULL, 0, &wkey);
    len = sizeof wrapped;
    t_rv(f->C_WrapKey(h, &wrap, wkey, key, wrapped, &len), CKR_OK, "mock: wrap");
    CK_OBJECT_CLASS sk = CKO_SECRET_KEY;
    CK_ATTRIBUTE ut[] = {{CKA_CLASS, &sk, sizeof sk}};
    t_rv(f->C_UnwrapKey(h, &wrap, wkey, wrapped, len, ut, 1, &unwrapped), CKR_OK, "mock: unwrap");
    f->C_DecryptInit(h, &gcm, unwrapped);
    len = sizeof pt;
    t_rv(f->C_Decrypt(h, ct, sizeof ct, pt, &len), CKR_OK, "mock: decrypt with unwrapped key");
    t_ok(memcmp(pt, data, sizeof data) == 0, "mock: unwrapped key is the same key");

    /* 3.0 message functions. */
    unsigned char iv[12] = {9};
    t_rv(f->C_MessageEncryptInit(h, &gcm, key), CKR_OK, "mock: message encrypt init");
    len = sizeof ct;
    t_rv(f->C_EncryptMessage(h, iv, sizeof iv, NULL, 0, data, sizeof data, ct, &len), CKR_OK, "mock: encrypt message");
    t_rv(f->C_MessageEncryptFinal(h), CKR_OK, "mock: message encrypt final");
    t_rv(f->C_MessageDecryptInit(h, &gcm, key), CKR_OK, "mock: message decrypt init");
    t_rv(f->C_DecryptMessageBegin(h, iv, sizeof iv, NULL, 0), CKR_OK, "mock: decrypt message begin");
    len = sizeof pt;
    t_rv(f->C_DecryptMessageNext(h, iv, sizeof iv, ct, sizeof ct, pt, &len, CKF_END_OF_MESSAGE), CKR_OK,
         "mock: decrypt message next");
    t_ok(memcmp(pt, data, sizeof data) == 0, "mock: message round trip");
    t_rv(f->C_MessageDecryptFinal(h), CKR_OK, "mock: message decrypt final");
    t_rv(f->C_DigestInit(h, &sha), CKR_OK, "mock: digest init for cancel");
    t_rv(f->C_SessionCancel(h, CKF_DIGEST), CKR_OK, "mock: session cancel");
    t_rv(f->C_DigestUpdate(h, data, 1), CKR_OPERATION_NOT_INITIALIZED, "mock: cancel ended the digest");
    t_rv(f->C_LoginUser(h, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4, (CK_UTF8CHAR_PTR) "user", 4), CKR_OK,
         "mock: LoginUser");
    f->C_Logout(h);
    f->C_CloseSession(h);
}

/* Every entry after `version` is a function pointer; none may be NULL. */
static int table_complete(const void *list, size_t size)
{
    /* CK_VERSION is padded to pointer alignment before the first entry. */
    void (*const *fn)(void) = (void (*const *)(void))((const char *)list + sizeof(void *));
    size_t n = (size - sizeof(void *)) / sizeof(void (*)(void));
    for (size_t i = 0; i < n; i++)
        if (!fn[i])
            return 0;
    return 1;
}

/* The functions the other checks do not reach: tokens and PINs, object edits, saved
 * state, dual-function and recover operations, derive, random, legacy functions. */
static void check_rest(struct t_mock *a, CK_FUNCTION_LIST_3_0_PTR f)
{
    CK_SESSION_HANDLE ro, rw;
    CK_UTF8CHAR label[32];
    memset(label, ' ', sizeof label);
    memcpy(label, "relabelled", 10);
    t_rv(f->C_InitToken(5, (CK_UTF8CHAR_PTR) "12345678", 8, label), CKR_OK, "mock: C_InitToken");
    char got_label[33];
    CK_TOKEN_INFO ti;
    f->C_GetTokenInfo(5, &ti);
    t_trim(got_label, ti.label, sizeof ti.label);
    t_str(got_label, "relabelled", "mock: C_InitToken sets the label");
    t_mock_control(a, MOCK_RESET_SLOTS, 0);
    f->C_GetTokenInfo(5, &ti);
    t_trim(got_label, ti.label, sizeof ti.label);
    t_str(got_label, "mock-a-5", "mock: MOCK_RESET_SLOTS restores the label");

    f->C_OpenSession(5, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &rw);
    t_rv(f->C_InitToken(5, (CK_UTF8CHAR_PTR) "12345678", 8, label), CKR_SESSION_EXISTS,
         "mock: C_InitToken with a session open");
    t_rv(f->C_InitPIN(rw, (CK_UTF8CHAR_PTR) "4321", 4), CKR_USER_NOT_LOGGED_IN, "mock: C_InitPIN needs SO");
    t_rv(f->C_Login(rw, CKU_SO, (CK_UTF8CHAR_PTR) "12345678", 8), CKR_OK, "mock: SO login");
    t_rv(f->C_OpenSession(5, CKF_SERIAL_SESSION, NULL, NULL, &ro), CKR_SESSION_READ_WRITE_SO_EXISTS,
         "mock: no RO session while SO is logged in");
    t_rv(f->C_InitPIN(rw, (CK_UTF8CHAR_PTR) "4321", 4), CKR_OK, "mock: C_InitPIN");
    f->C_Logout(rw);
    t_rv(f->C_Login(rw, CKU_USER, (CK_UTF8CHAR_PTR) "4321", 4), CKR_OK, "mock: login with the new PIN");
    t_rv(f->C_SetPIN(rw, (CK_UTF8CHAR_PTR) "4321", 4, (CK_UTF8CHAR_PTR) "1234", 4), CKR_OK, "mock: C_SetPIN");
    t_rv(f->C_Login(rw, CKU_CONTEXT_SPECIFIC, (CK_UTF8CHAR_PTR) "1234", 4), CKR_OK, "mock: context-specific login");

    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_BBOOL yes = CK_TRUE;
    char l1[] = "first", l2[] = "second";
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, l1, 5}, {CKA_PRIVATE, &yes, sizeof yes}};
    CK_OBJECT_HANDLE obj, copy;
    t_rv(f->C_CreateObject(rw, tmpl, 3, &obj), CKR_OK, "mock: create a private object");
    CK_ATTRIBUTE relabel = {CKA_LABEL, l2, 6};
    t_rv(f->C_SetAttributeValue(rw, obj, &relabel, 1), CKR_OK, "mock: C_SetAttributeValue");
    CK_ATTRIBUTE cls_change = {CKA_CLASS, &cls, sizeof cls};
    t_rv(f->C_SetAttributeValue(rw, obj, &cls_change, 1), CKR_ATTRIBUTE_READ_ONLY, "mock: CKA_CLASS is read-only");
    t_rv(f->C_CopyObject(rw, obj, NULL, 0, &copy), CKR_OK, "mock: C_CopyObject");
    CK_ULONG size = 0;
    t_rv(f->C_GetObjectSize(rw, copy, &size), CKR_OK, "mock: C_GetObjectSize");
    t_ok(size > 0, "mock: object size %lu", size);
    char buf[16];
    CK_ATTRIBUTE get = {CKA_LABEL, buf, sizeof buf};
    f->C_GetAttributeValue(rw, copy, &get, 1);
    t_ok(get.ulValueLen == 6 && !memcmp(buf, l2, 6), "mock: the copy has the edited label");
    t_rv(f->C_DestroyObject(rw, copy), CKR_OK, "mock: C_DestroyObject");
    t_rv(f->C_GetObjectSize(rw, copy, &size), CKR_OBJECT_HANDLE_INVALID, "mock: destroyed object gone");
    f->C_Logout(rw);
    t_rv(f->C_GetObjectSize(rw, obj, &size), CKR_OBJECT_HANDLE_INVALID, "mock: private object hidden after logout");

    /* Saved digest state. */
    CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
    unsigned char data[] = "saved state", md1[MOCK_DIGEST_LEN], md2[MOCK_DIGEST_LEN], state[256];
    CK_ULONG len = sizeof state;
    f->C_DigestInit(rw, &sha);
    f->C_DigestUpdate(rw, data, 5);
    t_rv(f->C_GetOperationState(rw, state, &len), CKR_OK, "mock: C_GetOperationState");
    f->C_DigestUpdate(rw, data + 5, sizeof data - 5);
    CK_ULONG mdlen = sizeof md1;
    f->C_DigestFinal(rw, md1, &mdlen);
    t_rv(f->C_SetOperationState(rw, state, len, 0, 0), CKR_OK, "mock: C_SetOperationState");
    f->C_DigestUpdate(rw, data + 5, sizeof data - 5);
    mdlen = sizeof md2;
    f->C_DigestFinal(rw, md2, &mdlen);
    t_ok(!memcmp(md1, md2, sizeof md1), "mock: restored state digests the same");

    /* Dual functions, recover, digest-key, derive, random, legacy. */
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0}, gcm = {CKM_AES_GCM, NULL, 0}, rsa = {CKM_RSA_PKCS, NULL, 0};
    CK_MECHANISM ecgen = {CKM_EC_KEY_PAIR_GEN, NULL, 0}, ecdsa = {CKM_ECDSA, NULL, 0};
    CK_OBJECT_HANDLE key, pub, priv, derived;
    f->C_GenerateKey(rw, &gen, NULL, 0, &key);
    f->C_GenerateKeyPair(rw, &ecgen, NULL, 0, NULL, 0, &pub, &priv);
    unsigned char ct[sizeof data], pt[sizeof data], sig[MOCK_DIGEST_LEN];
    f->C_DigestInit(rw, &sha);
    f->C_EncryptInit(rw, &gcm, key);
    len = sizeof ct;
    t_rv(f->C_DigestEncryptUpdate(rw, data, sizeof data, ct, &len), CKR_OK, "mock: C_DigestEncryptUpdate");
    len = 0;
    t_rv(f->C_EncryptFinal(rw, NULL, &len), CKR_OK, "mock: C_EncryptFinal length");
    t_rv(f->C_EncryptFinal(rw, ct, &len), CKR_OK, "mock: C_EncryptFinal");
    mdlen = sizeof md1;
    f->C_DigestFinal(rw, md1, &mdlen);
    mock_fake_digest(0xA, data, sizeof data, md2);
    t_ok(!memcmp(md1, md2, sizeof md1), "mock: dual digest == plain digest");
    f->C_DecryptInit(rw, &gcm, key);
    f->C_DigestInit(rw, &sha);
    len = sizeof pt;
    t_rv(f->C_DecryptDigestUpdate(rw, ct, sizeof ct, pt, &len), CKR_OK, "mock: C_DecryptDigestUpdate");
    t_ok(!memcmp(pt, data, sizeof data), "mock: dual decrypt");
    len = sizeof pt;
    f->C_DecryptFinal(rw, pt, &len);
    mdlen = sizeof md1;
    f->C_DigestFinal(rw, md1, &mdlen);
    t_ok(!memcmp(md1, md2, sizeof md1), "mock: decrypt-digest digests the plaintext");
    f->C_SignInit(rw, &ecdsa, priv);
    f->C_EncryptInit(rw, &gcm, key);
    len = sizeof ct;
    t_rv(f->C_SignEncryptUpdate(rw, data, sizeof data, ct, &len), CKR_OK, "mock: C_SignEncryptUpdate");
    len = sizeof sig;
    t_rv(f->C_SignFinal(rw, sig, &len), CKR_OK, "mock: C_SignFinal");
    len = 0;
    f->C_EncryptFinal(rw, ct, &len);
    f->C_DecryptInit(rw, &gcm, key);
    f->C_VerifyInit(rw, &ecdsa, pub);
    len = sizeof pt;
    t_rv(f->C_DecryptVerifyUpdate(rw, ct, sizeof ct, pt, &len), CKR_OK, "mock: C_DecryptVerifyUpdate");
    t_rv(f->C_VerifyFinal(rw, sig, sizeof sig), CKR_OK, "mock: multi-part signature verifies");
    len = 0;
    f->C_DecryptFinal(rw, pt, &len);

    CK_OBJECT_HANDLE rpub, rpriv;
    CK_MECHANISM rsagen = {CKM_RSA_PKCS_KEY_PAIR_GEN, NULL, 0};
    f->C_GenerateKeyPair(rw, &rsagen, NULL, 0, NULL, 0, &rpub, &rpriv);
    unsigned char rsig[64], back[64];
    len = sizeof rsig;
    f->C_SignRecoverInit(rw, &rsa, rpriv);
    t_rv(f->C_SignRecover(rw, data, sizeof data, rsig, &len), CKR_OK, "mock: C_SignRecover");
    CK_ULONG blen = sizeof back;
    f->C_VerifyRecoverInit(rw, &rsa, rpub);
    t_rv(f->C_VerifyRecover(rw, rsig, len, back, &blen), CKR_OK, "mock: C_VerifyRecover");
    t_ok(blen == sizeof data && !memcmp(back, data, blen), "mock: recovered data");

    f->C_DigestInit(rw, &sha);
    t_rv(f->C_DigestKey(rw, key), CKR_OK, "mock: C_DigestKey");
    mdlen = sizeof md1;
    f->C_DigestFinal(rw, md1, &mdlen);
    unsigned char param[] = "other public key";
    CK_MECHANISM ecdh = {CKM_ECDH1_DERIVE, param, sizeof param};
    CK_OBJECT_CLASS sk = CKO_SECRET_KEY;
    CK_ATTRIBUTE dt[] = {{CKA_CLASS, &sk, sizeof sk}};
    t_rv(f->C_DeriveKey(rw, &ecdh, priv, dt, 1, &derived), CKR_OK, "mock: C_DeriveKey");
    unsigned char rnd[4];
    t_rv(f->C_SeedRandom(rw, rnd, 1), CKR_OK, "mock: C_SeedRandom");
    t_rv(f->C_GenerateRandom(rw, rnd, sizeof rnd), CKR_OK, "mock: C_GenerateRandom");
    t_rv(f->C_GetFunctionStatus(rw), CKR_FUNCTION_NOT_PARALLEL, "mock: C_GetFunctionStatus");
    t_rv(f->C_CancelFunction(rw), CKR_FUNCTION_NOT_PARALLEL, "mock: C_CancelFunction");

    /* Message-based signatures, single and multi-part. */
    unsigned char iv[8] = {7};
    t_rv(f->C_MessageSignInit(rw, &ecdsa, priv), CKR_OK, "mock: C_MessageSignInit");
    len = sizeof sig;
    t_rv(f->C_SignMessage(rw, iv, sizeof iv, data, sizeof data, sig, &len), CKR_OK, "mock: C_SignMessage");
    t_rv(f->C_SignMessageBegin(rw, iv, sizeof iv), CKR_OK, "mock: C_SignMessageBegin");
    t_rv(f->C_SignMessageNext(rw, iv, sizeof iv, data, 4, NULL, NULL), CKR_OK, "mock: C_SignMessageNext (part)");
    unsigned char sig2[MOCK_DIGEST_LEN];
    len = sizeof sig2;
    t_rv(f->C_SignMessageNext(rw, iv, sizeof iv, data + 4, sizeof data - 4, sig2, &len), CKR_OK,
         "mock: C_SignMessageNext (last)");
    t_ok(!memcmp(sig, sig2, sizeof sig), "mock: multi-part message signature == single");
    t_rv(f->C_MessageSignFinal(rw), CKR_OK, "mock: C_MessageSignFinal");
    t_rv(f->C_MessageVerifyInit(rw, &ecdsa, pub), CKR_OK, "mock: C_MessageVerifyInit");
    t_rv(f->C_VerifyMessage(rw, iv, sizeof iv, data, sizeof data, sig, sizeof sig), CKR_OK, "mock: C_VerifyMessage");
    t_rv(f->C_VerifyMessageBegin(rw, iv, sizeof iv), CKR_OK, "mock: C_VerifyMessageBegin");
    t_rv(f->C_VerifyMessageNext(rw, iv, sizeof iv, data, sizeof data, sig, sizeof sig), CKR_OK,
         "mock: C_VerifyMessageNext");
    t_rv(f->C_MessageVerifyFinal(rw), CKR_OK, "mock: C_MessageVerifyFinal");
    t_rv(f->C_EncryptMessageBegin(rw, iv, sizeof iv, NULL, 0), CKR_OPERATION_NOT_INITIALIZED,
         "mock: C_EncryptMessageBegin needs C_MessageEncryptInit");
    f->C_CloseSession(rw);
}

struct waiter {
    CK_FUNCTION_LIST_3_0_PTR f;
    CK_RV rv;
    CK_SLOT_ID slot;
};

static void *wait_event(void *arg)
{
    struct waiter *w = arg;
    w->rv = w->f->C_WaitForSlotEvent(0, &w->slot, NULL);
    return NULL;
}

static void check_events(struct t_mock *a, CK_FUNCTION_LIST_3_0_PTR f)
{
    CK_SLOT_ID slot = 0;
    t_rv(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL), CKR_NO_EVENT, "mock: no event");
    t_mock_control(a, MOCK_QUEUE_EVENT, 5);
    t_rv(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL), CKR_OK, "mock: queued event");
    t_ul(slot, 5, "mock: event slot");

    struct waiter w = {f, CKR_GENERAL_ERROR, 0};
    pthread_t th;
    pthread_create(&th, NULL, wait_event, &w);
    usleep(50000);
    t_mock_control(a, MOCK_QUEUE_EVENT, 1);
    pthread_join(th, NULL);
    t_ok(w.rv == CKR_OK && w.slot == 1, "mock: blocking wait wakes on event (got %s slot %lu)", t_rv_name(w.rv),
         w.slot);

    w.rv = CKR_GENERAL_ERROR;
    pthread_create(&th, NULL, wait_event, &w);
    usleep(50000);
    f->C_Finalize(NULL);
    pthread_join(th, NULL);
    t_rv(w.rv, CKR_CRYPTOKI_NOT_INITIALIZED, "mock: blocking wait ends at Finalize");

    t_rv(t_mock_control(a, MOCK_ADD_SLOT, 9), CKR_OK, "mock: hot-plug add");
    f->C_Initialize(NULL);
    CK_ULONG n = 0;
    f->C_GetSlotList(CK_TRUE, NULL, &n);
    t_ul(n, 3, "mock: hot-plugged slot listed");
    t_mock_control(a, MOCK_RESET_SLOTS, 0);
    f->C_GetSlotList(CK_TRUE, NULL, &n);
    t_ul(n, 2, "mock: reset slots");
}

static void check_fork(struct t_mock *a, CK_FUNCTION_LIST_3_0_PTR f)
{
    CK_SESSION_HANDLE h;
    f->C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &h);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        CK_SESSION_INFO si;
        t_rv(f->C_GetSessionInfo(h, &si), CKR_CRYPTOKI_NOT_INITIALIZED, "mock child: needs C_Initialize");
        t_rv(f->C_Initialize(NULL), CKR_OK, "mock child: C_Initialize");
        t_ul(t_mock_stats(a).fork_resets, 1, "mock child: fork reset counted");
        t_rv(f->C_GetSessionInfo(h, &si), CKR_SESSION_HANDLE_INVALID, "mock child: inherited session gone");
        fflush(stdout);
        _exit(0);
    }
    waitpid(pid, NULL, 0);
    CK_SESSION_INFO si;
    t_rv(f->C_GetSessionInfo(h, &si), CKR_OK, "mock parent: session still there");
    f->C_CloseSession(h);
}

static void check_variants(void)
{
    struct t_mock b, fail, garbage, fast;
    if (t_mock_open(&b, "mock-b")) {
        CK_FUNCTION_LIST_3_0_PTR f = list_of(&b);
        t_ok(f && f->version.major == 2 && f->version.minor == 40, "mock-b: 2.40 list");
        t_ok(f && table_complete(f, sizeof(CK_FUNCTION_LIST)), "mock-b: no NULL entry in the 2.40 function list");
        t_ok(dlsym(b.dl, "C_GetInterface") == NULL, "mock-b: no C_GetInterface");
    }
    if (t_mock_open(&fail, "mock-failinit")) {
        CK_FUNCTION_LIST_3_0_PTR f = list_of(&fail);
        t_rv(f->C_Initialize(NULL), CKR_DEVICE_ERROR, "mock-failinit: C_Initialize fails");
    }
    if (t_mock_open(&garbage, "mock-garbage")) {
        CK_FUNCTION_LIST_3_0_PTR f = list_of(&garbage);
        CK_SLOT_ID slots[8];
        CK_ULONG n = 0, n2 = 8;
        f->C_Initialize(NULL);
        f->C_GetSlotList(CK_TRUE, NULL, &n);
        f->C_GetSlotList(CK_TRUE, slots, &n2);
        t_ok(n != n2 && n2 == 3 && slots[0] == slots[1], "mock-garbage: count changes, duplicate IDs");
        f->C_Finalize(NULL);
    }
    if (t_mock_open(&fast, "mock-fast")) {
        CK_FUNCTION_LIST_3_0_PTR f = list_of(&fast);
        t_ok(f && table_complete(f, sizeof *f), "mock-fast: no NULL entry in the 3.0 function list");
        CK_SESSION_HANDLE h;
        CK_SESSION_INFO si;
        f->C_Initialize(NULL);
        t_rv(f->C_OpenSession(1, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK, "mock-fast: open");
        t_rv(f->C_GetSessionInfo(h, &si), CKR_OK, "mock-fast: session info");
        t_ul(si.ulDeviceError, 0xD, "mock-fast: tag");
        t_ul(t_mock_stats(&fast).initialize_calls, 1, "mock-fast: counts initialize");
        f->C_Finalize(NULL);
    }
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    struct t_mock a;
    if (t_mock_open(&a, "mock-a")) {
        CK_FUNCTION_LIST_3_0_PTR f = list_of(&a);
        t_ok(f != NULL, "mock-a: C_GetFunctionList");
        t_ok(f && table_complete(f, sizeof *f), "mock-a: no NULL entry in the 3.0 function list");
        if (f) {
            check_lifecycle(&a, f);
            check_slots_sessions(&a, f);
            check_objects_crypto(f);
            check_rest(&a, f);
            check_events(&a, f);
            check_fork(&a, f);
            t_rv(f->C_Finalize(NULL), CKR_OK, "mock: finalize");
            struct mock_stats s = t_mock_stats(&a);
            t_ul(s.open_sessions, 0, "mock: no sessions after finalize");
            t_ul(s.calls_3_0, 21, "mock: every 3.0 call counted");
        }
    }
    check_variants();
    return t_done();
}
