/* test_async_jobs.c: p11proxy inside OpenSSL ASYNC jobs, and how much stack one call through
 * p11proxy takes. Run by Tests/integration/test_openssl_async.sh, which makes a
 * SoftHSM2 token "async" (user PIN 1234) and a config dir for it (P11PROXY_CONFIG_DIR):
 *   test_async_jobs PROXY_SO MOCK_DIR
 *
 * 1. Jobs. Applications that use OpenSSL's ASYNC_start_job run crypto on small fibre stacks
 *    (OpenSSL 3.0: 32 KiB from OPENSSL_malloc, crypto/async/arch/async_posix.c) and pause a
 *    job mid-way to run others on the same thread. Here JOBS jobs on one thread each open a
 *    session through p11proxy, log in, find the key pair, sign and verify ROUNDS messages (and
 *    fail to verify a tampered one), with ASYNC_pause_job after every call, resumed round-robin;
 *    with tracing off, in text and in JSON. The fibre stacks are OpenSSL's own size but mapped
 *    with a guard page below (CRYPTO_set_mem_functions), so an overflow is a crash rather than
 *    silent heap damage, and painted, so the deepest use is reported. Signatures are also
 *    checked with OpenSSL against the token's public key. The process's first C_Initialize
 *    (configuration read, SoftHSM2 loaded) is also made inside a job.
 * 2. Stack depth. On a 1 MiB painted fibre (guarded), one call into the fast mock module, made
 *    directly and through p11proxy (untraced, traced as text, JSON, and with secrets shown):
 *    the deepest byte written, less the harness's own use. The difference is p11proxy's own
 *    frames, which must stay under half of OpenSSL's job stack. */
#define _GNU_SOURCE
#include "p11test.h"

#include <dlfcn.h>
#include <openssl/async.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

/* OpenSSL 3.0's STACKSIZE in crypto/async/arch/async_posix.c. */
#define OPENSSL_JOB_STACK 32768
#define GUARD 4096
#define PAINT 0xA5

#define JOBS 8
#define ROUNDS 3
#define TOKEN_LABEL "async"
#define USER_PIN "1234"
#define KEY_LABEL "async-key"

static const char *hsm_config_dir; /* P11PROXY_CONFIG_DIR as the script set it */

/* ==== Guarded, painted stacks ========================================================= */

struct guarded_stack {
    unsigned char *base; /* lowest usable byte; the guard page is just below */
    size_t size;
};

static struct guarded_stack stack_new(size_t size)
{
    struct guarded_stack s = {NULL, size};
    unsigned char *map = mmap(NULL, GUARD + size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED)
        return s;
    mprotect(map, GUARD, PROT_NONE);
    s.base = map + GUARD;
    memset(s.base, PAINT, size);
    return s;
}

static void stack_free(struct guarded_stack *s)
{
    if (s->base)
        munmap(s->base - GUARD, GUARD + s->size);
    s->base = NULL;
}

/* Bytes from the top down to the lowest byte that is no longer paint. */
static size_t stack_used(const struct guarded_stack *s)
{
    size_t i = 0;
    while (i < s->size && s->base[i] == PAINT)
        i++;
    return s->size - i;
}

/* OpenSSL's allocations, with its job stacks (exactly OPENSSL_JOB_STACK bytes, from
 * async_posix.c) on guarded, painted mappings. Any thread may allocate: one lock. */
#define MAX_JOB_STACKS 64
static pthread_mutex_t job_stacks_lock = PTHREAD_MUTEX_INITIALIZER;
static struct guarded_stack job_stacks[MAX_JOB_STACKS];
static int job_stacks_made;
static size_t job_stack_deepest; /* over stacks already freed */

static int is_async_stack(size_t num, const char *file)
{
    return num == OPENSSL_JOB_STACK && file && strstr(file, "async");
}

static void *hook_malloc(size_t num, const char *file, int line)
{
    (void)line;
    if (is_async_stack(num, file)) {
        pthread_mutex_lock(&job_stacks_lock);
        for (int i = 0; i < MAX_JOB_STACKS; i++) {
            if (!job_stacks[i].base) {
                job_stacks[i] = stack_new(num);
                if (job_stacks[i].base) {
                    job_stacks_made++;
                    pthread_mutex_unlock(&job_stacks_lock);
                    return job_stacks[i].base;
                }
                break;
            }
        }
        pthread_mutex_unlock(&job_stacks_lock);
    }
    return malloc(num);
}

static int job_stack_index(void *p)
{
    for (int i = 0; i < MAX_JOB_STACKS; i++)
        if (p && job_stacks[i].base == p)
            return i;
    return -1;
}

static void *hook_realloc(void *p, size_t num, const char *file, int line)
{
    (void)file;
    (void)line;
    pthread_mutex_lock(&job_stacks_lock);
    int i = job_stack_index(p);
    pthread_mutex_unlock(&job_stacks_lock);
    if (i >= 0)
        abort(); /* OpenSSL never resizes a fibre stack */
    return realloc(p, num);
}

static void hook_free(void *p, const char *file, int line)
{
    (void)file;
    (void)line;
    pthread_mutex_lock(&job_stacks_lock);
    int i = job_stack_index(p);
    if (i >= 0) {
        size_t used = stack_used(&job_stacks[i]);
        if (used > job_stack_deepest)
            job_stack_deepest = used;
        stack_free(&job_stacks[i]);
    }
    pthread_mutex_unlock(&job_stacks_lock);
    if (i < 0)
        free(p);
}

/* The deepest use of any job stack so far, live or freed. */
static size_t job_stacks_deepest(void)
{
    pthread_mutex_lock(&job_stacks_lock);
    size_t deepest = job_stack_deepest;
    for (int i = 0; i < MAX_JOB_STACKS; i++)
        if (job_stacks[i].base && stack_used(&job_stacks[i]) > deepest)
            deepest = stack_used(&job_stacks[i]);
    pthread_mutex_unlock(&job_stacks_lock);
    return deepest;
}

/* ==== 1. Jobs over SoftHSM2 ============================================================ */

enum trace_mode { TRACE_OFF, TRACE_TEXT, TRACE_JSON, TRACE_SECRETS };
static const char *const trace_mode_names[] = {"off", "text", "json", "text with secrets"};

/* Sets P11PROXY_LOG_* for a mode; returns the trace file (NULL when off). Call before the
 * first C_Initialize of the process. */
static char *use_trace_mode(enum trace_mode mode, const char *what)
{
    unsetenv("P11PROXY_LOG_SECRETS");
    unsetenv("P11PROXY_LOG_FORMAT");
    if (mode == TRACE_OFF) {
        setenv("P11PROXY_LOG_CALLS", "no", 1);
        unsetenv("P11PROXY_LOG_FILE");
        return NULL;
    }
    char name[64];
    snprintf(name, sizeof name, "%s-%d.trace", what, (int)mode);
    char *path = t_temp_path(name);
    setenv("P11PROXY_LOG_CALLS", "yes", 1);
    setenv("P11PROXY_LOG_FILE", path, 1);
    setenv("P11PROXY_LOG_FORMAT", mode == TRACE_JSON ? "json" : "text", 1);
    if (mode == TRACE_SECRETS)
        setenv("P11PROXY_LOG_SECRETS", "yes", 1);
    return path;
}

struct job {
    int index;
    CK_FUNCTION_LIST_PTR f;
    CK_SLOT_ID slot;
    /* Results, read once the job has finished. */
    CK_RV login_rv;
    int rounds_verified;      /* C_Verify CKR_OK on the job's own signature */
    int rounds_tamper_caught; /* C_Verify CKR_SIGNATURE_INVALID on a changed digest */
    const char *failed_step;
    CK_RV failed_rv;
    unsigned char digest[ROUNDS][32];
    unsigned char signature[ROUNDS][72];
    CK_ULONG signature_len[ROUNDS];
    /* Scheduling. */
    ASYNC_JOB *handle;
    ASYNC_WAIT_CTX *wait;
    int finished;
    int ret;
    int pauses;
};

/* Which job paused, in order: shows the jobs really interleaved. */
static int pause_log[JOBS * 64];
static int pause_count;

static void pause_job(struct job *j)
{
    if (pause_count < (int)(sizeof pause_log / sizeof pause_log[0]))
        pause_log[pause_count++] = j->index;
    j->pauses++;
    ASYNC_pause_job();
}

static int job_failed(struct job *j, const char *step, CK_RV rv)
{
    j->failed_step = step;
    j->failed_rv = rv;
    return 0;
}

/* Calls, records a failure unless rv is `want` (or `also`), then pauses. */
#define JOB_CALL(j, step, want, call)                                                          \
    do {                                                                                       \
        CK_RV rv_ = (call);                                                                    \
        if (rv_ != (want))                                                                     \
            return job_failed((j), (step), rv_);                                               \
        pause_job(j);                                                                          \
    } while (0)

static int job_find(struct job *j, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, CK_OBJECT_HANDLE *found)
{
    CK_ATTRIBUTE template[] = {
        {CKA_CLASS, &cls, sizeof cls},
        {CKA_LABEL, (void *)KEY_LABEL, strlen(KEY_LABEL)},
    };
    CK_ULONG count = 0;
    JOB_CALL(j, "C_FindObjectsInit", CKR_OK, j->f->C_FindObjectsInit(s, template, 2));
    JOB_CALL(j, "C_FindObjects", CKR_OK, j->f->C_FindObjects(s, found, 1, &count));
    JOB_CALL(j, "C_FindObjectsFinal", CKR_OK, j->f->C_FindObjectsFinal(s));
    return count == 1 ? 1 : job_failed(j, cls == CKO_PRIVATE_KEY ? "find the private key" : "find the public key", CKR_OK);
}

static int job_main(void *arg)
{
    struct job *j = *(struct job **)arg;
    CK_FUNCTION_LIST_PTR f = j->f;
    CK_SESSION_HANDLE s;
    JOB_CALL(j, "C_OpenSession", CKR_OK, f->C_OpenSession(j->slot, CKF_SERIAL_SESSION, NULL, NULL, &s));
    /* Login state is per application and token: the first job logs in, the others find it done. */
    j->login_rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN));
    if (j->login_rv != CKR_OK && j->login_rv != CKR_USER_ALREADY_LOGGED_IN)
        return job_failed(j, "C_Login", j->login_rv);
    pause_job(j);
    CK_OBJECT_HANDLE private_key, public_key;
    if (!job_find(j, s, CKO_PRIVATE_KEY, &private_key) || !job_find(j, s, CKO_PUBLIC_KEY, &public_key))
        return 0;
    CK_MECHANISM ecdsa = {CKM_ECDSA, NULL, 0};
    for (int round = 0; round < ROUNDS; round++) {
        char message[96];
        int len = snprintf(message, sizeof message, "job %d, round %d: p11proxy inside an OpenSSL ASYNC job", j->index, round);
        SHA256((const unsigned char *)message, (size_t)len, j->digest[round]);
        CK_ULONG sig_len = 0;
        JOB_CALL(j, "C_SignInit", CKR_OK, f->C_SignInit(s, &ecdsa, private_key));
        JOB_CALL(j, "C_Sign (size)", CKR_OK, f->C_Sign(s, j->digest[round], 32, NULL, &sig_len));
        if (sig_len != 64)
            return job_failed(j, "C_Sign size is 64 for P-256", CKR_OK);
        JOB_CALL(j, "C_Sign", CKR_OK, f->C_Sign(s, j->digest[round], 32, j->signature[round], &sig_len));
        j->signature_len[round] = sig_len;
        JOB_CALL(j, "C_VerifyInit", CKR_OK, f->C_VerifyInit(s, &ecdsa, public_key));
        JOB_CALL(j, "C_Verify", CKR_OK, f->C_Verify(s, j->digest[round], 32, j->signature[round], sig_len));
        j->rounds_verified++;
        unsigned char tampered[32];
        memcpy(tampered, j->digest[round], sizeof tampered);
        tampered[round] ^= 0x01;
        JOB_CALL(j, "C_VerifyInit (tampered)", CKR_OK, f->C_VerifyInit(s, &ecdsa, public_key));
        JOB_CALL(j, "C_Verify (tampered)", CKR_SIGNATURE_INVALID, f->C_Verify(s, tampered, 32, j->signature[round], sig_len));
        j->rounds_tamper_caught++;
    }
    CK_RV rv = f->C_CloseSession(s);
    return rv == CKR_OK ? 1 : job_failed(j, "C_CloseSession", rv);
}

struct job_run {
    struct job jobs[JOBS];
    int start_errors;
};

/* The whole run on one thread of its own (its first traced call is then made inside a job). */
static void *run_jobs(void *arg)
{
    struct job_run *run = arg;
    int remaining = JOBS;
    while (remaining > 0) {
        for (int i = 0; i < JOBS; i++) {
            struct job *j = &run->jobs[i];
            if (j->finished)
                continue;
            if (!j->wait)
                j->wait = ASYNC_WAIT_CTX_new();
            int ret = 0;
            switch (ASYNC_start_job(&j->handle, j->wait, &ret, job_main, &j, sizeof j)) {
            case ASYNC_PAUSE:
                break;
            case ASYNC_FINISH:
                j->finished = 1;
                j->ret = ret;
                remaining--;
                break;
            default: /* ASYNC_ERR, ASYNC_NO_JOBS */
                run->start_errors++;
                j->finished = 1;
                remaining--;
                break;
            }
        }
    }
    for (int i = 0; i < JOBS; i++)
        ASYNC_WAIT_CTX_free(run->jobs[i].wait);
    return NULL;
}

/* The token's EC public key (CKA_EC_POINT, DER OCTET STRING or raw) as an OpenSSL key. */
static EVP_PKEY *token_public_key(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE s)
{
    CK_OBJECT_CLASS cls = CKO_PUBLIC_KEY;
    CK_ATTRIBUTE find[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, (void *)KEY_LABEL, strlen(KEY_LABEL)}};
    CK_OBJECT_HANDLE key;
    CK_ULONG count = 0;
    if (f->C_FindObjectsInit(s, find, 2) != CKR_OK || f->C_FindObjects(s, &key, 1, &count) != CKR_OK)
        return NULL;
    f->C_FindObjectsFinal(s);
    unsigned char point[128];
    CK_ATTRIBUTE get = {CKA_EC_POINT, point, sizeof point};
    if (count != 1 || f->C_GetAttributeValue(s, key, &get, 1) != CKR_OK)
        return NULL;
    const unsigned char *raw = point;
    size_t raw_len = get.ulValueLen;
    if (raw_len == 67 && point[0] == 0x04 && point[1] == 65) {
        raw += 2;
        raw_len -= 2;
    }
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0);
    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, raw, raw_len);
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    return pkey;
}

/* A PKCS#11 ECDSA signature (r || s) over a digest, checked by OpenSSL. */
static int openssl_verifies(EVP_PKEY *key, const unsigned char digest[32], const unsigned char *sig, CK_ULONG sig_len)
{
    if (sig_len != 64)
        return 0;
    ECDSA_SIG *ecdsa = ECDSA_SIG_new();
    ECDSA_SIG_set0(ecdsa, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL));
    unsigned char *der = NULL;
    int der_len = i2d_ECDSA_SIG(ecdsa, &der);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(key, NULL);
    int ok = ctx && der_len > 0 && EVP_PKEY_verify_init(ctx) == 1
             && EVP_PKEY_verify(ctx, der, (size_t)der_len, digest, 32) == 1;
    EVP_PKEY_CTX_free(ctx);
    OPENSSL_free(der);
    ECDSA_SIG_free(ecdsa);
    return ok;
}

static int count_lines_with(const char *path, const char *needle)
{
    FILE *file = fopen(path, "r");
    if (!file)
        return -1;
    char *line = NULL;
    size_t cap = 0;
    int count = 0;
    while (getline(&line, &cap, file) > 0)
        for (const char *at = line; (at = strstr(at, needle)); at += strlen(needle))
            count++;
    free(line);
    fclose(file);
    return count;
}

/* The trace holds one record per call of every job, from one thread, the PIN redacted. */
static void check_trace(const char *path, enum trace_mode mode)
{
    const char *m = trace_mode_names[mode];
    int calls = JOBS * ROUNDS;
    if (mode == TRACE_JSON) {
        t_ul((unsigned long)count_lines_with(path, "\"function\":\"C_Sign\""), 2ul * calls, "jobs, trace %s: every C_Sign traced", m);
        t_ul((unsigned long)count_lines_with(path, "\"function\":\"C_Verify\""), 2ul * calls, "jobs, trace %s: every C_Verify traced", m);
        t_ul((unsigned long)count_lines_with(path, "\"rv\":\"CKR_SIGNATURE_INVALID\""), (unsigned long)calls,
             "jobs, trace %s: every tampered C_Verify traced as CKR_SIGNATURE_INVALID", m);
        t_ul((unsigned long)count_lines_with(path, "\"pPin\":{\"len\":4,\"redacted\":true}"), JOBS,
             "jobs, trace %s: every C_Login's PIN redacted", m);
    } else {
        t_ul((unsigned long)count_lines_with(path, "C_Sign = CKR_OK"), 2ul * calls, "jobs, trace %s: every C_Sign traced", m);
        t_ul((unsigned long)count_lines_with(path, "C_Verify = CKR_OK"), (unsigned long)calls, "jobs, trace %s: every good C_Verify traced", m);
        t_ul((unsigned long)count_lines_with(path, "C_Verify = CKR_SIGNATURE_INVALID"), (unsigned long)calls,
             "jobs, trace %s: every tampered C_Verify traced as CKR_SIGNATURE_INVALID", m);
        t_ul((unsigned long)count_lines_with(path, mode == TRACE_SECRETS ? "pPin = (4) 31323334" : "pPin = (4) <redacted>"),
             JOBS, "jobs, trace %s: every C_Login's PIN %s", m, mode == TRACE_SECRETS ? "shown" : "redacted");
    }
    /* All job records come from the one job thread: one tid among the C_Sign records. */
    FILE *file = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    long tid = -1;
    int tids = 0;
    while (file && getline(&line, &cap, file) > 0) {
        const char *at = mode == TRACE_JSON ? (strstr(line, "\"function\":\"C_Sign\"") ? strstr(line, "\"thread\":") : NULL)
                                            : (strncmp(line, "C_Sign [", 8) == 0 ? strstr(line, " tid=") : NULL);
        if (!at)
            continue;
        long t = strtol(strchr(at, mode == TRACE_JSON ? ':' : '=') + 1, NULL, 10);
        if (t != tid) {
            tids++;
            tid = t;
        }
    }
    free(line);
    if (file)
        fclose(file);
    t_ul((unsigned long)tids, 1, "jobs, trace %s: all C_Sign records from one thread", m);
}

static void jobs_scenario(void *arg)
{
    enum trace_mode mode = (enum trace_mode)(long)arg;
    const char *m = trace_mode_names[mode];
    t_config_use(hsm_config_dir);
    char *trace = use_trace_mode(mode, "jobs");

    struct t_proxy proxy;
    if (!t_proxy_open(&proxy))
        return;
    /* Two callers (managed: their own sessions); jobs alternate between them. */
    CK_FUNCTION_LIST_PTR callers[2] = {t_caller(&proxy), t_caller(&proxy)};
    if (!callers[0] || !callers[1])
        return;
    for (int c = 0; c < 2; c++)
        if (!t_rv(callers[c]->C_Initialize(NULL), CKR_OK, "jobs, trace %s: C_Initialize caller %d", m, c))
            return;
    CK_SLOT_ID slot = t_slot_by_label(callers[0], TOKEN_LABEL);
    if (!t_ok(slot != T_NO_SLOT, "jobs, trace %s: token '%s' found through the proxy", m, TOKEN_LABEL))
        return;
    CK_SESSION_HANDLE s;
    EVP_PKEY *public_key = NULL;
    if (callers[0]->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &s) == CKR_OK) {
        public_key = token_public_key(callers[0], s);
        callers[0]->C_CloseSession(s);
    }
    t_ok(public_key != NULL, "jobs, trace %s: the key pair's public key read for OpenSSL", m);

    static struct job_run run;
    memset(&run, 0, sizeof run);
    pause_count = 0;
    for (int i = 0; i < JOBS; i++) {
        run.jobs[i].index = i;
        run.jobs[i].f = callers[i % 2];
        run.jobs[i].slot = slot;
    }
    int stacks_before = job_stacks_made;
    pthread_t thread;
    pthread_create(&thread, NULL, run_jobs, &run);
    pthread_join(thread, NULL);

    t_ul((unsigned long)run.start_errors, 0, "jobs, trace %s: ASYNC_start_job never failed", m);
    int finished = 0, logins = 0, verified = 0, caught = 0, openssl_ok = 0;
    for (int i = 0; i < JOBS; i++) {
        struct job *j = &run.jobs[i];
        if (j->failed_step)
            t_fail("jobs, trace %s: job %d failed at %s (%s)", m, i, j->failed_step, t_rv_name(j->failed_rv));
        finished += j->finished && j->ret == 1;
        logins += j->login_rv == CKR_OK;
        verified += j->rounds_verified;
        caught += j->rounds_tamper_caught;
        for (int r = 0; r < j->rounds_verified && public_key; r++)
            openssl_ok += openssl_verifies(public_key, j->digest[r], j->signature[r], j->signature_len[r]);
    }
    t_ul((unsigned long)finished, JOBS, "jobs, trace %s: all %d jobs finished and returned 1", m, JOBS);
    t_ul((unsigned long)logins, 1, "jobs, trace %s: one job logged in, the others found the token logged in", m);
    t_ul((unsigned long)verified, JOBS * ROUNDS, "jobs, trace %s: every signature verified by the token", m);
    t_ul((unsigned long)caught, JOBS * ROUNDS, "jobs, trace %s: every tampered digest rejected (CKR_SIGNATURE_INVALID)", m);
    t_ul((unsigned long)openssl_ok, JOBS * ROUNDS, "jobs, trace %s: every signature verified by OpenSSL with the public key", m);

    /* Interleaved: every job paused before any job finished its last call. */
    int first_done = pause_count;
    for (int i = 0; i < JOBS; i++) {
        int last = -1;
        for (int k = 0; k < pause_count; k++)
            if (pause_log[k] == i)
                last = k;
        if (last >= 0 && last < first_done)
            first_done = last;
    }
    int started_before = 0;
    for (int i = 0; i < JOBS; i++)
        for (int k = 0; k < first_done; k++)
            if (pause_log[k] == i) {
                started_before++;
                break;
            }
    t_ul((unsigned long)started_before, JOBS, "jobs, trace %s: all jobs were paused mid-way while the others ran (%d pauses)", m, pause_count);

    size_t deepest = job_stacks_deepest();
    t_ok(job_stacks_made > stacks_before, "jobs, trace %s: jobs ran on guarded %d-byte stacks (%d made)", m,
         OPENSSL_JOB_STACK, job_stacks_made - stacks_before);
    t_diag("jobs, trace %s: deepest use of a job stack (SoftHSM2 and OpenSSL included): %zu of %d bytes", m, deepest,
           OPENSSL_JOB_STACK);
    t_ok(deepest > 0 && deepest < OPENSSL_JOB_STACK, "jobs, trace %s: job stacks used and not overrun (%zu bytes)", m, deepest);

    for (int c = 0; c < 2; c++)
        t_rv(callers[c]->C_Finalize(NULL), CKR_OK, "jobs, trace %s: C_Finalize caller %d", m, c);
    if (trace)
        check_trace(trace, mode);
    EVP_PKEY_free(public_key);
}

/* The first C_Initialize of the process inside a job: p11proxy reads its configuration and
 * loads SoftHSM2 (which initialises itself) on the job's 32 KiB stack. Applications often
 * initialise outside jobs; this shows one that does not still fits. */
static CK_FUNCTION_LIST_PTR initialize_list;
static CK_RV initialize_rv = CKR_GENERAL_ERROR;

static int initialize_job(void *arg)
{
    (void)arg;
    initialize_rv = initialize_list->C_Initialize(NULL);
    return 1;
}

static void *initialize_thread(void *arg)
{
    int *status = arg;
    ASYNC_JOB *job = NULL;
    ASYNC_WAIT_CTX *wait = ASYNC_WAIT_CTX_new();
    int ret = 0;
    *status = ASYNC_start_job(&job, wait, &ret, initialize_job, NULL, 0);
    ASYNC_WAIT_CTX_free(wait);
    return NULL;
}

static void initialize_scenario(void *arg)
{
    enum trace_mode mode = (enum trace_mode)(long)arg;
    const char *m = trace_mode_names[mode];
    t_config_use(hsm_config_dir);
    use_trace_mode(mode, "initialize");
    struct t_proxy proxy;
    if (!t_proxy_open(&proxy) || !(initialize_list = t_caller(&proxy)))
        return;
    int status = ASYNC_ERR;
    pthread_t thread;
    pthread_create(&thread, NULL, initialize_thread, &status);
    pthread_join(thread, NULL);
    t_ul((unsigned long)status, ASYNC_FINISH, "C_Initialize in a job, trace %s: the job finished", m);
    t_rv(initialize_rv, CKR_OK, "C_Initialize in a job, trace %s: the first C_Initialize (config read, SoftHSM2 loaded)", m);
    size_t deepest = job_stacks_deepest();
    t_diag("C_Initialize in a job, trace %s: deepest use of the job stack %zu of %d bytes", m, deepest, OPENSSL_JOB_STACK);
    t_ok(deepest > 0 && deepest < OPENSSL_JOB_STACK, "C_Initialize in a job, trace %s: within the job stack (%zu bytes)", m, deepest);
    CK_SLOT_ID slot = t_slot_by_label(initialize_list, TOKEN_LABEL);
    t_ok(slot != T_NO_SLOT, "C_Initialize in a job, trace %s: the token is there afterwards", m);
    t_rv(initialize_list->C_Finalize(NULL), CKR_OK, "C_Initialize in a job, trace %s: C_Finalize", m);
}

/* Once, before the jobs: an EC P-256 key pair on the token (token objects, so every job's
 * session finds them). */
static void keygen_scenario(void *arg)
{
    (void)arg;
    t_config_use(hsm_config_dir);
    use_trace_mode(TRACE_OFF, "keygen");
    struct t_proxy proxy;
    if (!t_proxy_open(&proxy))
        return;
    CK_FUNCTION_LIST_PTR f = t_caller(&proxy);
    if (!f || !t_rv(f->C_Initialize(NULL), CKR_OK, "keygen: C_Initialize"))
        return;
    CK_SLOT_ID slot = t_slot_by_label(f, TOKEN_LABEL);
    if (!t_ok(slot != T_NO_SLOT, "keygen: token '%s' found (SOFTHSM2_CONF and P11PROXY_CONFIG_DIR from the script)", TOKEN_LABEL))
        return;
    CK_SESSION_HANDLE s;
    t_rv(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK, "keygen: C_OpenSession");
    t_rv(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)), CKR_OK, "keygen: C_Login");
    static const unsigned char p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE public_template[] = {
        {CKA_EC_PARAMS, (void *)p256, sizeof p256}, {CKA_TOKEN, &yes, 1},
        {CKA_VERIFY, &yes, 1}, {CKA_LABEL, (void *)KEY_LABEL, strlen(KEY_LABEL)},
    };
    CK_ATTRIBUTE private_template[] = {
        {CKA_TOKEN, &yes, 1}, {CKA_PRIVATE, &yes, 1}, {CKA_SENSITIVE, &yes, 1},
        {CKA_SIGN, &yes, 1}, {CKA_LABEL, (void *)KEY_LABEL, strlen(KEY_LABEL)},
    };
    CK_MECHANISM mechanism = {CKM_EC_KEY_PAIR_GEN, NULL, 0};
    CK_OBJECT_HANDLE public_key, private_key;
    t_rv(f->C_GenerateKeyPair(s, &mechanism, public_template, 4, private_template, 5, &public_key, &private_key),
         CKR_OK, "keygen: EC P-256 key pair '%s' generated on the token", KEY_LABEL);
    f->C_CloseSession(s);
    t_rv(f->C_Finalize(NULL), CKR_OK, "keygen: C_Finalize");
}

/* ==== 2. Stack depth per call ============================================================ */

#define MEASURE_STACK (1024 * 1024)

enum measured_call {
    CALL_NOTHING, /* the harness alone */
    CALL_SESSION_INFO_FIRST, /* the first call a new thread makes */
    CALL_SESSION_INFO,
    CALL_SIGN_INIT_PSS,
    CALL_SIGN,
    CALL_ENCRYPT_INIT_GCM,
    CALL_GET_ATTRIBUTES,
    CALL_LOGIN,
    CALL_OPEN_SESSION,
    N_CALLS,
    CALL_INITIALIZE = N_CALLS /* measured once, apart */
};
static const char *const call_names[N_CALLS] = {
    "(harness)", "C_GetSessionInfo, first on a thread", "C_GetSessionInfo", "C_SignInit RSA-PSS params",
    "C_Sign 64 bytes", "C_EncryptInit AES-GCM params", "C_GetAttributeValue 5 attrs", "C_Login PIN",
    "C_OpenSession",
};

enum measured_path { PATH_DIRECT, PATH_PROXY, PATH_TEXT, PATH_JSON, PATH_SECRETS, N_PATHS };
static const char *const path_names[N_PATHS] = {"direct", "proxy", "text", "json", "secrets"};

/* Filled by forked scenarios: in shared memory. */
struct depths {
    size_t call[N_PATHS][N_CALLS];
    size_t initialize[N_PATHS]; /* C_Initialize: configuration read, module loaded */
    int measured[N_PATHS];
};
static struct depths *depths;

struct measured {
    CK_FUNCTION_LIST_PTR f;
    CK_SESSION_HANDLE session;
    enum measured_call call;
    CK_RV rv;
};

static struct guarded_stack measure_stack;
static ucontext_t measure_return, measure_fibre;
static struct measured *measure_arg;

static void make_call(struct measured *m)
{
    CK_FUNCTION_LIST_PTR f = m->f;
    CK_SESSION_HANDLE s = m->session;
    unsigned char data[64], out[256], label[32], id[16], value[64], modulus[256];
    CK_ULONG out_len = sizeof out, key_type = 0;
    memset(data, 0x5a, sizeof data);
    switch (m->call) {
    case CALL_NOTHING:
        m->rv = CKR_OK;
        break;
    case CALL_SESSION_INFO_FIRST:
    case CALL_SESSION_INFO: {
        CK_SESSION_INFO info;
        m->rv = f->C_GetSessionInfo(s, &info);
        break;
    }
    case CALL_SIGN_INIT_PSS: {
        CK_RSA_PKCS_PSS_PARAMS pss = {CKM_SHA256, CKG_MGF1_SHA256, 32};
        CK_MECHANISM mechanism = {CKM_RSA_PKCS_PSS, &pss, sizeof pss};
        m->rv = f->C_SignInit(s, &mechanism, 7);
        break;
    }
    case CALL_SIGN:
        m->rv = f->C_Sign(s, data, sizeof data, out, &out_len);
        break;
    case CALL_ENCRYPT_INIT_GCM: {
        unsigned char iv[12] = {1, 2, 3}, aad[20] = {4, 5, 6};
        CK_GCM_PARAMS gcm = {iv, sizeof iv, 96, aad, sizeof aad, 128};
        CK_MECHANISM mechanism = {CKM_AES_GCM, &gcm, sizeof gcm};
        m->rv = f->C_EncryptInit(s, &mechanism, 7);
        break;
    }
    case CALL_GET_ATTRIBUTES: {
        /* No CKA_CLASS: with a CKA_VALUE in it the tracer asks the module what the object is. */
        CK_ATTRIBUTE template[] = {
            {CKA_LABEL, label, sizeof label}, {CKA_ID, id, sizeof id}, {CKA_VALUE, value, sizeof value},
            {CKA_MODULUS, modulus, sizeof modulus}, {CKA_KEY_TYPE, &key_type, sizeof key_type},
        };
        m->rv = f->C_GetAttributeValue(s, 7, template, 5);
        break;
    }
    case CALL_LOGIN:
        m->rv = f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN));
        break;
    case CALL_OPEN_SESSION: {
        CK_SESSION_HANDLE h;
        CK_SLOT_ID *slots;
        CK_ULONG n;
        m->rv = t_slot_list(f, &slots, &n);
        if (m->rv == CKR_OK && n > 0)
            m->rv = f->C_OpenSession(slots[0], CKF_SERIAL_SESSION, NULL, NULL, &h);
        free(slots);
        break;
    }
    case CALL_INITIALIZE:
        m->rv = f->C_Initialize(NULL);
        break;
    }
}

static void measure_trampoline(void)
{
    make_call(measure_arg);
}

/* Bytes of the 1 MiB fibre stack that one call used (the harness's own use included). */
static size_t measure(struct measured *m)
{
    memset(measure_stack.base, PAINT, measure_stack.size);
    measure_arg = m;
    getcontext(&measure_fibre);
    measure_fibre.uc_stack.ss_sp = measure_stack.base;
    measure_fibre.uc_stack.ss_size = measure_stack.size;
    measure_fibre.uc_link = &measure_return;
    makecontext(&measure_fibre, measure_trampoline, 0);
    swapcontext(&measure_return, &measure_fibre);
    return stack_used(&measure_stack);
}

struct measure_thread {
    enum measured_path path;
    CK_FUNCTION_LIST_PTR f;
    CK_SESSION_HANDLE session;
};

/* On a thread of its own, so the first call is that thread's first (per-thread trace buffers
 * are made then). Each call is measured 3 times; the deepest counts. */
static void *measure_calls(void *arg)
{
    struct measure_thread *t = arg;
    for (int c = 0; c < N_CALLS; c++) {
        size_t deepest = 0;
        for (int rep = 0; rep < (c == CALL_SESSION_INFO_FIRST ? 1 : 3); rep++) {
            struct measured m = {t->f, t->session, (enum measured_call)c, CKR_GENERAL_ERROR};
            size_t used = measure(&m);
            if (m.rv != CKR_OK)
                t_fail("stack, %s: %s answered %s", path_names[t->path], call_names[c], t_rv_name(m.rv));
            if (used > deepest)
                deepest = used;
        }
        depths->call[t->path][c] = deepest;
    }
    return NULL;
}

static void stack_scenario(void *arg)
{
    enum measured_path path = (enum measured_path)(long)arg;
    static const enum trace_mode modes[N_PATHS] = {TRACE_OFF, TRACE_OFF, TRACE_TEXT, TRACE_JSON, TRACE_SECRETS};
    measure_stack = stack_new(MEASURE_STACK);
    if (!t_ok(measure_stack.base != NULL, "stack, %s: 1 MiB guarded measuring stack", path_names[path]))
        return;
    char *config = t_config_new("stack");
    char *mock = t_mock_path("mock-fast");
    t_config_module(config, "fast", "module: %s\n", mock);
    t_config_use(config);
    use_trace_mode(modes[path], "stack");

    CK_FUNCTION_LIST_PTR f = NULL;
    if (path == PATH_DIRECT) {
        void *dl = dlopen(mock, RTLD_NOW | RTLD_LOCAL);
        CK_C_GetFunctionList get = dl ? (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList") : NULL;
        if (!get || get(&f) != CKR_OK)
            f = NULL;
    } else {
        struct t_proxy proxy;
        if (t_proxy_open(&proxy))
            f = t_caller(&proxy);
    }
    if (!t_ok(f != NULL, "stack, %s: function list", path_names[path]))
        return;
    /* C_Initialize on the fibre too: through the proxy it reads the configuration and loads the module. */
    struct measured init = {f, 0, CALL_INITIALIZE, CKR_GENERAL_ERROR};
    depths->initialize[path] = measure(&init);
    if (!t_rv(init.rv, CKR_OK, "stack, %s: C_Initialize on the measuring fibre", path_names[path]))
        return;

    CK_SESSION_HANDLE s;
    CK_SLOT_ID *slots;
    CK_ULONG n;
    if (!t_rv(t_slot_list(f, &slots, &n), CKR_OK, "stack, %s: C_GetSlotList", path_names[path]) || n == 0)
        return;
    if (!t_rv(f->C_OpenSession(slots[0], CKF_SERIAL_SESSION, NULL, NULL, &s), CKR_OK, "stack, %s: C_OpenSession", path_names[path]))
        return;
    free(slots);
    struct measure_thread t = {path, f, s};
    pthread_t thread;
    pthread_create(&thread, NULL, measure_calls, &t);
    pthread_join(thread, NULL);
    f->C_Finalize(NULL);
    depths->measured[path] = 1;
    stack_free(&measure_stack);
}

/* The figures, and the limit: p11proxy's own frames (a path's depth less the direct call's)
 * stay under half of OpenSSL's job stack for every call, traced in any format. */
static void report_depths(void)
{
    for (int p = 0; p < N_PATHS; p++)
        if (!t_ok(depths->measured[p], "stack, %s: measured", path_names[p]))
            return;
    t_diag("stack bytes used by one call into mock-fast (harness subtracted); own = traced - direct; "
           "OpenSSL 3.0 job stack: %d", OPENSSL_JOB_STACK);
    t_diag("%-38s %7s %7s %7s %7s %7s %9s %9s", "call", "direct", "proxy", "text", "json", "secrets", "own", "own traced");
    size_t worst = 0;
    for (int c = CALL_SESSION_INFO_FIRST; c <= N_CALLS; c++) {
        size_t d[N_PATHS];
        for (int p = 0; p < N_PATHS; p++) {
            size_t harness = depths->call[p][CALL_NOTHING];
            size_t raw = c == CALL_INITIALIZE ? depths->initialize[p] : depths->call[p][c];
            d[p] = raw > harness ? raw - harness : 0;
        }
        size_t traced = d[PATH_TEXT];
        if (d[PATH_JSON] > traced)
            traced = d[PATH_JSON];
        if (d[PATH_SECRETS] > traced)
            traced = d[PATH_SECRETS];
        size_t own = d[PATH_PROXY] > d[PATH_DIRECT] ? d[PATH_PROXY] - d[PATH_DIRECT] : 0;
        size_t own_traced = traced > d[PATH_DIRECT] ? traced - d[PATH_DIRECT] : 0;
        const char *name = c == CALL_INITIALIZE ? "C_Initialize (reads config, loads)" : call_names[c];
        t_diag("%-38s %7zu %7zu %7zu %7zu %7zu %9zu %9zu", name, d[PATH_DIRECT], d[PATH_PROXY], d[PATH_TEXT],
               d[PATH_JSON], d[PATH_SECRETS], own, own_traced);
        if (c == CALL_INITIALIZE)
            continue;
        /* The measurement sees the proxy at all: a traced call goes deeper than a direct one. */
        t_ok(traced > d[PATH_DIRECT], "stack: %s traced goes deeper than direct (%zu > %zu bytes)", name, traced,
             d[PATH_DIRECT]);
        t_ok(own_traced < OPENSSL_JOB_STACK / 2, "stack: %s: p11proxy's own frames, traced, %zu bytes < %d (half a job stack)",
             name, own_traced, OPENSSL_JOB_STACK / 2);
        if (own_traced > worst)
            worst = own_traced;
    }
    t_diag("deepest p11proxy call, traced: %zu bytes = %.1f%% of OpenSSL's %d-byte job stack", worst,
           100.0 * (double)worst / OPENSSL_JOB_STACK, OPENSSL_JOB_STACK);
}

int main(int argc, char **argv)
{
    /* Before OpenSSL allocates anything, or the hooks are refused. */
    int hooked = CRYPTO_set_mem_functions(hook_malloc, hook_realloc, hook_free);
    t_init(argc, argv);
    t_ok(hooked, "OpenSSL's allocations go through the test (guarded job stacks)");
    t_ok(ASYNC_is_capable(), "OpenSSL ASYNC jobs are available");
    depths = mmap(NULL, sizeof *depths, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (depths == MAP_FAILED)
        return 2;
    memset(depths, 0, sizeof *depths);

    const char *hsm = getenv("P11PROXY_CONFIG_DIR");
    if (t_ok(hsm && hsm[0], "P11PROXY_CONFIG_DIR names a SoftHSM2 config (Tests/integration/test_openssl_async.sh)")) {
        hsm_config_dir = strdup(hsm);
        t_scenario("C_Initialize in a job, tracing off", initialize_scenario, (void *)(long)TRACE_OFF);
        t_scenario("C_Initialize in a job, tracing text", initialize_scenario, (void *)(long)TRACE_TEXT);
        t_scenario("keygen", keygen_scenario, NULL);
        t_scenario("jobs, tracing off", jobs_scenario, (void *)(long)TRACE_OFF);
        t_scenario("jobs, tracing text", jobs_scenario, (void *)(long)TRACE_TEXT);
        t_scenario("jobs, tracing json", jobs_scenario, (void *)(long)TRACE_JSON);
    }
    for (int p = 0; p < N_PATHS; p++)
        t_scenario(path_names[p], stack_scenario, (void *)(long)p);
    report_depths();
    return t_done();
}
