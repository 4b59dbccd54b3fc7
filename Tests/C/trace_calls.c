/* trace_calls.c: one fixed, deterministic sequence of calls per family, made
 * through the proxy into mock-a, so the trace p11proxy writes for it can be compared with
 * Tests/golden/trace/<family>.txt / .jsonl by Tests/integration/test_trace.sh. Every call's
 * result is checked as well, so a golden file never freezes a call that went wrong.
 *
 *   trace_calls PROXY_SO MOCK_DIR FAMILY
 *
 * Families (the golden ones first):
 *   general  C_Initialize, C_GetInfo (answered by the proxy: no module record), a
 *            non-blocking C_WaitForSlotEvent, C_Finalize
 *   slot     C_GetSlotList, C_GetSlotInfo, C_GetTokenInfo, C_GetMechanismList, C_GetMechanismInfo
 *   session  C_OpenSession, C_GetSessionInfo, C_Login (wrong and right PIN), C_Logout,
 *            C_CloseSession, C_CloseAllSessions
 *   object   C_CreateObject (data object, secret key), C_FindObjects*, C_GetAttributeValue
 *            (size query, values, a key's value, an unknown type), C_SetAttributeValue,
 *            C_DestroyObject
 *   crypto   digest, EC key pair + sign/verify, AES key generation, mechanism parameters
 *            (AES-CBC IV, AES-GCM, RSA-PSS, RSA-OAEP), encrypt/decrypt, C_GenerateRandom
 *   v3       C_LoginUser, C_SessionCancel, message-based encrypt/decrypt (3.0 interface)
 *   v32      the twelve 3.2 functions over mock-v32 (3.2 interface): ML-KEM keys with their
 *            parameter sets and redacted CKA_VALUE/CKA_SEED, encapsulate/decapsulate,
 *            ML-DSA/SLH-DSA mechanism parameters, signature verification, authenticated
 *            wrapping, and an asynchronous session (CKR_PENDING, then C_AsyncComplete)
 *   secrets  the redaction scenario: C_SetPIN/C_Login with a distinctive PIN, a secret key
 *            imported with 16 bytes of 0x5A, C_Encrypt/C_Decrypt of a distinctive
 *            plaintext, C_GetAttributeValue of the key's CKA_VALUE, C_GenerateRandom
 *   flush    the file-buffering rules, checked by reading P11PROXY_LOG_FILE while the
 *            process runs (error return, idle 100 ms, fork, C_Finalize, exit)
 *
 * Tracing is configured by the environment (P11PROXY_LOG_FILE, P11PROXY_LOG_FORMAT, ...).
 * Without P11PROXY_CONFIG_DIR or P11PROXY_MODULE the program writes a config dir holding
 * only mock-a (mock-v32 for v32) with `log-calls: yes`. Output: TAP-like lines, "# N passed, N failed". */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "p11test.h"

static struct t_proxy px;
static CK_FUNCTION_LIST_PTR f;
static CK_FUNCTION_LIST_3_0_PTR f3;
static CK_FUNCTION_LIST_3_2_PTR f32;

/* What each call must answer; the name is the check's description. */
#define CALL(want, call) t_rv((call), (want), "%s", #call)

static void config_default(const char *module)
{
    if (getenv("P11PROXY_CONFIG_DIR") || getenv("P11PROXY_MODULE"))
        return;
    char *dir = t_config_new("trace");
    char *mock = t_mock_path(module);
    t_config_module(dir, module, "module: %s\nlog-calls: yes\n", mock);
    t_config_use(dir);
    free(mock);
    free(dir);
}

/* The caller: a 2.40 list from C_GetFunctionList, or the 3.0 (v3 1) or 3.2 (v3 2) one from
 * C_GetInterface. */
static int open_caller(int v3)
{
    if (!t_proxy_open(&px))
        return 0;
    if (!v3)
        return (f = t_caller(&px)) != NULL;
    CK_INTERFACE_PTR iface = NULL;
    CK_VERSION version = {3, v3 == 2 ? 2 : 0};
    if (!px.get_interface || !t_rv(px.get_interface((CK_UTF8CHAR_PTR) "PKCS 11", &version, &iface, 0), CKR_OK,
                                   "C_GetInterface(\"PKCS 11\", 3.%d)", version.minor))
        return 0;
    f3 = iface->pFunctionList;
    f32 = iface->pFunctionList;
    f = (CK_FUNCTION_LIST_PTR)f3;
    return 1;
}

/* The proxy's slot for mock-a's first slot, with one C_GetSlotList call (which the proxy
 * turns into the module's size query and fetch). */
static CK_SLOT_ID first_slot(void)
{
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16;
    if (!CALL(CKR_OK, f->C_GetSlotList(CK_TRUE, slots, &n)) || !t_ok(n == 2, "the mock shows 2 slots (got %lu)", n))
        return T_NO_SLOT;
    return slots[0];
}

static CK_SESSION_HANDLE open_session(CK_SLOT_ID slot, CK_FLAGS flags)
{
    CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
    CALL(CKR_OK, f->C_OpenSession(slot, flags, NULL, NULL, &h));
    return h;
}

static void hex(char *out, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02X", p[i]);
    out[2 * n] = 0;
}

/* ---- general ---- */

static void family_general(void)
{
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK;
    CALL(CKR_OK, f->C_Initialize(&args));
    CK_INFO info;
    CALL(CKR_OK, f->C_GetInfo(&info));
    CK_SLOT_ID event = 0;
    CALL(CKR_NO_EVENT, f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &event, NULL));
    CALL(CKR_OK, f->C_Finalize(NULL));
}

/* ---- slot/token ---- */

static void family_slot(void)
{
    CALL(CKR_OK, f->C_Initialize(NULL));
    CK_SLOT_ID slot = first_slot();
    CK_SLOT_INFO slot_info;
    CALL(CKR_OK, f->C_GetSlotInfo(slot, &slot_info));
    CK_TOKEN_INFO token_info;
    CALL(CKR_OK, f->C_GetTokenInfo(slot, &token_info));
    CK_MECHANISM_TYPE mechs[32];
    CK_ULONG n = 0;
    CALL(CKR_OK, f->C_GetMechanismList(slot, NULL, &n));
    t_ul(n, 9, "mock-a has 9 mechanisms");
    n = 2;
    CALL(CKR_BUFFER_TOO_SMALL, f->C_GetMechanismList(slot, mechs, &n));
    n = 32;
    CALL(CKR_OK, f->C_GetMechanismList(slot, mechs, &n));
    CK_MECHANISM_INFO mech_info;
    CALL(CKR_OK, f->C_GetMechanismInfo(slot, CKM_AES_GCM, &mech_info));
    CALL(CKR_MECHANISM_INVALID, f->C_GetMechanismInfo(slot, CKM_MD5, &mech_info));
    CALL(CKR_OK, f->C_Finalize(NULL));
}

/* ---- session ---- */

static void family_session(void)
{
    CALL(CKR_OK, f->C_Initialize(NULL));
    CK_SLOT_ID slot = first_slot();
    CK_SESSION_HANDLE h = open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION);
    CK_SESSION_INFO info;
    CALL(CKR_OK, f->C_GetSessionInfo(h, &info));
    CALL(CKR_PIN_INCORRECT, f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR) "0000", 4));
    CALL(CKR_OK, f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4));
    CALL(CKR_OK, f->C_GetSessionInfo(h, &info));
    t_ul(info.state, CKS_RW_USER_FUNCTIONS, "logged in: CKS_RW_USER_FUNCTIONS");
    CALL(CKR_OK, f->C_Logout(h));
    CK_SESSION_HANDLE ro = open_session(slot, CKF_SERIAL_SESSION);
    CALL(CKR_OK, f->C_CloseSession(ro));
    CALL(CKR_OK, f->C_CloseAllSessions(slot));
    CALL(CKR_OK, f->C_Finalize(NULL));
}

/* ---- object ---- */

static void family_object(void)
{
    CALL(CKR_OK, f->C_Initialize(NULL));
    CK_SLOT_ID slot = first_slot();
    CK_SESSION_HANDLE h = open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION);

    CK_OBJECT_CLASS data_class = CKO_DATA, key_class = CKO_SECRET_KEY;
    CK_KEY_TYPE aes = CKK_AES;
    CK_BBOOL no = CK_FALSE;
    unsigned char key_value[16];
    memset(key_value, 0x5A, sizeof key_value);
    CK_ATTRIBUTE data_template[] = {
        {CKA_CLASS, &data_class, sizeof data_class},
        {CKA_TOKEN, &no, sizeof no},
        {CKA_LABEL, "trace-data", 10},
        {CKA_APPLICATION, "p11proxy", 8},
        {CKA_VALUE, "hello, trace", 12},
    };
    CK_OBJECT_HANDLE data = 0, key = 0;
    CALL(CKR_OK, f->C_CreateObject(h, data_template, 5, &data));
    CK_ATTRIBUTE key_template[] = {
        {CKA_CLASS, &key_class, sizeof key_class},
        {CKA_KEY_TYPE, &aes, sizeof aes},
        {CKA_TOKEN, &no, sizeof no},
        {CKA_SENSITIVE, &no, sizeof no},
        {CKA_LABEL, "trace-key", 9},
        {CKA_VALUE, key_value, sizeof key_value},
    };
    CALL(CKR_OK, f->C_CreateObject(h, key_template, 6, &key));

    CK_ATTRIBUTE find[] = {{CKA_CLASS, &data_class, sizeof data_class}};
    CALL(CKR_OK, f->C_FindObjectsInit(h, find, 1));
    CK_OBJECT_HANDLE found[4];
    CK_ULONG n_found = 0;
    CALL(CKR_OK, f->C_FindObjects(h, found, 4, &n_found));
    t_ok(n_found == 1 && found[0] == data, "C_FindObjects finds the data object");
    CALL(CKR_OK, f->C_FindObjectsFinal(h));

    CK_ATTRIBUTE sizes[] = {{CKA_LABEL, NULL, 0}, {CKA_VALUE, NULL, 0}};
    CALL(CKR_OK, f->C_GetAttributeValue(h, data, sizes, 2));
    t_ok(sizes[0].ulValueLen == 10 && sizes[1].ulValueLen == 12, "size query gives 10 and 12");
    char label[16], value[16];
    CK_ATTRIBUTE values[] = {{CKA_LABEL, label, sizeof label}, {CKA_VALUE, value, sizeof value}};
    CALL(CKR_OK, f->C_GetAttributeValue(h, data, values, 2));
    CK_KEY_TYPE got_type = 0;
    unsigned char got_key[32];
    CK_ATTRIBUTE key_values[] = {{CKA_KEY_TYPE, &got_type, sizeof got_type}, {CKA_VALUE, got_key, sizeof got_key}};
    CALL(CKR_OK, f->C_GetAttributeValue(h, key, key_values, 2));
    t_ok(key_values[1].ulValueLen == 16 && memcmp(got_key, key_value, 16) == 0, "the key's CKA_VALUE comes back");
    unsigned char modulus[8];
    CK_ATTRIBUTE unknown[] = {{CKA_MODULUS, modulus, sizeof modulus}};
    CALL(CKR_ATTRIBUTE_TYPE_INVALID, f->C_GetAttributeValue(h, data, unknown, 1));

    CK_ATTRIBUTE rename[] = {{CKA_LABEL, "renamed", 7}};
    CALL(CKR_OK, f->C_SetAttributeValue(h, data, rename, 1));
    CALL(CKR_OK, f->C_DestroyObject(h, data));
    CALL(CKR_OK, f->C_CloseSession(h));
    CALL(CKR_OK, f->C_Finalize(NULL));
}

/* ---- crypto ---- */

static void family_crypto(void)
{
    CALL(CKR_OK, f->C_Initialize(NULL));
    CK_SLOT_ID slot = first_slot();
    CK_SESSION_HANDLE h = open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION);

    CK_MECHANISM sha256 = {CKM_SHA256, NULL, 0};
    unsigned char digest[MOCK_DIGEST_LEN], want[MOCK_DIGEST_LEN];
    CK_ULONG digest_len = sizeof digest;
    CALL(CKR_OK, f->C_DigestInit(h, &sha256));
    CALL(CKR_OK, f->C_Digest(h, (CK_BYTE_PTR) "abc", 3, digest, &digest_len));
    mock_fake_digest(0xA, (const unsigned char *)"abc", 3, want);
    t_ok(digest_len == MOCK_DIGEST_LEN && memcmp(digest, want, sizeof want) == 0, "digest is mock-a's");

    /* An EC key pair (the mock's ECDSA is a keyed MAC, so the signature is deterministic). */
    static const unsigned char p256[] = {0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07};
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_MECHANISM ec_gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_ATTRIBUTE pub_template[] = {{CKA_EC_PARAMS, (void *)p256, sizeof p256}, {CKA_VERIFY, &yes, 1}};
    CK_ATTRIBUTE priv_template[] = {{CKA_SIGN, &yes, 1}, {CKA_TOKEN, &no, 1}};
    CK_OBJECT_HANDLE pub = 0, priv = 0;
    CALL(CKR_OK, f->C_GenerateKeyPair(h, &ec_gen, pub_template, 2, priv_template, 2, &pub, &priv));

    CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
    unsigned char data[] = "message to sign";
    unsigned char sig[64];
    CK_ULONG sig_len = 0;
    CALL(CKR_OK, f->C_SignInit(h, &ecdsa, priv));
    CALL(CKR_OK, f->C_Sign(h, data, 15, NULL, &sig_len));
    t_ul(sig_len, MOCK_DIGEST_LEN, "signature size query");
    sig_len = sizeof sig;
    CALL(CKR_OK, f->C_Sign(h, data, 15, sig, &sig_len));
    CALL(CKR_OK, f->C_VerifyInit(h, &ecdsa, pub));
    CALL(CKR_OK, f->C_Verify(h, data, 15, sig, sig_len));

    /* RSA-PSS parameters, decoded in the trace (the mock has no PSS: CKR_MECHANISM_INVALID). */
    CK_RSA_PKCS_PSS_PARAMS pss = {CKM_SHA256, CKG_MGF1_SHA256, 32};
    CK_MECHANISM pss_mech = {CKM_SHA256_RSA_PKCS_PSS, &pss, sizeof pss};
    CALL(CKR_MECHANISM_INVALID, f->C_SignInit(h, &pss_mech, priv));

    CK_MECHANISM aes_gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG sixteen = 16;
    CK_ATTRIBUTE aes_template[] = {{CKA_VALUE_LEN, &sixteen, sizeof sixteen}, {CKA_LABEL, "trace-aes", 9}};
    CK_OBJECT_HANDLE aes = 0;
    CALL(CKR_OK, f->C_GenerateKey(h, &aes_gen, aes_template, 2, &aes));

    /* AES-CBC's IV is shown (the mock has no CBC). */
    unsigned char iv16[16];
    for (int i = 0; i < 16; i++)
        iv16[i] = (unsigned char)i;
    CK_MECHANISM cbc = {CKM_AES_CBC, iv16, sizeof iv16};
    CALL(CKR_MECHANISM_INVALID, f->C_EncryptInit(h, &cbc, aes));

    unsigned char iv12[12] = {0xC0, 0xFF, 0xEE, 0, 1, 2, 3, 4, 5, 6, 7, 8};
    CK_GCM_PARAMS gcm;
    memset(&gcm, 0, sizeof gcm);
    gcm.pIv = iv12;
    gcm.ulIvLen = sizeof iv12;
    gcm.ulIvBits = 96;
    gcm.pAAD = (CK_BYTE_PTR) "header";
    gcm.ulAADLen = 6;
    gcm.ulTagBits = 128;
    CK_MECHANISM gcm_mech = {CKM_AES_GCM, &gcm, sizeof gcm};
    unsigned char plain[] = "trace plaintext!";
    unsigned char cipher[32], back[32];
    CK_ULONG cipher_len = sizeof cipher, back_len = sizeof back;
    CALL(CKR_OK, f->C_EncryptInit(h, &gcm_mech, aes));
    CALL(CKR_OK, f->C_Encrypt(h, plain, 16, cipher, &cipher_len));

    CK_RSA_PKCS_OAEP_PARAMS oaep = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, (void *)"label", 5};
    CK_MECHANISM oaep_mech = {CKM_RSA_PKCS_OAEP, &oaep, sizeof oaep};
    CALL(CKR_MECHANISM_INVALID, f->C_DecryptInit(h, &oaep_mech, aes));
    CALL(CKR_OK, f->C_DecryptInit(h, &gcm_mech, aes));
    CALL(CKR_OK, f->C_Decrypt(h, cipher, cipher_len, back, &back_len));
    t_ok(back_len == 16 && memcmp(back, plain, 16) == 0, "decrypt gives the plaintext back");

    unsigned char random[8];
    CALL(CKR_OK, f->C_GenerateRandom(h, random, sizeof random));
    CALL(CKR_OK, f->C_CloseSession(h));
    CALL(CKR_OK, f->C_Finalize(NULL));
}

/* ---- 3.0 ---- */

static void family_v3(void)
{
    CALL(CKR_OK, f3->C_Initialize(NULL));
    CK_SLOT_ID slot = first_slot();
    CK_SESSION_HANDLE h = open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION);
    CALL(CKR_OK, f3->C_LoginUser(h, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4, (CK_UTF8CHAR_PTR) "alice", 5));

    CK_MECHANISM sha256 = {CKM_SHA256, NULL, 0};
    CALL(CKR_OK, f3->C_DigestInit(h, &sha256));
    CALL(CKR_OK, f3->C_SessionCancel(h, CKF_DIGEST));
    CALL(CKR_OPERATION_NOT_INITIALIZED, f3->C_DigestFinal(h, NULL, &(CK_ULONG){0}));

    CK_MECHANISM aes_gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG sixteen = 16;
    CK_ATTRIBUTE aes_template[] = {{CKA_VALUE_LEN, &sixteen, sizeof sixteen}};
    CK_OBJECT_HANDLE aes = 0;
    CALL(CKR_OK, f3->C_GenerateKey(h, &aes_gen, aes_template, 1, &aes));

    CK_MECHANISM gcm = {CKM_AES_GCM, NULL, 0};
    unsigned char nonce[12] = {0x4E, 0x4F, 0x4E, 0x43, 0x45, 0, 0, 0, 0, 0, 0, 1};
    unsigned char plain[] = "message one";
    unsigned char cipher[16], back[16];
    CK_ULONG cipher_len = sizeof cipher, back_len = sizeof back;
    CALL(CKR_OK, f3->C_MessageEncryptInit(h, &gcm, aes));
    CALL(CKR_OK, f3->C_EncryptMessage(h, nonce, sizeof nonce, (CK_BYTE_PTR) "hdr", 3, plain, 11, cipher, &cipher_len));
    CALL(CKR_OK, f3->C_MessageEncryptFinal(h));
    CALL(CKR_OK, f3->C_MessageDecryptInit(h, &gcm, aes));
    CALL(CKR_OK, f3->C_DecryptMessage(h, nonce, sizeof nonce, (CK_BYTE_PTR) "hdr", 3, cipher, cipher_len, back, &back_len));
    t_ok(back_len == 11 && memcmp(back, plain, 11) == 0, "C_DecryptMessage gives the plaintext back");
    CALL(CKR_OK, f3->C_MessageDecryptFinal(h));
    CALL(CKR_OK, f3->C_Logout(h));
    CALL(CKR_OK, f3->C_CloseSession(h));
    CALL(CKR_OK, f3->C_Finalize(NULL));
}

/* ---- 3.2 ---- */

static CK_OBJECT_HANDLE create(CK_SESSION_HANDLE h, CK_ATTRIBUTE_PTR tmpl, CK_ULONG n)
{
    CK_OBJECT_HANDLE o = CK_INVALID_HANDLE;
    CALL(CKR_OK, f32->C_CreateObject(h, tmpl, n, &o));
    return o;
}

static void family_v32(void)
{
    CALL(CKR_OK, f32->C_Initialize(NULL));
    CK_SLOT_ID slot = first_slot();
    CK_SESSION_HANDLE h = open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION);
    CK_BBOOL yes = CK_TRUE;
    CK_OBJECT_CLASS pub_class = CKO_PUBLIC_KEY, priv_class = CKO_PRIVATE_KEY;
    CK_KEY_TYPE ml_kem = CKK_ML_KEM;
    CK_ULONG ml_kem_768 = CKP_ML_KEM_768;
    unsigned char pub_value[8] = "pub-kem", priv_value[8] = "prv-kem", seed[8] = "seed-kem";
    CK_ATTRIBUTE pub_tmpl[] = {{CKA_CLASS, &pub_class, sizeof pub_class}, {CKA_KEY_TYPE, &ml_kem, sizeof ml_kem},
                               {CKA_PARAMETER_SET, &ml_kem_768, sizeof ml_kem_768},
                               {CKA_ENCAPSULATE, &yes, sizeof yes}, {CKA_VALUE, pub_value, sizeof pub_value}};
    CK_ATTRIBUTE priv_tmpl[] = {{CKA_CLASS, &priv_class, sizeof priv_class}, {CKA_KEY_TYPE, &ml_kem, sizeof ml_kem},
                                {CKA_PARAMETER_SET, &ml_kem_768, sizeof ml_kem_768},
                                {CKA_DECAPSULATE, &yes, sizeof yes}, {CKA_VALUE, priv_value, sizeof priv_value},
                                {CKA_SEED, seed, sizeof seed}};
    CK_OBJECT_HANDLE pub = create(h, pub_tmpl, 5), priv = create(h, priv_tmpl, 6);

    CK_MECHANISM kem = {CKM_ML_KEM, NULL, 0};
    unsigned char ct[32];
    CK_ULONG ct_len = 0;
    CK_OBJECT_HANDLE shared = 0, shared2 = 0;
    CALL(CKR_OK, f32->C_EncapsulateKey(h, &kem, pub, NULL, 0, NULL, &ct_len, &shared));
    ct_len = sizeof ct;
    CK_OBJECT_CLASS secret_class = CKO_SECRET_KEY;
    CK_ATTRIBUTE secret_tmpl[] = {{CKA_CLASS, &secret_class, sizeof secret_class}};
    CALL(CKR_OK, f32->C_EncapsulateKey(h, &kem, pub, secret_tmpl, 1, ct, &ct_len, &shared));
    CALL(CKR_OK, f32->C_DecapsulateKey(h, &kem, priv, secret_tmpl, 1, ct, ct_len, &shared2));

    /* The post-quantum key pairs and signing contexts: the mock knows none of these
     * mechanisms, but the trace decodes what the caller sent. */
    CK_MECHANISM ml_dsa_gen = {CKM_ML_DSA_KEY_PAIR_GEN, NULL, 0};
    CK_ULONG ml_dsa_65 = CKP_ML_DSA_65;
    CK_ATTRIBUTE dsa_pub[] = {{CKA_PARAMETER_SET, &ml_dsa_65, sizeof ml_dsa_65}, {CKA_VERIFY, &yes, sizeof yes}};
    CK_ATTRIBUTE dsa_priv[] = {{CKA_SIGN, &yes, sizeof yes}};
    CK_OBJECT_HANDLE dsa_pub_key = 0, dsa_priv_key = 0;
    CALL(CKR_MECHANISM_INVALID,
         f32->C_GenerateKeyPair(h, &ml_dsa_gen, dsa_pub, 2, dsa_priv, 1, &dsa_pub_key, &dsa_priv_key));
    CK_SIGN_ADDITIONAL_CONTEXT context = {CKH_DETERMINISTIC_REQUIRED, (CK_BYTE_PTR) "ctx", 3};
    CK_MECHANISM ml_dsa = {CKM_ML_DSA, &context, sizeof context};
    CALL(CKR_MECHANISM_INVALID, f32->C_SignInit(h, &ml_dsa, priv));
    CK_HASH_SIGN_ADDITIONAL_CONTEXT hash_context = {CKH_HEDGE_REQUIRED, (CK_BYTE_PTR) "app", 3, CKM_SHA512};
    CK_MECHANISM hash_slh_dsa = {CKM_HASH_SLH_DSA, &hash_context, sizeof hash_context};
    unsigned char sig[MOCK_DIGEST_LEN];
    memset(sig, 0x51, sizeof sig);
    CALL(CKR_MECHANISM_INVALID, f32->C_VerifySignatureInit(h, &hash_slh_dsa, pub, sig, sizeof sig));

    /* C_VerifySignature with a signature the mock made (ECDSA over its MAC). */
    CK_OBJECT_CLASS key_class = CKO_SECRET_KEY;
    CK_KEY_TYPE generic = CKK_GENERIC_SECRET;
    unsigned char mac_value[8] = "mac-key";
    CK_ATTRIBUTE mac_tmpl[] = {{CKA_CLASS, &key_class, sizeof key_class}, {CKA_KEY_TYPE, &generic, sizeof generic},
                               {CKA_VALUE, mac_value, sizeof mac_value}};
    CK_OBJECT_HANDLE mac_key = create(h, mac_tmpl, 3);
    CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
    unsigned char data[] = "signed";
    CK_ULONG sig_len = sizeof sig;
    CALL(CKR_OK, f32->C_SignInit(h, &ecdsa, mac_key));
    CALL(CKR_OK, f32->C_Sign(h, data, sizeof data, sig, &sig_len));
    CALL(CKR_OK, f32->C_VerifySignatureInit(h, &ecdsa, mac_key, sig, sig_len));
    CALL(CKR_OK, f32->C_VerifySignatureUpdate(h, data, 3));
    CALL(CKR_OK, f32->C_VerifySignatureUpdate(h, data + 3, sizeof data - 3));
    CALL(CKR_OK, f32->C_VerifySignatureFinal(h));
    CALL(CKR_OK, f32->C_VerifySignatureInit(h, &ecdsa, mac_key, sig, sig_len));
    CALL(CKR_OK, f32->C_VerifySignature(h, data, sizeof data));
    CK_FLAGS validation = 0;
    CALL(CKR_OK, f32->C_GetSessionValidationFlags(h, CKS_LAST_VALIDATION_OK, &validation));

    CK_MECHANISM gcm = {CKM_AES_GCM, NULL, 0};
    unsigned char wrapped[16];
    CK_ULONG wrapped_len = 0;
    CK_OBJECT_HANDLE unwrapped = 0;
    CALL(CKR_OK, f32->C_WrapKeyAuthenticated(h, &gcm, mac_key, shared, (CK_BYTE_PTR) "aad", 3, NULL, &wrapped_len));
    CALL(CKR_OK, f32->C_WrapKeyAuthenticated(h, &gcm, mac_key, shared, (CK_BYTE_PTR) "aad", 3, wrapped, &wrapped_len));
    CALL(CKR_OK, f32->C_UnwrapKeyAuthenticated(h, &gcm, mac_key, wrapped, wrapped_len, secret_tmpl, 1,
                                                (CK_BYTE_PTR) "aad", 3, &unwrapped));

    /* An asynchronous session: the pending call's buffers are not read. */
    CK_SESSION_HANDLE async = open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION | CKF_ASYNC_SESSION);
    CK_OBJECT_HANDLE async_pub = create(async, pub_tmpl, 5), async_key = 0;
    unsigned char async_ct[32], joined[32];
    CK_ULONG async_len = sizeof async_ct, id = 0;
    CALL(CKR_PENDING, f32->C_EncapsulateKey(async, &kem, async_pub, NULL, 0, async_ct, &async_len, &async_key));
    CALL(CKR_OK, f32->C_AsyncGetID(async, (CK_UTF8CHAR_PTR) "C_EncapsulateKey", &id));
    CALL(CKR_OK, f32->C_AsyncJoin(async, (CK_UTF8CHAR_PTR) "C_EncapsulateKey", id, joined, sizeof joined));
    CK_ASYNC_DATA result = {1, NULL, 0, 0, 0};
    CALL(CKR_OK, f32->C_AsyncComplete(async, (CK_UTF8CHAR_PTR) "C_EncapsulateKey", &result));
    CALL(CKR_OK, f32->C_CloseSession(async));
    CALL(CKR_OK, f32->C_CloseSession(h));
    CALL(CKR_OK, f32->C_Finalize(NULL));
}

/* ---- secrets (redaction) ---- */

/* Kept in sync with Tests/integration/test_trace.sh, which searches the trace for them. */
#define SECRET_PIN "Tr4ce-PIN-x9"
#define SECRET_PLAIN "Attack at dawn, 0xC0FFEE!"

static void family_secrets(void)
{
    CALL(CKR_OK, f->C_Initialize(NULL));
    CK_SLOT_ID slot = first_slot();
    CK_SESSION_HANDLE h = open_session(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION);
    CALL(CKR_OK, f->C_SetPIN(h, (CK_UTF8CHAR_PTR) "1234", 4, (CK_UTF8CHAR_PTR)SECRET_PIN, strlen(SECRET_PIN)));
    CALL(CKR_OK, f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)SECRET_PIN, strlen(SECRET_PIN)));

    CK_OBJECT_CLASS key_class = CKO_SECRET_KEY;
    CK_KEY_TYPE aes = CKK_AES;
    CK_BBOOL no = CK_FALSE;
    unsigned char key_value[16];
    memset(key_value, 0x5A, sizeof key_value);
    CK_ATTRIBUTE key_template[] = {
        {CKA_CLASS, &key_class, sizeof key_class}, {CKA_KEY_TYPE, &aes, sizeof aes},
        {CKA_TOKEN, &no, sizeof no},               {CKA_LABEL, "imported", 8},
        {CKA_VALUE, key_value, sizeof key_value},
    };
    CK_OBJECT_HANDLE key = 0;
    CALL(CKR_OK, f->C_CreateObject(h, key_template, 5, &key));

    CK_MECHANISM gcm = {CKM_AES_GCM, NULL, 0};
    size_t n = strlen(SECRET_PLAIN);
    unsigned char cipher[64], back[64];
    CK_ULONG cipher_len = sizeof cipher, back_len = sizeof back;
    CALL(CKR_OK, f->C_EncryptInit(h, &gcm, key));
    CALL(CKR_OK, f->C_Encrypt(h, (CK_BYTE_PTR)SECRET_PLAIN, n, cipher, &cipher_len));
    CALL(CKR_OK, f->C_DecryptInit(h, &gcm, key));
    CALL(CKR_OK, f->C_Decrypt(h, cipher, cipher_len, back, &back_len));
    t_ok(back_len == n && memcmp(back, SECRET_PLAIN, n) == 0, "C_Decrypt gives the plaintext back");

    unsigned char got[32];
    CK_ATTRIBUTE get_value[] = {{CKA_VALUE, got, sizeof got}};
    CALL(CKR_OK, f->C_GetAttributeValue(h, key, get_value, 1));
    unsigned char random[12]; /* mock-a's "random" bytes count up from 00 */
    CALL(CKR_OK, f->C_GenerateRandom(h, random, sizeof random));
    char cipher_hex[2 * sizeof cipher + 1];
    hex(cipher_hex, cipher, cipher_len);
    t_diag("ciphertext %s (may appear in the trace)", cipher_hex);
    CALL(CKR_OK, f->C_Logout(h));
    CALL(CKR_OK, f->C_CloseSession(h));
    CALL(CKR_OK, f->C_Finalize(NULL));
}

/* ---- flush (buffering rules) ---- */

static char *read_file(const char *path)
{
    FILE *fp = fopen(path, "r");
    if (!fp)
        return strdup("");
    char *buf = NULL;
    size_t cap = 0, len = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = (cap + 4096) * 2;
            buf = realloc(buf, cap);
        }
        size_t got = fread(buf + len, 1, 4096, fp);
        len += got;
        if (got == 0)
            break;
    }
    fclose(fp);
    buf[len] = 0;
    return buf;
}

static int count_in_file(const char *path, const char *needle)
{
    char *text = read_file(path);
    int n = 0;
    for (char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    free(text);
    return n;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Needs P11PROXY_LOG_FILE and the text format. The module's C_GetTokenInfo / C_GetSlotInfo
 * footers ("C_X = CKR_OK") count the records of interest. */
static void family_flush(void)
{
    const char *path = getenv("P11PROXY_LOG_FILE");
    if (!t_ok(path && *path, "P11PROXY_LOG_FILE is set"))
        return;
    CALL(CKR_OK, f->C_Initialize(NULL));
    CK_SLOT_ID slot = first_slot();
    CK_MECHANISM_INFO mech_info;

    /* An error return is written at once, with what was buffered before it. */
    CALL(CKR_MECHANISM_INVALID, f->C_GetMechanismInfo(slot, CKM_MD5, &mech_info));
    t_ok(count_in_file(path, "C_GetMechanismInfo = CKR_MECHANISM_INVALID\n") == 1,
         "flush: an error return is in the file at once");
    /* Two C_GetSlotList pairs: p11proxy's own at C_Initialize (slot IDs exist from then on)
     * and first_slot()'s. */
    t_ok(count_in_file(path, "C_GetSlotList = CKR_OK\n") == 4, "flush: records before the error return are in the file");

    /* Idle: a record made within 100 ms of the last write must not wait for the next call. */
    CK_TOKEN_INFO token_info;
    CALL(CKR_OK, f->C_GetTokenInfo(slot, &token_info));
    CALL(CKR_OK, f->C_GetTokenInfo(slot, &token_info));
    sleep_ms(400);
    int idle = count_in_file(path, "C_GetTokenInfo = CKR_OK\n");
    t_ok(idle == 2, "flush: 400 ms after the last call, both C_GetTokenInfo records are in the file (found %d)", idle);

    /* fork: the parent's buffered records are written once (before fork), not again by the child. */
    CK_SLOT_INFO slot_info;
    CALL(CKR_OK, f->C_GetSlotInfo(slot, &slot_info));
    CALL(CKR_OK, f->C_GetSlotInfo(slot, &slot_info));
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        exit(0); /* atexit handlers run: a stale copy of the buffer would be written here */
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    t_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "flush: fork child exited");
    int forked = count_in_file(path, "C_GetSlotInfo = CKR_OK\n");
    t_ok(forked == 2, "flush: records buffered before fork are in the file exactly once (found %d)", forked);

    /* C_Finalize writes everything, its own record included. */
    CALL(CKR_OK, f->C_GetTokenInfo(slot, &token_info));
    CALL(CKR_OK, f->C_Finalize(NULL));
    t_ok(count_in_file(path, "C_GetTokenInfo = CKR_OK\n") == 3, "flush: C_Finalize writes the buffered records");
    t_ok(count_in_file(path, "C_Finalize = CKR_OK\n") == 1, "flush: C_Finalize's own record is in the file at once");

    /* Exit: the script counts C_GetSessionInfo records after we return without C_Finalize. */
    CALL(CKR_OK, f->C_Initialize(NULL));
    slot = first_slot();
    CK_SESSION_HANDLE h = open_session(slot, CKF_SERIAL_SESSION);
    CK_SESSION_INFO info;
    for (int i = 0; i < 3; i++)
        CALL(CKR_OK, f->C_GetSessionInfo(h, &info));
    t_diag("exit: 3 C_GetSessionInfo records must be in the file after exit");
}

static const struct family {
    const char *name;
    void (*run)(void);
    int v3;
} families[] = {
    {"general", family_general, 0}, {"slot", family_slot, 0},       {"session", family_session, 0},
    {"object", family_object, 0},   {"crypto", family_crypto, 0},   {"v3", family_v3, 1},
    {"v32", family_v32, 2},         {"secrets", family_secrets, 0}, {"flush", family_flush, 0},
};

int main(int argc, char **argv)
{
    t_init(argc, argv);
    const struct family *family = NULL;
    for (size_t i = 0; argc > 3 && i < sizeof families / sizeof families[0]; i++)
        if (strcmp(argv[3], families[i].name) == 0)
            family = &families[i];
    if (!family) {
        fprintf(stderr, "usage: %s PROXY_SO MOCK_DIR FAMILY (general slot session object crypto v3 v32 secrets flush)\n",
                argv[0]);
        return 2;
    }
    config_default(family->v3 == 2 ? "mock-v32" : "mock-a");
    if (open_caller(family->v3))
        family->run();
    return t_done();
}
