/* test_faults.c: configurations with broken modules, each in a fresh process
 * (the proxy reads its configuration when the first caller initialises): a module whose
 * C_Initialize fails (skipped, or fatal when `critical: yes`), files naming a library
 * without C_GetFunctionList, a missing path, the proxy itself (directly and through a
 * symlink), a malformed file, a `remote:` module, and a module with a garbage slot list.
 * Also: critical modules that are missing or not a library (C_Initialize fails with a
 * message naming them), the messages for skipped modules, a module whose C_Initialize fails
 * once (it is back at the next initialisation), a critical one that fails only when
 * initialised again, and a module whose C_GetSlotList fails (its slots are left out). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "p11test.h"

/* Loads the proxy with configuration `dir` and makes a caller (not initialised); NULL is
 * reported. */
static CK_FUNCTION_LIST_PTR caller_with(const char *dir, struct t_proxy *px)
{
    t_config_use(dir);
    return t_proxy_open(px) ? t_caller(px) : NULL;
}

/* Loads the proxy with `dir`, initialises one caller and checks that exactly the tokens
 * in `want` (NULL-terminated labels) are listed and usable. */
static void expect_tokens(const char *what, const char *dir, const char *const *want)
{
    struct t_proxy px;
    CK_FUNCTION_LIST_PTR f = caller_with(dir, &px);
    if (!f || !t_rv(f->C_Initialize(NULL), CKR_OK, "%s: C_Initialize", what))
        return;
    CK_SLOT_ID *slots;
    CK_ULONG n;
    size_t n_want = 0;
    while (want[n_want])
        n_want++;
    if (t_rv(t_slot_list(f, &slots, &n), CKR_OK, "%s: C_GetSlotList", what)) {
        t_ul(n, n_want, "%s: slot count", what);
        for (CK_ULONG i = 0; i < n; i++) {
            char label[33];
            t_token_label(f, slots[i], label);
            int expected = 0;
            for (size_t k = 0; k < n_want; k++)
                expected |= !strcmp(label, want[k]);
            if (!expected)
                t_fail("%s: unexpected token \"%s\" listed", what, label);
        }
        free(slots);
    }
    for (size_t k = 0; k < n_want; k++) {
        CK_SLOT_ID slot = t_slot_by_label(f, want[k]);
        CK_SESSION_HANDLE h;
        unsigned char md[MOCK_DIGEST_LEN];
        if (!t_ok(slot != T_NO_SLOT, "%s: %s listed", what, want[k]))
            continue;
        if (t_rv(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK, "%s: session on %s", what,
                 want[k])) {
            t_rv(t_digest(f, h, "x", 1, md), CKR_OK, "%s: digest on %s", what, want[k]);
            f->C_CloseSession(h);
        }
    }
    t_rv(f->C_Finalize(NULL), CKR_OK, "%s: C_Finalize", what);
}

static const char *const only_a[] = {"mock-a-1", "mock-a-5", NULL};

static void failinit_skipped(void *arg)
{
    (void)arg;
    struct t_mock a, bad;
    if (!t_mock_open(&a, "mock-a") || !t_mock_open(&bad, "mock-failinit"))
        return;
    char *dir = t_config_new("failinit");
    t_config_module(dir, "mock-a", "module: %s\n", a.path);
    t_config_module(dir, "mock-failinit", "module: %s\n", bad.path);
    expect_tokens("failing module, not critical", dir, only_a);
    t_ok(t_mock_stats(&bad).initialize_calls >= 1, "failing module: its C_Initialize was tried");
    struct mock_stats s = t_mock_stats(&a);
    t_ok(s.initialize_ok == s.finalize_ok && !s.initialized, "failing module: mock-a balanced afterwards");
}

static void failinit_critical(void *arg)
{
    (void)arg;
    struct t_mock a, bad;
    if (!t_mock_open(&a, "mock-a") || !t_mock_open(&bad, "mock-failinit"))
        return;
    char *dir = t_config_new("critical");
    t_config_module(dir, "mock-a", "module: %s\n", a.path);
    t_config_module(dir, "mock-failinit", "module: %s\ncritical: yes\n", bad.path);
    struct t_proxy px;
    CK_FUNCTION_LIST_PTR f = caller_with(dir, &px);
    if (!f)
        return;
    t_rv(f->C_Initialize(NULL), CKR_DEVICE_ERROR, "critical failing module: C_Initialize fails with its code");
    CK_ULONG n;
    t_rv(f->C_GetSlotList(CK_FALSE, NULL, &n), CKR_CRYPTOKI_NOT_INITIALIZED,
         "critical failing module: caller stays uninitialised");
    t_rv(f->C_Initialize(NULL), CKR_DEVICE_ERROR, "critical failing module: a retry fails the same way");
    t_rv(f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED, "critical failing module: nothing to finalise");
    struct mock_stats s = t_mock_stats(&a);
    t_ok(s.initialize_ok == s.finalize_ok && !s.initialized,
         "critical failing module: mock-a not left initialised (init %lu, fin %lu)", s.initialize_ok, s.finalize_ok);
}

struct bad_module {
    const char *what;
    const char *file; /* module file name */
    /* contents; @DIR@ mock dir, @PROXY@ the proxy, @ARGV1@ argv[1] as given, @LINK@ a symlink
     * to the proxy, @B@ mock-b */
    const char *text;
};

static const struct bad_module bad_modules[] = {
    {"library without C_GetFunctionList", "not-a-module", "module: @DIR@/not-a-module.so\n"},
    {"missing library", "missing", "module: @DIR@/libdoes-not-exist.so\n"},
    {"the proxy itself", "itself", "module: @PROXY@\n"},
    {"the proxy by its unresolved path", "itself-unresolved", "module: @ARGV1@\n"},
    {"a symlink to the proxy", "itself-link", "module: @LINK@\n"},
    /* A parse error discards the whole file (p11-kit conf.c), even a good `module:` line. */
    {"malformed file", "malformed", "module: @B@\nthis line has no colon\n"},
    {"remote module", "remote", "remote: |/bin/false\nmodule: @B@\n"},
};
#define N_BAD (sizeof bad_modules / sizeof bad_modules[0])

static char *proxy_link(void)
{
    char *link = t_temp_path("proxy-link.so");
    if (access(link, F_OK) != 0 && symlink(t_proxy_path, link) != 0)
        perror("symlink");
    return link;
}

static void write_bad(const char *dir, const struct bad_module *bad)
{
    char *link = proxy_link(), *mock_b = t_mock_path("mock-b");
    const struct {
        const char *token, *value;
    } subst[] = {{"@DIR@", t_mock_dir},
                 {"@PROXY@", t_proxy_path},
                 {"@ARGV1@", t_proxy_path_unresolved},
                 {"@LINK@", link},
                 {"@B@", mock_b}};
    char text[8192];
    size_t len = 0;
    for (const char *p = bad->text; *p && len < sizeof text - 1;) {
        int replaced = 0;
        for (size_t k = 0; k < sizeof subst / sizeof subst[0] && !replaced; k++) {
            size_t tl = strlen(subst[k].token);
            if (!strncmp(p, subst[k].token, tl)) {
                len += snprintf(text + len, sizeof text - len, "%s", subst[k].value);
                p += tl;
                replaced = 1;
            }
        }
        if (!replaced)
            text[len++] = *p++;
    }
    text[len < sizeof text ? len : sizeof text - 1] = 0;
    t_config_module(dir, bad->file, "%s", text);
    free(link);
    free(mock_b);
}

static void one_bad_module(void *arg)
{
    const struct bad_module *bad = arg;
    struct t_mock a;
    if (!t_mock_open(&a, "mock-a"))
        return;
    char *dir = t_config_new(bad->file);
    t_config_module(dir, "mock-a", "module: %s\n", a.path);
    write_bad(dir, bad);
    expect_tokens(bad->what, dir, only_a);
}

static void all_bad_modules(void *arg)
{
    (void)arg;
    struct t_mock a, c;
    if (!t_mock_open(&a, "mock-a") || !t_mock_open(&c, "mock-c"))
        return;
    char *dir = t_config_new("all-bad");
    t_config_module(dir, "mock-a", "module: %s\n", a.path);
    t_config_module(dir, "mock-c", "module: %s\n", c.path);
    t_config_module(dir, "mock-failinit", "module: %s/libmock-failinit.so\n", t_mock_dir);
    for (size_t i = 0; i < N_BAD; i++)
        write_bad(dir, &bad_modules[i]);
    static const char *const want[] = {"mock-a-1", "mock-a-5", "mock-c-7", NULL};
    expect_tokens("every bad module at once", dir, want);
}

/* mock-garbage's size query says 5 slots, then it delivers 3 with a duplicate. Whether its
 * slots are shown is the proxy's choice; the good module and distinct IDs are not. */
static void garbage_slots(void *arg)
{
    (void)arg;
    struct t_mock a, g;
    if (!t_mock_open(&a, "mock-a") || !t_mock_open(&g, "mock-garbage"))
        return;
    char *dir = t_config_new("garbage");
    t_config_module(dir, "mock-a", "module: %s\npriority: 1\n", a.path);
    t_config_module(dir, "mock-garbage", "module: %s\n", g.path);
    struct t_proxy px;
    CK_FUNCTION_LIST_PTR f = caller_with(dir, &px);
    if (!f || !t_rv(f->C_Initialize(NULL), CKR_OK, "garbage slot list: C_Initialize"))
        return;
    for (int round = 0; round < 2; round++) {
        CK_SLOT_ID *slots;
        CK_ULONG n;
        if (!t_rv(t_slot_list(f, &slots, &n), CKR_OK, "garbage slot list: C_GetSlotList (round %d)", round))
            continue;
        t_ok(t_all_distinct(slots, n), "garbage slot list: proxy slot IDs distinct (round %d)", round);
        int garbage = 0;
        for (CK_ULONG i = 0; i < n; i++) {
            char label[33];
            t_token_label(f, slots[i], label);
            garbage += !strncmp(label, "mock-garbage-", 13);
        }
        t_diag("garbage slot list: %lu slots, %d from mock-garbage", n, garbage);
        free(slots);
    }
    t_ok(t_slot_by_label(f, "mock-a-1") != T_NO_SLOT && t_slot_by_label(f, "mock-a-5") != T_NO_SLOT,
         "garbage slot list: mock-a's slots listed");
    CK_SLOT_ID slot = t_slot_by_label(f, "mock-a-5");
    CK_SESSION_HANDLE h;
    t_rv(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK, "garbage slot list: mock-a usable");
    t_rv(f->C_Finalize(NULL), CKR_OK, "garbage slot list: C_Finalize");
}

/* Every needle is in what the proxy printed. */
static int said(const char *what, const char *const *needles)
{
    const char *text = t_stderr_text();
    for (const char *const *n = needles; *n; n++)
        if (!strstr(text, *n))
            return t_fail("%s: stderr mentions \"%s\" (stderr: %s)", what, *n, text);
    return t_ok(1, "%s: stderr names the module, the file and the reason", what);
}

struct critical_case {
    const char *what, *name;
    const char *library; /* NULL: mock-failinit */
    CK_RV want;
    const char *reason;
};

/* A critical module that cannot be used fails C_Initialize, with a message naming it. */
static void critical_unusable(void *arg)
{
    const struct critical_case *c = arg;
    struct t_mock a;
    if (!t_mock_open(&a, "mock-a"))
        return;
    t_capture_stderr(c->name);
    char *dir = t_config_new(c->name), *library = c->library ? NULL : t_mock_path("mock-failinit");
    char module_file[4096];
    snprintf(module_file, sizeof module_file, "%s/modules/%s.module", dir, c->name);
    t_config_module(dir, "mock-a", "module: %s\n", a.path);
    if (c->library)
        t_config_module(dir, c->name, "module: %s/%s\ncritical: yes\n", t_mock_dir, c->library);
    else
        t_config_module(dir, c->name, "module: %s\ncritical: yes\n", library);
    struct t_proxy px;
    CK_FUNCTION_LIST_PTR f = caller_with(dir, &px);
    if (!f)
        return;
    t_rv(f->C_Initialize(NULL), c->want, "%s: C_Initialize fails", c->what);
    CK_ULONG n;
    t_rv(f->C_GetSlotList(CK_FALSE, NULL, &n), CKR_CRYPTOKI_NOT_INITIALIZED, "%s: the caller stays uninitialised",
         c->what);
    struct mock_stats s = t_mock_stats(&a);
    t_ok(s.initialize_ok == s.finalize_ok && !s.initialized, "%s: mock-a not left initialised", c->what);
    const char *needles[] = {c->name, "critical", c->reason, c->library ? module_file : "C_Initialize failed", NULL};
    said(c->what, needles);
    free(library);
}

static const struct critical_case critical_cases[] = {
    {"critical missing library", "missing", "libdoes-not-exist.so", CKR_GENERAL_ERROR, "no such file"},
    {"critical library without C_GetFunctionList", "not-a-module", "not-a-module.so", CKR_GENERAL_ERROR,
     "not a PKCS#11 module"},
    {"critical module whose C_Initialize fails", "failinit", NULL, CKR_DEVICE_ERROR, "CKR_DEVICE_ERROR"},
};
#define N_CRITICAL (sizeof critical_cases / sizeof critical_cases[0])

/* A skipped module's message says which file, which module and why. */
static void skipped_messages(void *arg)
{
    (void)arg;
    struct t_mock a;
    if (!t_mock_open(&a, "mock-a"))
        return;
    t_capture_stderr("skipped-messages");
    char *dir = t_config_new("skipped-messages");
    t_config_module(dir, "mock-a", "module: %s\n", a.path);
    t_config_module(dir, "missing", "module: %s/libdoes-not-exist.so\n", t_mock_dir);
    t_config_module(dir, "not-a-module", "module: %s/not-a-module.so\n", t_mock_dir);
    t_config_module(dir, "failinit", "module: %s/libmock-failinit.so\n", t_mock_dir);
    t_config_module(dir, "malformed", "module: %s\nthis line has no colon\n", a.path);
    expect_tokens("skipped modules' messages", dir, only_a);
    char missing[4096], not_module[4096], malformed[4096];
    snprintf(missing, sizeof missing, "%s/modules/missing.module", dir);
    snprintf(not_module, sizeof not_module, "%s/modules/not-a-module.module", dir);
    snprintf(malformed, sizeof malformed, "%s/modules/malformed.module:2", dir);
    const char *m1[] = {missing, "'missing'", "libdoes-not-exist.so", "no such file", NULL};
    said("missing library, not critical", m1);
    const char *m2[] = {not_module, "'not-a-module'", "not a PKCS#11 module", NULL};
    said("library without C_GetFunctionList, not critical", m2);
    const char *m3[] = {"'failinit'", "CKR_DEVICE_ERROR", "skipped", NULL};
    said("failing C_Initialize, not critical", m3);
    const char *m4[] = {malformed, NULL};
    said("malformed file (file:line)", m4);
}

/* mock-b fails its C_Initialize once: skipped this time, back at the next initialisation. */
static void fails_once(void *arg)
{
    (void)arg;
    struct t_mock a, b;
    if (!t_mock_open(&a, "mock-a") || !t_mock_open(&b, "mock-b"))
        return;
    char *dir = t_config_new("fails-once");
    t_config_module(dir, "mock-a", "module: %s\n", a.path);
    t_config_module(dir, "mock-b", "module: %s\n", b.path);
    t_mock_control(&b, MOCK_FAIL_NEXT_INIT, CKR_DEVICE_ERROR);
    expect_tokens("mock-b fails C_Initialize once", dir, only_a);
    static const char *const both[] = {"mock-a-1", "mock-a-5", "mock-b-1", NULL};
    expect_tokens("next initialisation, mock-b works again", dir, both);
}

/* A critical module that initialised once and fails when initialised again. */
static void critical_fails_later(void *arg)
{
    (void)arg;
    struct t_mock a, b;
    if (!t_mock_open(&a, "mock-a") || !t_mock_open(&b, "mock-b"))
        return;
    char *dir = t_config_new("critical-later");
    t_config_module(dir, "mock-a", "module: %s\n", a.path);
    t_config_module(dir, "mock-b", "module: %s\ncritical: yes\n", b.path);
    static const char *const both[] = {"mock-a-1", "mock-a-5", "mock-b-1", NULL};
    expect_tokens("critical mock-b, first initialisation", dir, both);
    t_mock_control(&b, MOCK_FAIL_NEXT_INIT, CKR_TOKEN_NOT_PRESENT);
    struct t_proxy px;
    CK_FUNCTION_LIST_PTR f = caller_with(dir, &px);
    if (!f)
        return;
    t_rv(f->C_Initialize(NULL), CKR_TOKEN_NOT_PRESENT, "critical mock-b fails the second initialisation: its code");
    struct mock_stats s = t_mock_stats(&a);
    t_ok(s.initialize_ok == s.finalize_ok && !s.initialized, "critical mock-b: mock-a not left initialised");
    t_rv(f->C_Initialize(NULL), CKR_OK, "critical mock-b: the next C_Initialize works again");
    t_ok(t_slot_by_label(f, "mock-b-1") != T_NO_SLOT, "critical mock-b: its slot is back");
    t_rv(f->C_Finalize(NULL), CKR_OK, "critical mock-b: C_Finalize");
}

/* mock-b's C_GetSlotList fails once: its slot is left out of that list only. */
static void slot_list_fails(void *arg)
{
    (void)arg;
    struct t_mock a, b;
    if (!t_mock_open(&a, "mock-a") || !t_mock_open(&b, "mock-b"))
        return;
    char *dir = t_config_new("slot-list-fails");
    t_config_module(dir, "mock-a", "module: %s\npriority: 1\n", a.path);
    t_config_module(dir, "mock-b", "module: %s\n", b.path);
    struct t_proxy px;
    CK_FUNCTION_LIST_PTR f = caller_with(dir, &px);
    if (!f || !t_rv(f->C_Initialize(NULL), CKR_OK, "failing C_GetSlotList: C_Initialize"))
        return;
    CK_ULONG n = 0;
    t_mock_control(&b, MOCK_FAIL_NEXT_CALL, CKR_DEVICE_ERROR);
    if (t_rv(f->C_GetSlotList(CK_FALSE, NULL, &n), CKR_OK, "failing C_GetSlotList: the proxy's C_GetSlotList works"))
        t_ul(n, 2, "failing C_GetSlotList: mock-a's two slots, mock-b's left out");
    if (t_rv(f->C_GetSlotList(CK_FALSE, NULL, &n), CKR_OK, "failing C_GetSlotList: next C_GetSlotList"))
        t_ul(n, 3, "failing C_GetSlotList: mock-b's slot is back");
    t_rv(f->C_Finalize(NULL), CKR_OK, "failing C_GetSlotList: C_Finalize");
}

/* Not part of the spec: what an empty configuration gives, for the record. */
static void empty_config(void *arg)
{
    (void)arg;
    char *dir = t_config_new("empty");
    struct t_proxy px;
    CK_FUNCTION_LIST_PTR f = caller_with(dir, &px);
    if (!f)
        return;
    CK_RV rv = f->C_Initialize(NULL);
    CK_ULONG n = 0;
    CK_RV rv2 = rv == CKR_OK ? f->C_GetSlotList(CK_FALSE, NULL, &n) : rv;
    t_diag("empty configuration: C_Initialize %s, C_GetSlotList %s, %lu slots", t_rv_name(rv), t_rv_name(rv2), n);
    if (rv == CKR_OK)
        f->C_Finalize(NULL);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_scenario("mock-a + failing module", failinit_skipped, NULL);
    t_scenario("mock-a + critical failing module", failinit_critical, NULL);
    for (size_t i = 0; i < N_BAD; i++)
        t_scenario(bad_modules[i].what, one_bad_module, (void *)&bad_modules[i]);
    t_scenario("every bad module at once", all_bad_modules, NULL);
    t_scenario("garbage slot list", garbage_slots, NULL);
    for (size_t i = 0; i < N_CRITICAL; i++)
        t_scenario(critical_cases[i].what, critical_unusable, (void *)&critical_cases[i]);
    t_scenario("messages for skipped modules", skipped_messages, NULL);
    t_scenario("a module whose C_Initialize fails once", fails_once, NULL);
    t_scenario("a critical module that fails when initialised again", critical_fails_later, NULL);
    t_scenario("a module whose C_GetSlotList fails", slot_list_fails, NULL);
    t_scenario("empty configuration", empty_config, NULL);
    return t_done();
}
