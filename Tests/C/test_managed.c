/* test_managed.c: managed callers. Every C_GetFunctionList (and C_GetInterface /
 * C_GetInterfaceList) call gives a new caller with its own init count and sessions,
 * while each real module is initialised once for all of them (p11-kit's "managed"
 * layer). Each scenario runs in a fresh process so real init counts start from zero. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "p11test.h"

static struct t_mock ma, mb;
static struct t_proxy px;

/* Opens mock-a (and mock-b when `with_b`, with `b_extra` in its module file), writes the
 * config and loads the proxy. */
static int setup(const char *label, int with_b, const char *b_extra)
{
    if (!t_mock_open(&ma, "mock-a"))
        return 0;
    char *dir = t_config_new(label);
    t_config_module(dir, "mock-a", "module: %s\npriority: 10\n", ma.path);
    if (with_b) {
        if (!t_mock_open(&mb, "mock-b"))
            return 0;
        t_config_module(dir, "mock-b", "module: %s\n%s", mb.path, b_extra ? b_extra : "");
    }
    t_config_use(dir);
    return t_proxy_open(&px);
}

static void lifecycle(void *arg)
{
    (void)arg;
    if (!setup("lifecycle", 0, NULL))
        return;
    CK_FUNCTION_LIST_PTR f1 = t_caller(&px), f2 = t_caller(&px);
    if (!f1 || !f2)
        return;
    t_ok(f1 != f2, "two C_GetFunctionList calls give two function lists");
    t_ok(f1->C_Initialize != f2->C_Initialize, "their C_Initialize entries differ");
    t_ok(f1->C_GetSlotList != f2->C_GetSlotList, "their C_GetSlotList entries differ");

    t_rv(f1->C_Initialize(NULL), CKR_OK, "caller 1 C_Initialize");
    t_rv(f1->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED, "caller 1 C_Initialize again");
    CK_ULONG n = 0;
    CK_SESSION_HANDLE h;
    t_rv(f2->C_GetSlotList(CK_FALSE, NULL, &n), CKR_CRYPTOKI_NOT_INITIALIZED, "caller 2 C_GetSlotList before init");
    t_rv(f2->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED, "caller 2 C_Finalize before init");
    CK_SLOT_ID slot = t_slot_by_label(f1, "mock-a-1");
    t_rv(f2->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_CRYPTOKI_NOT_INITIALIZED,
         "caller 2 C_OpenSession before init");
    t_rv(f2->C_Initialize(NULL), CKR_OK, "caller 2 C_Initialize");
    struct mock_stats s = t_mock_stats(&ma);
    t_ul(s.initialize_calls, 1, "mock-a initialised once for two callers");
    t_ul(s.double_init_attempts, 0, "mock-a never saw a second C_Initialize");

    t_rv(f1->C_Finalize(NULL), CKR_OK, "caller 1 C_Finalize");
    t_ul(t_mock_stats(&ma).finalize_calls, 0, "mock-a not finalised while caller 2 is initialised");
    t_rv(f1->C_GetSlotList(CK_FALSE, NULL, &n), CKR_CRYPTOKI_NOT_INITIALIZED, "caller 1 finalised");
    t_rv(f2->C_GetSlotList(CK_FALSE, NULL, &n), CKR_OK, "caller 2 still works");
    t_ul(n, 2, "caller 2 sees mock-a's 2 slots");
    t_rv(f2->C_Finalize((void *)&n), CKR_ARGUMENTS_BAD, "C_Finalize with non-NULL pReserved");
    t_rv(f2->C_Finalize(NULL), CKR_OK, "caller 2 C_Finalize");
    t_ul(t_mock_stats(&ma).finalize_calls, 1, "mock-a finalised when the last caller finalises");

    t_rv(f1->C_Initialize(NULL), CKR_OK, "caller 1 C_Initialize again");
    t_ul(t_mock_stats(&ma).initialize_calls, 2, "mock-a initialised again");
    t_rv(f1->C_Finalize(NULL), CKR_OK, "caller 1 C_Finalize again");
    s = t_mock_stats(&ma);
    t_ul(s.finalize_calls, 2, "mock-a finalised again");
    t_no_uninit_calls(&s, 0, "mock-a");
}

/* Application-supplied mutex callbacks (spec 2.40 section 5.4, CK_C_INITIALIZE_ARGS). */
static int mutex_calls;
static CK_RV app_create(CK_VOID_PTR_PTR m)
{
    pthread_mutex_t *p = malloc(sizeof *p);
    pthread_mutex_init(p, NULL);
    *m = p;
    __atomic_add_fetch(&mutex_calls, 1, __ATOMIC_RELAXED);
    return CKR_OK;
}
static CK_RV app_destroy(CK_VOID_PTR m)
{
    pthread_mutex_destroy(m);
    free(m);
    return CKR_OK;
}
static CK_RV app_lock(CK_VOID_PTR m)
{
    pthread_mutex_lock(m);
    return CKR_OK;
}
static CK_RV app_unlock(CK_VOID_PTR m)
{
    pthread_mutex_unlock(m);
    return CKR_OK;
}

static void init_args(void *arg)
{
    (void)arg;
    if (!setup("init-args", 0, NULL))
        return;
    CK_FUNCTION_LIST_PTR f = t_caller(&px);
    if (!f)
        return;
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof args);
    args.CreateMutex = app_create;
    args.LockMutex = app_lock;
    t_rv(f->C_Initialize(&args), CKR_ARGUMENTS_BAD, "C_Initialize with 2 of 4 mutex callbacks");
    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK;
    args.pReserved = (void *)"not allowed";
    t_rv(f->C_Initialize(&args), CKR_ARGUMENTS_BAD, "C_Initialize with pReserved set");
    t_ul(t_mock_stats(&ma).initialize_calls, 0, "rejected arguments never reach mock-a");

    memset(&args, 0, sizeof args);
    args.CreateMutex = app_create;
    args.DestroyMutex = app_destroy;
    args.LockMutex = app_lock;
    args.UnlockMutex = app_unlock;
    t_rv(f->C_Initialize(&args), CKR_OK, "C_Initialize with all 4 callbacks, no CKF_OS_LOCKING_OK");
    struct mock_stats s = t_mock_stats(&ma);
    t_ok(s.last_init_had_args && (s.last_init_flags & CKF_OS_LOCKING_OK),
         "mock-a still initialised with CKF_OS_LOCKING_OK (flags 0x%lx)", s.last_init_flags);
    t_ul(s.last_init_had_mutex_callbacks, 0, "the application's callbacks are not passed to mock-a");
    t_rv(f->C_Finalize(NULL), CKR_OK, "C_Finalize");

    args.flags = CKF_OS_LOCKING_OK;
    t_rv(f->C_Initialize(&args), CKR_OK, "C_Initialize with all 4 callbacks and CKF_OS_LOCKING_OK");
    t_rv(f->C_Finalize(NULL), CKR_OK, "C_Finalize");
    t_diag("the proxy called the application's CreateMutex %d times", mutex_calls);
}

static int in_list(CK_SESSION_HANDLE h, const CK_SESSION_HANDLE *list, int n)
{
    for (int i = 0; i < n; i++)
        if (list[i] == h)
            return 1;
    return 0;
}

static void isolation(void *arg)
{
    (void)arg;
    if (!setup("isolation", 0, NULL))
        return;
    CK_FUNCTION_LIST_PTR f1 = t_caller(&px), f2 = t_caller(&px);
    if (!f1 || !f2 || !t_rv(f1->C_Initialize(NULL), CKR_OK, "caller 1 C_Initialize") ||
        !t_rv(f2->C_Initialize(NULL), CKR_OK, "caller 2 C_Initialize"))
        return;
    CK_SLOT_ID slot1 = t_slot_by_label(f1, "mock-a-1"), slot2 = t_slot_by_label(f2, "mock-a-1");
    if (slot1 != slot2)
        t_diag("callers see different slot IDs for mock-a-1: %lu and %lu", slot1, slot2);
    CK_SESSION_HANDLE h1[2], h2[3];
    int n2 = 2;
    for (int i = 0; i < 2; i++) {
        t_rv(f1->C_OpenSession(slot1, CKF_SERIAL_SESSION, NULL, NULL, &h1[i]), CKR_OK, "caller 1 opens session %d", i);
        t_rv(f2->C_OpenSession(slot2, CKF_SERIAL_SESSION, NULL, NULL, &h2[i]), CKR_OK, "caller 2 opens session %d", i);
    }
    /* Handles may be numbered per caller; we need one of caller 2's that caller 1 never got. */
    CK_SESSION_HANDLE foreign = 0;
    for (int i = 0; i < n2 && !foreign; i++)
        if (!in_list(h2[i], h1, 2))
            foreign = h2[i];
    if (!foreign) {
        t_rv(f2->C_OpenSession(slot2, CKF_SERIAL_SESSION, NULL, NULL, &h2[2]), CKR_OK, "caller 2 opens a third");
        foreign = h2[n2++];
    }
    CK_SESSION_INFO si;
    t_rv(f1->C_GetSessionInfo(foreign, &si), CKR_SESSION_HANDLE_INVALID, "caller 1 using caller 2's handle");
    t_rv(f1->C_CloseSession(foreign), CKR_SESSION_HANDLE_INVALID, "caller 1 closing caller 2's handle");
    t_rv(f2->C_GetSessionInfo(foreign, &si), CKR_OK, "caller 2's session survived caller 1's attempt");

    t_rv(f1->C_CloseAllSessions(slot1), CKR_OK, "caller 1 C_CloseAllSessions");
    for (int i = 0; i < 2; i++)
        t_rv(f1->C_GetSessionInfo(h1[i], &si), CKR_SESSION_HANDLE_INVALID, "caller 1's session %d closed%s", i,
             in_list(h1[i], h2, n2) ? " (its number is also one of caller 2's)" : "");
    for (int i = 0; i < n2; i++)
        t_rv(f2->C_GetSessionInfo(h2[i], &si), CKR_OK, "caller 2's session %d still open", i);
    t_ul(t_mock_stats(&ma).open_sessions, (unsigned long)n2, "mock-a holds only caller 2's sessions");

    t_rv(f2->C_Finalize(NULL), CKR_OK, "caller 2 C_Finalize");
    struct mock_stats s = t_mock_stats(&ma);
    t_ul(s.open_sessions, 0, "caller 2's C_Finalize closed its sessions on mock-a");
    t_ul(s.finalize_calls, 0, "mock-a still initialised for caller 1");
    CK_ULONG n;
    t_rv(f1->C_GetSlotList(CK_FALSE, NULL, &n), CKR_OK, "caller 1 still works");
    t_rv(f1->C_Finalize(NULL), CKR_OK, "caller 1 C_Finalize");
    t_ul(t_mock_stats(&ma).finalize_calls, 1, "mock-a finalised with the last caller");
}

/* One caller per list (or per C_GetInterfaceList call, which covers two lists). */
struct caller {
    CK_FUNCTION_LIST_PTR f;   /* the list used to drive it */
    CK_FUNCTION_LIST_PTR alt; /* the other interface of the same C_GetInterfaceList call */
};

static void many_callers(void *arg)
{
    (void)arg;
    if (!setup("many", 0, NULL))
        return;
    struct caller c[120];
    CK_FUNCTION_LIST_PTR lists[140];
    int n = 0, n_lists = 0, got_all = 1;
    memset(c, 0, sizeof c);
    for (int i = 0; i < 100; i++) {
        CK_RV rv = px.get_function_list(&c[n].f);
        got_all &= rv == CKR_OK && c[n].f;
        if (rv == CKR_OK && c[n].f)
            lists[n_lists++] = c[n++].f;
    }
    t_ok(got_all, "100 C_GetFunctionList calls succeed");
    if (t_ok(px.get_interface && px.get_interface_list, "proxy exports the interface functions")) {
        CK_VERSION v30 = {3, 0};
        for (int i = 0; i < 5; i++) {
            CK_INTERFACE_PTR itf = NULL;
            if (t_rv(px.get_interface((CK_UTF8CHAR_PTR) "PKCS 11", &v30, &itf, 0), CKR_OK, "C_GetInterface %d", i) &&
                itf)
                lists[n_lists++] = c[n++].f = itf->pFunctionList;
        }
        for (int i = 0; i < 3; i++) {
            CK_INTERFACE itf[8];
            CK_ULONG count = 8;
            if (!t_rv(px.get_interface_list(itf, &count), CKR_OK, "C_GetInterfaceList %d", i) || count < 2)
                continue;
            for (CK_ULONG k = 0; k < count; k++) {
                CK_FUNCTION_LIST_PTR l = itf[k].pFunctionList;
                lists[n_lists++] = l;
                if (l->version.major == 3)
                    c[n].f = l;
                else
                    c[n].alt = l;
            }
            if (c[n].f && c[n].alt)
                n++;
            else
                t_fail("C_GetInterfaceList %d gave a 3.0 and a 2.40 list", i);
        }
    }
    int distinct = 1;
    for (int i = 0; i < n_lists; i++)
        for (int j = i + 1; j < n_lists; j++)
            distinct &= lists[i] != lists[j];
    t_ok(distinct, "all %d function lists are distinct", n_lists);

    int init_ok = 0, open_ok = 0;
    for (int i = 0; i < n; i++) {
        CK_SESSION_HANDLE h;
        if (c[i].f->C_Initialize(NULL) == CKR_OK)
            init_ok++;
        CK_SLOT_ID slot = t_slot_by_label(c[i].f, i % 2 ? "mock-a-1" : "mock-a-5");
        if (c[i].f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &h) == CKR_OK)
            open_ok++;
    }
    t_ul(init_ok, n, "every caller initialises");
    t_ul(open_ok, n, "every caller opens a session");
    struct mock_stats s = t_mock_stats(&ma);
    t_ul(s.initialize_ok, 1, "mock-a initialised once for %d callers", n);
    t_ul(s.open_sessions, n, "mock-a holds one session per caller");
    int fin_ok = 0;
    for (int i = 0; i < n; i++)
        fin_ok += c[i].f->C_Finalize(NULL) == CKR_OK;
    t_ul(fin_ok, n, "every caller finalises");
    s = t_mock_stats(&ma);
    t_ul(s.finalize_ok, 1, "mock-a finalised once, after the last caller");
    t_ul(s.open_sessions, 0, "no session left");
    t_ul(s.double_init_attempts, 0, "mock-a never saw a second C_Initialize");

    /* The two interfaces of one C_GetInterfaceList call are one caller. */
    struct caller *pair = &c[n - 1];
    if (pair->alt) {
        CK_SLOT_ID slot;
        CK_SESSION_HANDLE h;
        CK_SESSION_INFO si;
        t_rv(pair->f->C_Initialize(NULL), CKR_OK, "interface-list caller: C_Initialize via the 3.0 list");
        t_rv(pair->alt->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED,
             "interface-list caller: the 2.40 list shares the init count");
        slot = t_slot_by_label(pair->f, "mock-a-1");
        t_rv(pair->f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK,
             "interface-list caller: open via 3.0 list");
        t_rv(pair->alt->C_GetSessionInfo(h, &si), CKR_OK, "interface-list caller: the 2.40 list sees the session");
        t_rv(pair->alt->C_Finalize(NULL), CKR_OK, "interface-list caller: C_Finalize via the 2.40 list");
        CK_ULONG count;
        t_rv(pair->f->C_GetSlotList(CK_FALSE, NULL, &count), CKR_CRYPTOKI_NOT_INITIALIZED,
             "interface-list caller: the 3.0 list is finalised too");
    }
}

static void pool_limit(void *arg)
{
    (void)arg;
    if (!setup("pool", 0, NULL))
        return;
    CK_FUNCTION_LIST_PTR lists[300];
    int n = 0;
    CK_RV rv = CKR_OK;
    while (n < 300 && (rv = px.get_function_list(&lists[n])) == CKR_OK)
        n++;
    t_rv(rv, CKR_HOST_MEMORY, "C_GetFunctionList fails with CKR_HOST_MEMORY when the pool is full");
    t_ok(n >= 64, "at least 64 live callers before that (got %d)", n);
    t_ul(n, 128, "the pool holds exactly 128 live callers");
    if (n == 0)
        return;
    t_rv(lists[0]->C_Initialize(NULL), CKR_OK, "a pooled caller initialises");
    t_rv(lists[0]->C_Finalize(NULL), CKR_OK, "and finalises");
    CK_FUNCTION_LIST_PTR again = NULL;
    t_rv(px.get_function_list(&again), CKR_OK, "after one caller finalised, C_GetFunctionList succeeds again");
    CK_FUNCTION_LIST_PTR more = NULL;
    t_rv(px.get_function_list(&more), CKR_HOST_MEMORY, "but only for the one freed caller");
    if (again) {
        CK_ULONG count;
        t_rv(again->C_GetSlotList(CK_FALSE, NULL, &count), CKR_CRYPTOKI_NOT_INITIALIZED,
             "a recycled caller starts uninitialised");
        t_rv(again->C_Initialize(NULL), CKR_OK, "the recycled caller initialises");
        t_rv(again->C_Finalize(NULL), CKR_OK, "and finalises");
    }
}

static void fork_child(void *arg)
{
    (void)arg;
    if (!setup("fork", 0, NULL))
        return;
    CK_FUNCTION_LIST_PTR f1 = t_caller(&px), f2 = t_caller(&px);
    if (!f1 || !f2 || !t_rv(f1->C_Initialize(NULL), CKR_OK, "parent caller 1 C_Initialize") ||
        !t_rv(f2->C_Initialize(NULL), CKR_OK, "parent caller 2 C_Initialize"))
        return;
    CK_SLOT_ID slot = t_slot_by_label(f1, "mock-a-1");
    CK_SESSION_HANDLE h;
    if (!t_rv(f1->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK, "parent opens a session"))
        return;
    struct mock_stats before = t_mock_stats(&ma);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(60);
        CK_ULONG n;
        CK_SESSION_INFO si;
        t_rv(f1->C_GetSlotList(CK_FALSE, NULL, &n), CKR_CRYPTOKI_NOT_INITIALIZED, "child: caller 1 uninitialised");
        t_rv(f2->C_GetSlotList(CK_FALSE, NULL, &n), CKR_CRYPTOKI_NOT_INITIALIZED, "child: caller 2 uninitialised");
        t_rv(f1->C_GetSessionInfo(h, &si), CKR_CRYPTOKI_NOT_INITIALIZED, "child: parent's session unusable");
        struct mock_stats s = t_mock_stats(&ma);
        t_no_uninit_calls(&s, before.calls_while_uninitialised, "child: mock-a before C_Initialize");
        t_rv(f1->C_Initialize(NULL), CKR_OK, "child: caller 1 C_Initialize");
        s = t_mock_stats(&ma);
        t_ul(s.initialize_calls, before.initialize_calls + 1, "child: mock-a initialised again in the child");
        t_rv(f2->C_GetSlotList(CK_FALSE, NULL, &n), CKR_CRYPTOKI_NOT_INITIALIZED,
             "child: caller 2 still needs its own C_Initialize");
        CK_SLOT_ID cslot = t_slot_by_label(f1, "mock-a-1");
        CK_SESSION_HANDLE ch;
        unsigned char md[MOCK_DIGEST_LEN];
        if (t_rv(f1->C_OpenSession(cslot, CKF_SERIAL_SESSION, NULL, NULL, &ch), CKR_OK, "child: opens a session"))
            t_rv(t_digest(f1, ch, "child", 5, md), CKR_OK, "child: digest works");
        t_rv(f1->C_Finalize(NULL), CKR_OK, "child: C_Finalize");
        fflush(stdout);
        _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    t_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child exited cleanly (status 0x%x)", status);
    CK_SESSION_INFO si;
    unsigned char md[MOCK_DIGEST_LEN], want[MOCK_DIGEST_LEN];
    t_rv(f1->C_GetSessionInfo(h, &si), CKR_OK, "parent's session still works after the child");
    mock_fake_digest(0xA, (const unsigned char *)"parent", 6, want);
    if (t_rv(t_digest(f1, h, "parent", 6, md), CKR_OK, "parent digest after the child"))
        t_ok(memcmp(md, want, sizeof md) == 0, "parent digest is mock-a's");
    t_ul(t_mock_stats(&ma).initialize_calls, before.initialize_calls, "parent's mock-a not re-initialised");
    t_rv(f1->C_Finalize(NULL), CKR_OK, "parent caller 1 C_Finalize");
    t_rv(f2->C_Finalize(NULL), CKR_OK, "parent caller 2 C_Finalize");
}

/* `managed: no`: the module's own C_Initialize/C_Finalize see every caller's call. */
static void unmanaged(void *arg)
{
    (void)arg;
    if (!setup("unmanaged", 1, "managed: no\n"))
        return;
    CK_FUNCTION_LIST_PTR f1 = t_caller(&px), f2 = t_caller(&px);
    if (!f1 || !f2)
        return;
    t_rv(f1->C_Initialize(NULL), CKR_OK, "caller 1 C_Initialize");
    t_rv(f2->C_Initialize(NULL), CKR_OK, "caller 2 C_Initialize (mock-b's ALREADY_INITIALIZED tolerated)");
    struct mock_stats b = t_mock_stats(&mb), a = t_mock_stats(&ma);
    t_ul(b.initialize_calls, 2, "unmanaged mock-b sees both C_Initialize calls");
    t_ul(b.double_init_attempts, 1, "the second one got CKR_CRYPTOKI_ALREADY_INITIALIZED from mock-b");
    t_ul(a.initialize_calls, 1, "managed mock-a initialised once");
    t_ok(t_slot_by_label(f2, "mock-b-1") != T_NO_SLOT, "caller 2 sees mock-b's slot");
    t_rv(f1->C_Finalize(NULL), CKR_OK, "caller 1 C_Finalize");
    t_ul(t_mock_stats(&mb).finalize_calls, 1, "unmanaged mock-b's C_Finalize passes through");
    t_ul(t_mock_stats(&ma).finalize_calls, 0, "managed mock-a stays initialised for caller 2");
    t_rv(f2->C_Finalize(NULL), CKR_OK, "caller 2 C_Finalize");
    t_ul(t_mock_stats(&ma).finalize_calls, 1, "mock-a finalised with the last caller");
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_scenario("two callers, one real initialisation", lifecycle, NULL);
    t_scenario("C_Initialize arguments", init_args, NULL);
    t_scenario("session isolation between callers", isolation, NULL);
    t_scenario("100+ callers", many_callers, NULL);
    t_scenario("caller pool limit", pool_limit, NULL);
    t_scenario("fork", fork_child, NULL);
    t_scenario("managed: no", unmanaged, NULL);
    return t_done();
}
