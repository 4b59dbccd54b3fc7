/* test_faults.c (issue 2): configurations with broken modules, each in a fresh process
 * (the proxy reads its configuration when the first caller initialises): a module whose
 * C_Initialize fails (skipped, or fatal when `critical: yes`), files naming a library
 * without C_GetFunctionList, a missing path, the proxy itself (directly and through a
 * symlink), a malformed file, a `remote:` module, and a module with a garbage slot list. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "p11test.h"

/* Loads the proxy with `dir`, initialises one caller and checks that exactly the tokens
 * in `want` (NULL-terminated labels) are listed and usable. */
static void expect_tokens(const char *what, const char *dir, const char *const *want)
{
    t_config_use(dir);
    struct t_proxy px;
    if (!t_proxy_open(&px))
        return;
    CK_FUNCTION_LIST_PTR f = t_caller(&px);
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
    t_config_use(dir);
    struct t_proxy px;
    if (!t_proxy_open(&px))
        return;
    CK_FUNCTION_LIST_PTR f = t_caller(&px);
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
    t_config_use(dir);
    struct t_proxy px;
    if (!t_proxy_open(&px))
        return;
    CK_FUNCTION_LIST_PTR f = t_caller(&px);
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

/* Not part of the spec: what an empty configuration gives, for the record. */
static void empty_config(void *arg)
{
    (void)arg;
    char *dir = t_config_new("empty");
    t_config_use(dir);
    struct t_proxy px;
    if (!t_proxy_open(&px))
        return;
    CK_FUNCTION_LIST_PTR f = t_caller(&px);
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
    t_scenario("empty configuration", empty_config, NULL);
    return t_done();
}
