/* stress_managed.c: 8 threads x 6 callers (4 private to the thread, 2 shared
 * with neighbours) interleave C_Initialize, C_OpenSession, C_Digest/C_GetSessionInfo,
 * C_CloseSession, C_CloseAllSessions and C_Finalize for a fixed number of rounds
 * (P11TEST_STRESS_ROUNDS, default 2000 per thread and phase).
 * A private caller's state is known exactly, so every result must be the one expected
 * and its sessions must keep working; on a shared caller the races between threads make
 * CKR_CRYPTOKI_NOT_INITIALIZED / ALREADY_INITIALIZED / SESSION_HANDLE_INVALID legal too.
 * At the end every real module must have seen balanced, never-doubled initialisation. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "p11test.h"

#define THREADS 8
#define PRIVATE_PER_THREAD 4
#define SHARED 4
#define MAX_HELD 8

static struct t_mock ma, mc;
static struct t_proxy px;
static int rounds = 2000;

/* Proxy slot IDs, looked up once: the proxy's slot map is global, not per caller. */
static const char *slot_labels[] = {"mock-a-1", "mock-a-5", "mock-c-7"};
static const unsigned long slot_tags[] = {0xA, 0xA, 0xC};
static CK_SLOT_ID slot_ids[3];

static CK_FUNCTION_LIST_PTR shared_callers[SHARED];

struct held {
    CK_SESSION_HANDLE h;
    int slot;
};

struct use {
    CK_FUNCTION_LIST_PTR f;
    int shared;
    int initialized; /* exact for private callers */
    struct held held[MAX_HELD];
    int n_held;
};

struct worker {
    int id;
    unsigned seed;
    struct use use[PRIVATE_PER_THREAD + 2];
    int errors;
    char first_error[300];
    unsigned long ops;
};

static void bad(struct worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bad(struct worker *w, const char *fmt, ...)
{
    if (w->errors++ == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(w->first_error, sizeof w->first_error, fmt, ap);
        va_end(ap);
    }
}

static int legal(CK_RV rv, CK_RV a, CK_RV b, CK_RV c)
{
    return rv == a || rv == b || rv == c;
}

static void drop(struct use *u, int i)
{
    u->held[i] = u->held[--u->n_held];
}

static void op_initialize(struct worker *w, struct use *u)
{
    CK_RV rv = u->f->C_Initialize(NULL);
    if (u->shared) {
        if (!legal(rv, CKR_OK, CKR_CRYPTOKI_ALREADY_INITIALIZED, CKR_OK))
            bad(w, "shared C_Initialize: %s", t_rv_name(rv));
    } else {
        CK_RV want = u->initialized ? CKR_CRYPTOKI_ALREADY_INITIALIZED : CKR_OK;
        if (rv != want)
            bad(w, "private C_Initialize: %s, want %s", t_rv_name(rv), t_rv_name(want));
        u->initialized = 1;
    }
}

static void op_open(struct worker *w, struct use *u)
{
    if (u->n_held == MAX_HELD)
        return;
    int slot = rand_r(&w->seed) % 3;
    CK_SESSION_HANDLE h;
    CK_RV rv = u->f->C_OpenSession(slot_ids[slot], CKF_SERIAL_SESSION, NULL, NULL, &h);
    if (u->shared ? !legal(rv, CKR_OK, CKR_CRYPTOKI_NOT_INITIALIZED, CKR_OK)
                  : rv != (u->initialized ? CKR_OK : CKR_CRYPTOKI_NOT_INITIALIZED))
        bad(w, "%s C_OpenSession: %s", u->shared ? "shared" : "private", t_rv_name(rv));
    if (rv == CKR_OK)
        u->held[u->n_held++] = (struct held){h, slot};
}

static void op_use(struct worker *w, struct use *u)
{
    if (u->n_held == 0)
        return;
    int i = rand_r(&w->seed) % u->n_held;
    struct held *s = &u->held[i];
    CK_SESSION_INFO si;
    CK_RV rv = u->f->C_GetSessionInfo(s->h, &si);
    if (u->shared) {
        /* Another thread may have closed it (and the number may since name another session). */
        if (!legal(rv, CKR_OK, CKR_SESSION_HANDLE_INVALID, CKR_CRYPTOKI_NOT_INITIALIZED))
            bad(w, "shared C_GetSessionInfo: %s", t_rv_name(rv));
        else if (rv == CKR_OK && si.ulDeviceError != 0xA && si.ulDeviceError != 0xC)
            bad(w, "shared C_GetSessionInfo: unknown module tag 0x%lx", si.ulDeviceError);
        if (rv != CKR_OK)
            drop(u, i);
        return;
    }
    /* Nobody else can close a private caller's session: it must work, on its module. */
    if (rv != CKR_OK) {
        bad(w, "private C_GetSessionInfo: %s", t_rv_name(rv));
        drop(u, i);
        return;
    }
    if (si.slotID != slot_ids[s->slot] || si.ulDeviceError != slot_tags[s->slot])
        bad(w, "private session info: slot %lu tag 0x%lx, want slot %lu tag 0x%lx", si.slotID, si.ulDeviceError,
            slot_ids[s->slot], slot_tags[s->slot]);
    unsigned char data[16], got[MOCK_DIGEST_LEN], want[MOCK_DIGEST_LEN];
    for (size_t k = 0; k < sizeof data; k++)
        data[k] = (unsigned char)rand_r(&w->seed);
    mock_fake_digest(slot_tags[s->slot], data, sizeof data, want);
    rv = t_digest(u->f, s->h, data, sizeof data, got);
    if (rv != CKR_OK)
        bad(w, "private C_Digest: %s", t_rv_name(rv));
    else if (memcmp(got, want, sizeof got) != 0)
        bad(w, "private C_Digest: wrong module's digest");
}

static void op_close(struct worker *w, struct use *u)
{
    if (u->n_held == 0)
        return;
    int i = rand_r(&w->seed) % u->n_held;
    CK_RV rv = u->f->C_CloseSession(u->held[i].h);
    if (u->shared ? !legal(rv, CKR_OK, CKR_SESSION_HANDLE_INVALID, CKR_CRYPTOKI_NOT_INITIALIZED) : rv != CKR_OK)
        bad(w, "%s C_CloseSession: %s", u->shared ? "shared" : "private", t_rv_name(rv));
    drop(u, i);
}

static void op_close_all(struct worker *w, struct use *u)
{
    int slot = rand_r(&w->seed) % 3;
    CK_RV rv = u->f->C_CloseAllSessions(slot_ids[slot]);
    if (u->shared ? !legal(rv, CKR_OK, CKR_CRYPTOKI_NOT_INITIALIZED, CKR_OK)
                  : rv != (u->initialized ? CKR_OK : CKR_CRYPTOKI_NOT_INITIALIZED))
        bad(w, "%s C_CloseAllSessions: %s", u->shared ? "shared" : "private", t_rv_name(rv));
    for (int i = u->n_held - 1; i >= 0; i--)
        if (u->held[i].slot == slot)
            drop(u, i);
}

static void op_finalize(struct worker *w, struct use *u)
{
    CK_RV rv = u->f->C_Finalize(NULL);
    if (u->shared ? !legal(rv, CKR_OK, CKR_CRYPTOKI_NOT_INITIALIZED, CKR_OK)
                  : rv != (u->initialized ? CKR_OK : CKR_CRYPTOKI_NOT_INITIALIZED))
        bad(w, "%s C_Finalize: %s", u->shared ? "shared" : "private", t_rv_name(rv));
    u->initialized = 0;
    u->n_held = 0;
}

/* Phase 1 mixes all six callers; phase 2 uses only the two shared ones with more
 * C_Initialize/C_Finalize, so the real modules often drop to zero callers and the
 * first-initialise / last-finalise transitions race. Weights are percentages. */
struct phase {
    int first_use, n_use;
    int initialize, open, use, close, close_all; /* the rest: C_Finalize */
};
static const struct phase phases[] = {
    {0, PRIVATE_PER_THREAD + 2, 15, 25, 35, 8, 8},
    {PRIVATE_PER_THREAD, 2, 25, 15, 15, 5, 5},
};
static int phase;
static pthread_barrier_t start_line; /* all threads start each phase together */

static void *run_worker(void *arg)
{
    struct worker *w = arg;
    const struct phase *p = &phases[phase];
    pthread_barrier_wait(&start_line);
    for (int r = 0; r < rounds; r++) {
        struct use *u = &w->use[p->first_use + rand_r(&w->seed) % p->n_use];
        int pick = rand_r(&w->seed) % 100;
        if ((pick -= p->initialize) < 0)
            op_initialize(w, u);
        else if ((pick -= p->open) < 0)
            op_open(w, u);
        else if ((pick -= p->use) < 0)
            op_use(w, u);
        else if ((pick -= p->close) < 0)
            op_close(w, u);
        else if ((pick -= p->close_all) < 0)
            op_close_all(w, u);
        else
            op_finalize(w, u);
        w->ops++;
    }
    for (int i = 0; i < PRIVATE_PER_THREAD; i++)
        if (w->use[i].initialized)
            op_finalize(w, &w->use[i]);
    return NULL;
}

static void run_phase(struct worker *workers, const char *what)
{
    pthread_t th[THREADS];
    pthread_barrier_init(&start_line, NULL, THREADS);
    for (int t = 0; t < THREADS; t++) {
        workers[t].errors = 0;
        workers[t].ops = 0;
        for (int i = PRIVATE_PER_THREAD; i < PRIVATE_PER_THREAD + 2; i++)
            workers[t].use[i].n_held = 0; /* shared callers' sessions may be gone: start afresh */
        pthread_create(&th[t], NULL, run_worker, &workers[t]);
    }
    for (int t = 0; t < THREADS; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&start_line);
    for (int t = 0; t < THREADS; t++)
        t_ok(workers[t].errors == 0, "%s, thread %d: %lu operations, every outcome legal (%d bad%s%s)", what, t,
             workers[t].ops, workers[t].errors, workers[t].errors ? ", first: " : "", workers[t].first_error);
    struct mock_stats a = t_mock_stats(&ma), c = t_mock_stats(&mc);
    t_diag("%s: so far mock-a initialised %lu times, %lu sessions opened; calls while uninitialised: "
           "mock-a %lu, mock-c %lu",
           what, a.initialize_ok, a.sessions_opened_total, a.calls_while_uninitialised, c.calls_while_uninitialised);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    alarm(600);
    if (getenv("P11TEST_STRESS_ROUNDS"))
        rounds = atoi(getenv("P11TEST_STRESS_ROUNDS"));
    if (!t_mock_open(&ma, "mock-a") || !t_mock_open(&mc, "mock-c"))
        return t_done();
    char *dir = t_config_new("stress");
    t_config_module(dir, "mock-a", "module: %s\npriority: 1\n", ma.path);
    t_config_module(dir, "mock-c", "module: %s\n", mc.path);
    t_config_use(dir);
    if (!t_proxy_open(&px))
        return t_done();

    CK_FUNCTION_LIST_PTR setup = t_caller(&px);
    if (!setup || !t_rv(setup->C_Initialize(NULL), CKR_OK, "setup caller C_Initialize"))
        return t_done();
    int found = 1;
    for (int i = 0; i < 3; i++)
        found &= (slot_ids[i] = t_slot_by_label(setup, slot_labels[i])) != T_NO_SLOT;
    t_rv(setup->C_Finalize(NULL), CKR_OK, "setup caller C_Finalize");
    if (!t_ok(found, "slots mock-a-1, mock-a-5, mock-c-7 found"))
        return t_done();

    for (int i = 0; i < SHARED; i++)
        if (!(shared_callers[i] = t_caller(&px)))
            return t_done();
    static struct worker workers[THREADS];
    for (int t = 0; t < THREADS; t++) {
        struct worker *w = &workers[t];
        w->id = t;
        w->seed = 0x5eed + t;
        for (int i = 0; i < PRIVATE_PER_THREAD; i++)
            if (!(w->use[i].f = t_caller(&px)))
                return t_done();
        w->use[PRIVATE_PER_THREAD] = (struct use){.f = shared_callers[t % SHARED], .shared = 1};
        w->use[PRIVATE_PER_THREAD + 1] = (struct use){.f = shared_callers[(t + 1) % SHARED], .shared = 1};
    }

    run_phase(workers, "phase 1 (all callers)");
    struct t_mock *mocks[] = {&ma, &mc};
    /* In phase 1 no caller is finalised by one thread while another thread is inside a call on
     * it, so no call may reach a real module that the proxy has finalised. */
    for (int i = 0; i < 2; i++) {
        struct mock_stats s = t_mock_stats(mocks[i]);
        t_no_uninit_calls(&s, 0, mocks[i]->name);
    }
    phase = 1;
    run_phase(workers, "phase 2 (shared callers, init/finalize churn)");

    int fin_ok = 1;
    for (int i = 0; i < SHARED; i++) {
        CK_RV rv = shared_callers[i]->C_Finalize(NULL);
        fin_ok &= rv == CKR_OK || rv == CKR_CRYPTOKI_NOT_INITIALIZED;
    }
    t_ok(fin_ok, "shared callers finalise");

    for (int i = 0; i < 2; i++) {
        struct mock_stats s = t_mock_stats(mocks[i]);
        t_ul(s.initialize_calls, s.finalize_calls, "%s: C_Initialize and C_Finalize calls balance", mocks[i]->name);
        t_ul(s.initialize_ok, s.finalize_ok, "%s: successful initialise/finalise balance", mocks[i]->name);
        t_ul(s.initialized, 0, "%s: finalised at the end", mocks[i]->name);
        t_ul(s.open_sessions, 0, "%s: no session left", mocks[i]->name);
        t_ul(s.double_init_attempts, 0, "%s: never initialised while initialised", mocks[i]->name);
        /* Phase 2 has threads call C_Finalize on a shared caller while other threads are still
         * inside calls on it. PKCS#11 2.40 section 5.4 leaves that undefined; the proxy then
         * only promises no crash and no misrouting, and a call already past the proxy's checks
         * may reach the module just after its C_Finalize (it answers NOT_INITIALIZED). */
        t_diag("%s: calls that reached the module after its C_Finalize (phase 2 only): %lu",
               mocks[i]->name, s.calls_while_uninitialised);
    }
    return t_done();
}
