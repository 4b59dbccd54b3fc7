/* test_trace_no_threads.c: a caller that initialises with
 * CKF_LIBRARY_CANT_CREATE_OS_THREADS (PKCS#11 3.0 section 5.4: its threads may not create
 * threads) gets no thread from p11proxy, and its trace file is still complete: with tracing to
 * a file, p11proxy would otherwise start its one thread (the trace flusher, which writes
 * buffered records within 100 ms). Threads are counted in /proc/self/task.
 *   1. The caller says so at C_Initialize: no thread appears, and after every traced call
 *      the file already ends with that call's record (written before the call returned);
 *      after C_Finalize the file holds each record once.
 *   2. Another caller started the flusher first (the control: it does exist): the thread
 *      ends when the second caller says so, records are written as they complete from then
 *      on, and the process stays without it, also after every caller finalised and a new
 *      C_Initialize without the flag.
 *   test_trace_no_threads PROXY_SO MOCK_DIR */
#define _GNU_SOURCE
#include "p11test.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int count_threads(void)
{
    DIR *dir = opendir("/proc/self/task");
    if (!dir)
        return -1;
    int n = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)))
        n += entry->d_name[0] != '.';
    closedir(dir);
    return n;
}

/* A joined thread can stay listed for a moment after pthread_join returns. */
static int threads_settle_at(int want)
{
    int n = count_threads();
    for (int i = 0; i < 200 && n != want; i++) {
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
        n = count_threads();
    }
    return n;
}

/* Records in a text trace: each ends with its "C_X = CKR_..." line (no other line starts with
 * "C_" and has " = "). */
static int count_records(const char *text)
{
    int n = 0;
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        if (!end)
            break;
        const char *equals = strstr(line, " = CKR_");
        n += strncmp(line, "C_", 2) == 0 && equals && equals < end;
        line = end + 1;
    }
    return n;
}

/* The last whole line of `text` (with its newline), or "". */
static const char *last_line(const char *text)
{
    size_t len = strlen(text);
    if (len == 0 || text[len - 1] != '\n')
        return "";
    const char *line = text + len - 1;
    while (line > text && line[-1] != '\n')
        line--;
    return line;
}

/* The file's last record is `function`'s, so it was written before the call returned. */
static void expect_last_record(const char *trace_path, const char *what, const char *function, int *records)
{
    char *text = t_read_file(trace_path);
    char footer[64];
    snprintf(footer, sizeof footer, "%s = CKR_OK\n", function);
    const char *last = last_line(text);
    t_ok(strcmp(last, footer) == 0, "%s: after %s returns, the trace file ends with its record (last line: %.*s)", what,
         function, (int)strcspn(last, "\n"), last);
    int now = count_records(text);
    t_ok(now > *records, "%s: %s added to the file at once (%d records, %d before)", what, function, now, *records);
    *records = now;
    free(text);
}

static void setup(const char *label, char **trace_path)
{
    char *conf = t_config_new(label);
    char *mock = t_mock_path("mock-a");
    t_config_module(conf, "mock-a", "module: %s\n", mock);
    t_config_use(conf);
    *trace_path = t_temp_path(label);
    t_trace_to(*trace_path, "text", 0);
}

/* Traced calls, each checked to be in the file when it returns; the thread count stays `want`. */
static void traced_calls(CK_FUNCTION_LIST_PTR f, const char *what, const char *trace_path, int want, int *records)
{
    CK_ULONG n = 0;
    t_rv(f->C_GetSlotList(CK_TRUE, NULL, &n), CKR_OK, "%s: C_GetSlotList", what);
    expect_last_record(trace_path, what, "C_GetSlotList", records);
    CK_SLOT_ID slot = t_slot_by_label(f, "mock-a-1");
    CK_TOKEN_INFO token;
    t_rv(f->C_GetTokenInfo(slot, &token), CKR_OK, "%s: C_GetTokenInfo", what);
    expect_last_record(trace_path, what, "C_GetTokenInfo", records);
    CK_SESSION_HANDLE h = 0;
    t_rv(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK, "%s: C_OpenSession", what);
    expect_last_record(trace_path, what, "C_OpenSession", records);
    CK_MECHANISM sha256 = {CKM_SHA256, NULL, 0};
    t_rv(f->C_DigestInit(h, &sha256), CKR_OK, "%s: C_DigestInit", what);
    expect_last_record(trace_path, what, "C_DigestInit", records);
    unsigned char digest[MOCK_DIGEST_LEN];
    CK_ULONG digest_len = sizeof digest;
    t_rv(f->C_Digest(h, (CK_BYTE_PTR) "abc", 3, digest, &digest_len), CKR_OK, "%s: C_Digest", what);
    expect_last_record(trace_path, what, "C_Digest", records);
    t_rv(f->C_CloseSession(h), CKR_OK, "%s: C_CloseSession", what);
    expect_last_record(trace_path, what, "C_CloseSession", records);
    t_ul((unsigned long)count_threads(), (unsigned long)want, "%s: threads after the calls", what);
}

static CK_C_INITIALIZE_ARGS cannot_create_threads = {.flags = CKF_LIBRARY_CANT_CREATE_OS_THREADS};

static void caller_says_so(void *arg)
{
    (void)arg;
    char *trace_path;
    setup("no-threads", &trace_path);
    struct t_proxy proxy;
    CK_FUNCTION_LIST_PTR f;
    int before = count_threads();
    if (!t_proxy_open(&proxy) || !(f = t_caller(&proxy)))
        return;
    t_ok(before >= 1, "threads before C_Initialize: %d", before);
    if (!t_rv(f->C_Initialize(&cannot_create_threads), CKR_OK, "C_Initialize with CKF_LIBRARY_CANT_CREATE_OS_THREADS"))
        return;
    t_ul((unsigned long)count_threads(), (unsigned long)before, "no thread created by C_Initialize (tracing to a file)");
    char *text = t_read_file(trace_path);
    int records = count_records(text);
    free(text);
    traced_calls(f, "caller without threads", trace_path, before, &records);
    t_rv(f->C_Finalize(NULL), CKR_OK, "C_Finalize");
    text = t_read_file(trace_path);
    int total = count_records(text);
    /* C_Finalize itself is traced too (the module's), written before it returned. */
    t_ul((unsigned long)total, (unsigned long)records + 1, "after C_Finalize: every record once (%d)", total);
    t_ok(strstr(text, "C_Finalize = CKR_OK\n") != NULL, "after C_Finalize: its own record is in the file");
    free(text);
    t_ul((unsigned long)count_threads(), (unsigned long)before, "no thread after C_Finalize");
}

static void another_caller_started_it(void *arg)
{
    (void)arg;
    char *trace_path;
    setup("stopped-thread", &trace_path);
    struct t_proxy proxy;
    CK_FUNCTION_LIST_PTR first, second;
    int before = count_threads();
    if (!t_proxy_open(&proxy) || !(first = t_caller(&proxy)) || !(second = t_caller(&proxy)))
        return;
    if (!t_rv(first->C_Initialize(NULL), CKR_OK, "first caller: C_Initialize without the flag"))
        return;
    /* ThreadSanitizer starts a thread of its own at the process's first pthread_create, so
     * from here on the count is compared with what it is once the flusher has gone. */
    int running = count_threads();
    t_ok(running > before, "control: the trace flusher thread runs for a caller that may have threads (%d threads, %d before)",
         running, before);
    if (!t_rv(second->C_Initialize(&cannot_create_threads), CKR_OK,
              "second caller: C_Initialize with CKF_LIBRARY_CANT_CREATE_OS_THREADS"))
        return;
    int without = threads_settle_at(running - 1);
    t_ul((unsigned long)without, (unsigned long)running - 1, "the flusher thread has ended");
    char *text = t_read_file(trace_path);
    int records = count_records(text);
    free(text);
    traced_calls(first, "first caller, after the second's C_Initialize", trace_path, without, &records);
    traced_calls(second, "second caller", trace_path, without, &records);
    t_rv(second->C_Finalize(NULL), CKR_OK, "second caller: C_Finalize");
    t_rv(first->C_Finalize(NULL), CKR_OK, "first caller: C_Finalize (the last)");
    t_rv(first->C_Initialize(NULL), CKR_OK, "first caller: C_Initialize again, without the flag");
    t_ul((unsigned long)count_threads(), (unsigned long)without, "still no thread: the process said it cannot have them");
    traced_calls(first, "first caller, initialised again", trace_path, without, &records);
    t_rv(first->C_Finalize(NULL), CKR_OK, "first caller: C_Finalize");
    text = t_read_file(trace_path);
    t_ul((unsigned long)count_records(text), (unsigned long)records + 1, "every record once in the file");
    free(text);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_scenario("the caller cannot create threads", caller_says_so, NULL);
    t_scenario("a second caller cannot create threads", another_caller_started_it, NULL);
    return t_done();
}
