/* test_v32.c: PKCS#11 3.2 through the proxy. One proxy over a 3.2 mock (mock-v32), a 3.2 list
 * with NULL entries as p11-kit 0.26 builds them (mock-v32-null), a 3.0 mock (mock-a) and a
 * 2.40 mock (mock-b):
 *   - the interfaces (3.2, 3.0, 2.40), C_GetInterface's rules, C_GetInfo's cryptokiVersion per
 *     list, and CK_FUNCTION_LIST_3_2's layout (OASIS: the 3.0 list, then the twelve);
 *   - the twelve functions on the 3.2 mock: results, size queries of C_EncapsulateKey and
 *     C_WrapKeyAuthenticated, C_DecapsulateKey's ulCiphertextLen by value, session handles
 *     translated (the mock refuses any handle but its own), bad handles;
 *   - an asynchronous session: CKR_PENDING passes through, and the caller's buffers stay
 *     untouched until C_AsyncComplete;
 *   - CKR_FUNCTION_NOT_SUPPORTED for every one of the twelve on the older modules, which
 *     never see the call.
 * Run with tracing off and on (text and JSON), so the tracer's 3.2 wrappers run too. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p11test.h"

static struct t_mock m32, m32null, ma, mb;

_Static_assert(offsetof(CK_FUNCTION_LIST_3_2, C_EncapsulateKey) == sizeof(CK_FUNCTION_LIST_3_0),
               "the 3.2 list starts with the 3.0 list");
_Static_assert(sizeof(CK_FUNCTION_LIST_3_2) == sizeof(CK_FUNCTION_LIST_3_0) + 12 * sizeof(void *),
               "twelve 3.2 entries");

/* The twelve 3.2 entries of a list, in order. */
static void *const *entries_3_2(CK_FUNCTION_LIST_3_2_PTR f)
{
    return (void *const *)&f->C_EncapsulateKey;
}

static void check_interfaces(struct t_proxy *px, CK_FUNCTION_LIST_3_2_PTR *out32, CK_FUNCTION_LIST_PTR *out240,
                             CK_FUNCTION_LIST_3_0_PTR *out30)
{
    CK_INTERFACE ifs[4];
    CK_ULONG n = 4;
    t_rv(px->get_interface_list(ifs, &n), CKR_OK, "exported C_GetInterfaceList");
    t_ul(n, 3, "three interfaces");
    static const CK_VERSION want[] = {{3, 2}, {3, 0}, {2, 40}};
    for (CK_ULONG i = 0; i < n && i < 3; i++) {
        CK_VERSION *v = ifs[i].pFunctionList;
        t_ok(!strcmp((char *)ifs[i].pInterfaceName, "PKCS 11") && v->major == want[i].major &&
                 v->minor == want[i].minor && ifs[i].flags == 0,
             "interface %lu is \"PKCS 11\" %d.%d without flags (got %d.%d)", i, want[i].major, want[i].minor,
             v->major, v->minor);
    }
    CK_INTERFACE_PTR found = NULL;
    t_rv(px->get_interface(NULL, NULL, &found, 0), CKR_OK, "C_GetInterface(NULL, NULL): any");
    t_ok(found && ((CK_VERSION *)found->pFunctionList)->minor == 2, "... gives the newest, 3.2");
    CK_VERSION v32 = {3, 2}, v30 = {3, 0}, v240 = {2, 40}, v31 = {3, 1};
    found = NULL;
    t_rv(px->get_interface((CK_UTF8CHAR_PTR) "PKCS 11", &v32, &found, 0), CKR_OK, "C_GetInterface 3.2");
    if (!found)
        return;
    CK_FUNCTION_LIST_3_2_PTR f = found->pFunctionList;
    t_ok(f->version.major == 3 && f->version.minor == 2, "its list says 3.2");
    int all = 1;
    for (int i = 0; i < 12; i++)
        all &= entries_3_2(f)[i] != NULL;
    t_ok(all, "the twelve 3.2 entries are set");
    CK_INTERFACE_PTR i30 = NULL, i240 = NULL;
    t_rv(f->C_GetInterface((CK_UTF8CHAR_PTR) "PKCS 11", &v30, &i30, 0), CKR_OK, "its C_GetInterface 3.0");
    t_rv(f->C_GetInterface(NULL, &v240, &i240, 0), CKR_OK, "its C_GetInterface 2.40 (NULL name: any)");
    t_rv(f->C_GetInterface(NULL, &v31, &found, 0), CKR_ARGUMENTS_BAD, "no 3.1 interface (3.1 has no functions)");
    t_rv(f->C_GetInterface(NULL, &v32, &found, CKF_INTERFACE_FORK_SAFE), CKR_ARGUMENTS_BAD,
         "a flag the 3.2 interface lacks finds nothing");
    CK_FUNCTION_LIST_PTR gfl = NULL;
    t_rv(f->C_GetFunctionList(&gfl), CKR_OK, "its C_GetFunctionList");
    t_ok(gfl && gfl->version.major == 2 && gfl->version.minor == 40, "C_GetFunctionList's list reports 2.40");
    *out32 = f;
    *out30 = i30 ? i30->pFunctionList : NULL;
    *out240 = i240 ? i240->pFunctionList : NULL;
}

static void check_info(CK_FUNCTION_LIST_3_2_PTR f32, CK_FUNCTION_LIST_3_0_PTR f30, CK_FUNCTION_LIST_PTR f240)
{
    CK_INFO i32, i30, i240;
    t_rv(f32->C_GetInfo(&i32), CKR_OK, "C_GetInfo through the 3.2 list");
    t_rv(f30->C_GetInfo(&i30), CKR_OK, "C_GetInfo through the 3.0 list");
    t_rv(f240->C_GetInfo(&i240), CKR_OK, "C_GetInfo through the 2.40 list");
    t_ok(i32.cryptokiVersion.major == 3 && i32.cryptokiVersion.minor == 2, "3.2 list: cryptokiVersion 3.2");
    t_ok(i30.cryptokiVersion.major == 3 && i30.cryptokiVersion.minor == 0, "3.0 list: cryptokiVersion 3.0");
    t_ok(i240.cryptokiVersion.major == 2 && i240.cryptokiVersion.minor == 40, "2.40 list: cryptokiVersion 2.40");
    t_ok(!memcmp(i32.manufacturerID, i240.manufacturerID, sizeof i32.manufacturerID),
         "the rest of CK_INFO is the same");
}

static CK_OBJECT_HANDLE make_object(CK_FUNCTION_LIST_3_2_PTR f, CK_SESSION_HANDLE h, CK_OBJECT_CLASS cls,
                                    CK_KEY_TYPE type)
{
    static unsigned char value[16] = "0123456789abcdef";
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &type, sizeof type},
                           {CKA_VALUE, value, sizeof value}};
    CK_OBJECT_HANDLE o = CK_INVALID_HANDLE;
    t_rv(f->C_CreateObject(h, tmpl, 3, &o), CKR_OK, "C_CreateObject (class %lu, key type 0x%lx)", cls, type);
    return o;
}

static int value_of(CK_FUNCTION_LIST_3_2_PTR f, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE o, unsigned char out[16])
{
    CK_ATTRIBUTE a = {CKA_VALUE, out, 16};
    return f->C_GetAttributeValue(h, o, &a, 1) == CKR_OK && a.ulValueLen == 16;
}

static void check_kem(CK_FUNCTION_LIST_3_2_PTR f, CK_SESSION_HANDLE h)
{
    CK_OBJECT_HANDLE pub = make_object(f, h, CKO_PUBLIC_KEY, CKK_ML_KEM);
    CK_OBJECT_HANDLE priv = make_object(f, h, CKO_PRIVATE_KEY, CKK_ML_KEM);
    CK_MECHANISM kem = {CKM_ML_KEM, NULL, 0};
    unsigned char ct[64];
    CK_ULONG len = 0;
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE, key2 = CK_INVALID_HANDLE;
    unsigned long objects = t_mock_stats(&m32).objects;
    t_rv(f->C_EncapsulateKey(h, &kem, pub, NULL, 0, NULL, &len, &key), CKR_OK, "C_EncapsulateKey size query");
    t_ul(len, 32, "... gives the ciphertext length");
    t_ok(key == CK_INVALID_HANDLE && t_mock_stats(&m32).objects == objects, "... and makes no key");
    len = 8;
    t_rv(f->C_EncapsulateKey(h, &kem, pub, NULL, 0, ct, &len, &key), CKR_BUFFER_TOO_SMALL,
         "C_EncapsulateKey short buffer");
    t_ul(len, 32, "... gives the length needed");
    len = sizeof ct;
    t_rv(f->C_EncapsulateKey(h, &kem, pub, NULL, 0, ct, &len, &key), CKR_OK, "C_EncapsulateKey");
    t_ok(len == 32 && key != CK_INVALID_HANDLE, "... a 32-byte ciphertext and a key (%lu)", key);
    t_rv(f->C_DecapsulateKey(h, &kem, priv, NULL, 0, ct, len, &key2), CKR_OK, "C_DecapsulateKey");
    t_ul(t_mock_stats(&m32).last_decapsulate_len, 32, "C_DecapsulateKey's ulCiphertextLen arrives by value");
    unsigned char v1[16], v2[16];
    t_ok(value_of(f, h, key, v1) && value_of(f, h, key2, v2) && !memcmp(v1, v2, 16),
         "the encapsulated and decapsulated keys hold the same secret");
    t_rv(f->C_DecapsulateKey(h, &kem, priv, NULL, 0, ct, 31, &key2), CKR_ENCRYPTED_DATA_LEN_RANGE,
         "C_DecapsulateKey with a short ciphertext: the module's answer");
    t_rv(f->C_EncapsulateKey(h, &kem, 0xDEAD, NULL, 0, ct, &len, &key), CKR_KEY_HANDLE_INVALID,
         "C_EncapsulateKey with a bad key handle: the module's answer");
}

static void check_verify_signature(CK_FUNCTION_LIST_3_2_PTR f, CK_SESSION_HANDLE h)
{
    CK_OBJECT_HANDLE key = make_object(f, h, CKO_SECRET_KEY, CKK_GENERIC_SECRET);
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    unsigned char data[] = "signed data", sig[MOCK_DIGEST_LEN];
    CK_ULONG sig_len = sizeof sig;
    t_rv(f->C_SignInit(h, &mech, key), CKR_OK, "C_SignInit");
    t_rv(f->C_Sign(h, data, sizeof data, sig, &sig_len), CKR_OK, "C_Sign");
    t_rv(f->C_VerifySignatureInit(h, &mech, key, sig, sig_len), CKR_OK, "C_VerifySignatureInit");
    t_rv(f->C_VerifySignature(h, data, sizeof data), CKR_OK, "C_VerifySignature");
    t_rv(f->C_VerifySignatureInit(h, &mech, key, sig, sig_len), CKR_OK, "C_VerifySignatureInit again");
    t_rv(f->C_VerifySignatureUpdate(h, data, 5), CKR_OK, "C_VerifySignatureUpdate");
    t_rv(f->C_VerifySignatureUpdate(h, data + 5, sizeof data - 5), CKR_OK, "C_VerifySignatureUpdate");
    t_rv(f->C_VerifySignatureFinal(h), CKR_OK, "C_VerifySignatureFinal");
    sig[0] ^= 1;
    t_rv(f->C_VerifySignatureInit(h, &mech, key, sig, sig_len), CKR_OK, "C_VerifySignatureInit, bad signature");
    t_rv(f->C_VerifySignature(h, data, sizeof data), CKR_SIGNATURE_INVALID, "C_VerifySignature: invalid");
    t_rv(f->C_VerifySignatureFinal(h), CKR_OPERATION_NOT_INITIALIZED, "the operation ended");
}

static void check_wrap_authenticated(CK_FUNCTION_LIST_3_2_PTR f, CK_SESSION_HANDLE h)
{
    CK_OBJECT_HANDLE wk = make_object(f, h, CKO_SECRET_KEY, CKK_AES), key = make_object(f, h, CKO_SECRET_KEY, CKK_AES);
    CK_MECHANISM gcm = {CKM_AES_GCM, NULL, 0};
    unsigned char ad[] = "associated", wrapped[64];
    CK_ULONG len = 0;
    t_rv(f->C_WrapKeyAuthenticated(h, &gcm, wk, key, ad, sizeof ad, NULL, &len), CKR_OK,
         "C_WrapKeyAuthenticated size query");
    t_ul(len, 16, "... gives the wrapped length");
    len = 4;
    t_rv(f->C_WrapKeyAuthenticated(h, &gcm, wk, key, ad, sizeof ad, wrapped, &len), CKR_BUFFER_TOO_SMALL,
         "C_WrapKeyAuthenticated short buffer");
    t_ul(len, 16, "... gives the length needed");
    len = sizeof wrapped;
    t_rv(f->C_WrapKeyAuthenticated(h, &gcm, wk, key, ad, sizeof ad, wrapped, &len), CKR_OK, "C_WrapKeyAuthenticated");
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}};
    CK_OBJECT_HANDLE unwrapped = CK_INVALID_HANDLE;
    t_rv(f->C_UnwrapKeyAuthenticated(h, &gcm, wk, wrapped, len, tmpl, 1, ad, sizeof ad, &unwrapped), CKR_OK,
         "C_UnwrapKeyAuthenticated with the same associated data");
    t_ok(unwrapped != CK_INVALID_HANDLE, "... makes a key");
    t_rv(f->C_UnwrapKeyAuthenticated(h, &gcm, wk, wrapped, len, tmpl, 1, ad, sizeof ad - 2, &unwrapped),
         CKR_WRAPPED_KEY_INVALID, "C_UnwrapKeyAuthenticated with other associated data");
}

static void check_async(CK_FUNCTION_LIST_3_2_PTR f, CK_SLOT_ID slot)
{
    CK_SESSION_HANDLE h = 0;
    t_rv(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_ASYNC_SESSION, NULL, NULL, &h), CKR_OK,
         "C_OpenSession with CKF_ASYNC_SESSION");
    CK_SESSION_INFO si;
    t_rv(f->C_GetSessionInfo(h, &si), CKR_OK, "C_GetSessionInfo of the asynchronous session");
    t_ok(si.flags & CKF_ASYNC_SESSION, "the module kept CKF_ASYNC_SESSION (flags 0x%lx)", si.flags);
    CK_OBJECT_HANDLE pub = make_object(f, h, CKO_PUBLIC_KEY, CKK_ML_KEM);
    CK_MECHANISM kem = {CKM_ML_KEM, NULL, 0};
    unsigned char ct[32], joined[32];
    memset(ct, 0xAB, sizeof ct);
    memset(joined, 0xAB, sizeof joined);
    CK_ULONG len = sizeof ct, id = 0;
    CK_OBJECT_HANDLE key = 0x5EED;
    t_rv(f->C_EncapsulateKey(h, &kem, pub, NULL, 0, ct, &len, &key), CKR_PENDING, "C_EncapsulateKey: CKR_PENDING");
    t_ok(ct[0] == 0xAB && len == sizeof ct && key == 0x5EED, "the caller's buffers are untouched while pending");
    t_rv(f->C_AsyncGetID(h, (CK_UTF8CHAR_PTR) "C_EncapsulateKey", &id), CKR_OK, "C_AsyncGetID");
    t_ok(id != 0, "... gives an ID (0x%lx)", id);
    t_rv(f->C_AsyncJoin(h, (CK_UTF8CHAR_PTR) "C_EncapsulateKey", id, joined, 8), CKR_BUFFER_TOO_SMALL,
         "C_AsyncJoin with a short buffer: the module's answer");
    t_rv(f->C_AsyncJoin(h, (CK_UTF8CHAR_PTR) "C_EncapsulateKey", id, joined, sizeof joined), CKR_OK, "C_AsyncJoin");
    CK_ASYNC_DATA result;
    memset(&result, 0, sizeof result);
    result.ulVersion = 1;
    t_rv(f->C_AsyncComplete(h, (CK_UTF8CHAR_PTR) "C_EncapsulateKey", &result), CKR_OK, "C_AsyncComplete");
    t_ok(result.pValue == joined && result.ulValue == 32 && result.hObject == key && key != 0x5EED,
         "... the result: the joined buffer, 32 bytes, the new key (%lu)", result.hObject);
    t_ok(joined[0] != 0xAB || joined[1] != 0xAB, "the joined buffer was filled on completion");
    t_rv(f->C_AsyncComplete(h, (CK_UTF8CHAR_PTR) "C_EncapsulateKey", &result), CKR_OPERATION_NOT_INITIALIZED,
         "nothing left pending");
    f->C_CloseSession(h);
}

/* Arguments for calling each of the twelve on a module that must not see them. */
static void twelve_unsupported(CK_FUNCTION_LIST_3_2_PTR f, CK_SESSION_HANDLE h, const char *who)
{
    CK_MECHANISM m = {CKM_ML_KEM, NULL, 0};
    unsigned char buf[32] = {0};
    CK_ULONG len = sizeof buf, ul = 0;
    CK_OBJECT_HANDLE o = 0;
    CK_ASYNC_DATA data = {0};
    CK_UTF8CHAR_PTR name = (CK_UTF8CHAR_PTR) "C_EncapsulateKey";
    CK_RV rvs[12] = {
        f->C_EncapsulateKey(h, &m, 1, NULL, 0, buf, &len, &o),
        f->C_DecapsulateKey(h, &m, 1, NULL, 0, buf, sizeof buf, &o),
        f->C_VerifySignatureInit(h, &m, 1, buf, sizeof buf),
        f->C_VerifySignature(h, buf, sizeof buf),
        f->C_VerifySignatureUpdate(h, buf, sizeof buf),
        f->C_VerifySignatureFinal(h),
        f->C_GetSessionValidationFlags(h, CKS_LAST_VALIDATION_OK, &ul),
        f->C_AsyncComplete(h, name, &data),
        f->C_AsyncGetID(h, name, &ul),
        f->C_AsyncJoin(h, name, 1, buf, sizeof buf),
        f->C_WrapKeyAuthenticated(h, &m, 1, 2, buf, 4, buf, &len),
        f->C_UnwrapKeyAuthenticated(h, &m, 1, buf, 16, NULL, 0, buf, 4, &o),
    };
    int all = 1;
    for (int i = 0; i < 12; i++)
        all &= rvs[i] == CKR_FUNCTION_NOT_SUPPORTED;
    t_ok(all, "%s: each of the twelve 3.2 functions answers CKR_FUNCTION_NOT_SUPPORTED", who);
}

static CK_SESSION_HANDLE open_on(CK_FUNCTION_LIST_3_2_PTR f, const char *label)
{
    CK_SESSION_HANDLE h = 0;
    CK_SLOT_ID slot = t_slot_by_label((CK_FUNCTION_LIST_PTR)f, label);
    t_rv(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h), CKR_OK, "session on %s", label);
    return h;
}

struct mode {
    const char *name;
    const char *format; /* NULL: tracing off */
};

static void scenario(void *arg)
{
    const struct mode *mode = arg;
    char *dir = t_config_new("v32");
    t_config_module(dir, "mock-v32", "module: %s\npriority: 4\n", m32.path);
    t_config_module(dir, "mock-v32-null", "module: %s\npriority: 3\n", m32null.path);
    t_config_module(dir, "mock-a", "module: %s\npriority: 2\n", ma.path);
    t_config_module(dir, "mock-b", "module: %s\npriority: 1\n", mb.path);
    t_config_use(dir);
    char *trace = t_temp_path("v32-trace");
    if (mode->format)
        t_trace_to(trace, mode->format, 0);
    struct t_proxy px;
    if (!t_proxy_open(&px))
        return;
    CK_FUNCTION_LIST_3_2_PTR f = NULL;
    CK_FUNCTION_LIST_3_0_PTR f30 = NULL;
    CK_FUNCTION_LIST_PTR f240 = NULL;
    check_interfaces(&px, &f, &f240, &f30);
    if (!f || !f30 || !f240)
        return;
    if (!t_rv(f->C_Initialize(NULL), CKR_OK, "C_Initialize"))
        return;
    check_info(f, f30, f240);

    CK_SESSION_HANDLE h = open_on(f, "mock-v32-1");
    CK_FLAGS flags = 0;
    t_rv(f->C_GetSessionValidationFlags(h, CKS_LAST_VALIDATION_OK, &flags), CKR_OK, "C_GetSessionValidationFlags");
    t_ul(flags, 0x32, "... the 3.2 mock answered (its tag)");
    t_rv(f->C_GetSessionValidationFlags(h, 99, &flags), CKR_ARGUMENTS_BAD, "an unknown flags type: the module's answer");
    check_kem(f, h);
    check_verify_signature(f, h);
    check_wrap_authenticated(f, h);
    check_async(f, t_slot_by_label((CK_FUNCTION_LIST_PTR)f, "mock-v32-5"));

    /* Bad handles: never the module's business. */
    CK_SESSION_HANDLE closed = open_on(f, "mock-v32-1");
    f->C_CloseSession(closed);
    unsigned long before = t_mock_stats(&m32).calls_3_2;
    CK_FUNCTION_LIST_PTR other = t_caller(&px);
    CK_SESSION_HANDLE others = 0;
    if (other && t_rv(other->C_Initialize(NULL), CKR_OK, "another caller: C_Initialize"))
        t_rv(other->C_OpenSession(t_slot_by_label(other, "mock-v32-1"), CKF_SERIAL_SESSION, NULL, NULL, &others),
             CKR_OK, "another caller: a session on mock-v32-1");
    const CK_SESSION_HANDLE bad[] = {0, closed, others, h | (1UL << 40), (CK_ULONG)-1};
    int all = 1;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CK_FLAGS fl;
        all &= f->C_GetSessionValidationFlags(bad[i], CKS_LAST_VALIDATION_OK, &fl) == CKR_SESSION_HANDLE_INVALID;
        all &= f->C_VerifySignatureFinal(bad[i]) == CKR_SESSION_HANDLE_INVALID;
        all &= f->C_AsyncGetID(bad[i], (CK_UTF8CHAR_PTR) "C_EncapsulateKey", &fl) == CKR_SESSION_HANDLE_INVALID;
    }
    t_ok(all, "closed, invalid and another caller's session handles: CKR_SESSION_HANDLE_INVALID");
    t_ul(t_mock_stats(&m32).calls_3_2, before, "... without reaching the module");
    if (other)
        other->C_Finalize(NULL);

    unsigned long a_calls = t_mock_stats(&ma).calls_3_0, b_calls = t_mock_stats(&mb).calls_3_0;
    CK_SESSION_HANDLE ha = open_on(f, "mock-a-1"), hb = open_on(f, "mock-b-1"), hn = open_on(f, "mock-v32-null-2");
    twelve_unsupported(f, ha, "3.0 module mock-a");
    twelve_unsupported(f, hb, "2.40 module mock-b");
    twelve_unsupported(f, hn, "3.2 list with NULL entries (mock-v32-null)");
    t_ok(t_mock_stats(&ma).calls_3_2 == 0 && t_mock_stats(&ma).calls_3_0 == a_calls &&
             t_mock_stats(&mb).calls_3_0 == b_calls,
         "the older modules saw none of these calls");
    t_rv(f->C_Finalize(NULL), CKR_OK, "C_Finalize");

    if (mode->format) {
        char *text = t_read_file(trace);
        t_ok(text && strstr(text, "C_EncapsulateKey") && strstr(text, "CKR_PENDING") &&
                 strstr(text, "C_AsyncComplete") && strstr(text, "C_GetSessionValidationFlags"),
             "%s: the trace holds the 3.2 calls", mode->name);
        /* The pending call's record has no OUT part: its buffers were not the tracer's to read. */
        const char *pending = text ? strstr(text, mode->format[0] == 'j' ? "\"rv\":\"CKR_PENDING\"" : "= CKR_PENDING") : NULL;
        const char *start = pending;
        while (start && start > text && start[-1] != '\n')
            start--;
        if (start && mode->format[0] != 'j') {
            /* Text: the record's lines before its last one. */
            const char *record = start;
            while (record > text) {
                const char *line = record - 1;
                while (line > text && line[-1] != '\n')
                    line--;
                if (strncmp(line, "C_EncapsulateKey [", 18) == 0) {
                    record = line;
                    break;
                }
                record = line;
            }
            t_ok(!memmem(record, (size_t)(start - record), " OUT:", 5),
                 "%s: the CKR_PENDING record shows no output", mode->name);
        } else if (start) {
            const char *end = strchr(start, '\n');
            t_ok(end && !memmem(start, (size_t)(end - start), "\"out\":{\"", 8),
                 "%s: the CKR_PENDING record shows no output", mode->name);
        } else {
            t_fail("%s: a CKR_PENDING record in the trace", mode->name);
        }
        free(text);
    }
    t_proxy_close(&px);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    if (!t_mock_open(&m32, "mock-v32") || !t_mock_open(&m32null, "mock-v32-null") || !t_mock_open(&ma, "mock-a") ||
        !t_mock_open(&mb, "mock-b"))
        return t_done();
    static const struct mode modes[] = {{"tracing off", NULL}, {"tracing on (text)", "text"}, {"tracing on (JSON)", "json"}};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        t_scenario(modes[i].name, scenario, (void *)&modes[i]);
    return t_done();
}
