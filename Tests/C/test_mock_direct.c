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
        if (f) {
            check_lifecycle(&a, f);
            check_slots_sessions(&a, f);
            check_objects_crypto(f);
            check_events(&a, f);
            check_fork(&a, f);
            t_rv(f->C_Finalize(NULL), CKR_OK, "mock: finalize");
            struct mock_stats s = t_mock_stats(&a);
            t_ul(s.open_sessions, 0, "mock: no sessions after finalize");
            t_ul(s.calls_3_0, 9, "mock: every 3.0 call counted");
        }
    }
    check_variants();
    return t_done();
}
