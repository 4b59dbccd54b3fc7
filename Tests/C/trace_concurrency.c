/* trace_concurrency.c: 8 threads, each with its own session on mock-a, each making
 * a known number of C_DigestInit + C_Digest + C_GetSessionInfo rounds through one caller of
 * the proxy, all traced into one file. Tests/integration/test_trace.sh then parses that
 * file: every record whole, and the records per function exactly the calls made.
 *
 *   trace_concurrency PROXY_SO MOCK_DIR
 *
 * Rounds per thread: TRACE_ROUNDS (default 500). Tracing is configured by the environment
 * (P11PROXY_LOG_FILE, P11PROXY_LOG_FORMAT); without P11PROXY_CONFIG_DIR the program writes
 * a config dir with mock-a and `log-calls: yes`.
 *
 * Besides TAP-like checks it prints, for the script, one line per function that reached
 * mock-a, counted by mock-a itself (mock_stats, so the count includes the calls p11proxy
 * makes on its own, such as the size query inside C_GetSlotList):
 *   # expect C_Digest 4000
 * and the real session handles the threads used:
 *   # sessions 8 rounds 500 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p11test.h"

#define THREADS 8

static struct t_mock ma;
static struct t_proxy px;
static CK_FUNCTION_LIST_PTR f;
static CK_SLOT_ID slot;
static int rounds = 500;

struct worker {
    int id;
    CK_SESSION_HANDLE h;
    int errors;
    char first_error[200];
    unsigned long digests, infos;
};

static void *work(void *arg)
{
    struct worker *w = arg;
    CK_MECHANISM sha256 = {CKM_SHA256, NULL, 0};
    unsigned char data[16], out[MOCK_DIGEST_LEN], want[MOCK_DIGEST_LEN];
    for (int i = 0; i < rounds; i++) {
        int len = snprintf((char *)data, sizeof data, "t%d-r%d", w->id, i);
        CK_ULONG out_len = sizeof out;
        CK_SESSION_INFO info;
        CK_RV rv = f->C_DigestInit(w->h, &sha256);
        if (rv == CKR_OK)
            rv = f->C_Digest(w->h, data, (CK_ULONG)len, out, &out_len);
        if (rv == CKR_OK) {
            w->digests++;
            mock_fake_digest(0xA, data, (size_t)len, want);
            if (out_len != MOCK_DIGEST_LEN || memcmp(out, want, sizeof want) != 0)
                rv = CKR_GENERAL_ERROR;
        }
        if (rv == CKR_OK)
            rv = f->C_GetSessionInfo(w->h, &info);
        if (rv == CKR_OK)
            w->infos++;
        if (rv != CKR_OK && w->errors++ == 0)
            snprintf(w->first_error, sizeof w->first_error, "round %d: %s", i, t_rv_name(rv));
    }
    return NULL;
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    if (getenv("TRACE_ROUNDS"))
        rounds = atoi(getenv("TRACE_ROUNDS"));
    if (!getenv("P11PROXY_CONFIG_DIR")) {
        char *dir = t_config_new("trace-concurrency");
        char *mock = t_mock_path("mock-a");
        t_config_module(dir, "mock-a", "module: %s\nlog-calls: yes\n", mock);
        t_config_use(dir);
        free(mock);
        free(dir);
    }
    /* Our reference to mock-a is the instance the proxy loads; its counters start at 0. */
    if (!t_mock_open(&ma, "mock-a") || !t_proxy_open(&px) || !(f = t_caller(&px)))
        return t_done();
    if (!t_rv(f->C_Initialize(NULL), CKR_OK, "C_Initialize"))
        return t_done();
    slot = t_slot_by_label(f, "mock-a-1");
    if (!t_ok(slot != T_NO_SLOT, "mock-a-1 is there"))
        return t_done();

    struct worker workers[THREADS];
    pthread_t threads[THREADS];
    memset(workers, 0, sizeof workers);
    int opened = 0;
    for (int i = 0; i < THREADS; i++) {
        workers[i].id = i;
        opened += f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &workers[i].h) == CKR_OK;
    }
    t_ul(opened, THREADS, "one session per thread");
    for (int i = 0; i < THREADS; i++)
        pthread_create(&threads[i], NULL, work, &workers[i]);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    unsigned long digests = 0, infos = 0;
    for (int i = 0; i < THREADS; i++) {
        if (workers[i].errors)
            t_fail("thread %d: %d failed rounds, first %s", i, workers[i].errors, workers[i].first_error);
        digests += workers[i].digests;
        infos += workers[i].infos;
    }
    int closed = 0;
    for (int i = 0; i < THREADS; i++)
        closed += f->C_CloseSession(workers[i].h) == CKR_OK;
    t_ul(closed, THREADS, "every session closed");
    t_rv(f->C_Finalize(NULL), CKR_OK, "C_Finalize");

    /* What the program made vs what mock-a saw: the script compares the trace with the latter. */
    unsigned long want = (unsigned long)THREADS * (unsigned long)rounds;
    struct mock_stats s = t_mock_stats(&ma);
    t_ul(digests, want, "C_Digest calls made");
    t_ul(infos, want, "C_GetSessionInfo calls made");
    t_ul(s.calls[MOCK_FN_C_Digest], want, "mock-a saw every C_Digest");
    t_ul(s.calls[MOCK_FN_C_DigestInit], want, "mock-a saw every C_DigestInit");
    t_ul(s.calls[MOCK_FN_C_GetSessionInfo], want, "mock-a saw every C_GetSessionInfo");
    t_ul(s.calls[MOCK_FN_C_OpenSession], THREADS, "mock-a saw 8 C_OpenSession");
    t_ul(s.calls[MOCK_FN_C_CloseSession], THREADS, "mock-a saw 8 C_CloseSession");
    for (int fn = 0; fn < MOCK_FN_COUNT; fn++) {
        /* Looked up while the proxy loads the module, before tracing is set up. */
        if (fn == MOCK_FN_C_GetFunctionList || fn == MOCK_FN_C_GetInterfaceList || fn == MOCK_FN_C_GetInterface)
            continue;
        if (s.calls[fn])
            printf("# expect %s %lu\n", mock_fn_name(fn), s.calls[fn]);
    }
    printf("# sessions %d rounds %d\n", THREADS, rounds);
    return t_done();
}
