/* test_shared_modules.c: processes that real programs are, where p11proxy is not the only user
 * of a module. Each scenario runs in a fresh process, over a mock module and, when
 * P11TEST_SOFTHSM_SO names SoftHSM2 (with SOFTHSM2_CONF holding a token "shared", user PIN
 * 1234: Tests/integration/test_shared_modules.sh), over SoftHSM2 too:
 *   - the application initialised the module itself and holds a logged-in session while
 *     p11proxy comes and goes: p11proxy uses the module and never finalises it;
 *   - two copies of libp11proxy.so (two files) in one process over the same module, in the
 *     orders PKCS#11 lets one copy see: the first to initialise the module owns it;
 *   - spy mode (P11PROXY_MODULE) is transparent: C_GetInfo and slot IDs are the module's;
 *   - slot IDs are valid from C_Initialize on, without C_GetSlotList, and the same as an
 *     earlier process saw. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "p11test.h"

/* The module under test, as the application itself loads it. */
struct target {
    const char *what;  /* "mock" or "softhsm" */
    char path[4096];
    int is_mock;
    struct t_mock mock; /* when is_mock */
    CK_FUNCTION_LIST_PTR direct;
};

static struct target target;

static int target_open(void)
{
    void *dl;
    if (target.is_mock) {
        if (!t_mock_open(&target.mock, "mock-a"))
            return 0;
        dl = target.mock.dl;
    } else {
        dl = dlopen(target.path, RTLD_NOW | RTLD_LOCAL);
        if (!dl)
            return t_fail("dlopen %s (%s)", target.path, dlerror());
    }
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
    if (!get || get(&target.direct) != CKR_OK)
        return t_fail("%s: C_GetFunctionList", target.what);
    return 1;
}

static unsigned long finalize_count(void)
{
    return target.is_mock ? t_mock_stats(&target.mock).finalize_calls : 0;
}

/* A configuration naming only the target module. */
static char *config_for_target(const char *label)
{
    char *dir = t_config_new(label);
    t_config_module(dir, "target", "module: %s\n", target.path);
    return dir;
}

/* The module's first slot with a token, through `f`. */
static CK_SLOT_ID first_token_slot(CK_FUNCTION_LIST_PTR f)
{
    CK_SLOT_ID slots[16];
    CK_ULONG n = 16;
    if (f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK || n == 0)
        return T_NO_SLOT;
    return slots[0];
}

/* One round of real use through `f`: a session on the first token, a digest, closed again. */
static int use_once(CK_FUNCTION_LIST_PTR f, const char *who)
{
    CK_SLOT_ID slot = first_token_slot(f);
    if (!t_ok(slot != T_NO_SLOT, "%s: %s: a token is listed", target.what, who))
        return 0;
    CK_SESSION_HANDLE h;
    if (!t_rv(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK, "%s: %s: C_OpenSession",
              target.what, who))
        return 0;
    unsigned char md[MOCK_DIGEST_LEN];
    CK_RV rv = t_digest(f, h, "abc", 3, md);
    t_rv(rv, CKR_OK, "%s: %s: digest", target.what, who);
    t_rv(f->C_CloseSession(h), CKR_OK, "%s: %s: C_CloseSession", target.what, who);
    return 1;
}

/* ---- 1. The application initialised the module and holds a logged-in session. ---- */

static void application_holds_session(void *arg)
{
    (void)arg;
    if (!target_open())
        return;
    CK_FUNCTION_LIST_PTR app = target.direct;
    t_rv(app->C_Initialize(NULL), CKR_OK, "%s: the application initialises the module", target.what);
    CK_SLOT_ID slot = first_token_slot(app);
    CK_SESSION_HANDLE h;
    if (!t_rv(app->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h), CKR_OK,
              "%s: the application opens a session", target.what))
        return;
    t_rv(app->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4), CKR_OK, "%s: the application logs in", target.what);
    unsigned long finalized = finalize_count();
    char *trace = t_temp_path("elsewhere-trace.txt");
    t_trace_to(trace, "text", 0);
    t_config_use(config_for_target("app-holds"));

    for (int round = 1; round <= 2; round++) {
        struct t_proxy px;
        if (!t_proxy_open(&px))
            return;
        CK_FUNCTION_LIST_PTR f = t_caller(&px);
        if (!f)
            return;
        t_rv(f->C_Initialize(NULL), CKR_OK, "%s: round %d: p11proxy's C_Initialize", target.what, round);
        use_once(f, "p11proxy");
        t_rv(f->C_Finalize(NULL), CKR_OK, "%s: round %d: p11proxy's C_Finalize", target.what, round);
        t_proxy_close(&px);
        if (target.is_mock)
            t_ul(finalize_count(), finalized, "%s: round %d: p11proxy never finalised the module", target.what, round);
        CK_SESSION_INFO info;
        if (t_rv(app->C_GetSessionInfo(h, &info), CKR_OK, "%s: round %d: the application's session is alive",
                 target.what, round))
            t_ul(info.state, CKS_RW_USER_FUNCTIONS, "%s: round %d: ... and still logged in", target.what, round);
    }
    unsetenv("P11PROXY_LOG_CALLS");
    char *text = t_read_file(trace);
    t_ok(strstr(text, "C_Initialize = CKR_CRYPTOKI_ALREADY_INITIALIZED") != NULL,
         "%s: the trace shows the module answered CKR_CRYPTOKI_ALREADY_INITIALIZED", target.what);
    t_ok(strstr(text, "C_Finalize") == NULL, "%s: the trace shows no C_Finalize of the module", target.what);
    free(text);
    free(trace);
    /* A fork child of the application: p11proxy comes and goes there too, and the module the
     * child inherited initialised is still not p11proxy's to finalise. SoftHSM2 keeps its state
     * across fork; the mock drops it in a child (a module that starts afresh is p11proxy's). */
    if (!target.is_mock) {
        fflush(stdout);
        pid_t child = fork();
        if (child == 0) {
            struct t_proxy px;
            CK_FUNCTION_LIST_PTR f = t_proxy_open(&px) ? t_caller(&px) : NULL;
            int ok = f && f->C_Initialize(NULL) == CKR_OK && first_token_slot(f) != T_NO_SLOT &&
                     f->C_Finalize(NULL) == CKR_OK;
            CK_SESSION_INFO info;
            ok = ok && app->C_GetSessionInfo(h, &info) == CKR_OK && info.state == CKS_RW_USER_FUNCTIONS;
            _exit(ok ? 0 : 1);
        }
        int status = -1;
        waitpid(child, &status, 0);
        t_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
             "%s: fork child: p11proxy used the inherited module and left it initialised, the session logged in",
             target.what);
    }
    t_rv(app->C_Logout(h), CKR_OK, "%s: the application logs out", target.what);
    t_rv(app->C_Finalize(NULL), CKR_OK, "%s: the application finalises the module", target.what);
}

/* ---- 2. Two copies of p11proxy over the same module. ---- */

struct two_copies {
    struct t_proxy a, b;
    CK_FUNCTION_LIST_PTR fa, fb;
};

static int open_two_copies(struct two_copies *c, const char *label)
{
    char *copy = t_temp_path("copy-of-libp11proxy.so");
    if (!target_open() || !t_copy_file(t_proxy_path, copy))
        return 0;
    t_config_use(config_for_target(label));
    if (!t_proxy_open(&c->a) || !t_proxy_open_path(&c->b, copy))
        return 0;
    t_ok(c->a.dl != c->b.dl, "%s: the copy is a separate library instance", target.what);
    free(copy);
    c->fa = t_caller(&c->a);
    c->fb = t_caller(&c->b);
    return c->fa && c->fb;
}

/* A then B initialise; B finalises first: A's sessions live on; A's C_Finalize ends the module. */
static void copies_nested(void *arg)
{
    (void)arg;
    struct two_copies c;
    if (!open_two_copies(&c, "copies-nested"))
        return;
    unsigned long finalized = finalize_count();
    t_rv(c.fa->C_Initialize(NULL), CKR_OK, "%s: nested: copy A initialises", target.what);
    t_rv(c.fb->C_Initialize(NULL), CKR_OK, "%s: nested: copy B initialises", target.what);
    CK_SLOT_ID slot = first_token_slot(c.fa);
    CK_SESSION_HANDLE ha;
    t_rv(c.fa->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &ha), CKR_OK, "%s: nested: A opens a session",
         target.what);
    use_once(c.fb, "copy B");
    t_rv(c.fb->C_Finalize(NULL), CKR_OK, "%s: nested: copy B finalises", target.what);
    if (target.is_mock)
        t_ul(finalize_count(), finalized, "%s: nested: B did not finalise the module A initialised", target.what);
    CK_SESSION_INFO info;
    t_rv(c.fa->C_GetSessionInfo(ha, &info), CKR_OK, "%s: nested: A's session lives on", target.what);
    use_once(c.fa, "copy A after B left");
    t_rv(c.fa->C_Finalize(NULL), CKR_OK, "%s: nested: copy A finalises", target.what);
    if (target.is_mock) {
        t_ul(finalize_count(), finalized + 1, "%s: nested: A, the owner, finalised the module", target.what);
        t_ok(!t_mock_stats(&target.mock).initialized, "%s: nested: the module is finalised at the end", target.what);
    }
    /* Both again, the other way round: B is the owner now. */
    t_rv(c.fb->C_Initialize(NULL), CKR_OK, "%s: nested: B initialises first", target.what);
    t_rv(c.fa->C_Initialize(NULL), CKR_OK, "%s: nested: then A", target.what);
    t_rv(c.fa->C_Finalize(NULL), CKR_OK, "%s: nested: A finalises", target.what);
    use_once(c.fb, "copy B after A left");
    t_rv(c.fb->C_Finalize(NULL), CKR_OK, "%s: nested: B finalises", target.what);
    if (target.is_mock)
        t_ul(finalize_count(), finalized + 2, "%s: nested: one C_Finalize per owner", target.what);
}

/* A then B initialise; A, the owner, finalises while B still uses the module. No proxy can keep
 * it alive: B's calls fail with the module's own CKR_CRYPTOKI_NOT_INITIALIZED, nothing crashes,
 * and B's next C_Initialize (after its last C_Finalize) makes B the owner. */
static void copies_owner_leaves_first(void *arg)
{
    (void)arg;
    struct two_copies c;
    if (!open_two_copies(&c, "copies-owner-first"))
        return;
    t_rv(c.fa->C_Initialize(NULL), CKR_OK, "%s: owner first: copy A initialises", target.what);
    t_rv(c.fb->C_Initialize(NULL), CKR_OK, "%s: owner first: copy B initialises", target.what);
    CK_SLOT_ID slot = first_token_slot(c.fb);
    CK_SESSION_HANDLE hb;
    t_rv(c.fb->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &hb), CKR_OK,
         "%s: owner first: B opens a session", target.what);
    t_rv(c.fa->C_Finalize(NULL), CKR_OK, "%s: owner first: A finalises (the module goes)", target.what);
    CK_SESSION_INFO info;
    t_rv(c.fb->C_GetSessionInfo(hb, &info), CKR_CRYPTOKI_NOT_INITIALIZED,
         "%s: owner first: B's session call says the module is not initialised", target.what);
    CK_TOKEN_INFO token;
    t_rv(c.fb->C_GetTokenInfo(slot, &token), CKR_CRYPTOKI_NOT_INITIALIZED,
         "%s: owner first: B's slot call says so too", target.what);
    t_rv(c.fb->C_Finalize(NULL), CKR_OK, "%s: owner first: B finalises", target.what);
    t_rv(c.fb->C_Initialize(NULL), CKR_OK, "%s: owner first: B initialises again", target.what);
    use_once(c.fb, "copy B as the new owner");
    t_rv(c.fb->C_Finalize(NULL), CKR_OK, "%s: owner first: B finalises again", target.what);
    if (target.is_mock)
        t_ok(!t_mock_stats(&target.mock).initialized, "%s: owner first: B finalised the module it owned",
             target.what);
}

/* ---- 3. Spy mode shows the module as it is. ---- */

static void spy_is_transparent(void *arg)
{
    (void)arg;
    if (!target_open())
        return;
    setenv("P11PROXY_MODULE", target.path, 1);
    struct t_proxy px;
    if (!t_proxy_open(&px))
        return;
    CK_FUNCTION_LIST_PTR f = t_caller(&px);
    if (!f || !t_rv(f->C_Initialize(NULL), CKR_OK, "%s: spy: C_Initialize", target.what))
        return;
    /* p11proxy initialised the module: the application's view of it is the same instance. */
    CK_INFO mine, theirs;
    memset(&mine, 0xA5, sizeof mine);
    memset(&theirs, 0x5A, sizeof theirs);
    t_rv(f->C_GetInfo(&mine), CKR_OK, "%s: spy: C_GetInfo through p11proxy", target.what);
    t_rv(target.direct->C_GetInfo(&theirs), CKR_OK, "%s: spy: the module's own C_GetInfo", target.what);
    t_ok(memcmp(&mine.cryptokiVersion, &theirs.cryptokiVersion, sizeof mine.cryptokiVersion) == 0 &&
             memcmp(mine.manufacturerID, theirs.manufacturerID, sizeof mine.manufacturerID) == 0 &&
             mine.flags == theirs.flags &&
             memcmp(mine.libraryDescription, theirs.libraryDescription, sizeof mine.libraryDescription) == 0 &&
             memcmp(&mine.libraryVersion, &theirs.libraryVersion, sizeof mine.libraryVersion) == 0,
         "%s: spy: every field of C_GetInfo is the module's", target.what);
    CK_SLOT_ID ours[32], direct[32];
    CK_ULONG n_ours = 32, n_direct = 32;
    t_rv(f->C_GetSlotList(CK_FALSE, ours, &n_ours), CKR_OK, "%s: spy: slot list", target.what);
    t_rv(target.direct->C_GetSlotList(CK_FALSE, direct, &n_direct), CKR_OK, "%s: spy: the module's slot list",
         target.what);
    t_ok(n_ours == n_direct && memcmp(ours, direct, n_ours * sizeof ours[0]) == 0,
         "%s: spy: slot IDs are the module's own (%lu slots, first %lu)", target.what, n_ours,
         n_ours ? ours[0] : 0);
    for (CK_ULONG i = 0; i < n_ours; i++) {
        CK_SLOT_INFO a, b;
        t_rv(f->C_GetSlotInfo(ours[i], &a), CKR_OK, "%s: spy: C_GetSlotInfo(%lu)", target.what, ours[i]);
        target.direct->C_GetSlotInfo(ours[i], &b);
        t_ok(memcmp(a.slotDescription, b.slotDescription, sizeof a.slotDescription) == 0,
             "%s: spy: slot %lu is the module's slot %lu", target.what, ours[i], ours[i]);
    }
    CK_SLOT_ID slot = first_token_slot(f);
    CK_SESSION_HANDLE h;
    CK_SESSION_INFO info;
    if (t_rv(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK, "%s: spy: session", target.what)) {
        f->C_GetSessionInfo(h, &info);
        t_ul(info.slotID, slot, "%s: spy: C_GetSessionInfo names the module's slot ID", target.what);
        f->C_CloseSession(h);
    }
    CK_SLOT_ID unknown = 0x7fff1234;
    CK_TOKEN_INFO token;
    t_rv(f->C_GetTokenInfo(unknown, &token), target.direct->C_GetTokenInfo(unknown, &token),
         "%s: spy: an ID the module does not have gets the module's own answer", target.what);
    t_rv(f->C_Finalize(NULL), CKR_OK, "%s: spy: C_Finalize", target.what);
    unsetenv("P11PROXY_MODULE");

    /* Config mode over the same module keeps p11proxy's own identity. */
    t_config_use(config_for_target("config-mode-info"));
    f = t_caller(&px);
    if (f && t_rv(f->C_Initialize(NULL), CKR_OK, "%s: config mode: C_Initialize", target.what)) {
        char manufacturer[33];
        f->C_GetInfo(&mine);
        t_trim(manufacturer, mine.manufacturerID, sizeof mine.manufacturerID);
        t_str(manufacturer, "p11proxy", "%s: config mode: C_GetInfo is p11proxy's own", target.what);
        f->C_Finalize(NULL);
    }
}

/* ---- 4. Slot IDs from C_Initialize on, the same as an earlier process saw. ---- */

struct slot_record {
    CK_ULONG n;
    CK_SLOT_ID ids[16];
    char labels[16][33];
    int initialized[16]; /* CKF_TOKEN_INITIALIZED: SoftHSM2's spare slot has a blank token */
};

static char *slot_record_path;

static CK_FUNCTION_LIST_PTR initialised_caller(struct t_proxy *px, const char *what)
{
    if (!t_proxy_open(px))
        return NULL;
    CK_FUNCTION_LIST_PTR f = t_caller(px);
    if (!f || !t_rv(f->C_Initialize(NULL), CKR_OK, "%s: %s: C_Initialize", target.what, what))
        return NULL;
    return f;
}

/* The first process: lists the slots and writes down each ID and its token's label. */
static void slot_ids_first_process(void *arg)
{
    const char *dir = arg;
    struct t_proxy px;
    t_config_use(dir);
    CK_FUNCTION_LIST_PTR f = initialised_caller(&px, "first process");
    if (!f)
        return;
    struct slot_record record;
    memset(&record, 0, sizeof record);
    record.n = 16;
    t_rv(f->C_GetSlotList(CK_TRUE, record.ids, &record.n), CKR_OK, "%s: first process: C_GetSlotList", target.what);
    for (CK_ULONG i = 0; i < record.n; i++) {
        CK_TOKEN_INFO info;
        t_token_label(f, record.ids[i], record.labels[i]);
        record.initialized[i] = f->C_GetTokenInfo(record.ids[i], &info) == CKR_OK &&
                                (info.flags & CKF_TOKEN_INITIALIZED);
    }
    FILE *out = fopen(slot_record_path, "wb");
    t_ok(out && fwrite(&record, sizeof record, 1, out) == 1, "%s: first process: IDs written down", target.what);
    if (out)
        fclose(out);
    f->C_Finalize(NULL);
}

/* A later process: uses those IDs straight after C_Initialize, as SunPKCS11's `slot=` does. */
static void slot_ids_later_process(void *arg)
{
    const char *dir = arg;
    struct slot_record record;
    FILE *in = fopen(slot_record_path, "rb");
    int have = in && fread(&record, sizeof record, 1, in) == 1;
    if (in)
        fclose(in);
    if (!t_ok(have && record.n > 0, "%s: later process: IDs from the first process", target.what))
        return;
    struct t_proxy px;
    t_config_use(dir);
    CK_FUNCTION_LIST_PTR f = initialised_caller(&px, "later process");
    if (!f)
        return;
    for (CK_ULONG i = 0; i < record.n; i++) {
        CK_SLOT_INFO slot_info;
        CK_TOKEN_INFO token_info;
        CK_SESSION_HANDLE h;
        char label[33];
        t_rv(f->C_GetSlotInfo(record.ids[i], &slot_info), CKR_OK,
             "%s: later process: C_GetSlotInfo(%lu) before any C_GetSlotList", target.what, record.ids[i]);
        if (t_rv(f->C_GetTokenInfo(record.ids[i], &token_info), CKR_OK,
                 "%s: later process: C_GetTokenInfo(%lu) before any C_GetSlotList", target.what, record.ids[i])) {
            t_trim(label, token_info.label, sizeof token_info.label);
            t_str(label, record.labels[i], "%s: later process: slot %lu is the same token", target.what,
                  record.ids[i]);
        }
        if (record.initialized[i] &&
            t_rv(f->C_OpenSession(record.ids[i], CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK,
                 "%s: later process: C_OpenSession(%lu) before any C_GetSlotList", target.what, record.ids[i]))
            f->C_CloseSession(h);
    }
    f->C_Finalize(NULL);
}

static void slot_ids_across_processes(const char *dir)
{
    slot_record_path = t_temp_path("slot-record.bin");
    t_scenario("slot IDs: first process", slot_ids_first_process, (void *)dir);
    t_scenario("slot IDs: a later process, no C_GetSlotList", slot_ids_later_process, (void *)dir);
    free(slot_record_path);
}

static void run_all(void)
{
    t_scenario("the application holds a logged-in session", application_holds_session, NULL);
    t_scenario("two copies: nested", copies_nested, NULL);
    t_scenario("two copies: the owner finalises first", copies_owner_leaves_first, NULL);
    t_scenario("spy mode is transparent", spy_is_transparent, NULL);
    char *dir = config_for_target("slot-ids");
    if (target.is_mock) { /* a second module, so IDs are numbered across modules */
        char *second = t_mock_path("mock-c");
        t_config_module(dir, "second", "module: %s\n", second);
        free(second);
    }
    slot_ids_across_processes(dir);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    unsetenv("P11PROXY_MODULE");
    const char *softhsm = getenv("P11TEST_SOFTHSM_SO");
    if (softhsm && *softhsm) {
        target.what = "softhsm";
        snprintf(target.path, sizeof target.path, "%s", softhsm);
    } else {
        /* Without SoftHSM2 (the C test runner), the mock alone. */
        target.what = "mock";
        target.is_mock = 1;
        char *path = t_mock_path("mock-a");
        snprintf(target.path, sizeof target.path, "%s", path);
        free(path);
    }
    run_all();
    return t_done();
}
