/* test_module_hang.c: a module whose C_WaitForSlotEvent blocks and never returns
 * by itself (mock-hang: events and C_Finalize do not wake it; only mock_control does, or
 * nothing). While threads are stuck inside it, through p11proxy:
 *   - other threads of the same caller, other callers and new callers keep working, with
 *     tracing off and on;
 *   - C_Finalize of other callers, and of the stuck caller itself, returns; the module can be
 *     initialised again while the threads are still inside it;
 *   - when the module finally answers, its answer reaches the stuck thread;
 *   - a process whose thread never comes back still exits;
 *   - with several modules a blocking C_WaitForSlotEvent polls (it never enters the hanging
 *     call), sees another module's event, and ends when its caller finalises. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "p11test.h"

/* A call that answers within this many seconds is not blocked behind the stuck thread. */
#define PROMPT_S 2.0

static struct t_mock mh, ma;
static struct t_proxy px;

static int mock_waiters_reach(struct t_mock *m, unsigned long n, double seconds)
{
    double end = t_now() + seconds;
    while (t_mock_stats(m).waiters != n && t_now() < end)
        usleep(2000);
    return t_mock_stats(m).waiters == n;
}

/* One caller's ordinary work on a slot: list, token info, a session, a digest, no event. */
static int use(CK_FUNCTION_LIST_PTR f, const char *label, char *why, size_t why_len)
{
    CK_SESSION_HANDLE h;
    unsigned char md[MOCK_DIGEST_LEN];
    CK_SLOT_ID event;
    CK_RV rv;
    if (t_open_on_label(f, label, &h, why, why_len) == T_NO_SLOT)
        return 0;
    rv = t_digest(f, h, "data", 4, md);
    f->C_CloseSession(h);
    if (rv != CKR_OK)
        return snprintf(why, why_len, "digest: %s", t_rv_name(rv)), 0;
    if ((rv = f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &event, NULL)) != CKR_NO_EVENT)
        return snprintf(why, why_len, "C_WaitForSlotEvent(CKF_DONT_BLOCK): %s", t_rv_name(rv)), 0;
    return 1;
}

/* `use` on the calling thread, checked for its result and that it did not wait. */
static void check_use(CK_FUNCTION_LIST_PTR f, const char *label, const char *who)
{
    char why[200] = "";
    double t0 = t_now();
    int ok = use(f, label, why, sizeof why);
    double took = t_now() - t0;
    t_ok(ok && took < PROMPT_S, "%s: slot list, token info, session, digest, non-blocking wait (%.3f s%s%s)", who,
         took, why[0] ? "; " : "", why);
}

struct busy {
    CK_FUNCTION_LIST_PTR f;
    const char *label;
    int rounds, ok;
    char why[200];
};

static void *busy_thread(void *arg)
{
    struct busy *b = arg;
    for (int i = 0; i < b->rounds; i++) {
        if (!use(b->f, b->label, b->why, sizeof b->why))
            return NULL;
        b->ok++;
    }
    return NULL;
}

static int setup(const char *name, int with_mock_a, int traced)
{
    char *dir = t_config_new(name);
    t_config_module(dir, "mock-hang", "module: %s\n", mh.path);
    if (with_mock_a)
        t_config_module(dir, "mock-a", "module: %s\n", ma.path);
    t_config_use(dir);
    if (traced) {
        char *trace = t_temp_path(name);
        setenv("P11PROXY_LOG_CALLS", "yes", 1);
        setenv("P11PROXY_LOG_FILE", trace, 1);
        free(trace);
    }
    return t_proxy_open(&px);
}

static int count_in_file(const char *path, const char *needle)
{
    FILE *in = fopen(path, "r");
    char line[4096];
    int n = 0;
    while (in && fgets(line, sizeof line, in))
        n += strstr(line, needle) != NULL;
    if (in)
        fclose(in);
    return n;
}

/* Two threads (of two callers) stuck in the module; everyone else carries on. */
static void stuck_waiters(void *arg)
{
    int traced = arg != NULL;
    const char *mode = traced ? "traced" : "untraced";
    if (!setup(traced ? "hang-traced" : "hang", 0, traced))
        return;
    CK_FUNCTION_LIST_PTR f1 = t_caller(&px), f2 = t_caller(&px);
    if (!f1 || !f2 || !t_rv(f1->C_Initialize(NULL), CKR_OK, "%s: caller 1 C_Initialize", mode) ||
        !t_rv(f2->C_Initialize(NULL), CKR_OK, "%s: caller 2 C_Initialize", mode))
        return;
    struct t_waiter w1, w2;
    t_waiter_start(&w1, f1);
    t_waiter_start(&w2, f2);
    if (!t_ok(mock_waiters_reach(&mh, 2, 5.0), "%s: two threads blocked inside mock-hang's C_WaitForSlotEvent",
              mode))
        return;

    check_use(f1, "mock-hang-2", "stuck caller 1, from another thread");
    check_use(f2, "mock-hang-2", "stuck caller 2, from another thread");
    struct busy b1 = {f1, "mock-hang-2", 200, 0, ""}, b2 = {f2, "mock-hang-2", 200, 0, ""};
    pthread_t t1, t2;
    double t0 = t_now();
    pthread_create(&t1, NULL, busy_thread, &b1);
    pthread_create(&t2, NULL, busy_thread, &b2);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    t_ok(b1.ok == 200 && b2.ok == 200, "%s: two more threads, one per stuck caller, 200 rounds each (%d, %d; %.3f s%s%s)",
         mode, b1.ok, b2.ok, t_now() - t0, b1.why[0] || b2.why[0] ? "; " : "", b1.why[0] ? b1.why : b2.why);

    CK_FUNCTION_LIST_PTR f3 = t_caller(&px);
    t0 = t_now();
    if (f3 && t_rv(f3->C_Initialize(NULL), CKR_OK, "%s: a new caller's C_Initialize", mode)) {
        check_use(f3, "mock-hang-2", "a new caller");
        t_rv(f3->C_Finalize(NULL), CKR_OK, "%s: the new caller's C_Finalize", mode);
    }
    t_ok(t_now() - t0 < PROMPT_S, "%s: new caller's lifecycle took %.3f s", mode, t_now() - t0);

    t0 = t_now();
    t_rv(f2->C_Finalize(NULL), CKR_OK, "%s: C_Finalize of caller 2, whose thread is stuck", mode);
    t_ok(t_now() - t0 < PROMPT_S, "%s: ... returned in %.3f s", mode, t_now() - t0);
    check_use(f1, "mock-hang-2", "caller 1 after caller 2 finalised");
    t0 = t_now();
    t_rv(f1->C_Finalize(NULL), CKR_OK, "%s: C_Finalize of caller 1 (the last), whose thread is stuck", mode);
    t_ok(t_now() - t0 < PROMPT_S, "%s: ... returned in %.3f s", mode, t_now() - t0);
    struct mock_stats s = t_mock_stats(&mh);
    t_ok(!s.initialized && s.waiters == 2, "%s: mock-hang finalised with both threads still inside (waiters %lu)",
         mode, s.waiters);
    t_ok(!t_waiter_done(&w1) && !t_waiter_done(&w2), "%s: the stuck threads are still stuck", mode);

    CK_FUNCTION_LIST_PTR f4 = t_caller(&px);
    if (f4 && t_rv(f4->C_Initialize(NULL), CKR_OK, "%s: C_Initialize again, threads still stuck in the module", mode))
        check_use(f4, "mock-hang-2", "a caller after the module was re-initialised");

    t_rv(t_mock_control(&mh, MOCK_RELEASE_WAITERS, CKR_DEVICE_REMOVED), CKR_OK, "%s: the module lets go", mode);
    double released = t_now();
    int r1 = t_waiter_returns(&w1, 5.0), r2 = t_waiter_returns(&w2, 5.0);
    t_ok(r1 && r2, "%s: both stuck threads return once the module answers", mode);
    if (r1 && r2) {
        t_ok(w1.returned_at - released < PROMPT_S && w2.returned_at - released < PROMPT_S,
             "%s: ... promptly (%.3f s, %.3f s)", mode, w1.returned_at - released, w2.returned_at - released);
        t_rv(w1.rv, CKR_DEVICE_REMOVED, "%s: caller 1's thread gets the module's answer", mode);
        t_rv(w2.rv, CKR_DEVICE_REMOVED, "%s: caller 2's thread gets the module's answer", mode);
    }
    if (f4)
        t_rv(f4->C_Finalize(NULL), CKR_OK, "%s: last C_Finalize", mode);
    if (traced) {
        const char *trace = getenv("P11PROXY_LOG_FILE");
        t_ok(count_in_file(trace, "C_WaitForSlotEvent [") >= 2,
             "%s: the stuck calls' IN halves are in the trace (written before they return)", mode);
        t_ok(count_in_file(trace, "C_DigestInit = CKR_OK") >= 400,
             "%s: the calls made meanwhile are traced (%d C_DigestInit records)", mode,
             count_in_file(trace, "C_DigestInit = CKR_OK"));
    }
}

/* The module answers with an event: the proxy maps its slot for the thread that waited. */
static void late_event(void *arg)
{
    (void)arg;
    if (!setup("hang-event", 0, 0))
        return;
    CK_FUNCTION_LIST_PTR f = t_caller(&px);
    if (!f || !t_rv(f->C_Initialize(NULL), CKR_OK, "late event: C_Initialize"))
        return;
    CK_SLOT_ID slot = t_slot_by_label(f, "mock-hang-2");
    struct t_waiter w;
    t_waiter_start(&w, f);
    if (!t_ok(mock_waiters_reach(&mh, 1, 5.0), "late event: a thread blocked in the module"))
        return;
    check_use(f, "mock-hang-2", "late event: the same caller meanwhile");
    t_mock_control(&mh, MOCK_RELEASE_WAITERS, CKR_OK);
    if (t_ok(t_waiter_returns(&w, 5.0), "late event: the waiter returns")) {
        t_rv(w.rv, CKR_OK, "late event: CKR_OK");
        t_ul(w.slot, slot, "late event: the proxy's ID of mock-hang's slot");
    }
    t_rv(f->C_Finalize(NULL), CKR_OK, "late event: C_Finalize");
}

/* Nobody ever releases the thread: C_Finalize and process exit must still work. */
static void stuck_forever(void *arg)
{
    int traced = arg != NULL;
    if (!setup(traced ? "hang-forever-traced" : "hang-forever", 0, traced))
        return;
    CK_FUNCTION_LIST_PTR f = t_caller(&px);
    if (!f || !t_rv(f->C_Initialize(NULL), CKR_OK, "stuck forever: C_Initialize"))
        return;
    struct t_waiter w;
    t_waiter_start(&w, f);
    if (!t_ok(mock_waiters_reach(&mh, 1, 5.0), "stuck forever: a thread blocked in the module"))
        return;
    double t0 = t_now();
    t_rv(f->C_Finalize(NULL), CKR_OK, "stuck forever: C_Finalize with the thread inside");
    t_ok(t_now() - t0 < PROMPT_S, "stuck forever: ... returned in %.3f s", t_now() - t0);
    t_proxy_close(&px);
    fflush(stdout);
    /* exit(), not _exit(): atexit handlers and destructors run with the thread still blocked;
     * t_scenario reports a hang here as a timeout. */
    exit(0);
}

/* Several modules: the blocking wait polls them with CKF_DONT_BLOCK, so the hanging call is
 * never entered, another module's event comes through, and C_Finalize ends the wait. */
static void several_modules(void *arg)
{
    (void)arg;
    if (!setup("hang-several", 1, 0))
        return;
    CK_FUNCTION_LIST_PTR f = t_caller(&px), g = t_caller(&px);
    if (!f || !g || !t_rv(f->C_Initialize(NULL), CKR_OK, "several modules: C_Initialize") ||
        !t_rv(g->C_Initialize(NULL), CKR_OK, "several modules: second caller C_Initialize"))
        return;
    CK_SLOT_ID a5 = t_slot_by_label(f, "mock-a-5");
    struct t_waiter w;
    t_waiter_start(&w, f);
    usleep(300 * 1000);
    t_ok(!t_waiter_done(&w), "several modules: the blocking C_WaitForSlotEvent waits");
    t_ul(t_mock_stats(&mh).waiters, 0, "several modules: it never blocks inside mock-hang");
    check_use(f, "mock-hang-2", "several modules: the waiting caller, another thread, on mock-hang");
    check_use(g, "mock-a-1", "several modules: another caller on mock-a");
    t_mock_control(&ma, MOCK_QUEUE_EVENT, 5);
    double t0 = t_now();
    if (t_ok(t_waiter_returns(&w, 5.0), "several modules: mock-a's event ends the wait")) {
        t_rv(w.rv, CKR_OK, "several modules: CKR_OK");
        t_ul(w.slot, a5, "several modules: the event is mock-a-5's");
        t_ok(w.returned_at - t0 < 1.0, "several modules: within a poll period or so (%.3f s)", w.returned_at - t0);
    }
    t_waiter_start(&w, f);
    usleep(200 * 1000);
    t0 = t_now();
    t_rv(f->C_Finalize(NULL), CKR_OK, "several modules: C_Finalize of the waiting caller");
    if (t_ok(t_waiter_returns(&w, 5.0), "several modules: C_Finalize ends the caller's wait")) {
        t_rv(w.rv, CKR_CRYPTOKI_NOT_INITIALIZED, "several modules: ... with CKR_CRYPTOKI_NOT_INITIALIZED");
        t_ok(w.returned_at - t0 < 1.0, "several modules: ... within a poll period or so (%.3f s)",
             w.returned_at - t0);
    }
    check_use(g, "mock-a-1", "several modules: the other caller afterwards");
    t_rv(g->C_Finalize(NULL), CKR_OK, "several modules: the other caller's C_Finalize");
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    if (!t_mock_open(&mh, "mock-hang") || !t_mock_open(&ma, "mock-a"))
        return t_done();
    t_scenario("threads stuck in C_WaitForSlotEvent", stuck_waiters, NULL);
    t_scenario("threads stuck in C_WaitForSlotEvent, traced", stuck_waiters, "traced");
    t_scenario("the module answers late with an event", late_event, NULL);
    setenv("P11TEST_TIMEOUT", "30", 1);
    t_scenario("a thread stuck forever", stuck_forever, NULL);
    t_scenario("a thread stuck forever, traced", stuck_forever, "traced");
    unsetenv("P11TEST_TIMEOUT");
    t_scenario("several modules, one hanging", several_modules, NULL);
    return t_done();
}
