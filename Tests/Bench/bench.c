/* bench.c: times PKCS#11 calls through any module loaded the way a C application loads
 * one (dlopen, C_GetInterface or C_GetFunctionList, C_Initialize), for 1 and N threads.
 * It prints numbers; it checks nothing (scripts/bench.sh compares targets). Meant for
 * build/mock/libmock-fast.so, directly or behind a proxy: every call returns at once, so
 * what is measured is the path to the module and back.
 *
 *   bench MODULE [--threads 1,2] [--iterations N] [--reps 5] [--time-ms 200]
 *         [--calls get_info,digest,...] [--truncate FILE] [--baseline MODULE2] [--json]
 *         [--thread-memory] [--slot-per-thread]
 *
 * Output, one record a line (key=value, or one JSON object a line with --json):
 *   module  path, how the list was obtained, its version
 *   slots   count, first slot, its token label (a caller checks which module answered)
 *   rss     VmRSS before dlopen and after dlopen + list + C_Initialize + one session per thread
 *   load    ms for dlopen, for the list, for C_Initialize
 *   result  call, threads, median ns per call (aggregate: wall time from the first thread's
 *           start to the last one's end / iterations of all threads), calls per second,
 *           min/max over the repetitions, iterations (all threads), per thread, errors,
 *           cpu_share (median over the repetitions of the threads' CPU time / (threads x wall
 *           time): below 1 when threads waited or the machine ran something else) and its min
 * --iterations (or the calibrated count) is shared out between the threads.
 * Under valgrind --tool=callgrind --collect-atstart=no only the timed loops are collected
 * (client requests around them), so Ir / (reps x iterations) is the cost of one iteration.
 * --calls none: load, slots and rss only (scripts/bench.sh times loading with it).
 * --slot-per-thread: thread i opens its session on the i-th slot with an initialised token
 *   (modulo their number), e.g. one remote module per thread, each its own connection (bench-remote.sh).
 * --thread-memory: after the timed loops, what threads cost while they live and after they
 *   exit: as many threads as the largest --threads each open and close 64 sessions and make
 *   64 C_GetSessionInfo calls, then wait while Private_Dirty is read; one record
 *   thread_memory threads=N alive_kb=... exited_kb=... (growth over the reading before they
 *   started). The same run on the module directly is the baseline (thread stacks, libc).
 * --baseline MODULE2: MODULE2 (a copy of the module behind a proxy, under its own name so it
 *   is a separate instance) is loaded too, and each repetition times MODULE's loop and
 *   MODULE2's back to back, in alternating order. The result record then also has
 *   baseline_ns (median of MODULE2's) and overhead_ns: the median of the per-repetition
 *   differences. This VM's speed drifts by a third over seconds (another guest on the core's
 *   sibling), which separate processes measured seconds apart take for overhead; pairs
 *   measured milliseconds apart cancel it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "p11proxy_pkcs11.h"

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_TOGGLE_COLLECT
#endif

#define MAX_THREADS 64
#define MAX_REPS 101

/* ==== Options and output ============================================================ */

static struct {
    const char *module;
    int threads[8];
    int n_threads;
    long iterations; /* 0: calibrate to time_ms */
    int reps;
    long time_ms;
    const char *calls; /* comma-separated keys, NULL: all */
    const char *truncate_path;
    const char *baseline;
    int json;
    int thread_memory;
    int slot_per_thread; /* thread i opens its session on slot i mod the slots with a token */
} opt = {.reps = 5, .time_ms = 200};

/* One output record: "kind k=v k=v" or {"kind":"...","k":v,...}. Values given as
 * strings are quoted in JSON; numbers are written as given. */
struct record {
    char buf[2048];
    size_t len;
};

static void rec_begin(struct record *r, const char *kind)
{
    r->len = (size_t)(opt.json ? snprintf(r->buf, sizeof r->buf, "{\"kind\":\"%s\"", kind)
                               : snprintf(r->buf, sizeof r->buf, "%s", kind));
}

static void rec_add(struct record *r, const char *key, int quote, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void rec_add(struct record *r, const char *key, int quote, const char *fmt, ...)
{
    char value[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(value, sizeof value, fmt, ap);
    va_end(ap);
    if (r->len >= sizeof r->buf)
        return;
    size_t room = sizeof r->buf - r->len;
    int n;
    if (opt.json) {
        /* Values are ours or token labels: escape quotes and backslashes only. */
        char esc[1024];
        size_t j = 0;
        for (size_t i = 0; value[i] && j + 2 < sizeof esc; i++) {
            if (value[i] == '"' || value[i] == '\\')
                esc[j++] = '\\';
            esc[j++] = value[i];
        }
        esc[j] = 0;
        n = quote ? snprintf(r->buf + r->len, room, ",\"%s\":\"%s\"", key, esc)
                  : snprintf(r->buf + r->len, room, ",\"%s\":%s", key, esc);
    } else {
        int needs_quotes = quote && (strchr(value, ' ') || !value[0]);
        n = needs_quotes ? snprintf(r->buf + r->len, room, " %s=\"%s\"", key, value)
                         : snprintf(r->buf + r->len, room, " %s=%s", key, value);
    }
    r->len += n > 0 ? (size_t)n : 0;
}

static void rec_end(struct record *r)
{
    printf("%s%s\n", r->buf, opt.json ? "}" : "");
    fflush(stdout);
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static double clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double now_ns(void) { return clock_ns(CLOCK_MONOTONIC); }

/* CPU time the calling thread has run: less than the wall time when it waited (a lock, the
 * scheduler) or the hypervisor ran something else on its CPU (steal, which the kernel keeps
 * out of a task's run time). */
static double thread_cpu_ns(void) { return clock_ns(CLOCK_THREAD_CPUTIME_ID); }

/* One "KEY: N kB" line of a /proc file, or -1. */
static long proc_kb(const char *path, const char *key)
{
    FILE *f = fopen(path, "r");
    char line[256];
    size_t n = strlen(key);
    long kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, n) && line[n] == ':' && sscanf(line + n + 1, "%ld", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static long vm_rss_kb(void) { return proc_kb("/proc/self/status", "VmRSS"); }

/* Pages only this process can use (heap, stacks, written data): VmRSS also counts the
 * library's clean file pages, which the kernel maps 16 at a time around each touched one. */
static long private_dirty_kb(void) { return proc_kb("/proc/self/smaps_rollup", "Private_Dirty"); }

/* ==== The calls ===================================================================== */

/* What one thread works with: its own session. */
struct ctx {
    CK_FUNCTION_LIST_PTR f;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE session;
    CK_OBJECT_HANDLE ec_key; /* sign_ecdsa: found on first use */
};

/* Each loop is its own function so that a profile shows it by name and the compiler
 * keeps the call sequence as a C application writes it. Returns the number of calls
 * that did not answer CKR_OK. */
typedef unsigned long (*loop_fn)(struct ctx *c, long n);

static __attribute__((noinline)) unsigned long loop_get_info(struct ctx *c, long n)
{
    CK_INFO info;
    unsigned long bad = 0;
    for (long i = 0; i < n; i++)
        bad += c->f->C_GetInfo(&info) != CKR_OK;
    return bad;
}

static __attribute__((noinline)) unsigned long loop_get_session_info(struct ctx *c, long n)
{
    CK_SESSION_INFO info;
    unsigned long bad = 0;
    for (long i = 0; i < n; i++)
        bad += c->f->C_GetSessionInfo(c->session, &info) != CKR_OK;
    return bad;
}

static __attribute__((noinline)) unsigned long loop_get_attribute_value(struct ctx *c, long n)
{
    unsigned char label[64];
    CK_ATTRIBUTE attr = {CKA_LABEL, label, sizeof label};
    unsigned long bad = 0;
    for (long i = 0; i < n; i++) {
        attr.ulValueLen = sizeof label;
        bad += c->f->C_GetAttributeValue(c->session, 1, &attr, 1) != CKR_OK;
    }
    return bad;
}

static __attribute__((noinline)) unsigned long loop_find_objects(struct ctx *c, long n)
{
    CK_OBJECT_CLASS cls = CKO_DATA;
    CK_ATTRIBUTE tmpl = {CKA_CLASS, &cls, sizeof cls};
    CK_OBJECT_HANDLE found[16];
    CK_ULONG count;
    unsigned long bad = 0;
    for (long i = 0; i < n; i++) {
        bad += c->f->C_FindObjectsInit(c->session, &tmpl, 1) != CKR_OK;
        bad += c->f->C_FindObjects(c->session, found, 16, &count) != CKR_OK;
        bad += c->f->C_FindObjectsFinal(c->session) != CKR_OK;
    }
    return bad;
}

static __attribute__((noinline)) unsigned long loop_digest(struct ctx *c, long n)
{
    CK_MECHANISM mech = {CKM_SHA256, NULL, 0};
    unsigned char data[64] = {1, 2, 3}, out[64];
    CK_ULONG out_len;
    unsigned long bad = 0;
    for (long i = 0; i < n; i++) {
        out_len = sizeof out;
        bad += c->f->C_DigestInit(c->session, &mech) != CKR_OK;
        bad += c->f->C_Digest(c->session, data, sizeof data, out, &out_len) != CKR_OK;
    }
    return bad;
}

/* The token's first EC private key, after C_Login with $BENCH_PIN (default 1234): for a real
 * token (SoftHSM2, locally or behind p11-kit's RPC), not the mock. */
static CK_OBJECT_HANDLE find_ec_key(struct ctx *c)
{
    const char *pin = getenv("BENCH_PIN") ? getenv("BENCH_PIN") : "1234";
    CK_RV rv = c->f->C_Login(c->session, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin));
    if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
        return CK_INVALID_HANDLE;
    CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
    CK_KEY_TYPE type = CKK_EC;
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &type, sizeof type}};
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    CK_ULONG found = 0;
    if (c->f->C_FindObjectsInit(c->session, tmpl, 2) == CKR_OK) {
        c->f->C_FindObjects(c->session, &key, 1, &found);
        c->f->C_FindObjectsFinal(c->session);
    }
    return found ? key : CK_INVALID_HANDLE;
}

static __attribute__((noinline)) unsigned long loop_sign_ecdsa(struct ctx *c, long n)
{
    if (c->ec_key == CK_INVALID_HANDLE && (c->ec_key = find_ec_key(c)) == CK_INVALID_HANDLE)
        return (unsigned long)n;
    CK_MECHANISM mech = {CKM_ECDSA, NULL, 0};
    unsigned char hash[32] = {1, 2, 3}, sig[256];
    CK_ULONG sig_len;
    unsigned long bad = 0;
    for (long i = 0; i < n; i++) {
        sig_len = sizeof sig;
        bad += c->f->C_SignInit(c->session, &mech, c->ec_key) != CKR_OK;
        bad += c->f->C_Sign(c->session, hash, sizeof hash, sig, &sig_len) != CKR_OK;
    }
    return bad;
}

static __attribute__((noinline)) unsigned long loop_open_close(struct ctx *c, long n)
{
    CK_SESSION_HANDLE h;
    unsigned long bad = 0;
    for (long i = 0; i < n; i++) {
        CK_RV rv = c->f->C_OpenSession(c->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h);
        bad += rv != CKR_OK;
        if (rv == CKR_OK)
            bad += c->f->C_CloseSession(h) != CKR_OK;
    }
    return bad;
}

static const struct call {
    const char *key;   /* what --calls and the result lines use */
    const char *label; /* the PKCS#11 calls one iteration makes */
    loop_fn loop;
} calls[] = {
    {"get_info", "C_GetInfo", loop_get_info},
    {"get_session_info", "C_GetSessionInfo", loop_get_session_info},
    {"get_attribute_value", "C_GetAttributeValue (1 attr)", loop_get_attribute_value},
    {"find_objects", "C_FindObjectsInit + C_FindObjects + C_FindObjectsFinal", loop_find_objects},
    {"digest", "C_DigestInit + C_Digest", loop_digest},
    {"open_close", "C_OpenSession + C_CloseSession", loop_open_close},
    {"sign_ecdsa", "C_SignInit + C_Sign (ECDSA, P-256; a real token's first EC key)", loop_sign_ecdsa},
};
#define N_CALLS (sizeof calls / sizeof calls[0])

static int call_selected(const struct call *call)
{
    if (!opt.calls)
        return 1;
    size_t k = strlen(call->key);
    for (const char *p = opt.calls; *p;) {
        const char *end = strchrnul(p, ',');
        if ((size_t)(end - p) == k && !strncmp(p, call->key, k))
            return 1;
        p = *end ? end + 1 : end;
    }
    return 0;
}

/* ==== Timing ========================================================================= */

struct worker {
    pthread_t thread;
    struct ctx *ctx;
    loop_fn loop;
    long n;
    pthread_barrier_t *start;
    double t0, t1;
    double cpu_ns; /* the thread's own CPU time over its loop */
    unsigned long bad;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    pthread_barrier_wait(w->start);
    double c0 = thread_cpu_ns();
    w->t0 = now_ns();
    w->bad = w->loop(w->ctx, w->n);
    w->t1 = now_ns();
    w->cpu_ns = thread_cpu_ns() - c0;
    return NULL;
}

/* Wall time of `threads` threads each making n iterations, started together; *cpu_share:
 * the threads' CPU time / (threads x that wall time), 1 when every thread ran throughout.
 * The collect toggles are no-ops outside callgrind; callgrind keeps that state per thread,
 * so profile with one thread. */
static double run_once(const struct call *call, struct ctx *ctxs, int threads, long n, unsigned long *bad,
                       double *cpu_share)
{
    if (threads == 1) {
        double c0 = thread_cpu_ns();
        CALLGRIND_TOGGLE_COLLECT;
        double t0 = now_ns();
        *bad += call->loop(&ctxs[0], n);
        double t1 = now_ns();
        CALLGRIND_TOGGLE_COLLECT;
        double cpu = thread_cpu_ns() - c0;
        *cpu_share = t1 > t0 ? cpu / (t1 - t0) : 1;
        return t1 - t0;
    }
    struct worker w[MAX_THREADS];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, (unsigned)threads);
    for (int i = 0; i < threads; i++) {
        w[i] = (struct worker){.ctx = &ctxs[i], .loop = call->loop, .n = n, .start = &start};
        if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]))
            die("pthread_create failed");
    }
    double first = 0, last = 0, cpu = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(w[i].thread, NULL);
        *bad += w[i].bad;
        cpu += w[i].cpu_ns;
        if (i == 0 || w[i].t0 < first)
            first = w[i].t0;
        if (i == 0 || w[i].t1 > last)
            last = w[i].t1;
    }
    pthread_barrier_destroy(&start);
    *cpu_share = last > first ? cpu / ((double)threads * (last - first)) : 1;
    return last - first;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Iterations for about time_ms on one thread; doubles from 256 until a run takes 1/8 of it.
 * This also warms the path (lazy binding, first-use allocations). */
static long calibrate(const struct call *call, struct ctx *ctx)
{
    unsigned long bad = 0;
    double target = (double)opt.time_ms * 1e6;
    for (long n = 256;; n *= 2) {
        double t0 = now_ns();
        bad += call->loop(ctx, n);
        double dt = now_ns() - t0;
        if (bad)
            die("%s answered an error during warm-up", call->label);
        if (dt >= target / 8 || n >= (1L << 40)) {
            long want = (long)((double)n * target / (dt > 1 ? dt : 1));
            return want < 16 ? 16 : want;
        }
    }
}

static double median_of(double *values, int count)
{
    qsort(values, (size_t)count, sizeof values[0], cmp_double);
    return count % 2 ? values[count / 2] : (values[count / 2 - 1] + values[count / 2]) / 2;
}

/* base_ctxs/base_n: the baseline module's contexts and iterations, or NULL/0. */
static void measure(const struct call *call, struct ctx *ctxs, int threads, long n, struct ctx *base_ctxs, long base_n)
{
    double ns[MAX_REPS], base_ns[MAX_REPS], diff[MAX_REPS], share[MAX_REPS], base_share;
    unsigned long bad = 0, base_bad = 0;
    /* The same number of calls for every thread count, shared out: a target that does not
     * scale then costs 1/scaling times as long, not threads/scaling. */
    long per_thread = n / threads > 0 ? n / threads : 1;
    long total = per_thread * threads;
    long base_per_thread = base_n / threads > 0 ? base_n / threads : 1;
    long base_total = base_per_thread * threads;
    for (int r = 0; r < opt.reps; r++) {
        /* Keeps a trace file from filling the disk between repetitions (not timed). */
        if (opt.truncate_path && truncate(opt.truncate_path, 0) != 0 && errno != ENOENT)
            die("truncate %s: %s", opt.truncate_path, strerror(errno));
        if (base_ctxs && r % 2)
            base_ns[r] = run_once(call, base_ctxs, threads, base_per_thread, &base_bad, &base_share) / (double)base_total;
        ns[r] = run_once(call, ctxs, threads, per_thread, &bad, &share[r]) / (double)total;
        if (base_ctxs && !(r % 2))
            base_ns[r] = run_once(call, base_ctxs, threads, base_per_thread, &base_bad, &base_share) / (double)base_total;
        if (base_ctxs)
            diff[r] = ns[r] - base_ns[r];
    }
    double lowest = ns[0], highest = ns[0];
    for (int r = 1; r < opt.reps; r++) {
        lowest = ns[r] < lowest ? ns[r] : lowest;
        highest = ns[r] > highest ? ns[r] : highest;
    }
    double median = median_of(ns, opt.reps);

    struct record rec;
    rec_begin(&rec, "result");
    rec_add(&rec, "call", 1, "%s", call->key);
    rec_add(&rec, "threads", 0, "%d", threads);
    rec_add(&rec, "ns_per_call", 0, "%.3f", median);
    rec_add(&rec, "calls_per_s", 0, "%.0f", 1e9 / median);
    rec_add(&rec, "min_ns", 0, "%.3f", lowest);
    rec_add(&rec, "max_ns", 0, "%.3f", highest);
    rec_add(&rec, "iterations", 0, "%ld", total);
    rec_add(&rec, "per_thread", 0, "%ld", per_thread);
    rec_add(&rec, "reps", 0, "%d", opt.reps);
    rec_add(&rec, "errors", 0, "%lu", bad);
    /* Reps in which the threads did not run all the time are slower for a reason outside the
     * code measured (on this VM: both vCPUs taken away for tens of ms): this says how often. */
    double lowest_share = share[0];
    for (int r = 1; r < opt.reps; r++)
        lowest_share = share[r] < lowest_share ? share[r] : lowest_share;
    rec_add(&rec, "cpu_share", 0, "%.3f", median_of(share, opt.reps));
    rec_add(&rec, "cpu_share_min", 0, "%.3f", lowest_share);
    if (base_ctxs) {
        rec_add(&rec, "baseline_ns", 0, "%.3f", median_of(base_ns, opt.reps));
        rec_add(&rec, "overhead_ns", 0, "%.3f", median_of(diff, opt.reps));
        rec_add(&rec, "overhead_min_ns", 0, "%.3f", diff[0]);
        rec_add(&rec, "overhead_max_ns", 0, "%.3f", diff[opt.reps - 1]);
        rec_add(&rec, "baseline_errors", 0, "%lu", base_bad);
    }
    rec_end(&rec);
}

/* ==== Loading the module like an application ========================================= */

static void trim_copy(char *dst, const unsigned char *src, size_t n)
{
    while (n && src[n - 1] == ' ')
        n--;
    memcpy(dst, src, n);
    dst[n] = 0;
}

/* kind: "module" for MODULE (also prints its load times), "baseline" for --baseline. */
static CK_FUNCTION_LIST_PTR load_module(const char *path, const char *kind)
{
    double t0 = now_ns();
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl)
        die("dlopen %s: %s", path, dlerror());
    double t1 = now_ns();

    /* 3.0 applications ask C_GetInterface for the default "PKCS 11" interface. */
    CK_FUNCTION_LIST_PTR f = NULL;
    const char *how;
    CK_C_GetInterface get_interface = (CK_C_GetInterface)dlsym(dl, "C_GetInterface");
    CK_C_GetFunctionList get_function_list = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
    CK_INTERFACE_PTR iface = NULL;
    if (get_interface && get_interface((CK_UTF8CHAR_PTR) "PKCS 11", NULL, &iface, 0) == CKR_OK && iface) {
        f = iface->pFunctionList;
        how = "C_GetInterface";
    } else if (get_function_list) {
        CK_RV rv = get_function_list(&f);
        if (rv != CKR_OK)
            die("C_GetFunctionList: 0x%lx", (unsigned long)rv);
        how = "C_GetFunctionList";
    } else {
        die("%s exports neither C_GetInterface nor C_GetFunctionList", path);
    }
    double t2 = now_ns();

    CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
    CK_RV rv = f->C_Initialize(&args);
    if (rv != CKR_OK)
        die("C_Initialize: 0x%lx", (unsigned long)rv);
    double t3 = now_ns();

    struct record rec;
    rec_begin(&rec, kind);
    rec_add(&rec, "path", 1, "%s", path);
    rec_add(&rec, "via", 1, "%s", how);
    rec_add(&rec, "version", 1, "%d.%d", f->version.major, f->version.minor);
    rec_end(&rec);
    if (strcmp(kind, "module"))
        return f;

    rec_begin(&rec, "load");
    rec_add(&rec, "dlopen_ms", 0, "%.3f", (t1 - t0) / 1e6);
    rec_add(&rec, "list_ms", 0, "%.3f", (t2 - t1) / 1e6);
    rec_add(&rec, "initialize_ms", 0, "%.3f", (t3 - t2) / 1e6);
    rec_end(&rec);
    return f;
}

/* Prints a "slots" record for MODULE (print), none for the baseline. */
static CK_SLOT_ID first_slot(CK_FUNCTION_LIST_PTR f, int print)
{
    CK_ULONG n = 0;
    CK_RV rv = f->C_GetSlotList(CK_TRUE, NULL, &n);
    if (rv != CKR_OK || n == 0)
        die("C_GetSlotList: 0x%lx, %lu slots with a token", (unsigned long)rv, (unsigned long)n);
    CK_SLOT_ID *slots = calloc(n, sizeof *slots);
    if (!slots || f->C_GetSlotList(CK_TRUE, slots, &n) != CKR_OK)
        die("C_GetSlotList failed");
    CK_SLOT_ID slot = slots[0];
    free(slots);

    CK_TOKEN_INFO token;
    char label[33] = "", model[17] = "";
    if ((rv = f->C_GetTokenInfo(slot, &token)) != CKR_OK)
        die("C_GetTokenInfo: 0x%lx", (unsigned long)rv);
    trim_copy(label, token.label, sizeof token.label);
    trim_copy(model, token.model, sizeof token.model);
    if (!print)
        return slot;

    struct record rec;
    rec_begin(&rec, "slots");
    rec_add(&rec, "count", 0, "%lu", (unsigned long)n);
    rec_add(&rec, "first", 0, "%lu", (unsigned long)slot);
    rec_add(&rec, "label", 1, "%s", label);
    rec_add(&rec, "model", 1, "%s", model);
    rec_end(&rec);
    return slot;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench MODULE [--threads 1,2] [--iterations N] [--reps N] [--time-ms MS]\n"
                    "             [--calls KEY,...] [--truncate FILE] [--baseline MODULE2] [--json]\n"
                    "             [--thread-memory] [--slot-per-thread]\ncalls:");
    for (size_t i = 0; i < N_CALLS; i++)
        fprintf(stderr, " %s", calls[i].key);
    fputc('\n', stderr);
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    opt.threads[0] = 1;
    opt.threads[1] = 2;
    opt.n_threads = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--json")) {
            opt.json = 1;
            continue;
        }
        if (!strcmp(a, "--thread-memory")) {
            opt.thread_memory = 1;
            continue;
        }
        if (!strcmp(a, "--slot-per-thread")) {
            opt.slot_per_thread = 1;
            continue;
        }
        if (a[0] != '-') {
            if (opt.module)
                usage();
            opt.module = a;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (!strcmp(a, "--threads")) {
            opt.n_threads = 0;
            for (char *p = (char *)v; *p && opt.n_threads < 8;) {
                char *end;
                long t = strtol(p, &end, 10);
                if (end == p || t < 1 || t > MAX_THREADS)
                    usage();
                opt.threads[opt.n_threads++] = (int)t;
                p = *end == ',' ? end + 1 : end;
            }
        } else if (!strcmp(a, "--iterations")) {
            opt.iterations = atol(v);
        } else if (!strcmp(a, "--reps")) {
            opt.reps = atoi(v);
        } else if (!strcmp(a, "--time-ms")) {
            opt.time_ms = atol(v);
        } else if (!strcmp(a, "--calls")) {
            opt.calls = v;
        } else if (!strcmp(a, "--truncate")) {
            opt.truncate_path = v;
        } else if (!strcmp(a, "--baseline")) {
            opt.baseline = v;
        } else {
            usage();
        }
    }
    if (!opt.module || opt.reps < 1 || opt.reps > MAX_REPS || opt.time_ms < 1 || opt.iterations < 0)
        usage();
}

static void open_sessions(struct ctx *ctxs, int count, CK_FUNCTION_LIST_PTR f, CK_SLOT_ID slot)
{
    CK_SLOT_ID slots[MAX_THREADS];
    CK_ULONG n = MAX_THREADS, usable = 0;
    if (opt.slot_per_thread && f->C_GetSlotList(CK_TRUE, slots, &n) == CKR_OK) {
        /* Initialised tokens only: SoftHSM2 lists a blank one after its tokens. */
        for (CK_ULONG i = 0; i < n; i++) {
            CK_TOKEN_INFO token;
            if (f->C_GetTokenInfo(slots[i], &token) == CKR_OK && (token.flags & CKF_TOKEN_INITIALIZED))
                slots[usable++] = slots[i];
        }
    }
    n = usable;
    if (n == 0)
        slots[0] = slot, n = 1;
    for (int i = 0; i < count; i++) {
        ctxs[i] = (struct ctx){.f = f, .slot = slots[(CK_ULONG)i % n]};
        slot = ctxs[i].slot;
        CK_RV rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &ctxs[i].session);
        if (rv != CKR_OK)
            die("C_OpenSession: 0x%lx", (unsigned long)rv);
    }
}

/* --iterations, or the count calibrated to --time-ms. */
static long iterations_for(const struct call *call, struct ctx *ctx)
{
    long n = opt.iterations;
    if (n == 0)
        return calibrate(call, ctx);
    /* A fixed count (profiling): a short warm-up outside the collected loops. */
    unsigned long bad = call->loop(ctx, n < 1000 ? n : 1000);
    if (bad)
        die("%s answered an error during warm-up", call->label);
    return n;
}

/* ==== What threads cost ============================================================== */

struct resident {
    pthread_t thread;
    struct ctx *ctx;
    pthread_barrier_t *ready, *done;
    unsigned long bad;
};

static void *resident_main(void *arg)
{
    struct resident *r = arg;
    r->bad = loop_open_close(r->ctx, 64) + loop_get_session_info(r->ctx, 64);
    pthread_barrier_wait(r->ready);
    pthread_barrier_wait(r->done);
    return NULL;
}

/* Private_Dirty growth with `threads` threads alive that have each used the module, and after
 * they exited: per-thread caches a module keeps show in the first, leaks in the second. */
static void measure_thread_memory(struct ctx *ctxs, int threads)
{
    struct resident r[MAX_THREADS];
    pthread_barrier_t ready, done;
    pthread_barrier_init(&ready, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&done, NULL, (unsigned)threads + 1);
    long before = private_dirty_kb();
    for (int i = 0; i < threads; i++) {
        r[i] = (struct resident){.ctx = &ctxs[i], .ready = &ready, .done = &done};
        if (pthread_create(&r[i].thread, NULL, resident_main, &r[i]))
            die("pthread_create failed");
    }
    pthread_barrier_wait(&ready);
    long alive = private_dirty_kb();
    pthread_barrier_wait(&done);
    unsigned long bad = 0;
    for (int i = 0; i < threads; i++) {
        pthread_join(r[i].thread, NULL);
        bad += r[i].bad;
    }
    long exited = private_dirty_kb();
    pthread_barrier_destroy(&ready);
    pthread_barrier_destroy(&done);
    struct record rec;
    rec_begin(&rec, "thread_memory");
    rec_add(&rec, "threads", 0, "%d", threads);
    rec_add(&rec, "alive_kb", 0, "%ld", alive - before);
    rec_add(&rec, "exited_kb", 0, "%ld", exited - before);
    rec_add(&rec, "errors", 0, "%lu", bad);
    rec_end(&rec);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    int max_threads = 1;
    for (int i = 0; i < opt.n_threads; i++)
        if (opt.threads[i] > max_threads)
            max_threads = opt.threads[i];

    long rss_before = vm_rss_kb(), dirty_before = private_dirty_kb();
    CK_FUNCTION_LIST_PTR f = load_module(opt.module, "module");
    CK_SLOT_ID slot = first_slot(f, 1);

    struct ctx ctxs[MAX_THREADS];
    open_sessions(ctxs, max_threads, f, slot);
    long rss_after = vm_rss_kb(), dirty_after = private_dirty_kb();
    /* Loaded after the memory reading, which is MODULE's alone. */
    struct ctx base_ctxs[MAX_THREADS];
    CK_FUNCTION_LIST_PTR base_f = NULL;
    if (opt.baseline) {
        base_f = load_module(opt.baseline, "baseline");
        open_sessions(base_ctxs, max_threads, base_f, first_slot(base_f, 0));
    }
    struct record rec;
    rec_begin(&rec, "rss");
    rec_add(&rec, "before_kb", 0, "%ld", rss_before);
    rec_add(&rec, "after_kb", 0, "%ld", rss_after);
    rec_add(&rec, "delta_kb", 0, "%ld", rss_after - rss_before);
    rec_add(&rec, "dirty_delta_kb", 0, "%ld", dirty_after - dirty_before);
    rec_add(&rec, "sessions", 0, "%d", max_threads);
    rec_end(&rec);

    for (size_t c = 0; c < N_CALLS; c++) {
        if (!call_selected(&calls[c]))
            continue;
        long n = iterations_for(&calls[c], &ctxs[0]);
        long base_n = base_f ? iterations_for(&calls[c], &base_ctxs[0]) : 0;
        for (int t = 0; t < opt.n_threads; t++)
            measure(&calls[c], ctxs, opt.threads[t], n, base_f ? base_ctxs : NULL, base_n);
    }

    if (opt.thread_memory)
        measure_thread_memory(ctxs, max_threads);

    for (int i = 0; i < max_threads; i++)
        f->C_CloseSession(ctxs[i].session);
    if (base_f) {
        for (int i = 0; i < max_threads; i++)
            base_f->C_CloseSession(base_ctxs[i].session);
        base_f->C_Finalize(NULL);
    }
    CK_RV rv = f->C_Finalize(NULL);
    if (rv != CKR_OK)
        die("C_Finalize: 0x%lx", (unsigned long)rv);
    return 0;
}
