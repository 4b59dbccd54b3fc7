/* test_fork_calls.c: fork while other threads are inside p11proxy must deadlock
 * neither the parent's fork nor the child. Worker threads loop on calls (some on a module
 * made slow, so they sit inside the module; one in a blocking C_WaitForSlotEvent, which polls
 * inside p11proxy; one cycling C_Initialize/C_Finalize of its own caller and of a `managed: no`
 * slow module, so p11proxy's lifecycle lock is held across module calls) while the main
 * thread forks repeatedly. Each child initialises p11proxy afresh, makes calls and _exits;
 * the parent waits for it with a timeout (a hung child is killed and counted as a failure).
 * With tracing off and on (P11PROXY_LOG_CALLS / P11PROXY_LOG_FILE).
 *
 * The mocks are not dlopened before p11proxy loads them: a module's pthread_atfork handlers
 * are then registered after p11proxy's, so they run first in the prepare phase, the order
 * that deadlocks a proxy holding its lock across module calls. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "p11test.h"

/* ThreadSanitizer refuses by default to start a thread in the child of a multi-threaded fork;
 * the traced children start p11proxy's trace flusher thread. */
T_TSAN_THREADS_AFTER_FORK

#define FORKS 40
#define CHILD_TIMEOUT_S 10.0
#define SLOW_US 2000 /* mock-c: every call sleeps this long inside the module */

static struct t_proxy px;
static int stop; /* atomic */

static int stopping(void)
{
    return __atomic_load_n(&stop, __ATOMIC_ACQUIRE);
}

struct worker {
    const char *label; /* token to work on */
    CK_FUNCTION_LIST_PTR f;
    pthread_t thread;
    unsigned long rounds, failures;
    char first[200];
};

static void failed(struct worker *w, const char *step, CK_RV rv)
{
    if (!w->failures++)
        snprintf(w->first, sizeof w->first, "%s: %s", step, t_rv_name(rv));
}

/* Ordinary calls: a session, a digest, the slot list, a non-blocking event query. */
static void *calls_worker(void *arg)
{
    struct worker *w = arg;
    CK_SLOT_ID slot = t_slot_by_label(w->f, w->label);
    while (!stopping()) {
        CK_SESSION_HANDLE h;
        unsigned char md[MOCK_DIGEST_LEN];
        CK_ULONG n;
        CK_SLOT_ID event;
        CK_RV rv = w->f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &h);
        if (rv != CKR_OK) {
            failed(w, "C_OpenSession", rv);
            continue;
        }
        if ((rv = t_digest(w->f, h, "fork", 4, md)) != CKR_OK)
            failed(w, "digest", rv);
        if ((rv = w->f->C_CloseSession(h)) != CKR_OK)
            failed(w, "C_CloseSession", rv);
        if ((rv = w->f->C_GetSlotList(CK_FALSE, NULL, &n)) != CKR_OK)
            failed(w, "C_GetSlotList", rv);
        if ((rv = w->f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &event, NULL)) != CKR_NO_EVENT)
            failed(w, "C_WaitForSlotEvent(CKF_DONT_BLOCK)", rv);
        w->rounds++;
    }
    return NULL;
}

/* A blocking C_WaitForSlotEvent over several modules: p11proxy polls, sleeping inside itself.
 * It ends with the caller's C_Finalize (CKR_CRYPTOKI_NOT_INITIALIZED). */
static void *waiting_worker(void *arg)
{
    struct worker *w = arg;
    CK_SLOT_ID event;
    CK_RV rv;
    while ((rv = w->f->C_WaitForSlotEvent(0, &event, NULL)) == CKR_OK)
        w->rounds++;
    if (rv != CKR_CRYPTOKI_NOT_INITIALIZED)
        failed(w, "blocking C_WaitForSlotEvent", rv);
    return NULL;
}

/* New callers' whole lifecycle, again and again: p11proxy's lifecycle and pool locks, and
 * mock-b (`managed: no`, slow) initialised and finalised by every one of them. */
static void *lifecycle_worker(void *arg)
{
    struct worker *w = arg;
    while (!stopping()) {
        CK_FUNCTION_LIST_PTR f = NULL;
        CK_RV rv = px.get_function_list(&f);
        if (rv != CKR_OK) {
            failed(w, "C_GetFunctionList", rv);
            continue;
        }
        if ((rv = f->C_Initialize(NULL)) != CKR_OK) {
            failed(w, "C_Initialize", rv);
            continue;
        }
        CK_ULONG n;
        if ((rv = f->C_GetSlotList(CK_FALSE, NULL, &n)) != CKR_OK)
            failed(w, "C_GetSlotList", rv);
        if ((rv = f->C_Finalize(NULL)) != CKR_OK)
            failed(w, "C_Finalize", rv);
        w->rounds++;
    }
    return NULL;
}

/* The child: every caller starts uninitialised; a new and an inherited caller both work after
 * their own C_Initialize. Exit status: the number of failed steps. */
static int child_main(CK_FUNCTION_LIST_PTR inherited)
{
    int failures = 0;
    CK_ULONG n;
    if (inherited->C_GetSlotList(CK_FALSE, NULL, &n) != CKR_CRYPTOKI_NOT_INITIALIZED)
        failures++;
    CK_FUNCTION_LIST_PTR f = NULL;
    if (px.get_function_list(&f) != CKR_OK || f->C_Initialize(NULL) != CKR_OK)
        return 100;
    const char *labels[] = {"mock-a-1", "mock-c-7"};
    for (int i = 0; i < 2; i++) {
        CK_SLOT_ID slot = t_slot_by_label(f, labels[i]);
        CK_SESSION_HANDLE h;
        unsigned char md[MOCK_DIGEST_LEN];
        if (slot == T_NO_SLOT || f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &h) != CKR_OK) {
            failures++;
            continue;
        }
        failures += t_digest(f, h, "child", 5, md) != CKR_OK;
        failures += f->C_CloseSession(h) != CKR_OK;
    }
    failures += inherited->C_Initialize(NULL) != CKR_OK;
    failures += inherited->C_GetSlotList(CK_FALSE, NULL, &n) != CKR_OK;
    failures += inherited->C_Finalize(NULL) != CKR_OK;
    failures += f->C_Finalize(NULL) != CKR_OK;
    return failures;
}

/* Waits for the child up to the timeout; a child still running then is killed. */
static int reap(pid_t pid, int *status)
{
    double end = t_now() + CHILD_TIMEOUT_S;
    for (;;) {
        pid_t got = waitpid(pid, status, WNOHANG);
        if (got == pid)
            return 1;
        if (got < 0 && errno != EINTR)
            return 0;
        if (t_now() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, status, 0);
            return 0;
        }
        usleep(1000);
    }
}

static void fork_while_busy(void *arg)
{
    const char *trace = arg;
    char *dir = t_config_new(trace ? "fork-traced" : "fork");
    char *a = t_mock_path("mock-a"), *b = t_mock_path("mock-b"), *c = t_mock_path("mock-c");
    t_config_module(dir, "mock-a", "module: %s\npriority: 3\n", a);
    t_config_module(dir, "mock-b", "module: %s\npriority: 2\nmanaged: no\n", b);
    t_config_module(dir, "mock-c", "module: %s\npriority: 1\n", c);
    t_config_use(dir);
    char *trace_path = NULL;
    if (trace) {
        trace_path = t_temp_path(trace);
        setenv("P11PROXY_LOG_CALLS", "yes", 1);
        setenv("P11PROXY_LOG_FILE", trace_path, 1);
    }
    alarm(120); /* a deadlocked fork in this process ends the scenario as a failure */
    if (!t_proxy_open(&px))
        return;

    enum { N_CALLERS = 3 };
    struct worker workers[N_CALLERS + 2];
    memset(workers, 0, sizeof workers);
    const char *labels[N_CALLERS] = {"mock-a-1", "mock-c-7", "mock-c-7"};
    for (int i = 0; i < N_CALLERS + 1; i++) {
        workers[i].label = i < N_CALLERS ? labels[i] : "";
        workers[i].f = t_caller(&px);
        if (!workers[i].f || !t_rv(workers[i].f->C_Initialize(NULL), CKR_OK, "worker caller %d: C_Initialize", i))
            return;
    }
    /* Loaded by p11proxy now; this dlopen only finds the same instance. */
    struct t_mock mb, mc;
    if (!t_mock_open(&mb, "mock-b") || !t_mock_open(&mc, "mock-c"))
        return;
    t_mock_control(&mb, MOCK_SET_DELAY, SLOW_US);
    t_mock_control(&mc, MOCK_SET_DELAY, SLOW_US);

    for (int i = 0; i < N_CALLERS; i++)
        pthread_create(&workers[i].thread, NULL, calls_worker, &workers[i]);
    pthread_create(&workers[N_CALLERS].thread, NULL, waiting_worker, &workers[N_CALLERS]);
    pthread_create(&workers[N_CALLERS + 1].thread, NULL, lifecycle_worker, &workers[N_CALLERS + 1]);
    usleep(50 * 1000);

    int forked = 0, clean = 0, hung = 0, failing = 0, worst_status = 0;
    double fork_max = 0, child_max = 0;
    for (int i = 0; i < FORKS; i++) {
        usleep(1000 + (unsigned)(i * 7919) % 5000);
        fflush(stdout);
        double t0 = t_now();
        pid_t pid = fork();
        if (pid < 0) {
            t_fail("fork %d: %s", i, strerror(errno));
            break;
        }
        if (pid == 0) {
            alarm((unsigned)CHILD_TIMEOUT_S + 5);
            _exit(child_main(workers[0].f));
        }
        double forked_at = t_now();
        if (forked_at - t0 > fork_max)
            fork_max = forked_at - t0;
        forked++;
        int status = 0;
        if (!reap(pid, &status)) {
            hung++;
            continue;
        }
        if (t_now() - forked_at > child_max)
            child_max = t_now() - forked_at;
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
            clean++;
        } else {
            failing++;
            worst_status = status;
        }
    }
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < N_CALLERS; i++)
        pthread_join(workers[i].thread, NULL);
    pthread_join(workers[N_CALLERS + 1].thread, NULL);
    t_rv(workers[N_CALLERS].f->C_Finalize(NULL), CKR_OK, "the waiting caller's C_Finalize");
    pthread_join(workers[N_CALLERS].thread, NULL);
    t_mock_control(&mb, MOCK_SET_DELAY, 0);
    t_mock_control(&mc, MOCK_SET_DELAY, 0);

    const char *mode = trace ? "traced" : "untraced";
    t_ul(forked, FORKS, "%s: %d forks with threads inside p11proxy and the modules (slowest fork %.3f s)", mode,
         FORKS, fork_max);
    t_ul(hung, 0, "%s: no child hung (each killed after %.0f s)", mode, CHILD_TIMEOUT_S);
    t_ok(failing == 0, "%s: every child initialised p11proxy and made its calls (%d of %d clean, slowest %.3f s%s)",
         mode, clean, forked, child_max, failing ? "; a failing child's status is in the diagnostics" : "");
    if (failing)
        t_diag("last failing child: status 0x%x (exit status = failed steps; 100 = no C_Initialize)", worst_status);
    const char *names[] = {"calls on mock-a", "calls on slow mock-c", "calls on slow mock-c",
                           "blocking C_WaitForSlotEvent", "caller lifecycles with managed: no mock-b"};
    for (int i = 0; i < N_CALLERS + 2; i++)
        t_ok(workers[i].failures == 0 && (i == N_CALLERS || workers[i].rounds > 0),
             "%s: parent thread (%s): %lu rounds, %lu failures%s%s", mode, names[i], workers[i].rounds,
             workers[i].failures, workers[i].failures ? ", first: " : "", workers[i].first);
    for (int i = 0; i < N_CALLERS; i++)
        t_rv(workers[i].f->C_Finalize(NULL), CKR_OK, "%s: worker caller %d: C_Finalize", mode, i);
    if (trace_path) {
        FILE *in = fopen(trace_path, "r");
        char line[4096];
        int records = 0;
        while (in && fgets(line, sizeof line, in))
            records += strstr(line, "C_Digest = CKR_OK") != NULL;
        if (in)
            fclose(in);
        t_ok(records > 0, "%s: the trace file has the calls (%d C_Digest records)", mode, records);
    }
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_scenario("fork while threads are inside calls", fork_while_busy, NULL);
    t_scenario("fork while threads are inside calls, traced", fork_while_busy, "fork-trace.log");
    return t_done();
}
