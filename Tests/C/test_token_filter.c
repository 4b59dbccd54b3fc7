/* test_token_filter.c: token filters over mock-a (slots 1 and 5), mock-b (slot 1)
 * and mock-c (slot 7), each scenario in a fresh process: x-only-tokens / x-hide-tokens in
 * pkcs11.conf and in a .module file matching by label, serial, manufacturer and model, slot-id
 * and library, several URIs, P11PROXY_ONLY_TOKENS; a hidden slot has no ID (visible ones are
 * numbered densely), every call that takes a hidden ID answers CKR_SLOT_ID_INVALID, and
 * C_WaitForSlotEvent says nothing about it; hot-plug (a token shown only if it matches, one
 * whose label changes is hidden and comes back under its old ID); bad URIs hide their file's
 * reach with a FILE:LINE message; spy mode ignores filters.
 * Mock tokens: label "mock-X-N", serial "0000000X0000000N" (hex), manufacturer "p11proxy-mock",
 * model "mock mock-X", library description "mock-X", slot description "mock-X slot N". */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "p11test.h"

static CK_FUNCTION_LIST_PTR start(const char *dir, struct t_proxy *px, const char *what)
{
    t_config_use(dir);
    if (!t_proxy_open(px))
        return NULL;
    CK_FUNCTION_LIST_PTR f = t_caller(px);
    if (!f || !t_rv(f->C_Initialize(NULL), CKR_OK, "%s: C_Initialize", what))
        return NULL;
    return f;
}

/* A config dir with the three mocks; `global` is pkcs11.conf's text (NULL: none) and
 * extra[i] a line added to mock-a/b/c's .module file (NULL: none). */
static char *config(const char *label, const char *global, const char *extra_a, const char *extra_b,
                    const char *extra_c)
{
    char *dir = t_config_new(label);
    char *a = t_mock_path("mock-a"), *b = t_mock_path("mock-b"), *c = t_mock_path("mock-c");
    t_config_module(dir, "mock-a", "module: %s\npriority: 10\n%s", a, extra_a ? extra_a : "");
    t_config_module(dir, "mock-b", "module: %s\npriority: 5\n%s", b, extra_b ? extra_b : "");
    t_config_module(dir, "mock-c", "module: %s\npriority: 0\n%s", c, extra_c ? extra_c : "");
    if (global)
        t_config_file(dir, "pkcs11.conf", "%s", global);
    free(a);
    free(b);
    free(c);
    return dir;
}

/* Every call that takes a slot ID answers CKR_SLOT_ID_INVALID for `id`. */
static void check_slot_invalid(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID id, const char *what)
{
    CK_SLOT_INFO si;
    CK_TOKEN_INFO ti;
    CK_MECHANISM_INFO mi;
    CK_ULONG n = 0;
    CK_SESSION_HANDLE h;
    CK_UTF8CHAR label[32];
    memset(label, ' ', sizeof label);
    int all = f->C_GetSlotInfo(id, &si) == CKR_SLOT_ID_INVALID && f->C_GetTokenInfo(id, &ti) == CKR_SLOT_ID_INVALID &&
              f->C_GetMechanismList(id, NULL, &n) == CKR_SLOT_ID_INVALID &&
              f->C_GetMechanismInfo(id, CKM_SHA256, &mi) == CKR_SLOT_ID_INVALID &&
              f->C_InitToken(id, (CK_UTF8CHAR_PTR) "12345678", 8, label) == CKR_SLOT_ID_INVALID &&
              f->C_OpenSession(id, CKF_SERIAL_SESSION, NULL, NULL, &h) == CKR_SLOT_ID_INVALID &&
              f->C_CloseAllSessions(id) == CKR_SLOT_ID_INVALID;
    t_ok(all, "%s: every call taking slot %lu answers CKR_SLOT_ID_INVALID", what, id);
}

/* The slot list is exactly `want` (labels, NULL-terminated), in order, numbered 1..n; both
 * slot lists agree; each listed token is usable; the next ID does not exist. */
static void expect_labels(CK_FUNCTION_LIST_PTR f, const char *what, const char *const *want)
{
    size_t n_want = 0;
    while (want[n_want])
        n_want++;
    CK_SLOT_ID *slots;
    CK_ULONG n;
    if (!t_rv(t_slot_list(f, &slots, &n), CKR_OK, "%s: C_GetSlotList", what))
        return;
    char got[256] = "", wanted[256] = "";
    int dense = 1;
    for (CK_ULONG i = 0; i < n; i++) {
        char label[33] = "?";
        t_token_label(f, slots[i], label);
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", i ? " " : "", label);
        dense &= slots[i] == i + 1;
    }
    for (size_t i = 0; i < n_want; i++)
        snprintf(wanted + strlen(wanted), sizeof wanted - strlen(wanted), "%s%s", i ? " " : "", want[i]);
    t_str(got, wanted, "%s: the tokens listed", what);
    t_ok(dense, "%s: visible slots numbered 1..%lu", what, n);
    CK_ULONG present = 0;
    t_rv(f->C_GetSlotList(CK_TRUE, NULL, &present), CKR_OK, "%s: C_GetSlotList(tokenPresent)", what);
    t_ul(present, n, "%s: as many slots with a token", what);
    for (CK_ULONG i = 0; i < n; i++) {
        CK_SESSION_HANDLE h;
        unsigned char md[MOCK_DIGEST_LEN];
        if (t_rv(f->C_OpenSession(slots[i], CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK, "%s: session on slot %lu",
                 what, slots[i])) {
            t_rv(t_digest(f, h, "x", 1, md), CKR_OK, "%s: digest on slot %lu", what, slots[i]);
            f->C_CloseSession(h);
        }
    }
    check_slot_invalid(f, n + 1, what);
    free(slots);
}

static void finish(CK_FUNCTION_LIST_PTR f, const char *what)
{
    t_rv(f->C_Finalize(NULL), CKR_OK, "%s: C_Finalize", what);
}

struct case_filter {
    const char *what;
    const char *global, *a, *b, *c;
    const char *want[5];
};

static const struct case_filter cases[] = {
    {"label, pkcs11.conf", "x-only-tokens: pkcs11:token=mock-a-5\n", NULL, NULL, NULL, {"mock-a-5", NULL}},
    {"serial, mock-a.module (its own tokens only)", NULL, "x-only-tokens: pkcs11:serial=0000000A00000001\n", NULL,
     NULL, {"mock-a-1", "mock-b-1", "mock-c-7", NULL}},
    {"manufacturer and model", "x-only-tokens: pkcs11:manufacturer=p11proxy-mock;model=mock%20mock-b\n", NULL, NULL,
     NULL, {"mock-b-1", NULL}},
    {"hide by manufacturer hides every mock", "x-hide-tokens: pkcs11:manufacturer=p11proxy-mock\n", NULL, NULL, NULL,
     {NULL}},
    {"slot-id", "x-only-tokens: pkcs11:slot-id=1\n", NULL, NULL, NULL, {"mock-a-1", "mock-b-1", NULL}},
    {"slot-id and a module's library-description", "x-only-tokens: pkcs11:slot-id=1\n", NULL,
     "x-hide-tokens: pkcs11:library-description=mock-b\n", NULL, {"mock-a-1", NULL}},
    {"several URIs, pkcs11.conf and mock-c.module",
     "x-only-tokens: pkcs11:token=mock-a-5   pkcs11:token=mock-c-7\tpkcs11:token=absent\n", NULL, NULL,
     "x-hide-tokens: pkcs11:slot-description=mock-c%20slot%207\n", {"mock-a-5", NULL}},
    {"hidden slots leave no gap", NULL, "x-hide-tokens: pkcs11:token=mock-a-1\n", NULL, NULL,
     {"mock-a-5", "mock-b-1", "mock-c-7", NULL}},
    {"blank values filter nothing", "x-only-tokens:\n", "x-hide-tokens:\n", NULL, NULL,
     {"mock-a-1", "mock-a-5", "mock-b-1", "mock-c-7", NULL}},
};
#define N_CASES (sizeof cases / sizeof cases[0])

/* One caller over `dir`: exactly the tokens `want`, then C_Finalize. */
static void expect_config(const char *dir, const char *what, const char *const *want)
{
    struct t_proxy px;
    CK_FUNCTION_LIST_PTR f = start(dir, &px, what);
    if (!f)
        return;
    expect_labels(f, what, want);
    finish(f, what);
}

static void one_case(void *arg)
{
    const struct case_filter *c = arg;
    expect_config(config("filter", c->global, c->a, c->b, c->c), c->what, c->want);
}

/* A token the filter hides: no event from C_WaitForSlotEvent; a visible one: its event. */
static void events(void *arg)
{
    (void)arg;
    struct t_mock a;
    if (!t_mock_open(&a, "mock-a"))
        return;
    char *dir = config("events", NULL, "x-hide-tokens: pkcs11:token=mock-a-1\n", NULL, NULL);
    struct t_proxy px;
    CK_FUNCTION_LIST_PTR f = start(dir, &px, "events");
    if (!f)
        return;
    CK_SLOT_ID slot = 0;
    t_mock_control(&a, MOCK_QUEUE_EVENT, 1);
    t_rv(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL), CKR_NO_EVENT, "events: none for hidden mock-a-1");
    t_mock_control(&a, MOCK_QUEUE_EVENT, 5);
    if (t_rv(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL), CKR_OK, "events: mock-a-5's event"))
        t_ul(slot, t_slot_by_label(f, "mock-a-5"), "events: reported under mock-a-5's ID");
    /* Behind a hidden slot's event, a visible one is still found by the same call. */
    t_mock_control(&a, MOCK_QUEUE_EVENT, 1);
    t_mock_control(&a, MOCK_QUEUE_EVENT, 1);
    t_mock_control(&a, MOCK_QUEUE_EVENT, 5);
    if (t_rv(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL), CKR_OK, "events: mock-a-5's event behind two hidden"))
        t_ul(slot, t_slot_by_label(f, "mock-a-5"), "events: reported under mock-a-5's ID");
    t_rv(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL), CKR_NO_EVENT, "events: all consumed");
    finish(f, "events");
}

/* The mock's own C_InitToken (the same instance the proxy loaded) relabels a token: the slot
 * then holds a different token, as if one card were swapped for another. */
static CK_RV relabel(struct t_mock *m, CK_SLOT_ID real_slot, const char *label)
{
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(m->dl, "C_GetFunctionList");
    CK_FUNCTION_LIST_PTR list = NULL;
    if (!get || get(&list) != CKR_OK)
        return CKR_GENERAL_ERROR;
    CK_UTF8CHAR padded[32];
    memset(padded, ' ', sizeof padded);
    memcpy(padded, label, strlen(label));
    return list->C_InitToken(real_slot, (CK_UTF8CHAR_PTR) "12345678", 8, padded);
}

/* Several modules (events polled): a hot-plugged token shows only if it matches, under the next
 * ID; a token whose label changes is hidden (at C_GetSlotList, at C_OpenSession) and comes back
 * under its old ID; pulling a visible token is an event under its ID, which then is invalid. */
static void hotplug(void *arg)
{
    (void)arg;
    struct t_mock c;
    if (!t_mock_open(&c, "mock-c"))
        return;
    char *dir = config("hotplug", "x-only-tokens: pkcs11:token=mock-a-1 pkcs11:token=mock-c-9\n", NULL, NULL, NULL);
    struct t_proxy px;
    CK_FUNCTION_LIST_PTR f = start(dir, &px, "hot-plug");
    if (!f)
        return;
    static const char *const first[] = {"mock-a-1", NULL}, *const both[] = {"mock-a-1", "mock-c-9", NULL};
    expect_labels(f, "hot-plug, at start", first);

    CK_SLOT_ID slot = 0;
    t_mock_control(&c, MOCK_ADD_SLOT, 8);
    t_mock_control(&c, MOCK_QUEUE_EVENT, 8);
    t_rv(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL), CKR_NO_EVENT, "hot-plug: no event for mock-c-8");
    expect_labels(f, "hot-plug, mock-c-8 inserted", first);

    t_mock_control(&c, MOCK_ADD_SLOT, 9);
    t_mock_control(&c, MOCK_QUEUE_EVENT, 9);
    if (t_rv(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL), CKR_OK, "hot-plug: event for mock-c-9"))
        t_ul(slot, 2, "hot-plug: mock-c-9 under the next ID");
    expect_labels(f, "hot-plug, mock-c-9 inserted", both);

    t_rv(relabel(&c, 9, "other"), CKR_OK, "hot-plug: mock-c-9 relabelled 'other'");
    expect_labels(f, "hot-plug, relabelled", first);
    check_slot_invalid(f, 2, "hot-plug, relabelled");
    t_rv(relabel(&c, 9, "mock-c-9"), CKR_OK, "hot-plug: relabelled back");
    expect_labels(f, "hot-plug, relabelled back: same ID", both);

    /* Swapped while a program holds the ID and lists nothing: C_OpenSession looks again. */
    t_rv(relabel(&c, 9, "other"), CKR_OK, "hot-plug: relabelled 'other' again");
    CK_SESSION_HANDLE h;
    t_rv(f->C_OpenSession(2, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_SLOT_ID_INVALID,
         "hot-plug: no session on the swapped token without a C_GetSlotList");
    check_slot_invalid(f, 2, "hot-plug, swapped");
    t_rv(relabel(&c, 9, "mock-c-9"), CKR_OK, "hot-plug: relabelled back again");
    expect_labels(f, "hot-plug, back again", both);

    t_mock_control(&c, MOCK_REMOVE_SLOT, 9);
    t_mock_control(&c, MOCK_QUEUE_EVENT, 9);
    if (t_rv(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL), CKR_OK, "hot-plug: event for pulled mock-c-9"))
        t_ul(slot, 2, "hot-plug: the pulled token's event under its ID");
    check_slot_invalid(f, 2, "hot-plug, pulled");
    expect_labels(f, "hot-plug, pulled", first);
    finish(f, "hot-plug");
}

/* One module: its own blocking C_WaitForSlotEvent skips the events of slots the filter hides. */
static void hotplug_blocking(void *arg)
{
    (void)arg;
    struct t_mock c;
    if (!t_mock_open(&c, "mock-c"))
        return;
    char *dir = t_config_new("hotplug-blocking");
    t_config_module(dir, "mock-c", "module: %s\nx-only-tokens: pkcs11:token=mock-c-9\n", c.path);
    struct t_proxy px;
    CK_FUNCTION_LIST_PTR f = start(dir, &px, "blocking wait");
    if (!f)
        return;
    static const char *const none[] = {NULL}, *const nine[] = {"mock-c-9", NULL};
    expect_labels(f, "blocking wait, at start", none);
    t_mock_control(&c, MOCK_ADD_SLOT, 8);
    t_mock_control(&c, MOCK_ADD_SLOT, 9);
    t_mock_control(&c, MOCK_QUEUE_EVENT, 8);
    t_mock_control(&c, MOCK_QUEUE_EVENT, 9);
    CK_SLOT_ID slot = 0;
    if (t_rv(f->C_WaitForSlotEvent(0, &slot, NULL), CKR_OK, "blocking wait: returns"))
        t_ul(slot, 1, "blocking wait: mock-c-9's event (mock-c-8's skipped), first ID");
    t_ul(t_mock_stats(&c).events_queued, 0, "blocking wait: both events consumed");
    expect_labels(f, "blocking wait, after", nine);
    finish(f, "blocking wait");
}

/* A URI that does not parse: its file's filter is not half-applied, it hides its whole reach
 * (the module's tokens, or every token), and the message names the file and line. `said` are
 * formats of what stderr must hold, given the config dir. */
struct bad_case {
    const char *what;
    const char *global, *a, *environment;
    const char *want[4];
    const char *said[2];
};

static const struct bad_case bad_cases[] = {
    {"bad URI in mock-a.module",
     NULL,
     "x-hide-tokens: pkcs11:token=mock-a-1\nx-only-tokens: pkcs11:token=mock-a-5 pkcs11:tokn=x\n",
     NULL,
     {"mock-b-1", "mock-c-7", NULL},
     {"%s/modules/mock-a.module:4: x-only-tokens: URI 2 'pkcs11:tokn=x': offset 7",
      "every token of module 'mock-a' is hidden until it is fixed"}},
    {"bad URI in pkcs11.conf",
     "x-hide-tokens: pkcs11:token=%zz\n",
     NULL,
     NULL,
     {NULL},
     {"%s/pkcs11.conf:1: x-hide-tokens: URI 1 'pkcs11:token=%%zz'", "every token is hidden until it is fixed"}},
    {"bad P11PROXY_ONLY_TOKENS",
     NULL,
     NULL,
     "token=mock-a-1",
     {NULL},
     {"P11PROXY_ONLY_TOKENS: URI 1 'token=mock-a-1': offset 0: not a PKCS#11 URI%.0s",
      "every token is hidden until it is fixed"}},
};
#define N_BAD_CASES (sizeof bad_cases / sizeof bad_cases[0])

static void bad_uri(void *arg)
{
    const struct bad_case *c = arg;
    t_capture_stderr("bad-uri");
    char *dir = config("bad-uri", c->global, c->a, NULL, NULL);
    if (c->environment)
        setenv("P11PROXY_ONLY_TOKENS", c->environment, 1);
    expect_config(dir, c->what, c->want);
    const char *text = t_stderr_text();
    for (int i = 0; i < 2; i++) {
        char needle[4096];
        snprintf(needle, sizeof needle, c->said[i], dir);
        t_ok(strstr(text, needle) != NULL, "%s: stderr says \"%s\" (stderr: %s)", c->what, needle, text);
    }
}

/* P11PROXY_ONLY_TOKENS replaces the configured filters. */
static void environment(void *arg)
{
    (void)arg;
    char *dir = config("environment", "x-hide-tokens: pkcs11:token=mock-a-1\n", NULL, NULL, NULL);
    setenv("P11PROXY_ONLY_TOKENS", "pkcs11:token=mock-a-1 pkcs11:token=mock-b-1", 1);
    struct t_proxy px;
    CK_FUNCTION_LIST_PTR f = start(dir, &px, "P11PROXY_ONLY_TOKENS");
    if (!f)
        return;
    static const char *const two[] = {"mock-a-1", "mock-b-1", NULL};
    expect_labels(f, "P11PROXY_ONLY_TOKENS over pkcs11.conf", two);
    finish(f, "P11PROXY_ONLY_TOKENS");

    /* Read again at the next first C_Initialize: now unset, pkcs11.conf's filter applies; the
     * IDs given out in this process keep their meaning. */
    unsetenv("P11PROXY_ONLY_TOKENS");
    if (!t_rv(f->C_Initialize(NULL), CKR_OK, "P11PROXY_ONLY_TOKENS unset: C_Initialize again"))
        return;
    check_slot_invalid(f, 1, "P11PROXY_ONLY_TOKENS unset, mock-a-1 hidden again");
    char label[33] = "";
    t_rv(t_token_label(f, 2, label), CKR_OK, "P11PROXY_ONLY_TOKENS unset: slot 2 still there");
    t_str(label, "mock-b-1", "P11PROXY_ONLY_TOKENS unset: slot 2 still mock-b-1");
    CK_ULONG n = 0;
    t_rv(f->C_GetSlotList(CK_FALSE, NULL, &n), CKR_OK, "P11PROXY_ONLY_TOKENS unset: C_GetSlotList");
    t_ul(n, 3, "P11PROXY_ONLY_TOKENS unset: mock-a-5, mock-b-1, mock-c-7");
    finish(f, "P11PROXY_ONLY_TOKENS unset");
}

/* Spy mode shows the module as it is: its own slot IDs, no filter. */
static void spy_mode(void *arg)
{
    (void)arg;
    t_capture_stderr("spy");
    char *a = t_mock_path("mock-a");
    setenv("P11PROXY_MODULE", a, 1);
    setenv("P11PROXY_ONLY_TOKENS", "pkcs11:token=mock-a-1", 1);
    struct t_proxy px;
    if (!t_proxy_open(&px))
        return;
    CK_FUNCTION_LIST_PTR f = t_caller(&px);
    if (!f || !t_rv(f->C_Initialize(NULL), CKR_OK, "spy mode: C_Initialize"))
        return;
    t_ul(t_slot_by_label(f, "mock-a-5"), 5, "spy mode: mock-a-5 shown under the module's own ID");
    finish(f, "spy mode");
    t_ok(strstr(t_stderr_text(), "P11PROXY_ONLY_TOKENS='pkcs11:token=mock-a-1' is ignored in spy mode") != NULL,
         "spy mode: stderr says the filter is ignored");
    free(a);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    for (size_t i = 0; i < N_CASES; i++)
        t_scenario(cases[i].what, one_case, (void *)&cases[i]);
    t_scenario("events of hidden slots", events, NULL);
    t_scenario("hot-plug over three modules", hotplug, NULL);
    t_scenario("hot-plug, one module, blocking wait", hotplug_blocking, NULL);
    for (size_t i = 0; i < N_BAD_CASES; i++)
        t_scenario(bad_cases[i].what, bad_uri, (void *)&bad_cases[i]);
    t_scenario("P11PROXY_ONLY_TOKENS", environment, NULL);
    t_scenario("spy mode", spy_mode, NULL);
    return t_done();
}
