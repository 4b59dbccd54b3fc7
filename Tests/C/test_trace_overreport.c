/* test_trace_overreport.c: tracing a module that reports more than the caller's
 * buffer holds. mock-overreport (MOCK_OVERREPORT=1000, switched on with MOCK_SET_OVERREPORT)
 * answers C_GetAttributeValue, C_Digest, C_Sign, C_Encrypt, C_Decrypt, C_FindObjects,
 * C_GetMechanismList and C_GetSlotList with CKR_OK and a length or count 1000 more than the
 * caller's buffer holds, writing only within that buffer. Each buffer given to those calls
 * ends where a PROT_NONE page begins, so a tracer that formats as many bytes or elements as
 * the module reports reads into that page and the process dies (SIGSEGV: a failed scenario).
 * Checks: no crash; the module's return value and lengths reach the caller unchanged; each OUT
 * record shows exactly the buffer's bytes (hex compared where the test knows them) and says
 * what happened: text `(1016) HEX [module reported 1016 bytes, buffer holds 16]`, JSON
 * `{"len":1016,"hex":"...","capacity":16,"overreported":true}`.
 * Text with secrets off, JSON with x-log-secrets (the mode that reads the most).
 * C_GetSlotList reaches the module with p11proxy's own array (it merges every module's slots),
 * so no guard page there: the record is checked, and the ASan build (make asan) checks the read.
 *   test_trace_overreport PROXY_SO MOCK_DIR */
#define _GNU_SOURCE
#include "p11test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define EXTRA 1000 /* MOCK_OVERREPORT of mock-overreport (Tests/C/tests.mk) */

static struct t_mock mock;

/* `size` bytes that end exactly where a PROT_NONE page begins. Never unmapped: each scenario
 * is a forked child. */
static void *guarded(size_t size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char *base = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED || mprotect(base + page, page, PROT_NONE) != 0) {
        t_fail("mmap a buffer before a guard page");
        exit(1);
    }
    memset(base, 0x77, page);
    return base + page - size;
}

static void hex(char *out, const unsigned char *bytes, size_t n)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02X", bytes[i]);
}

/* One value in the trace: `start`, then either `bytes` bytes of hex (equal to `want` when the
 * test knows them) or the literal `literal`, then `end`, all on one line. */
static void expect_value(const char *trace, const char *what, const char *start, size_t bytes,
                         const unsigned char *want, const char *literal, const char *end)
{
    const char *at = strstr(trace, start);
    if (!at) {
        t_fail("%s: the trace has `%s`", what, start);
        return;
    }
    const char *value = at + strlen(start);
    const char *line_end = strchr(value, '\n');
    const char *stop = strstr(value, end);
    if (!stop || (line_end && stop > line_end)) {
        t_fail("%s: `%s` is followed on its line by `%s` (line: %.*s)", what, start, end,
               line_end ? (int)(line_end - at) : 200, at);
        return;
    }
    size_t got = (size_t)(stop - value);
    if (literal) {
        t_ok(got == strlen(literal) && strncmp(value, literal, got) == 0, "%s: `%s%s%s`", what, start, literal, end);
        return;
    }
    int all_hex = got == 2 * bytes;
    for (size_t i = 0; all_hex && i < got; i++)
        all_hex = strchr("0123456789ABCDEF", value[i]) != NULL;
    if (!all_hex) {
        t_fail("%s: exactly %zu bytes of hex (what the buffer holds) between `%s` and `%s` (got %zu characters: %.*s)",
               what, bytes, start, end, got, (int)(got < 120 ? got : 120), value);
        return;
    }
    if (want) {
        char expected[2 * 64 + 1];
        hex(expected, want, bytes);
        t_ok(strncmp(value, expected, got) == 0, "%s: the %zu bytes shown are the buffer's (%s)", what, bytes, expected);
    } else {
        t_ok(1, "%s: %zu bytes of hex shown, then `%s`", what, bytes, end);
    }
}

/* A byte value the module overreported, `cap` bytes shown (`want`, when known; redacted: none):
 * text `<text_head>(N) HEX [module reported N bytes, buffer holds M]<text_tail>`,
 * JSON `<json_head>{"len":N,"hex":"HEX","capacity":M,"overreported":true}<json_tail>`. */
static void expect_overreported(const char *trace, int json, const char *what, const char *text_head,
                                const char *json_head, const char *text_tail, const char *json_tail, CK_ULONG reported,
                                size_t cap, const unsigned char *want, int redacted)
{
    char start[200], end[160], label[96];
    snprintf(label, sizeof label, "%s: %s", json ? "json" : "text", what);
    if (json) {
        snprintf(start, sizeof start, "%s{\"len\":%lu,%s", json_head, (unsigned long)reported, redacted ? "" : "\"hex\":\"");
        snprintf(end, sizeof end, "%s\"capacity\":%zu,\"overreported\":true}%s", redacted ? "" : "\",", cap, json_tail);
    } else {
        snprintf(start, sizeof start, "%s(%lu) ", text_head, (unsigned long)reported);
        snprintf(end, sizeof end, " [module reported %lu bytes, buffer holds %zu]%s", (unsigned long)reported, cap, text_tail);
    }
    expect_value(trace, label, start, cap, want, redacted ? (json ? "\"redacted\":true," : "<redacted>") : NULL, end);
}

/* An output buffer's record. */
static void expect_bytes(const char *trace, int json, const char *name, CK_ULONG reported, size_t cap,
                         const unsigned char *want, int redacted)
{
    char text_head[64], json_head[64];
    snprintf(text_head, sizeof text_head, "%s = ", name);
    snprintf(json_head, sizeof json_head, "\"%s\":", name);
    expect_overreported(trace, json, name, text_head, json_head, "", "", reported, cap, want, redacted);
}

/* An attribute of C_GetAttributeValue's OUT template. */
static void expect_attribute(const char *trace, int json, const char *type, CK_ULONG reported, size_t cap,
                             const unsigned char *want, int redacted)
{
    char what[64], text_head[64], json_head[96];
    snprintf(what, sizeof what, "C_GetAttributeValue %s", type);
    snprintf(text_head, sizeof text_head, "{ %s = ", type);
    snprintf(json_head, sizeof json_head, "{\"type\":\"%s\",\"len\":%lu,\"value\":", type, (unsigned long)reported);
    expect_overreported(trace, json, what, text_head, json_head, " }", "}", reported, cap, want, redacted);
}

/* A handle list's record: exactly `items` (already formatted for the format) is shown. */
static void expect_list(const char *trace, int json, const char *name, CK_ULONG reported, size_t cap,
                        const char *items, const char *unit)
{
    char start[160], end[160], what[96];
    snprintf(what, sizeof what, "%s: %s", json ? "json" : "text", name);
    if (json) {
        snprintf(start, sizeof start, "\"%s\":{\"count\":%lu,\"items\":[", name, (unsigned long)reported);
        snprintf(end, sizeof end, "],\"capacity\":%zu,\"overreported\":true}", cap);
    } else {
        snprintf(start, sizeof start, "%s = (%lu) [ ", name, (unsigned long)reported);
        snprintf(end, sizeof end, " ] [module reported %lu %s, buffer holds %zu]", (unsigned long)reported, unit, cap);
    }
    expect_value(trace, what, start, 0, NULL, items, end);
}

static void scenario(void *arg)
{
    const int json = strcmp(arg, "json") == 0;
    const char *format = json ? "json" : "text";
    char *conf = t_config_new(format);
    char name[64];
    snprintf(name, sizeof name, "overreport-%s.trace", format);
    char *trace_path = t_temp_path(name);
    t_config_module(conf, "overreport", "module: %s\n", mock.path);
    t_config_use(conf);
    t_trace_to(trace_path, format, json);

    struct t_proxy proxy;
    CK_FUNCTION_LIST_PTR f;
    if (!t_proxy_open(&proxy) || !(f = t_caller(&proxy)))
        return;
    if (!t_rv(f->C_Initialize(NULL), CKR_OK, "%s: C_Initialize", format))
        return;
    CK_SLOT_ID *slots;
    CK_ULONG n_slots;
    CK_SESSION_HANDLE h;
    if (t_slot_list(f, &slots, &n_slots) != CKR_OK || n_slots != 1 ||
        !t_rv(f->C_OpenSession(slots[0], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h), CKR_OK,
              "%s: C_OpenSession", format))
        return;
    CK_SLOT_ID slot = slots[0];
    free(slots);

    /* A data object with a label and a value the test knows, and an AES key to sign and encrypt. */
    static const unsigned char label[] = "overreport-label-0123456789abcdef";
    static const unsigned char value[] = {0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7, 0xD8, 0xD9};
    CK_OBJECT_CLASS data_class = CKO_DATA;
    CK_BBOOL no = CK_FALSE;
    CK_ATTRIBUTE data_template[] = {{CKA_CLASS, &data_class, sizeof data_class},
                                    {CKA_TOKEN, &no, 1},
                                    {CKA_LABEL, (void *)label, sizeof label - 1},
                                    {CKA_VALUE, (void *)value, sizeof value}};
    CK_OBJECT_HANDLE data = 0, other = 0, key = 0;
    t_rv(f->C_CreateObject(h, data_template, 4, &data), CKR_OK, "%s: C_CreateObject (data)", format);
    t_rv(f->C_CreateObject(h, data_template, 4, &other), CKR_OK, "%s: C_CreateObject (a second one)", format);
    CK_MECHANISM aes_gen = {CKM_AES_KEY_GEN, NULL, 0};
    CK_ULONG sixteen = 16;
    CK_ATTRIBUTE key_template[] = {{CKA_VALUE_LEN, &sixteen, sizeof sixteen}};
    t_rv(f->C_GenerateKey(h, &aes_gen, key_template, 1, &key), CKR_OK, "%s: C_GenerateKey (AES)", format);
    if (!t_rv(t_mock_control(&mock, MOCK_SET_OVERREPORT, 1), CKR_OK, "%s: the mock now overreports", format))
        return;

    /* C_GetAttributeValue: every value buffer right before a guard page. */
    unsigned char *label_buf = guarded(16), *value_buf = guarded(8);
    CK_OBJECT_CLASS *class_buf = guarded(sizeof(CK_OBJECT_CLASS));
    CK_ATTRIBUTE get[] = {{CKA_LABEL, label_buf, 16}, {CKA_VALUE, value_buf, 8}, {CKA_CLASS, class_buf, sizeof *class_buf}};
    t_rv(f->C_GetAttributeValue(h, data, get, 3), CKR_OK, "%s: C_GetAttributeValue: the module's CKR_OK", format);
    t_ok(get[0].ulValueLen == 16 + EXTRA && get[1].ulValueLen == 8 + EXTRA && get[2].ulValueLen == 8 + EXTRA,
         "%s: C_GetAttributeValue: the module's lengths reach the caller (%lu, %lu, %lu)", format,
         (unsigned long)get[0].ulValueLen, (unsigned long)get[1].ulValueLen, (unsigned long)get[2].ulValueLen);

    /* C_Digest and C_Sign: 16 of the mock's 32 bytes fit. */
    CK_MECHANISM sha256 = {CKM_SHA256, NULL, 0}, ecdsa = {CKM_ECDSA, NULL, 0}, gcm = {CKM_AES_GCM, NULL, 0};
    unsigned char *digest = guarded(16), *signature = guarded(16), *cipher = guarded(8), *plain = guarded(8);
    unsigned char full_digest[MOCK_DIGEST_LEN];
    mock_fake_digest(0x6, (const unsigned char *)"abc", 3, full_digest);
    CK_ULONG digest_len = 16, signature_len = 16, cipher_len = 8, plain_len = 8;
    t_rv(f->C_DigestInit(h, &sha256), CKR_OK, "%s: C_DigestInit", format);
    t_rv(f->C_Digest(h, (CK_BYTE_PTR) "abc", 3, digest, &digest_len), CKR_OK, "%s: C_Digest: the module's CKR_OK", format);
    t_ul(digest_len, 16 + EXTRA, "%s: C_Digest: the module's length reaches the caller", format);
    t_ok(memcmp(digest, full_digest, 16) == 0, "%s: C_Digest: the module's bytes reach the caller", format);
    t_rv(f->C_SignInit(h, &ecdsa, key), CKR_OK, "%s: C_SignInit", format);
    t_rv(f->C_Sign(h, (CK_BYTE_PTR) "abc", 3, signature, &signature_len), CKR_OK, "%s: C_Sign: the module's CKR_OK", format);
    t_ul(signature_len, 16 + EXTRA, "%s: C_Sign: the module's length reaches the caller", format);

    /* C_Encrypt (output shown) and C_Decrypt (output is plaintext: redacted unless secrets). */
    static const unsigned char message[16] = "sixteen bytes..";
    t_rv(f->C_EncryptInit(h, &gcm, key), CKR_OK, "%s: C_EncryptInit", format);
    t_rv(f->C_Encrypt(h, (CK_BYTE_PTR)message, 16, cipher, &cipher_len), CKR_OK, "%s: C_Encrypt: the module's CKR_OK", format);
    t_ul(cipher_len, 8 + EXTRA, "%s: C_Encrypt: the module's length reaches the caller", format);
    unsigned char cipher_copy[8];
    memcpy(cipher_copy, cipher, 8);
    t_rv(f->C_DecryptInit(h, &gcm, key), CKR_OK, "%s: C_DecryptInit", format);
    t_rv(f->C_Decrypt(h, cipher_copy, 8, plain, &plain_len), CKR_OK, "%s: C_Decrypt: the module's CKR_OK", format);
    t_ul(plain_len, 8 + EXTRA, "%s: C_Decrypt: the module's length reaches the caller", format);
    t_ok(memcmp(plain, message, 8) == 0, "%s: C_Decrypt: the plaintext reaches the caller", format);

    /* C_FindObjects with room for 2 handles; C_GetMechanismList with room for 3 mechanisms. */
    CK_ATTRIBUTE find[] = {{CKA_CLASS, &data_class, sizeof data_class}};
    CK_OBJECT_HANDLE *found = guarded(2 * sizeof(CK_OBJECT_HANDLE));
    CK_ULONG n_found = 0;
    t_rv(f->C_FindObjectsInit(h, find, 1), CKR_OK, "%s: C_FindObjectsInit", format);
    t_rv(f->C_FindObjects(h, found, 2, &n_found), CKR_OK, "%s: C_FindObjects: the module's CKR_OK", format);
    t_ul(n_found, 2 + EXTRA, "%s: C_FindObjects: the module's count reaches the caller", format);
    t_rv(f->C_FindObjectsFinal(h), CKR_OK, "%s: C_FindObjectsFinal", format);
    CK_MECHANISM_TYPE *mechanisms = guarded(3 * sizeof(CK_MECHANISM_TYPE));
    CK_ULONG n_mechanisms = 3;
    t_rv(f->C_GetMechanismList(slot, mechanisms, &n_mechanisms), CKR_OK, "%s: C_GetMechanismList: the module's CKR_OK",
         format);
    t_ul(n_mechanisms, 3 + EXTRA, "%s: C_GetMechanismList: the module's count reaches the caller", format);

    /* C_GetSlotList: p11proxy fetches the module's slots into its own array (size query + 1),
     * sees a count larger than that array and leaves the module's slots out. */
    CK_ULONG n_listed = 99;
    t_rv(f->C_GetSlotList(CK_TRUE, NULL, &n_listed), CKR_OK, "%s: C_GetSlotList with a module that overreports", format);
    t_ul(n_listed, 0, "%s: C_GetSlotList: the module's slots are left out, not read past its count", format);

    t_mock_control(&mock, MOCK_SET_OVERREPORT, 0);
    t_rv(f->C_CloseSession(h), CKR_OK, "%s: C_CloseSession", format);
    t_rv(f->C_Finalize(NULL), CKR_OK, "%s: C_Finalize", format);

    char *trace = t_read_file(trace_path);
    expect_attribute(trace, json, "CKA_LABEL", 16 + EXTRA, 16, label, 0);
    /* CKA_VALUE of an object whose class the tracer cannot tell (the class too came back
     * overreported): redacted unless secrets are shown. */
    expect_attribute(trace, json, "CKA_VALUE", 8 + EXTRA, 8, value, !json);
    CK_OBJECT_CLASS want_class = CKO_DATA;
    expect_attribute(trace, json, "CKA_CLASS", 8 + EXTRA, 8, (const unsigned char *)&want_class, 0);
    expect_bytes(trace, json, "pDigest", 16 + EXTRA, 16, full_digest, 0);
    expect_bytes(trace, json, "pSignature", 16 + EXTRA, 16, signature, 0);
    expect_bytes(trace, json, "pEncryptedData", 8 + EXTRA, 8, cipher_copy, 0);
    expect_bytes(trace, json, "pData", 8 + EXTRA, 8, message, !json);
    char items[160];
    if (json)
        snprintf(items, sizeof items, "%lu,%lu", (unsigned long)found[0], (unsigned long)found[1]);
    else
        snprintf(items, sizeof items, "H%lu, H%lu", (unsigned long)found[0], (unsigned long)found[1]);
    expect_list(trace, json, "phObject", 2 + EXTRA, 2, items, "objects");
    expect_list(trace, json, "pMechanismList", 3 + EXTRA, 3,
                json ? "\"CKM_SHA256\",\"CKM_ECDSA\",\"CKM_AES_GCM\"" : "CKM_SHA256, CKM_ECDSA, CKM_AES_GCM",
                "mechanisms");
    /* The module has one slot (3); p11proxy's array held 2 (the size query's count + 1). */
    expect_list(trace, json, "pSlotList", 2 + EXTRA, 2, json ? "3,0" : "SL3, SL0", "slots");
    free(trace);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    if (!t_mock_open(&mock, "mock-overreport"))
        return t_done();
    t_scenario("text, secrets hidden", scenario, "text");
    t_scenario("json, secrets shown", scenario, "json");
    return t_done();
}
