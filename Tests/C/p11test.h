/* p11test.h: what every C test program shares: TAP-style checks whose numbering and
 * counts survive forked scenarios, loading the proxy and the mock modules the way a C
 * application would (dlopen + dlsym), and writing p11-kit style config directories. */
#ifndef P11PROXY_P11TEST_H
#define P11PROXY_P11TEST_H

#include <pthread.h>
#include <stddef.h>

#include "p11proxy_pkcs11.h"
#include "mock_control.h"
#include "mock_algo.h"

/* argv[1]: the proxy .so, argv[2]: the directory holding libmock-*.so (both made absolute). */
extern const char *t_proxy_path;
extern const char *t_proxy_path_unresolved; /* argv[1] made absolute, symlinks kept */
extern const char *t_mock_dir;

void t_init(int argc, char **argv);
/* Prints the summary and returns the exit status for main. */
int t_done(void);

/* Each prints "ok N - what" or "not ok N - what (got X, want Y)"; returns cond. */
int t_ok(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int t_rv(CK_RV got, CK_RV want, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int t_ul(unsigned long got, unsigned long want, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int t_str(const char *got, const char *want, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A failed check whose message says itself what went wrong. */
int t_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void t_diag(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *t_rv_name(CK_RV rv);
int t_failures(void);

/* Runs fn in a forked child (a fresh process state for the proxy: it reads its config
 * when the first caller initialises). A crash, a hang past the timeout or a non-zero
 * exit is reported as a failed check. */
void t_scenario(const char *name, void (*fn)(void *), void *arg);

/* Config directories: DIR/modules/NAME.module and DIR/pkcs11.conf, under one temporary
 * tree that the main process removes at exit (kept when P11TEST_KEEP is set). */
char *t_config_new(const char *label);
void t_config_module(const char *dir, const char *name, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void t_config_file(const char *dir, const char *relpath, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void t_config_use(const char *dir);
/* "<mock dir>/lib<name>.so"; the caller frees. */
char *t_mock_path(const char *name);
/* A scratch path under the temporary tree; the caller frees. */
char *t_temp_path(const char *name);
/* The whole file as a string ("" if it cannot be read); the caller frees. */
char *t_read_file(const char *path);
/* Standard error of this (scenario) process goes to the scratch file `name` from here on;
 * t_stderr_text reads it back, so a check can look for the proxy's messages. */
void t_capture_stderr(const char *name);
const char *t_stderr_text(void); /* a static buffer, up to 16 KiB */
/* Tracing on for the proxy loaded next: P11PROXY_LOG_CALLS=yes, _FILE, _FORMAT, _SECRETS. */
void t_trace_to(const char *path, const char *format, int secrets);

struct t_mock {
    char name[32];
    char path[4096];
    void *dl;
    mock_stats_fn stats;
    mock_control_fn control;
};
/* dlopen(RTLD_NOW) of the mock: the proxy's dlopen of the same file then gets this very
 * instance, and our reference keeps it (and its counters) alive across proxy reloads. */
int t_mock_open(struct t_mock *m, const char *name);
struct mock_stats t_mock_stats(struct t_mock *m);
CK_RV t_mock_control(struct t_mock *m, int op, CK_ULONG arg);

struct t_proxy {
    void *dl;
    CK_C_GetFunctionList get_function_list;
    CK_C_GetInterfaceList get_interface_list;
    CK_C_GetInterface get_interface;
};
int t_proxy_open(struct t_proxy *p);
/* The same from another file (a second copy of p11proxy in the process). */
int t_proxy_open_path(struct t_proxy *p, const char *path);
/* Copies a file (1), or reports why not (0). */
int t_copy_file(const char *from, const char *to);
void t_proxy_close(struct t_proxy *p);
/* A new caller from C_GetFunctionList, or NULL (reported). */
CK_FUNCTION_LIST_PTR t_caller(struct t_proxy *p);

/* Small PKCS#11 helpers. */
CK_RV t_slot_list(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID **slots, CK_ULONG *n); /* *slots: free() */
void t_trim(char *dst, const unsigned char *src, size_t n);                /* blank-padded -> C string */
CK_RV t_token_label(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID slot, char label[33]);
/* The proxy slot whose token label is `label`, or (CK_SLOT_ID)-1. */
CK_SLOT_ID t_slot_by_label(CK_FUNCTION_LIST_PTR f, const char *label);
/* A caller's first steps with a token: its slot found by label, its token info read again, a
 * serial session opened (*h). The slot, or T_NO_SLOT with what failed in `why`. */
CK_SLOT_ID t_open_on_label(CK_FUNCTION_LIST_PTR f, const char *label, CK_SESSION_HANDLE *h, char *why,
                           size_t why_len);
CK_RV t_digest(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE h, const void *data, size_t len,
               unsigned char out[MOCK_DIGEST_LEN]);
int t_all_distinct(const CK_ULONG *v, CK_ULONG n);
/* Checks that no call reached the mock while it was not initialised since `baseline`
 * calls; a failure names the last such function. */
int t_no_uninit_calls(const struct mock_stats *s, unsigned long baseline, const char *who);

/* Monotonic seconds. */
double t_now(void);

/* A thread sitting in a blocking C_WaitForSlotEvent(0) of `f` (slot starts as T_NO_SLOT). */
struct t_waiter {
    CK_FUNCTION_LIST_PTR f;
    pthread_t thread;
    CK_SLOT_ID slot;
    CK_RV rv;
    int done; /* atomic */
    double returned_at;
};
void t_waiter_start(struct t_waiter *w, CK_FUNCTION_LIST_PTR f);
int t_waiter_done(struct t_waiter *w);
/* Waits up to `seconds` for the waiter to return; joins it if it did. */
int t_waiter_returns(struct t_waiter *w, double seconds);

/* ThreadSanitizer refuses by default to start a thread in the child of a multi-threaded fork;
 * a program whose fork children start threads (p11proxy's trace flusher, a waiter of their
 * own) says so once, at file scope, with this. */
#ifndef __has_feature
#define __has_feature(x) 0
#endif
#if defined(__SANITIZE_THREAD__) || __has_feature(thread_sanitizer)
#define T_TSAN_THREADS_AFTER_FORK                                                                    \
    const char *__tsan_default_options(void);                                                       \
    const char *__tsan_default_options(void) { return "die_after_fork=0"; }
#else
#define T_TSAN_THREADS_AFTER_FORK
#endif

#define T_NO_SLOT ((CK_SLOT_ID)-1)

#endif
