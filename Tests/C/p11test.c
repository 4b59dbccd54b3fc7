/* p11test.c: the shared test helpers declared in p11test.h. */
#define _GNU_SOURCE
#include "p11test.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *t_proxy_path;
const char *t_proxy_path_unresolved;
const char *t_mock_dir;

/* Check numbering and counts live in a shared page so forked scenarios add to them. */
static struct counters {
    int next;
    int passed;
    int failed;
} *counters;

static char temp_root[PATH_MAX];
static pid_t main_pid;

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Only the main process cleans up; forked scenarios leave through _exit. */
static void remove_temp_root(void)
{
    if (getpid() != main_pid || !temp_root[0] || getenv("P11TEST_KEEP"))
        return;
    nftw(temp_root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static char *absolute(const char *path)
{
    char *abs = realpath(path, NULL);
    return abs ? abs : strdup(path); /* a missing proxy is reported when it is opened */
}

void t_init(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3) {
        fprintf(stderr, "usage: %s PROXY_SO MOCK_DIR\n", argv[0]);
        exit(2);
    }
    t_proxy_path = absolute(argv[1]);
    if (argv[1][0] == '/') {
        t_proxy_path_unresolved = strdup(argv[1]);
    } else {
        char cwd[PATH_MAX], *joined;
        if (!getcwd(cwd, sizeof cwd) || asprintf(&joined, "%s/%s", cwd, argv[1]) < 0)
            abort();
        t_proxy_path_unresolved = joined;
    }
    t_mock_dir = absolute(argv[2]);
    counters = mmap(NULL, sizeof *counters, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (counters == MAP_FAILED) {
        perror("mmap");
        exit(2);
    }
    main_pid = getpid();
    snprintf(temp_root, sizeof temp_root, "%s/p11proxy-test-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(temp_root)) {
        perror("mkdtemp");
        exit(2);
    }
    atexit(remove_temp_root);
    printf("# proxy %s\n# mocks %s\n# temp %s\n", t_proxy_path, t_mock_dir, temp_root);
}

int t_done(void)
{
    int passed = __atomic_load_n(&counters->passed, __ATOMIC_SEQ_CST);
    int failed = __atomic_load_n(&counters->failed, __ATOMIC_SEQ_CST);
    printf("1..%d\n# %d passed, %d failed\n", passed + failed, passed, failed);
    return failed ? 1 : 0;
}

int t_failures(void)
{
    return __atomic_load_n(&counters->failed, __ATOMIC_SEQ_CST);
}

static int report(int cond, const char *detail, const char *fmt, va_list ap)
{
    char what[1024];
    vsnprintf(what, sizeof what, fmt, ap);
    int n = __atomic_add_fetch(&counters->next, 1, __ATOMIC_SEQ_CST);
    __atomic_add_fetch(cond ? &counters->passed : &counters->failed, 1, __ATOMIC_SEQ_CST);
    if (cond)
        printf("ok %d - %s\n", n, what);
    else if (detail && detail[0])
        printf("not ok %d - %s (%s)\n", n, what, detail);
    else
        printf("not ok %d - %s\n", n, what);
    return cond;
}

int t_ok(int cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(cond, NULL, fmt, ap);
    va_end(ap);
    return cond;
}

int t_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    report(0, NULL, fmt, ap);
    va_end(ap);
    return 0;
}

int t_rv(CK_RV got, CK_RV want, const char *fmt, ...)
{
    char detail[160];
    snprintf(detail, sizeof detail, "got %s, want %s", t_rv_name(got), t_rv_name(want));
    va_list ap;
    va_start(ap, fmt);
    report(got == want, detail, fmt, ap);
    va_end(ap);
    return got == want;
}

int t_ul(unsigned long got, unsigned long want, const char *fmt, ...)
{
    char detail[160];
    snprintf(detail, sizeof detail, "got %lu (0x%lx), want %lu (0x%lx)", got, got, want, want);
    va_list ap;
    va_start(ap, fmt);
    report(got == want, detail, fmt, ap);
    va_end(ap);
    return got == want;
}

int t_str(const char *got, const char *want, const char *fmt, ...)
{
    char detail[600];
    int same = got && want && strcmp(got, want) == 0;
    snprintf(detail, sizeof detail, "got \"%s\", want \"%s\"", got ? got : "(null)", want ? want : "(null)");
    va_list ap;
    va_start(ap, fmt);
    report(same, detail, fmt, ap);
    va_end(ap);
    return same;
}

void t_diag(const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    printf("# %s\n", text);
}

const char *t_rv_name(CK_RV rv)
{
    static const struct {
        CK_RV rv;
        const char *name;
    } names[] = {
#define N(x) {x, #x}
        N(CKR_OK),
        N(CKR_CANCEL),
        N(CKR_HOST_MEMORY),
        N(CKR_SLOT_ID_INVALID),
        N(CKR_GENERAL_ERROR),
        N(CKR_FUNCTION_FAILED),
        N(CKR_ARGUMENTS_BAD),
        N(CKR_NO_EVENT),
        N(CKR_NEED_TO_CREATE_THREADS),
        N(CKR_CANT_LOCK),
        N(CKR_ATTRIBUTE_READ_ONLY),
        N(CKR_ATTRIBUTE_SENSITIVE),
        N(CKR_ATTRIBUTE_TYPE_INVALID),
        N(CKR_ATTRIBUTE_VALUE_INVALID),
        N(CKR_ACTION_PROHIBITED),
        N(CKR_DATA_INVALID),
        N(CKR_DATA_LEN_RANGE),
        N(CKR_DEVICE_ERROR),
        N(CKR_DEVICE_MEMORY),
        N(CKR_DEVICE_REMOVED),
        N(CKR_FUNCTION_CANCELED),
        N(CKR_FUNCTION_NOT_PARALLEL),
        N(CKR_FUNCTION_NOT_SUPPORTED),
        N(CKR_KEY_HANDLE_INVALID),
        N(CKR_MECHANISM_INVALID),
        N(CKR_OBJECT_HANDLE_INVALID),
        N(CKR_OPERATION_ACTIVE),
        N(CKR_OPERATION_NOT_INITIALIZED),
        N(CKR_PIN_INCORRECT),
        N(CKR_SESSION_CLOSED),
        N(CKR_SESSION_COUNT),
        N(CKR_SESSION_HANDLE_INVALID),
        N(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
        N(CKR_SESSION_READ_ONLY),
        N(CKR_SESSION_EXISTS),
        N(CKR_SIGNATURE_INVALID),
        N(CKR_SIGNATURE_LEN_RANGE),
        N(CKR_TEMPLATE_INCOMPLETE),
        N(CKR_TEMPLATE_INCONSISTENT),
        N(CKR_TOKEN_NOT_PRESENT),
        N(CKR_USER_ALREADY_LOGGED_IN),
        N(CKR_USER_NOT_LOGGED_IN),
        N(CKR_USER_TYPE_INVALID),
        N(CKR_BUFFER_TOO_SMALL),
        N(CKR_CRYPTOKI_NOT_INITIALIZED),
        N(CKR_CRYPTOKI_ALREADY_INITIALIZED),
#undef N
    };
    static __thread char unknown[32];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].rv == rv)
            return names[i].name;
    snprintf(unknown, sizeof unknown, "CKR_0x%lx", (unsigned long)rv);
    return unknown;
}

void t_scenario(const char *name, void (*fn)(void *), void *arg)
{
    int timeout = getenv("P11TEST_TIMEOUT") ? atoi(getenv("P11TEST_TIMEOUT")) : 120;
    t_diag("scenario: %s", name);
    fflush(stdout);
    fflush(stderr);
    int before = t_failures();
    pid_t pid = fork();
    if (pid < 0) {
        t_fail("%s: fork (%s)", name, strerror(errno));
        return;
    }
    if (pid == 0) {
        alarm(timeout);
        fn(arg);
        fflush(stdout);
        _exit(0);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        t_fail("%s: scenario ended cleanly (killed by signal %d %s%s)", name, sig, strsignal(sig),
               sig == SIGALRM ? ", timeout" : "");
    } else if (WEXITSTATUS(status) != 0) {
        t_fail("%s: scenario ended cleanly (exit status %d)", name, WEXITSTATUS(status));
    } else if (t_failures() != before) {
        t_diag("scenario %s: %d failed check(s)", name, t_failures() - before);
    }
}

char *t_read_file(const char *path)
{
    FILE *file = fopen(path, "r");
    size_t capacity = 1 << 16, n = 0, got;
    char *text = malloc(capacity);
    if (!text)
        abort();
    while (file && (got = fread(text + n, 1, capacity - n - 1, file)) > 0) {
        n += got;
        if (n + 1 == capacity && !(text = realloc(text, capacity *= 2)))
            abort();
    }
    if (file)
        fclose(file);
    text[n] = 0;
    return text;
}

void t_trace_to(const char *path, const char *format, int secrets)
{
    setenv("P11PROXY_LOG_CALLS", "yes", 1);
    setenv("P11PROXY_LOG_FILE", path, 1);
    setenv("P11PROXY_LOG_FORMAT", format, 1);
    setenv("P11PROXY_LOG_SECRETS", secrets ? "yes" : "no", 1);
}

char *t_temp_path(const char *name)
{
    char *path;
    if (asprintf(&path, "%s/%s", temp_root, name) < 0)
        abort();
    return path;
}

static char *stderr_path;

void t_capture_stderr(const char *name)
{
    stderr_path = t_temp_path(name);
    int fd = open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || dup2(fd, 2) < 0)
        perror("capture stderr");
    if (fd > 2)
        close(fd);
}

const char *t_stderr_text(void)
{
    static char text[16384];
    text[0] = 0;
    FILE *in = stderr_path ? fopen(stderr_path, "r") : NULL;
    if (in) {
        size_t n = fread(text, 1, sizeof text - 1, in);
        text[n] = 0;
        fclose(in);
    }
    return text;
}

/* Every config dir path handed out stays reachable from here (most callers never free it), so
 * that a LeakSanitizer build reports leaks of the code under test, not of this harness. A
 * caller may still free its path; this list is never read (external, so the compiler keeps the
 * stores). */
char **t_kept_paths;
size_t t_n_kept_paths;

char *t_config_new(const char *label)
{
    static int seq;
    char *dir, *modules;
    if (asprintf(&dir, "%s/conf-%d-%d-%s", temp_root, (int)getpid(), ++seq, label) < 0)
        abort();
    char **kept = realloc(t_kept_paths, (t_n_kept_paths + 1) * sizeof *kept);
    if (!kept)
        abort();
    t_kept_paths = kept;
    t_kept_paths[t_n_kept_paths++] = dir;
    if (asprintf(&modules, "%s/modules", dir) < 0)
        abort();
    if (mkdir(dir, 0700) != 0 || mkdir(modules, 0700) != 0) {
        fprintf(stderr, "mkdir %s: %s\n", modules, strerror(errno));
        abort();
    }
    free(modules);
    return dir;
}

static void write_file(const char *path, const char *fmt, va_list ap)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "fopen %s: %s\n", path, strerror(errno));
        abort();
    }
    vfprintf(f, fmt, ap);
    fclose(f);
}

void t_config_module(const char *dir, const char *name, const char *fmt, ...)
{
    char *path;
    if (asprintf(&path, "%s/modules/%s.module", dir, name) < 0)
        abort();
    va_list ap;
    va_start(ap, fmt);
    write_file(path, fmt, ap);
    va_end(ap);
    free(path);
}

void t_config_file(const char *dir, const char *relpath, const char *fmt, ...)
{
    char *path;
    if (asprintf(&path, "%s/%s", dir, relpath) < 0)
        abort();
    va_list ap;
    va_start(ap, fmt);
    write_file(path, fmt, ap);
    va_end(ap);
    free(path);
}

void t_config_use(const char *dir)
{
    setenv("P11PROXY_CONFIG_DIR", dir, 1);
}

char *t_mock_path(const char *name)
{
    char *path;
    if (asprintf(&path, "%s/lib%s.so", t_mock_dir, name) < 0)
        abort();
    return path;
}

int t_mock_open(struct t_mock *m, const char *name)
{
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    char *path = t_mock_path(name);
    snprintf(m->path, sizeof m->path, "%s", path);
    free(path);
    m->dl = dlopen(m->path, RTLD_NOW | RTLD_LOCAL);
    if (!m->dl)
        return t_fail("load mock %s (%s)", name, dlerror());
    m->stats = (mock_stats_fn)dlsym(m->dl, "mock_stats");
    m->control = (mock_control_fn)dlsym(m->dl, "mock_control");
    if (!m->stats || !m->control)
        return t_fail("mock %s exports mock_stats and mock_control", name);
    return 1;
}

struct mock_stats t_mock_stats(struct t_mock *m)
{
    struct mock_stats s;
    memset(&s, 0, sizeof s);
    if (m->stats)
        m->stats(&s);
    return s;
}

CK_RV t_mock_control(struct t_mock *m, int op, CK_ULONG arg)
{
    return m->control ? m->control(op, arg) : CKR_GENERAL_ERROR;
}

int t_proxy_open(struct t_proxy *p)
{
    return t_proxy_open_path(p, t_proxy_path);
}

int t_proxy_open_path(struct t_proxy *p, const char *path)
{
    memset(p, 0, sizeof *p);
    p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!p->dl)
        return t_fail("dlopen proxy %s (%s)", path, dlerror());
    p->get_function_list = (CK_C_GetFunctionList)dlsym(p->dl, "C_GetFunctionList");
    p->get_interface_list = (CK_C_GetInterfaceList)dlsym(p->dl, "C_GetInterfaceList");
    p->get_interface = (CK_C_GetInterface)dlsym(p->dl, "C_GetInterface");
    if (!p->get_function_list)
        return t_fail("proxy exports C_GetFunctionList");
    return 1;
}

int t_copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    FILE *out = in ? fopen(to, "wb") : NULL;
    char buffer[65536];
    size_t n;
    int ok = in && out;
    while (ok && (n = fread(buffer, 1, sizeof buffer, in)) > 0)
        ok = fwrite(buffer, 1, n, out) == n;
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        ok = 0;
    return ok ? 1 : t_fail("copy %s to %s (%s)", from, to, strerror(errno));
}

void t_proxy_close(struct t_proxy *p)
{
    if (p->dl)
        dlclose(p->dl);
    memset(p, 0, sizeof *p);
}

CK_FUNCTION_LIST_PTR t_caller(struct t_proxy *p)
{
    CK_FUNCTION_LIST_PTR f = NULL;
    CK_RV rv = p->get_function_list ? p->get_function_list(&f) : CKR_GENERAL_ERROR;
    if (rv != CKR_OK || !f) {
        t_fail("C_GetFunctionList gives a caller (got %s)", t_rv_name(rv));
        return NULL;
    }
    return f;
}

CK_RV t_slot_list(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID **slots, CK_ULONG *n)
{
    *slots = NULL;
    *n = 0;
    for (int attempt = 0; attempt < 5; attempt++) {
        CK_ULONG count = 0;
        CK_RV rv = f->C_GetSlotList(CK_FALSE, NULL, &count);
        if (rv != CKR_OK)
            return rv;
        CK_SLOT_ID *list = calloc(count + 1, sizeof *list);
        rv = f->C_GetSlotList(CK_FALSE, list, &count);
        if (rv == CKR_BUFFER_TOO_SMALL) {
            free(list);
            continue;
        }
        if (rv != CKR_OK) {
            free(list);
            return rv;
        }
        *slots = list;
        *n = count;
        return CKR_OK;
    }
    return CKR_BUFFER_TOO_SMALL;
}

void t_trim(char *dst, const unsigned char *src, size_t n)
{
    while (n > 0 && (src[n - 1] == ' ' || src[n - 1] == 0))
        n--;
    memcpy(dst, src, n);
    dst[n] = 0;
}

CK_RV t_token_label(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID slot, char label[33])
{
    CK_TOKEN_INFO info;
    label[0] = 0;
    CK_RV rv = f->C_GetTokenInfo(slot, &info);
    if (rv == CKR_OK)
        t_trim(label, info.label, sizeof info.label);
    return rv;
}

CK_SLOT_ID t_slot_by_label(CK_FUNCTION_LIST_PTR f, const char *label)
{
    CK_SLOT_ID *slots, found = T_NO_SLOT;
    CK_ULONG n;
    if (t_slot_list(f, &slots, &n) != CKR_OK)
        return T_NO_SLOT;
    for (CK_ULONG i = 0; i < n && found == T_NO_SLOT; i++) {
        char l[33];
        if (t_token_label(f, slots[i], l) == CKR_OK && strcmp(l, label) == 0)
            found = slots[i];
    }
    free(slots);
    return found;
}

CK_SLOT_ID t_open_on_label(CK_FUNCTION_LIST_PTR f, const char *label, CK_SESSION_HANDLE *h, char *why,
                           size_t why_len)
{
    CK_SLOT_ID slot = t_slot_by_label(f, label);
    CK_RV rv;
    char token[33];
    if (slot == T_NO_SLOT)
        return snprintf(why, why_len, "%s not listed", label), T_NO_SLOT;
    if ((rv = t_token_label(f, slot, token)) != CKR_OK)
        return snprintf(why, why_len, "C_GetTokenInfo: %s", t_rv_name(rv)), T_NO_SLOT;
    if ((rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, h)) != CKR_OK)
        return snprintf(why, why_len, "C_OpenSession: %s", t_rv_name(rv)), T_NO_SLOT;
    return slot;
}

CK_RV t_digest(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE h, const void *data, size_t len,
               unsigned char out[MOCK_DIGEST_LEN])
{
    CK_MECHANISM mech = {CKM_SHA256, NULL, 0};
    CK_RV rv = f->C_DigestInit(h, &mech);
    if (rv != CKR_OK)
        return rv;
    CK_ULONG out_len = MOCK_DIGEST_LEN;
    rv = f->C_Digest(h, (CK_BYTE_PTR)data, len, out, &out_len);
    if (rv == CKR_OK && out_len != MOCK_DIGEST_LEN)
        return CKR_GENERAL_ERROR;
    return rv;
}

int t_all_distinct(const CK_ULONG *v, CK_ULONG n)
{
    for (CK_ULONG i = 0; i < n; i++)
        for (CK_ULONG j = i + 1; j < n; j++)
            if (v[i] == v[j])
                return 0;
    return 1;
}

int t_no_uninit_calls(const struct mock_stats *s, unsigned long baseline, const char *who)
{
    unsigned long extra = s->calls_while_uninitialised - baseline;
    if (extra == 0)
        return t_ok(1, "%s: never called while uninitialised", who);
    return t_fail("%s: never called while uninitialised (%lu such calls, the last %s)", who, extra,
                  mock_fn_name(s->last_call_while_uninitialised));
}

double t_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *t_waiter_main(void *arg)
{
    struct t_waiter *w = arg;
    w->slot = T_NO_SLOT;
    w->rv = w->f->C_WaitForSlotEvent(0, &w->slot, NULL);
    w->returned_at = t_now();
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

void t_waiter_start(struct t_waiter *w, CK_FUNCTION_LIST_PTR f)
{
    memset(w, 0, sizeof *w);
    w->f = f;
    pthread_create(&w->thread, NULL, t_waiter_main, w);
}

int t_waiter_done(struct t_waiter *w)
{
    return __atomic_load_n(&w->done, __ATOMIC_ACQUIRE);
}

int t_waiter_returns(struct t_waiter *w, double seconds)
{
    double end = t_now() + seconds;
    while (!t_waiter_done(w) && t_now() < end)
        usleep(2000);
    if (!t_waiter_done(w))
        return 0;
    pthread_join(w->thread, NULL);
    return 1;
}
