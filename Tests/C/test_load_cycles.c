/* test_load_cycles.c: 1,000 cycles of dlopen, C_GetFunctionList, C_Initialize, calls,
 * C_Finalize, dlclose neither crash nor grow memory without bound. Some cycles trace to a
 * file; some finalise while a thread of the same caller is blocked in C_WaitForSlotEvent; the
 * second half runs while another caller (its own dlopen handle) has threads making calls and
 * one blocked in C_WaitForSlotEvent throughout. Memory is measured after a warm-up and at the
 * end: resident set (/proc/self/statm), heap in use (mallinfo2) and open descriptors. The bounds
 * are ones a real leak would cross: 1 KB per cycle is 1 MB over the run, and one descriptor
 * per cycle is 1,000. (libp11proxy.so is linked -z nodelete: dlclose leaves it loaded, so a
 * cycle reuses the same copy and its state, which is the point.)
 * Under a sanitizer its allocator replaces malloc and keeps freed memory in quarantine, so the
 * memory bounds are reported but not checked there; LeakSanitizer checks leaks instead. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "p11test.h"

#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || __has_feature(address_sanitizer) || \
    __has_feature(thread_sanitizer)
#define UNDER_SANITIZER 1
#else
#define UNDER_SANITIZER 0
#endif

#define WARMUP 200 /* past the 128-caller pool, whose tables are made once and kept */
#define CYCLES 1000
#define RSS_BOUND_KB 1024  /* 1 KB per cycle */
#define HEAP_BOUND_KB 512  /* 0.5 KB per cycle */
#define FD_BOUND 8

static struct t_mock ma;
static char *trace_path;
static int stop; /* atomic */

static long rss_kb(void)
{
    long pages = 0, resident = 0;
    FILE *in = fopen("/proc/self/statm", "r");
    if (in) {
        if (fscanf(in, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(in);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static long heap_kb(void)
{
    struct mallinfo2 mi = mallinfo2();
    return (long)((mi.uordblks + mi.hblkhd) / 1024);
}

static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    while (readdir(d))
        n++;
    closedir(d);
    return n - 3; /* ".", "..", and the directory itself */
}

struct waiter {
    CK_FUNCTION_LIST_PTR f;
    pthread_t thread;
    CK_RV rv;
};

static void *wait_for_event(void *arg)
{
    struct waiter *w = arg;
    CK_SLOT_ID slot;
    w->rv = w->f->C_WaitForSlotEvent(0, &slot, NULL);
    return NULL;
}

/* One cycle. `waiting`: a thread of this caller is in a blocking C_WaitForSlotEvent when it
 * finalises; `traced`: log-calls on, to a file. Returns NULL or what went wrong. */
static const char *cycle(int waiting, int traced)
{
    static char err[200];
    if (traced) {
        setenv("P11PROXY_LOG_CALLS", "yes", 1);
        setenv("P11PROXY_LOG_FILE", trace_path, 1);
    }
    void *dl = dlopen(t_proxy_path, RTLD_NOW | RTLD_LOCAL);
    CK_C_GetFunctionList gfl = dl ? (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList") : NULL;
    CK_FUNCTION_LIST_PTR f = NULL;
    CK_RV rv;
    const char *step = "dlopen";
    if (!gfl)
        goto fail_early;
    step = "C_GetFunctionList";
    if ((rv = gfl(&f)) != CKR_OK)
        goto fail;
    step = "C_Initialize";
    if ((rv = f->C_Initialize(NULL)) != CKR_OK)
        goto fail;
    CK_SLOT_ID slot = t_slot_by_label(f, "mock-a-1");
    CK_SESSION_HANDLE h, left_open;
    unsigned char md[MOCK_DIGEST_LEN];
    step = "C_OpenSession";
    if ((rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &h)) != CKR_OK)
        goto fail;
    step = "digest";
    if ((rv = t_digest(f, h, "cycle", 5, md)) != CKR_OK)
        goto fail;
    step = "C_CloseSession";
    if ((rv = f->C_CloseSession(h)) != CKR_OK)
        goto fail;
    step = "a session left for C_Finalize";
    if ((rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &left_open)) != CKR_OK)
        goto fail;
    struct waiter w = {f, 0, CKR_OK};
    if (waiting) {
        pthread_create(&w.thread, NULL, wait_for_event, &w);
        usleep(20 * 1000);
    }
    step = "C_Finalize";
    if ((rv = f->C_Finalize(NULL)) != CKR_OK)
        goto fail;
    if (waiting) {
        pthread_join(w.thread, NULL);
        step = "the waiter's C_WaitForSlotEvent after C_Finalize";
        if ((rv = w.rv) != CKR_CRYPTOKI_NOT_INITIALIZED)
            goto fail;
    }
    dlclose(dl);
    if (traced) {
        unsetenv("P11PROXY_LOG_CALLS");
        unsetenv("P11PROXY_LOG_FILE");
    }
    return NULL;
fail:
    snprintf(err, sizeof err, "%s: %s", step, t_rv_name(rv));
    return err;
fail_early:
    snprintf(err, sizeof err, "%s: %s", step, dlerror());
    return err;
}

/* `n` cycles, every 25th finalising under a blocked C_WaitForSlotEvent, every 5th traced; the
 * check says how many failed and the first failure. */
static void cycles(int n, const char *what)
{
    int failures = 0;
    const char *first = NULL;
    for (int i = 0; i < n; i++) {
        const char *e = cycle(i % 25 == 0, i % 5 == 0);
        if (e && !failures++)
            first = e;
    }
    t_ok(failures == 0, "%d cycles %s (%d failed%s%s)", n, what, failures, first ? ", first: " : "",
         first ? first : "");
}

/* The other caller's threads during the second half. */
struct busy {
    CK_FUNCTION_LIST_PTR f;
    pthread_t thread;
    unsigned long rounds, failures;
};

static void *busy_calls(void *arg)
{
    struct busy *b = arg;
    CK_SLOT_ID slot = t_slot_by_label(b->f, "mock-b-1");
    while (!__atomic_load_n(&stop, __ATOMIC_ACQUIRE)) {
        CK_SESSION_HANDLE h;
        unsigned char md[MOCK_DIGEST_LEN];
        if (b->f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &h) != CKR_OK ||
            t_digest(b->f, h, "busy", 4, md) != CKR_OK || b->f->C_CloseSession(h) != CKR_OK)
            b->failures++;
        b->rounds++;
        usleep(200);
    }
    return NULL;
}

/* Another caller (its own dlopen handle): two threads making calls, one blocked. */
struct other {
    void *dl;
    CK_FUNCTION_LIST_PTR f;
    struct busy busy[2];
    struct waiter blocked;
};

static int start_other(struct other *o)
{
    memset(o, 0, sizeof *o);
    __atomic_store_n(&stop, 0, __ATOMIC_RELEASE);
    o->dl = dlopen(t_proxy_path, RTLD_NOW | RTLD_LOCAL);
    CK_C_GetFunctionList gfl = o->dl ? (CK_C_GetFunctionList)dlsym(o->dl, "C_GetFunctionList") : NULL;
    if (!gfl || gfl(&o->f) != CKR_OK || o->f->C_Initialize(NULL) != CKR_OK)
        return t_fail("other caller: C_Initialize");
    for (int i = 0; i < 2; i++) {
        o->busy[i].f = o->f;
        pthread_create(&o->busy[i].thread, NULL, busy_calls, &o->busy[i]);
    }
    o->blocked.f = o->f;
    pthread_create(&o->blocked.thread, NULL, wait_for_event, &o->blocked);
    return 1;
}

/* Stops the threads and finalises the caller; `what` names the checks (NULL: no checks). */
static void stop_other(struct other *o, const char *what)
{
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++) {
        pthread_join(o->busy[i].thread, NULL);
        if (what)
            t_ok(o->busy[i].failures == 0 && o->busy[i].rounds > 0, "%s: other caller's thread %d: %lu rounds, %lu "
                 "failures", what, i, o->busy[i].rounds, o->busy[i].failures);
    }
    CK_RV rv = o->f->C_Finalize(NULL);
    pthread_join(o->blocked.thread, NULL);
    if (what) {
        t_rv(rv, CKR_OK, "%s: other caller: C_Finalize", what);
        t_rv(o->blocked.rv, CKR_CRYPTOKI_NOT_INITIALIZED, "%s: other caller's blocked thread ends with its C_Finalize",
             what);
    }
    dlclose(o->dl);
}

static void run(void *arg)
{
    (void)arg;
    char *dir = t_config_new("cycles");
    t_config_module(dir, "mock-a", "module: %s\npriority: 1\n", ma.path);
    char *b = t_mock_path("mock-b");
    t_config_module(dir, "mock-b", "module: %s\n", b);
    free(b);
    t_config_use(dir);
    trace_path = t_temp_path("cycles-trace.log");

    /* Warm-up: both kinds of cycles, so the caller pool, the threads' stacks and malloc arenas
     * exist before the first measurement. */
    struct other other;
    cycles(WARMUP / 2, "of warm-up alone");
    if (!start_other(&other))
        return;
    cycles(WARMUP / 2, "of warm-up beside another caller's threads");
    stop_other(&other, NULL);
    long rss0 = rss_kb(), heap0 = heap_kb();
    int fds0 = open_fds();
    double t0 = (double)clock() / CLOCKS_PER_SEC;
    struct timespec w0, w1;
    clock_gettime(CLOCK_MONOTONIC, &w0);

    cycles(CYCLES / 2, "alone (every 25th finalising under a blocked C_WaitForSlotEvent, every 5th traced)");
    long rss_half = rss_kb(), heap_half = heap_kb();

    /* Another caller, with threads making calls and one blocked, for the second half. */
    if (!start_other(&other))
        return;

    cycles(CYCLES / 2, "while another caller's threads make calls and wait");
    stop_other(&other, "second half");

    clock_gettime(CLOCK_MONOTONIC, &w1);
    double cpu = (double)clock() / CLOCKS_PER_SEC - t0;
    double wall = (double)(w1.tv_sec - w0.tv_sec) + (w1.tv_nsec - w0.tv_nsec) / 1e9;
    long rss1 = rss_kb(), heap1 = heap_kb();
    int fds1 = open_fds();
    struct mock_stats s = t_mock_stats(&ma);
    t_ok(!s.initialized && s.open_sessions == 0 && s.initialize_ok == s.finalize_ok,
         "mock-a balanced after every cycle (initialised %lu, finalised %lu, %lu sessions open)", s.initialize_ok,
         s.finalize_ok, s.open_sessions);

    t_diag("%d cycles in %.2f s wall, %.2f s CPU", CYCLES, wall, cpu);
    t_diag("resident set: %ld KB after warm-up, %ld KB after %d cycles, %ld KB after %d (growth %+ld KB)", rss0,
           rss_half, CYCLES / 2, rss1, CYCLES, rss1 - rss0);
    t_diag("heap in use: %ld KB after warm-up, %ld KB after %d cycles, %ld KB after %d (growth %+ld KB)", heap0,
           heap_half, CYCLES / 2, heap1, CYCLES, heap1 - heap0);
    t_diag("open descriptors: %d after warm-up, %d at the end", fds0, fds1);
    t_ok(fds1 - fds0 <= FD_BOUND, "open descriptors bounded (%d -> %d, bound +%d)", fds0, fds1, FD_BOUND);
    if (UNDER_SANITIZER) {
        t_diag("memory bounds not checked under a sanitizer (its allocator quarantines freed memory); "
               "LeakSanitizer reports leaks at exit");
    } else {
        t_ok(rss1 - rss0 <= RSS_BOUND_KB, "resident set growth over %d cycles %+ld KB, bound %d KB", CYCLES,
             rss1 - rss0, RSS_BOUND_KB);
        t_ok(heap1 - heap0 <= HEAP_BOUND_KB, "heap growth over %d cycles %+ld KB, bound %d KB", CYCLES, heap1 - heap0,
             HEAP_BOUND_KB);
    }
    /* Exit normally (not _exit) so LeakSanitizer, in a sanitizer build, checks this process. */
    fflush(stdout);
    exit(0);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    if (!t_mock_open(&ma, "mock-a"))
        return t_done();
    setenv("P11TEST_TIMEOUT", "600", 1);
    t_scenario("1,000 load cycles", run, NULL);
    return t_done();
}
