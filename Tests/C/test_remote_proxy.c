/* test_remote_proxy.c: `remote:` modules through the built proxy against Debian's own
 * `p11-kit server` (started here, in the temporary directory, in a process group of its own)
 * over a SoftHSM2 token made here, or over a mock module:
 *   - threads and callers: 4 threads of each of 2 callers open sessions on the remote token,
 *     ask for their info, digest data of their own (SHA-256 known answers: a reply meant for
 *     another thread would not match), generate random and close; one caller's
 *     C_CloseAllSessions leaves the other's sessions, and a digest begun on one, intact;
 *   - a blocking C_WaitForSlotEvent (mock-hang served by `p11-kit server`: its blocking wait
 *     never returns): with the remote module alone the wait has a connection of its own and
 *     blocks no other thread, caller or new caller, nor a fork child's own wait; beside a local
 *     module p11proxy polls both, calls on both go on, a local event ends the wait; the last
 *     C_Finalize ends it, bounded;
 *   - the server killed mid-use: calls on its sessions fail within seconds with
 *     CKR_DEVICE_ERROR or CKR_DEVICE_REMOVED, its slot is no longer listed, the local module
 *     never stops working; restarted on the same socket, the module and its token (digest,
 *     ECDSA) are back at the first C_Initialize after every caller finalised; killed under a
 *     blocking wait: the wait ends, and with the server back the next waits fail at once,
 *     without connecting to it, until then;
 *   - fork: a child initialises again and digests over a connection of its own while the
 *     parent's thread keeps digesting over its own (no crossed replies), and exits cleanly;
 *   - `remote: |p11-kit remote ...`: the command is this process's only child while
 *     initialised, and none is left, not even a zombie, once C_Finalize returns (also a
 *     command stuck in a wait that never ends).
 * Needs p11-kit (`p11-kit server`, `p11-kit remote`), softhsm2-util and SoftHSM2's module
 * (SOFTHSM_SO, else Debian's paths). Servers load the plain mock build even when the tests
 * run with sanitizer builds (p11-kit's programs have no sanitizer runtime). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "p11test.h"

/* ThreadSanitizer refuses by default to start a thread in the child of a multi-threaded fork;
 * fork_during_wait's child starts a waiting thread of its own. */
T_TSAN_THREADS_AFTER_FORK

/* A call that nothing blocks answers within this many seconds. */
#define PROMPT_S 2.0
/* Calls on a server that died fail within this many seconds. */
#define DEATH_S 3.0
/* Each scenario ends within this many seconds, or fails as a timeout (SIGALRM). */
#define SCENARIO_S 60

#define TOKEN_LABEL "remote-token"
#define USER_PIN "1234"
#define HANG_TAG 0x4 /* mock-hang's MOCK_TAG (tests.mk) */
#define LOCAL_TAG 0xB /* mock-b's */

static const char *softhsm_so;
static int have_token; /* the SoftHSM2 token was made */

/* ---- SHA-256 (FIPS 180-4), to know what SoftHSM2 must answer ---- */

static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t ror(uint32_t x, int n)
{
    return x >> n | x << (32 - n);
}

static void sha256_block(uint32_t h[8], const unsigned char *p)
{
    uint32_t w[64], v[8];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ w[i - 15] >> 3;
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ w[i - 2] >> 10;
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(v, h, sizeof v);
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = v[7] + (ror(v[4], 6) ^ ror(v[4], 11) ^ ror(v[4], 25)) + ((v[4] & v[5]) ^ (~v[4] & v[6])) +
                      sha256_k[i] + w[i];
        uint32_t t2 = (ror(v[0], 2) ^ ror(v[0], 13) ^ ror(v[0], 22)) + ((v[0] & v[1]) ^ (v[0] & v[2]) ^ (v[1] & v[2]));
        memmove(v + 1, v, 7 * sizeof v[0]);
        v[4] += t1;
        v[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++)
        h[i] += v[i];
}

static void sha256(const void *data, size_t n, unsigned char out[32])
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const unsigned char *p = data;
    size_t whole = n / 64 * 64;
    for (size_t i = 0; i < whole; i += 64)
        sha256_block(h, p + i);
    unsigned char tail[128] = {0};
    size_t rest = n - whole, padded = rest < 56 ? 64 : 128;
    memcpy(tail, p + whole, rest);
    tail[rest] = 0x80;
    for (int i = 0; i < 8; i++)
        tail[padded - 1 - i] = (unsigned char)((uint64_t)n * 8 >> (8 * i));
    for (size_t i = 0; i < padded; i += 64)
        sha256_block(h, tail + i);
    for (int i = 0; i < 8; i++)
        for (int b = 0; b < 4; b++)
            out[4 * i + b] = (unsigned char)(h[i] >> (24 - 8 * b));
}

/* ---- Processes: servers, commands, /proc ---- */

/* Children of `parent` (named `comm`, or all when NULL), zombies included; `zombies` (if not
 * NULL) gets how many of them are zombies. */
static int children_of(pid_t parent, const char *comm, int *zombies)
{
    DIR *proc = opendir("/proc");
    struct dirent *entry;
    int n = 0;
    if (zombies)
        *zombies = 0;
    while (proc && (entry = readdir(proc))) {
        if (entry->d_name[0] < '0' || entry->d_name[0] > '9')
            continue;
        char path[300], text[512];
        snprintf(path, sizeof path, "/proc/%s/stat", entry->d_name);
        FILE *in = fopen(path, "r");
        if (!in)
            continue;
        size_t len = fread(text, 1, sizeof text - 1, in);
        fclose(in);
        text[len] = 0;
        /* "pid (comm) state ppid ...": comm may hold spaces and parentheses. */
        char *open = strchr(text, '('), *close = strrchr(text, ')');
        char state;
        int ppid;
        if (!open || !close || sscanf(close + 1, " %c %d", &state, &ppid) != 2 || ppid != parent)
            continue;
        *close = 0;
        if (comm && strcmp(open + 1, comm) != 0)
            continue;
        n++;
        if (zombies && state == 'Z')
            (*zombies)++;
    }
    if (proc)
        closedir(proc);
    return n;
}

/* Polls until children_of(parent, comm) is `want`, for up to `seconds`; returns the last count.
 * A server's connections are its `p11-kit-remote` children, one each. */
static int children_reach(pid_t parent, const char *comm, int want, double seconds)
{
    double end = t_now() + seconds;
    int n;
    while ((n = children_of(parent, comm, NULL)) != want && t_now() < end)
        usleep(10 * 1000);
    return n;
}

/* Runs argv (PATH searched) with its output in the scratch file `log`; 1 if it exited 0. */
static int run_command(char *const argv[], const char *log)
{
    char *log_path = t_temp_path(log);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    free(log_path);
    int status;
    while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

struct server {
    pid_t pid; /* also its process group */
    char socket[PATH_MAX];
    char name[32];
};

/* Whether a unix socket is bound to `path` and listening (/proc/net/unix: flags 0x10000, the
 * kernel's __SO_ACCEPTCON). Not by connecting: the server would start a process to serve the
 * probe, which the tests counting connections would see. */
static int is_listening(const char *path)
{
    FILE *in = fopen("/proc/net/unix", "r");
    char line[PATH_MAX + 128];
    int found = 0;
    while (in && !found && fgets(line, sizeof line, in)) {
        unsigned long flags;
        char bound[PATH_MAX + 1];
        line[strcspn(line, "\n")] = 0;
        if (sscanf(line, "%*s %*s %*s %lx %*s %*s %*s %4096s", &flags, bound) == 2)
            found = (flags & 0x10000) && strcmp(bound, path) == 0;
    }
    if (in)
        fclose(in);
    return found;
}

/* `p11-kit server -f -n SOCKET SERVED...` in a process group of its own: it forks one
 * `p11-kit-remote` per connection into that group, so that one kill ends them all. Waits
 * until it listens. */
static int server_start(struct server *s, const char *name, const char *const served[])
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    char *socket_path = t_temp_path(name);
    snprintf(s->socket, sizeof s->socket, "%s.sock", socket_path);
    free(socket_path);
    unlink(s->socket);
    char *log_name;
    if (asprintf(&log_name, "server-%s.log", name) < 0)
        abort();
    char *log_path = t_temp_path(log_name);
    free(log_name);
    const char *argv[16] = {"p11-kit", "server", "-f", "-n", s->socket};
    int argc = 5;
    for (int i = 0; served[i] && argc < 15; i++)
        argv[argc++] = served[i];
    fflush(stdout);
    s->pid = fork();
    if (s->pid == 0) {
        setpgid(0, 0);
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    if (s->pid < 0) {
        free(log_path);
        return t_fail("%s: fork for p11-kit server (%s)", name, strerror(errno));
    }
    setpgid(s->pid, s->pid);
    double end = t_now() + 10;
    int ready = 0;
    while (!(ready = is_listening(s->socket)) && t_now() < end && waitpid(s->pid, NULL, WNOHANG) == 0)
        usleep(20 * 1000);
    int ok = t_ok(ready, "%s: p11-kit server listens on its socket", name);
    if (!ok) {
        char *log = t_read_file(log_path);
        t_diag("server log: %s", log);
        free(log);
    }
    free(log_path);
    return ok;
}

/* SIGKILL to the server and every process serving one of its connections. */
static void server_stop(struct server *s)
{
    if (s->pid <= 0)
        return;
    kill(-s->pid, SIGKILL);
    kill(s->pid, SIGKILL);
    while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    s->pid = 0;
}

static const char *const *softhsm_served(void)
{
    static const char *served[4];
    served[0] = "--provider";
    served[1] = softhsm_so;
    served[2] = "pkcs11:";
    return served;
}

/* A mock for a p11-kit process to load: the plain build, also when the tests run with a
 * sanitizer build in build/mock-tsan or build/mock-asan (p11-kit's programs lack the runtime). */
static char *served_mock_path(const char *name)
{
    char *path = t_mock_path(name);
    size_t n = strlen(t_mock_dir);
    if (n > 5 && (strcmp(t_mock_dir + n - 5, "-tsan") == 0 || strcmp(t_mock_dir + n - 5, "-asan") == 0)) {
        char *plain;
        if (asprintf(&plain, "%.*s/lib%s.so", (int)(n - 5), t_mock_dir, name) < 0)
            abort();
        if (access(plain, R_OK) == 0) {
            free(path);
            return plain;
        }
        free(plain);
    }
    return path;
}

/* A SoftHSM2 token store in the temporary tree, for every server and command started later
 * (SOFTHSM2_CONF). */
static int make_token(void)
{
    char *dir = t_temp_path("hsm"), *tokens = t_temp_path("hsm/tokens");
    if (mkdir(dir, 0700) != 0 || mkdir(tokens, 0700) != 0)
        return t_fail("mkdir %s (%s)", tokens, strerror(errno));
    t_config_file(dir, "softhsm2.conf", "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
                  tokens);
    char *conf;
    if (asprintf(&conf, "%s/softhsm2.conf", dir) < 0)
        abort();
    setenv("SOFTHSM2_CONF", conf, 1);
    char *argv[] = {"softhsm2-util", "--init-token", "--free", "--label", TOKEN_LABEL, "--so-pin", "12345678",
                    "--pin", USER_PIN, NULL};
    int ok = run_command(argv, "softhsm2-util.log");
    if (!ok) {
        char *log_path = t_temp_path("softhsm2-util.log"), *log = t_read_file(log_path);
        t_diag("softhsm2-util: %s", log);
        free(log);
        free(log_path);
    }
    free(conf);
    free(tokens);
    free(dir);
    return t_ok(ok, "a SoftHSM2 token '%s' made with softhsm2-util (apt-get install softhsm2)", TOKEN_LABEL);
}

/* Waits up to `seconds` for a forked child (killed after that); 1 if it exited with status 0.
 * `how` says what happened. */
static int child_exits_cleanly(pid_t child, double seconds, char *how, size_t how_len)
{
    int status = 0;
    double end = t_now() + seconds;
    pid_t got = 0;
    while (child > 0 && (got = waitpid(child, &status, WNOHANG)) == 0 && t_now() < end)
        usleep(10 * 1000);
    if (child > 0 && got == 0) {
        kill(child, SIGKILL);
        waitpid(child, &status, 0);
        return snprintf(how, how_len, "killed after %.0f s", seconds), 0;
    }
    if (child <= 0 || got != child)
        return snprintf(how, how_len, "fork or waitpid failed"), 0;
    if (WIFSIGNALED(status))
        return snprintf(how, how_len, "signal %d", WTERMSIG(status)), 0;
    snprintf(how, how_len, "exit status %d", WEXITSTATUS(status));
    return WEXITSTATUS(status) == 0;
}

/* ---- PKCS#11 helpers ---- */

/* Data of its own for each digest: its bytes and length depend on who digests it, so that a
 * reply meant for another thread, caller or process does not carry its digest. */
static size_t own_data(unsigned char *buf, size_t cap, const char *who, int round)
{
    int n = snprintf((char *)buf, cap, "%s, round %d:", who, round);
    size_t len = (size_t)n + (size_t)(round * 37 % 180);
    if (len > cap)
        len = cap;
    for (size_t i = (size_t)n; i < len; i++)
        buf[i] = (unsigned char)(i * 7 + (size_t)round);
    return len;
}

/* C_DigestInit + C_Digest (CKM_SHA256) of `data`, compared with its known answer: SHA-256 on
 * SoftHSM2 (tag 0), the mock's fake digest on a mock (its tag). */
static int digest_matches(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE h, uint64_t tag, const unsigned char *data,
                          size_t len, char *why, size_t why_len)
{
    unsigned char got[32], want[32];
    CK_RV rv = t_digest(f, h, data, len, got);
    if (rv != CKR_OK)
        return snprintf(why, why_len, "C_Digest: %s", t_rv_name(rv)), 0;
    if (tag)
        mock_fake_digest(tag, data, len, want);
    else
        sha256(data, len, want);
    if (memcmp(got, want, sizeof want) != 0)
        return snprintf(why, why_len, "the digest of %zu bytes is not their known answer", len), 0;
    return 1;
}

/* Ordinary calls on a token: found in the slot list, token info, a session and its info, a
 * digest with its known answer, closed. */
static int use_token(CK_FUNCTION_LIST_PTR f, const char *label, uint64_t tag, char *why, size_t why_len)
{
    CK_SESSION_HANDLE h;
    CK_SESSION_INFO info;
    CK_RV rv;
    CK_SLOT_ID slot = t_open_on_label(f, label, &h, why, why_len);
    if (slot == T_NO_SLOT)
        return 0;
    int ok = 0;
    if ((rv = f->C_GetSessionInfo(h, &info)) != CKR_OK)
        snprintf(why, why_len, "C_GetSessionInfo: %s", t_rv_name(rv));
    else if (info.slotID != slot)
        snprintf(why, why_len, "C_GetSessionInfo: slot %lu, not %lu", (unsigned long)info.slotID, (unsigned long)slot);
    else
        ok = digest_matches(f, h, tag, (const unsigned char *)label, strlen(label), why, why_len);
    rv = f->C_CloseSession(h);
    if (ok && rv != CKR_OK)
        return snprintf(why, why_len, "C_CloseSession: %s", t_rv_name(rv)), 0;
    return ok;
}

/* use_token on the calling thread, checked for its result and that nothing held it up. */
static void check_use(CK_FUNCTION_LIST_PTR f, const char *label, uint64_t tag, const char *who)
{
    char why[200] = "";
    double t0 = t_now();
    int ok = use_token(f, label, tag, why, sizeof why);
    double took = t_now() - t0;
    t_ok(ok && took < PROMPT_S, "%s: %s listed, token info, session and its info, digest (%.3f s%s%s)", who, label,
         took, why[0] ? "; " : "", why);
}

static CK_FUNCTION_LIST_PTR initialized_caller(struct t_proxy *px, const char *who)
{
    CK_FUNCTION_LIST_PTR f = t_caller(px);
    if (!f || !t_rv(f->C_Initialize(NULL), CKR_OK, "%s: C_Initialize", who))
        return NULL;
    return f;
}

/* A remote module (and, if `local_mock`, a local one) in a new config directory. */
static void use_config(const char *name, const char *remote, const char *local_mock)
{
    char *dir = t_config_new(name);
    t_config_module(dir, "remote", "remote: %s\nx-remote-timeout: 10\n", remote);
    if (local_mock) {
        char *path = t_mock_path(local_mock);
        t_config_module(dir, "local", "module: %s\n", path);
        free(path);
    }
    t_config_use(dir);
}

/* A server of `served` started in its own directory, a config directory naming its socket
 * (with a local `local_mock` beside it, if any) and the proxy opened on it; 0 (reported, the
 * server stopped again) if either fails. */
static int serve_and_open(struct server *s, struct t_proxy *px, const char *name, const char *const served[],
                          const char *local_mock)
{
    if (!server_start(s, name, served))
        return 0;
    char address[PATH_MAX + 16];
    snprintf(address, sizeof address, "unix:path=%s", s->socket);
    use_config(name, address, local_mock);
    if (t_proxy_open(px))
        return 1;
    server_stop(s);
    return 0;
}

/* ---- 1. threads and callers on one connection ---- */

#define CALLERS 2
#define THREADS 4
#define ROUNDS 25

struct session_worker {
    CK_FUNCTION_LIST_PTR f;
    CK_SLOT_ID slot;
    int caller, thread;
    pthread_t id;
    int rounds; /* completed without a fault */
    char why[200];
};

static void *session_rounds(void *arg)
{
    struct session_worker *w = arg;
    char who[64];
    unsigned char previous[32] = {0};
    snprintf(who, sizeof who, "caller %d, thread %d", w->caller, w->thread);
    for (int round = 0; round < ROUNDS; round++) {
        CK_SESSION_HANDLE h;
        CK_SESSION_INFO info;
        unsigned char data[256], random[32];
        size_t len = own_data(data, sizeof data, who, round);
        CK_RV rv = w->f->C_OpenSession(w->slot, CKF_SERIAL_SESSION, NULL, NULL, &h);
        if (rv != CKR_OK) {
            snprintf(w->why, sizeof w->why, "round %d: C_OpenSession: %s", round, t_rv_name(rv));
            return NULL;
        }
        int ok = 0;
        if ((rv = w->f->C_GetSessionInfo(h, &info)) != CKR_OK)
            snprintf(w->why, sizeof w->why, "round %d: C_GetSessionInfo: %s", round, t_rv_name(rv));
        else if (info.slotID != w->slot || info.state != CKS_RO_PUBLIC_SESSION)
            snprintf(w->why, sizeof w->why, "round %d: C_GetSessionInfo: slot %lu state %lu", round,
                     (unsigned long)info.slotID, (unsigned long)info.state);
        else if (!digest_matches(w->f, h, 0, data, len, w->why, sizeof w->why))
            ;
        else if ((rv = w->f->C_GenerateRandom(h, random, sizeof random)) != CKR_OK)
            snprintf(w->why, sizeof w->why, "round %d: C_GenerateRandom: %s", round, t_rv_name(rv));
        else if (memcmp(random, previous, sizeof random) == 0)
            snprintf(w->why, sizeof w->why, "round %d: C_GenerateRandom gave the same bytes again", round);
        else
            ok = 1;
        memcpy(previous, random, sizeof random);
        rv = w->f->C_CloseSession(h);
        if (ok && rv != CKR_OK) {
            snprintf(w->why, sizeof w->why, "round %d: C_CloseSession: %s", round, t_rv_name(rv));
            ok = 0;
        }
        if (!ok)
            return NULL;
        w->rounds++;
    }
    return NULL;
}

static void threads_and_callers(void *arg)
{
    (void)arg;
    alarm(SCENARIO_S);
    struct server s;
    struct t_proxy px;
    if (!serve_and_open(&s, &px, "threads", softhsm_served(), NULL))
        return;
    CK_FUNCTION_LIST_PTR f[CALLERS] = {0};
    CK_SLOT_ID slot[CALLERS];
    for (int c = 0; c < CALLERS; c++) {
        char who[32];
        snprintf(who, sizeof who, "threads: caller %d", c);
        if (!(f[c] = initialized_caller(&px, who)))
            goto out;
        slot[c] = t_slot_by_label(f[c], TOKEN_LABEL);
        if (!t_ok(slot[c] != T_NO_SLOT, "threads: caller %d sees the remote token", c))
            goto out;
    }
    t_ok(f[0] != f[1], "threads: the callers have function lists of their own");
    t_ul(children_reach(s.pid, "p11-kit-remote", 1, 1.0), 1, "threads: one connection to the server for both callers");

    struct session_worker workers[CALLERS * THREADS];
    double t0 = t_now();
    for (int i = 0; i < CALLERS * THREADS; i++) {
        workers[i] = (struct session_worker){.f = f[i % CALLERS], .slot = slot[i % CALLERS], .caller = i % CALLERS,
                                             .thread = i / CALLERS};
        pthread_create(&workers[i].id, NULL, session_rounds, &workers[i]);
    }
    for (int i = 0; i < CALLERS * THREADS; i++)
        pthread_join(workers[i].id, NULL);
    double took = t_now() - t0;
    for (int i = 0; i < CALLERS * THREADS; i++)
        t_ok(workers[i].rounds == ROUNDS,
             "threads: caller %d, thread %d: %d of %d rounds of C_OpenSession, C_GetSessionInfo, SHA-256 of its own "
             "data (known answer), C_GenerateRandom, C_CloseSession%s%s",
             workers[i].caller, workers[i].thread, workers[i].rounds, ROUNDS, workers[i].why[0] ? "; " : "",
             workers[i].why);
    t_ok(took < 30, "threads: %d threads of %d callers done in %.1f s", CALLERS * THREADS, CALLERS, took);

    /* One caller's C_CloseAllSessions must close its own sessions only: both callers' sessions
     * live on the server's one connection, whose module would close them all. */
    CK_SESSION_HANDLE mine[2], theirs[2];
    CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
    static const unsigned char part1[] = "begun before the other caller's C_CloseAllSessions, ";
    static const unsigned char part2[] = "finished after it";
    for (int i = 0; i < 2; i++) {
        if (!t_rv(f[0]->C_OpenSession(slot[0], CKF_SERIAL_SESSION, NULL, NULL, &mine[i]), CKR_OK,
                  "close all: caller 0 opens session %d", i) ||
            !t_rv(f[1]->C_OpenSession(slot[1], CKF_SERIAL_SESSION, NULL, NULL, &theirs[i]), CKR_OK,
                  "close all: caller 1 opens session %d", i))
            goto out;
    }
    t_rv(f[1]->C_DigestInit(theirs[0], &sha), CKR_OK, "close all: caller 1 begins a digest");
    t_rv(f[1]->C_DigestUpdate(theirs[0], (CK_BYTE_PTR)part1, sizeof part1 - 1), CKR_OK,
         "close all: ... and feeds it a first part");
    t_rv(f[0]->C_CloseAllSessions(slot[0]), CKR_OK, "close all: caller 0's C_CloseAllSessions on the remote token");
    CK_SESSION_INFO info;
    for (int i = 0; i < 2; i++) {
        t_rv(f[0]->C_GetSessionInfo(mine[i], &info), CKR_SESSION_HANDLE_INVALID,
             "close all: caller 0's session %d is closed", i);
        t_rv(f[1]->C_GetSessionInfo(theirs[i], &info), CKR_OK, "close all: caller 1's session %d is still open", i);
    }
    unsigned char whole[sizeof part1 + sizeof part2], got[32], want[32];
    CK_ULONG got_len = sizeof got;
    memcpy(whole, part1, sizeof part1 - 1);
    memcpy(whole + sizeof part1 - 1, part2, sizeof part2 - 1);
    sha256(whole, sizeof part1 + sizeof part2 - 2, want);
    t_rv(f[1]->C_DigestUpdate(theirs[0], (CK_BYTE_PTR)part2, sizeof part2 - 1), CKR_OK,
         "close all: caller 1's digest takes its second part");
    t_ok(f[1]->C_DigestFinal(theirs[0], got, &got_len) == CKR_OK && got_len == 32 && memcmp(got, want, 32) == 0,
         "close all: caller 1's digest begun before the other caller's C_CloseAllSessions ends with the known answer");
    check_use(f[0], TOKEN_LABEL, 0, "close all: caller 0 afterwards");
    t_rv(f[1]->C_CloseAllSessions(slot[1]), CKR_OK, "close all: caller 1's C_CloseAllSessions");
    t_rv(f[1]->C_GetSessionInfo(theirs[1], &info), CKR_SESSION_HANDLE_INVALID, "close all: ... closes caller 1's");
out:
    for (int c = 0; c < CALLERS; c++)
        if (f[c])
            t_rv(f[c]->C_Finalize(NULL), CKR_OK, "threads: caller %d C_Finalize", c);
    server_stop(&s);
}

/* ---- 2. a blocking C_WaitForSlotEvent ---- */

struct busy {
    CK_FUNCTION_LIST_PTR f;
    const char *label;
    uint64_t tag;
    pthread_t id;
    int ok;
    double slowest;
    char why[200];
};

#define BUSY_ROUNDS 20

static void *busy_rounds(void *arg)
{
    struct busy *b = arg;
    for (int i = 0; i < BUSY_ROUNDS; i++) {
        double t0 = t_now();
        if (!use_token(b->f, b->label, b->tag, b->why, sizeof b->why))
            return NULL;
        if (t_now() - t0 > b->slowest)
            b->slowest = t_now() - t0;
        b->ok++;
    }
    return NULL;
}

/* A fork child of a process with a thread in the remote module's blocking wait: the child's
 * caller initialises again, works, has a blocking wait of its own ended by its C_Finalize. */
static pid_t fork_during_wait(CK_FUNCTION_LIST_PTR f)
{
    fflush(stdout);
    pid_t child = fork();
    if (child != 0)
        return child;
    alarm(30);
    int before = t_failures();
    if (t_rv(f->C_Initialize(NULL), CKR_OK, "wait fork: the child's C_Initialize")) {
        check_use(f, "mock-hang-2", HANG_TAG, "wait fork: the child");
        struct t_waiter w;
        t_waiter_start(&w, f);
        usleep(300 * 1000);
        t_ok(!t_waiter_done(&w), "wait fork: the child's own blocking wait waits");
        double t0 = t_now();
        t_rv(f->C_Finalize(NULL), CKR_OK, "wait fork: the child's C_Finalize");
        t_ok(t_now() - t0 < PROMPT_S, "wait fork: ... returned in %.3f s", t_now() - t0);
        if (t_ok(t_waiter_returns(&w, PROMPT_S), "wait fork: ... and ended the child's wait"))
            t_rv(w.rv, CKR_CRYPTOKI_NOT_INITIALIZED, "wait fork: ... with CKR_CRYPTOKI_NOT_INITIALIZED");
    }
    fflush(stdout);
    _exit(t_failures() == before ? 0 : 1);
}

/* arg NULL: mock-hang remote alone, so p11proxy's wait is the remote module's blocking one, on
 * a connection of its own. arg non-NULL: beside local mock-b, so p11proxy polls both modules
 * (CKF_DONT_BLOCK on the remote module's main connection) and mock-b's event ends the wait. */
static void blocking_wait(void *arg)
{
    int with_local = arg != NULL;
    const char *mode = with_local ? "wait beside a local module" : "blocking wait";
    alarm(SCENARIO_S);
    struct server s;
    struct t_proxy px;
    struct t_mock local = {0};
    char *hang = served_mock_path("mock-hang");
    const char *served[] = {hang, NULL};
    if (with_local && !t_mock_open(&local, "mock-b"))
        return;
    if (!serve_and_open(&s, &px, with_local ? "hang-local" : "hang", served, with_local ? "mock-b" : NULL))
        return;
    CK_FUNCTION_LIST_PTR a = NULL, b = NULL;
    if (!(a = initialized_caller(&px, mode)) || !(b = initialized_caller(&px, mode)))
        goto out;
    if (!t_ok(t_slot_by_label(a, "mock-hang-2") != T_NO_SLOT, "%s: the remote mock-hang's token is listed", mode))
        goto out;

    struct t_waiter w;
    t_waiter_start(&w, a);
    usleep(1000 * 1000);
    if (!t_ok(!t_waiter_done(&w), "%s: C_WaitForSlotEvent(0) of caller A is still waiting after 1 s%s%s", mode,
              t_waiter_done(&w) ? "; it returned " : "", t_waiter_done(&w) ? t_rv_name(w.rv) : ""))
        goto out;
    if (!with_local)
        t_ul(children_reach(s.pid, "p11-kit-remote", 2, 2.0), 2,
             "%s: the wait has a connection of its own (two `p11-kit-remote` serving)", mode);

    check_use(a, "mock-hang-2", HANG_TAG, with_local ? "beside: caller A, another thread" : "wait: caller A, another thread");
    check_use(b, "mock-hang-2", HANG_TAG, with_local ? "beside: caller B" : "wait: caller B");
    if (with_local) {
        check_use(a, "mock-b-1", LOCAL_TAG, "beside: caller A, the local module");
        check_use(b, "mock-b-1", LOCAL_TAG, "beside: caller B, the local module");
    }
    struct busy busy[3] = {{.f = a, .label = "mock-hang-2", .tag = HANG_TAG},
                           {.f = b, .label = "mock-hang-2", .tag = HANG_TAG},
                           {.f = b, .label = with_local ? "mock-b-1" : "mock-hang-2",
                            .tag = with_local ? LOCAL_TAG : HANG_TAG}};
    for (int i = 0; i < 3; i++)
        pthread_create(&busy[i].id, NULL, busy_rounds, &busy[i]);
    for (int i = 0; i < 3; i++) {
        pthread_join(busy[i].id, NULL);
        t_ok(busy[i].ok == BUSY_ROUNDS && busy[i].slowest < PROMPT_S,
             "%s: busy thread %d (caller %c, %s): %d of %d rounds, the slowest %.3f s%s%s", mode, i,
             busy[i].f == a ? 'A' : 'B', busy[i].label, busy[i].ok, BUSY_ROUNDS, busy[i].slowest,
             busy[i].why[0] ? "; " : "", busy[i].why);
    }
    CK_FUNCTION_LIST_PTR c = t_caller(&px);
    double t0 = t_now();
    if (c && t_rv(c->C_Initialize(NULL), CKR_OK, "%s: a new caller's C_Initialize", mode)) {
        check_use(c, "mock-hang-2", HANG_TAG, with_local ? "beside: a new caller" : "wait: a new caller");
        t_rv(c->C_Finalize(NULL), CKR_OK, "%s: the new caller's C_Finalize", mode);
    }
    t_ok(t_now() - t0 < PROMPT_S, "%s: the new caller's lifecycle took %.3f s", mode, t_now() - t0);
    t_ok(!t_waiter_done(&w), "%s: caller A's wait is still waiting", mode);
    if (!with_local) {
        char how[64];
        t_ok(child_exits_cleanly(fork_during_wait(a), 25, how, sizeof how),
             "wait: a child forked while caller A waits exits cleanly (%s)", how);
        t_ok(!t_waiter_done(&w), "wait: caller A's wait is still waiting after the fork");
    }

    if (with_local) {
        CK_SLOT_ID local_slot = t_slot_by_label(a, "mock-b-1");
        t_rv(t_mock_control(&local, MOCK_QUEUE_EVENT, 1), CKR_OK, "beside: an event on mock-b's slot");
        if (t_ok(t_waiter_returns(&w, PROMPT_S), "beside: ... ends the wait")) {
            t_rv(w.rv, CKR_OK, "beside: ... with CKR_OK");
            t_ul(w.slot, local_slot, "beside: ... and mock-b-1's proxy slot");
        }
        t_waiter_start(&w, a);
        usleep(300 * 1000);
        t_ok(!t_waiter_done(&w), "beside: a second wait is waiting");
    }

    t0 = t_now();
    t_rv(b->C_Finalize(NULL), CKR_OK, "%s: C_Finalize of caller B (not the last)", mode);
    t_ok(t_now() - t0 < PROMPT_S, "%s: ... returned in %.3f s", mode, t_now() - t0);
    b = NULL;
    t_ok(!t_waiter_done(&w), "%s: caller A's wait goes on", mode);
    t0 = t_now();
    t_rv(a->C_Finalize(NULL), CKR_OK, "%s: C_Finalize of caller A (the last), whose thread waits", mode);
    t_ok(t_now() - t0 < PROMPT_S, "%s: ... returned in %.3f s", mode, t_now() - t0);
    a = NULL;
    if (t_ok(t_waiter_returns(&w, PROMPT_S), "%s: the waiting thread returns", mode)) {
        t_rv(w.rv, CKR_CRYPTOKI_NOT_INITIALIZED, "%s: ... with CKR_CRYPTOKI_NOT_INITIALIZED", mode);
        t_ok(w.returned_at - t0 < PROMPT_S, "%s: ... %.3f s after C_Finalize began", mode, w.returned_at - t0);
    }

    /* The server's process for the wait's connection is still inside mock-hang's wait: the
     * module comes back on a new connection all the same. */
    CK_FUNCTION_LIST_PTR again = initialized_caller(&px, mode);
    if (again) {
        check_use(again, "mock-hang-2", HANG_TAG, with_local ? "beside: initialised again" : "wait: initialised again");
        t_rv(again->C_Finalize(NULL), CKR_OK, "%s: its C_Finalize", mode);
    }
out:
    if (b)
        b->C_Finalize(NULL);
    if (a)
        a->C_Finalize(NULL);
    server_stop(&s);
    free(hang);
}

/* ---- 3. the server dies and comes back ---- */

/* A thread digesting data of its own on one session, each answer checked, until told to stop
 * (or, with stop_on_error, until a digest fails). */
struct digester {
    CK_FUNCTION_LIST_PTR f;
    CK_SESSION_HANDLE h;
    uint64_t tag; /* 0: SoftHSM2 (SHA-256) */
    const char *who;
    int stop_on_error;
    pthread_t id;
    int stop;   /* atomic: asked to stop */
    int failed; /* atomic: set once the first failure is described below */
    CK_RV rv;         /* then: C_GetSessionInfo on the session */
    double failed_at; /* when the digest failed */
    char why[200];
    unsigned long ok, after_kill; /* read after the join */
};

static int killed; /* atomic: the server was killed (server_dies) */

static void *digest_loop(void *arg)
{
    struct digester *d = arg;
    for (int round = 0; !__atomic_load_n(&d->stop, __ATOMIC_ACQUIRE); round++) {
        unsigned char data[256];
        size_t len = own_data(data, sizeof data, d->who, round);
        char why[200] = "";
        if (digest_matches(d->f, d->h, d->tag, data, len, why, sizeof why)) {
            d->ok++;
            if (__atomic_load_n(&killed, __ATOMIC_ACQUIRE))
                d->after_kill++;
            continue;
        }
        if (!__atomic_load_n(&d->failed, __ATOMIC_RELAXED)) {
            CK_SESSION_INFO info;
            d->failed_at = t_now();
            snprintf(d->why, sizeof d->why, "%s", why);
            d->rv = d->f->C_GetSessionInfo(d->h, &info);
            __atomic_store_n(&d->failed, 1, __ATOMIC_RELEASE);
        }
        if (d->stop_on_error)
            break;
    }
    return NULL;
}

static int is_device_gone(CK_RV rv)
{
    return rv == CKR_DEVICE_ERROR || rv == CKR_DEVICE_REMOVED;
}

/* ECDSA P-256 on a session key pair made on the token: signs, verifies, and refuses a
 * changed signature. */
static int ecdsa_works(CK_FUNCTION_LIST_PTR f, CK_SLOT_ID slot, char *why, size_t why_len)
{
    static CK_BYTE p256[] = {0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
    CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
    CK_ATTRIBUTE pub[] = {{CKA_EC_PARAMS, p256, sizeof p256}, {CKA_VERIFY, &yes, sizeof yes}, {CKA_TOKEN, &no, sizeof no}};
    CK_ATTRIBUTE priv[] = {{CKA_SIGN, &yes, sizeof yes}, {CKA_TOKEN, &no, sizeof no}};
    CK_MECHANISM gen = {CKM_EC_KEY_PAIR_GEN, NULL, 0}, ecdsa = {CKM_ECDSA, NULL, 0};
    CK_OBJECT_HANDLE pub_key, priv_key;
    CK_SESSION_HANDLE h;
    unsigned char hash[32], sig[128];
    CK_ULONG sig_len = sizeof sig;
    CK_RV rv;
    sha256("signed through p11proxy", 23, hash);
    if ((rv = f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h)) != CKR_OK)
        return snprintf(why, why_len, "C_OpenSession: %s", t_rv_name(rv)), 0;
    const char *step = "C_Login";
    if ((rv = f->C_Login(h, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN))) != CKR_OK)
        goto fail;
    step = "C_GenerateKeyPair";
    if ((rv = f->C_GenerateKeyPair(h, &gen, pub, 3, priv, 2, &pub_key, &priv_key)) != CKR_OK)
        goto fail;
    step = "C_SignInit";
    if ((rv = f->C_SignInit(h, &ecdsa, priv_key)) != CKR_OK)
        goto fail;
    step = "C_Sign";
    if ((rv = f->C_Sign(h, hash, sizeof hash, sig, &sig_len)) != CKR_OK)
        goto fail;
    step = "C_VerifyInit";
    if ((rv = f->C_VerifyInit(h, &ecdsa, pub_key)) != CKR_OK)
        goto fail;
    step = "C_Verify";
    if ((rv = f->C_Verify(h, hash, sizeof hash, sig, sig_len)) != CKR_OK)
        goto fail;
    sig[sig_len / 2] ^= 1;
    step = "C_VerifyInit (changed signature)";
    if ((rv = f->C_VerifyInit(h, &ecdsa, pub_key)) != CKR_OK)
        goto fail;
    step = "C_Verify of a changed signature";
    if ((rv = f->C_Verify(h, hash, sizeof hash, sig, sig_len)) != CKR_SIGNATURE_INVALID)
        goto fail;
    f->C_Logout(h);
    f->C_CloseSession(h);
    return 1;
fail:
    snprintf(why, why_len, "%s: %s", step, t_rv_name(rv));
    f->C_CloseSession(h);
    return 0;
}

static void server_dies(void *arg)
{
    (void)arg;
    alarm(SCENARIO_S);
    struct server s;
    struct t_proxy px;
    if (!serve_and_open(&s, &px, "dies", softhsm_served(), "mock-b"))
        return;
    CK_FUNCTION_LIST_PTR a = NULL, b = NULL;
    if (!(a = initialized_caller(&px, "dies: caller A")) ||
        !(b = initialized_caller(&px, "dies: caller B")))
        goto out;
    CK_SLOT_ID remote_a = t_slot_by_label(a, TOKEN_LABEL), remote_b = t_slot_by_label(b, TOKEN_LABEL);
    CK_SLOT_ID local_a = t_slot_by_label(a, "mock-b-1");
    if (!t_ok(remote_a != T_NO_SLOT && remote_b != T_NO_SLOT && local_a != T_NO_SLOT,
              "dies: both callers see the remote token, and the local one"))
        goto out;
    struct digester d[3] = {
        {.f = a, .tag = 0, .who = "caller A, remote", .stop_on_error = 1},
        {.f = b, .tag = 0, .who = "caller B, remote", .stop_on_error = 1},
        {.f = a, .tag = LOCAL_TAG, .who = "caller A, local"},
    };
    CK_SLOT_ID slots[3] = {remote_a, remote_b, local_a};
    for (int i = 0; i < 3; i++)
        if (!t_rv(d[i].f->C_OpenSession(slots[i], CKF_SERIAL_SESSION, NULL, NULL, &d[i].h), CKR_OK,
                  "dies: %s: a session", d[i].who))
            goto out;
    for (int i = 0; i < 3; i++)
        pthread_create(&d[i].id, NULL, digest_loop, &d[i]);
    usleep(500 * 1000);
    double t_kill = t_now();
    server_stop(&s);
    __atomic_store_n(&killed, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++) {
        double end = t_now() + DEATH_S + 5;
        while (!__atomic_load_n(&d[i].failed, __ATOMIC_ACQUIRE) && t_now() < end)
            usleep(5000);
        __atomic_store_n(&d[i].stop, 1, __ATOMIC_RELEASE);
        pthread_join(d[i].id, NULL);
        t_ok(d[i].ok > 0, "dies: %s: %lu digests with the known answer before the kill", d[i].who, d[i].ok);
        if (t_ok(d[i].failed, "dies: %s: digests fail once the server is killed", d[i].who)) {
            t_ok(strstr(d[i].why, "CKR_DEVICE_ERROR") || strstr(d[i].why, "CKR_DEVICE_REMOVED"),
                 "dies: %s: ... with CKR_DEVICE_ERROR or CKR_DEVICE_REMOVED (%s)", d[i].who, d[i].why);
            t_ok(is_device_gone(d[i].rv), "dies: %s: ... and so does C_GetSessionInfo (%s)", d[i].who,
                 t_rv_name(d[i].rv));
            t_ok(d[i].failed_at - t_kill < DEATH_S, "dies: %s: ... within %.3f s of the kill", d[i].who,
                 d[i].failed_at - t_kill);
        }
    }
    usleep(300 * 1000);
    __atomic_store_n(&d[2].stop, 1, __ATOMIC_RELEASE);
    pthread_join(d[2].id, NULL);
    t_ok(!d[2].failed && d[2].after_kill > 0,
         "dies: the local module's digests never fail (%lu of them, %lu after the kill%s%s)", d[2].ok,
         d[2].after_kill, d[2].why[0] ? "; " : "", d[2].why);

    double t0 = t_now();
    t_ok(t_slot_by_label(a, TOKEN_LABEL) == T_NO_SLOT, "dies: caller A's slot list leaves the remote token out");
    t_ok(t_slot_by_label(b, TOKEN_LABEL) == T_NO_SLOT, "dies: caller B's too");
    CK_SESSION_HANDLE h;
    CK_RV rv = a->C_OpenSession(remote_a, CKF_SERIAL_SESSION, NULL, NULL, &h);
    t_ok(is_device_gone(rv), "dies: C_OpenSession on the remote slot's old ID fails (%s)", t_rv_name(rv));
    check_use(a, "mock-b-1", LOCAL_TAG, "dies: caller A, the local module");
    check_use(b, "mock-b-1", LOCAL_TAG, "dies: caller B, the local module");
    t_ok(t_now() - t0 < PROMPT_S, "dies: all that in %.3f s", t_now() - t0);

    if (!server_start(&s, "dies", softhsm_served()))
        goto out;
    /* No silent reconnect: the server's sessions and logins are gone; the module comes back
     * when it is initialised again, after every caller finalised (docs/remote-modules.md). */
    t_rv(a->C_Finalize(NULL), CKR_OK, "dies: caller A C_Finalize with caller B still initialised");
    t_rv(a->C_Initialize(NULL), CKR_OK, "dies: caller A C_Initialize again");
    t_ok(t_slot_by_label(a, TOKEN_LABEL) == T_NO_SLOT,
         "dies: while caller B stayed initialised, the remote module is not restarted");
    t_rv(b->C_Finalize(NULL), CKR_OK, "dies: caller B C_Finalize");
    b = NULL;
    t_rv(a->C_Finalize(NULL), CKR_OK, "dies: caller A C_Finalize (the last)");
    a = NULL;
    CK_FUNCTION_LIST_PTR c = initialized_caller(&px, "dies: after every caller finalised, a caller");
    if (c) {
        CK_SLOT_ID remote = t_slot_by_label(c, TOKEN_LABEL);
        t_ok(remote != T_NO_SLOT, "dies: the restarted server's token is listed again");
        check_use(c, TOKEN_LABEL, 0, "dies: restarted server");
        check_use(c, "mock-b-1", LOCAL_TAG, "dies: local module, after the restart");
        char why[200] = "";
        t_ok(remote != T_NO_SLOT && ecdsa_works(c, remote, why, sizeof why),
             "dies: ECDSA P-256 on the restarted server: key pair, sign, verify, a changed signature refused%s%s",
             why[0] ? "; " : "", why);
        t_rv(c->C_Finalize(NULL), CKR_OK, "dies: its C_Finalize");
    }
out:
    if (b)
        b->C_Finalize(NULL);
    if (a)
        a->C_Finalize(NULL);
    server_stop(&s);
}

/* The server killed while a thread sits in the remote module's blocking wait: the wait ends,
 * bounded, the module is gone until every caller finalised, and comes back after a restart. */
static void server_dies_under_wait(void *arg)
{
    (void)arg;
    alarm(SCENARIO_S);
    struct server s;
    struct t_proxy px;
    char *hang = served_mock_path("mock-hang");
    const char *served[] = {hang, NULL};
    if (!serve_and_open(&s, &px, "hang-dies", served, NULL))
        return;
    CK_FUNCTION_LIST_PTR f = NULL;
    if (!(f = initialized_caller(&px, "dies under a wait")))
        goto out;
    struct t_waiter w;
    t_waiter_start(&w, f);
    if (!t_ul(children_reach(s.pid, "p11-kit-remote", 2, 2.0), 2, "dies under a wait: the wait's connection is open"))
        goto out;
    double t_kill = t_now();
    server_stop(&s);
    if (t_ok(t_waiter_returns(&w, DEATH_S), "dies under a wait: the waiting thread returns once the server is killed")) {
        t_ok(is_device_gone(w.rv), "dies under a wait: ... with CKR_DEVICE_ERROR or CKR_DEVICE_REMOVED (%s)",
             t_rv_name(w.rv));
        t_ok(w.returned_at - t_kill < DEATH_S, "dies under a wait: ... %.3f s after the kill", w.returned_at - t_kill);
    }
    /* The server is back (an event loop waits again at once, no other call between): the
     * module's connection is gone for good until C_Finalize and C_Initialize, as for every other
     * call, so the wait must not quietly connect to the new server and block there. */
    if (!server_start(&s, "hang-dies", served))
        goto out;
    struct t_waiter again[2];
    for (int i = 1; i <= 2; i++) {
        t_waiter_start(&again[i - 1], f);
        if (t_ok(t_waiter_returns(&again[i - 1], PROMPT_S), "dies under a wait: with the server back, wait %d fails at once",
                 i))
            t_ok(is_device_gone(again[i - 1].rv), "dies under a wait: ... with CKR_DEVICE_ERROR or CKR_DEVICE_REMOVED (%s)",
                 t_rv_name(again[i - 1].rv));
        t_ul(children_reach(s.pid, "p11-kit-remote", 0, 0.3), 0, "dies under a wait: ... without connecting to it");
        if (i == 1)
            t_ok(t_slot_by_label(f, "mock-hang-2") == T_NO_SLOT, "dies under a wait: the remote token is not listed");
    }
    double t0 = t_now();
    t_rv(f->C_Finalize(NULL), CKR_OK, "dies under a wait: C_Finalize");
    t_ok(t_now() - t0 < PROMPT_S, "dies under a wait: ... returned in %.3f s", t_now() - t0);
    f = NULL;
    if ((f = initialized_caller(&px, "dies under a wait: after a restart"))) {
        check_use(f, "mock-hang-2", HANG_TAG, "dies under a wait: restarted server");
        t_rv(f->C_Finalize(NULL), CKR_OK, "dies under a wait: its C_Finalize");
        f = NULL;
    }
out:
    if (f)
        f->C_Finalize(NULL);
    server_stop(&s);
    free(hang);
}

/* ---- 4. fork ---- */

#define FORK_ROUNDS 150
#define FORKS 2

/* In the fork child: the parent's caller is there, uninitialised; it initialises again and
 * digests over a connection of its own. Exits 0 if every check passed. */
static void fork_child(CK_FUNCTION_LIST_PTR f, CK_SESSION_HANDLE parents, struct server *s, int n)
{
    alarm(30);
    int before = t_failures();
    CK_ULONG count = 0;
    t_rv(f->C_GetSlotList(CK_FALSE, NULL, &count), CKR_CRYPTOKI_NOT_INITIALIZED,
         "fork %d: in the child, the caller starts uninitialised", n);
    if (t_rv(f->C_Initialize(NULL), CKR_OK, "fork %d: the child's C_Initialize", n)) {
        CK_SESSION_INFO info;
        t_rv(f->C_GetSessionInfo(parents, &info), CKR_SESSION_HANDLE_INVALID,
             "fork %d: the parent's session is not the child's", n);
        t_ul(children_reach(s->pid, "p11-kit-remote", 2, 3.0), 2,
             "fork %d: the child connects for itself (two connections to the server)", n);
        CK_SLOT_ID slot = t_slot_by_label(f, TOKEN_LABEL);
        CK_SESSION_HANDLE h;
        if (t_ok(slot != T_NO_SLOT, "fork %d: the child sees the remote token", n) &&
            t_rv(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK, "fork %d: the child's session", n)) {
            char who[32], why[200] = "";
            int round;
            snprintf(who, sizeof who, "fork child %d", n);
            for (round = 0; round < FORK_ROUNDS; round++) {
                unsigned char data[256];
                size_t len = own_data(data, sizeof data, who, round);
                if (!digest_matches(f, h, 0, data, len, why, sizeof why))
                    break;
            }
            t_ok(round == FORK_ROUNDS, "fork %d: the child's %d digests of its own data have their known answers%s%s", n,
                 FORK_ROUNDS, why[0] ? "; " : "", why);
        }
        t_rv(f->C_Finalize(NULL), CKR_OK, "fork %d: the child's C_Finalize", n);
    }
    fflush(stdout);
    _exit(t_failures() == before ? 0 : 1);
}

static void fork_with_remote(void *arg)
{
    (void)arg;
    alarm(SCENARIO_S);
    struct server s;
    struct t_proxy px;
    if (!serve_and_open(&s, &px, "fork", softhsm_served(), NULL))
        return;
    CK_FUNCTION_LIST_PTR f = NULL;
    if (!(f = initialized_caller(&px, "fork: the parent")))
        goto out;
    CK_SLOT_ID slot = t_slot_by_label(f, TOKEN_LABEL);
    struct digester d = {.f = f, .tag = 0, .who = "fork parent"};
    if (!t_ok(slot != T_NO_SLOT, "fork: the parent sees the remote token") ||
        !t_rv(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &d.h), CKR_OK, "fork: the parent's session"))
        goto out;
    pthread_create(&d.id, NULL, digest_loop, &d);
    for (int n = 1; n <= FORKS; n++) {
        usleep(100 * 1000); /* the parent's thread is digesting */
        fflush(stdout);
        pid_t child = fork();
        if (child == 0)
            fork_child(f, d.h, &s, n);
        char how[64];
        t_ok(child_exits_cleanly(child, 25, how, sizeof how), "fork %d: the child exits cleanly (%s)", n, how);
        t_ul(children_reach(s.pid, "p11-kit-remote", 1, 3.0), 1,
             "fork %d: the child's connection is gone, the parent's remains", n);
    }
    usleep(100 * 1000);
    __atomic_store_n(&d.stop, 1, __ATOMIC_RELEASE);
    pthread_join(d.id, NULL);
    t_ok(!d.failed && d.ok > 0, "fork: the parent's thread digested all along, %lu known answers%s%s", d.ok,
         d.why[0] ? "; " : "", d.why);
    check_use(f, TOKEN_LABEL, 0, "fork: the parent afterwards");
out:
    if (f)
        t_rv(f->C_Finalize(NULL), CKR_OK, "fork: the parent's C_Finalize");
    server_stop(&s);
}

/* ---- 5. a spawned command is reaped ---- */

/* A fork child of a process whose remote module is a spawned command: the command is the
 * parent's child; the child runs (and reaps) one of its own, and the parent's goes on. */
static void fork_beside_command(CK_FUNCTION_LIST_PTR f)
{
    fflush(stdout);
    pid_t child = fork();
    if (child == 0) {
        alarm(30);
        int before = t_failures();
        pid_t self = getpid();
        if (t_rv(f->C_Initialize(NULL), CKR_OK, "spawn fork: the child's C_Initialize")) {
            int zombies, n = children_of(self, "p11-kit-remote", &zombies);
            t_ok(n == 1 && zombies == 0, "spawn fork: the child runs a command of its own (%d, %d zombies)", n, zombies);
            check_use(f, TOKEN_LABEL, 0, "spawn fork: the child");
            t_rv(f->C_Finalize(NULL), CKR_OK, "spawn fork: the child's C_Finalize");
            t_ul(children_of(self, NULL, NULL), 0, "spawn fork: ... leaves the child no child");
        }
        fflush(stdout);
        _exit(t_failures() == before ? 0 : 1);
    }
    char how[64];
    t_ok(child_exits_cleanly(child, 25, how, sizeof how), "spawn fork: the child exits cleanly (%s)", how);
    int zombies, n = children_of(getpid(), "p11-kit-remote", &zombies);
    t_ok(n == 1 && zombies == 0, "spawn fork: the parent's command still runs (%d, %d zombies)", n, zombies);
    check_use(f, TOKEN_LABEL, 0, "spawn fork: the parent afterwards");
}

static void spawned_command(void *arg)
{
    (void)arg;
    alarm(SCENARIO_S);
    pid_t self = getpid();
    struct t_proxy px;
    char remote[PATH_MAX + 32];
    snprintf(remote, sizeof remote, "|p11-kit remote %s", softhsm_so);
    use_config("spawn", remote, NULL);
    if (!t_proxy_open(&px))
        return;
    t_ul(children_of(self, NULL, NULL), 0, "spawn: no child before C_Initialize");
    for (int cycle = 1; cycle <= 2; cycle++) {
        CK_FUNCTION_LIST_PTR f = initialized_caller(&px, "spawn");
        if (!f)
            return;
        int zombies;
        int n = children_of(self, "p11-kit-remote", &zombies);
        t_ok(n == 1 && zombies == 0 && children_of(self, NULL, NULL) == 1,
             "spawn %d: while initialised, `p11-kit remote` is this process's one child, running (%d, %d zombies)",
             cycle, n, zombies);
        check_use(f, TOKEN_LABEL, 0, cycle == 1 ? "spawn 1" : "spawn 2");
        if (cycle == 2)
            fork_beside_command(f);
        t_rv(f->C_Finalize(NULL), CKR_OK, "spawn %d: C_Finalize", cycle);
        n = children_of(self, NULL, &zombies);
        t_ok(n == 0, "spawn %d: once C_Finalize returns, no child is left (%d, %d of them zombies)", cycle, n, zombies);
    }

    /* A command stuck in mock-hang's wait never reads the end of its input: p11proxy must still
     * end and reap it (SIGTERM after 3 s) before C_Finalize returns. */
    char *hang = served_mock_path("mock-hang");
    snprintf(remote, sizeof remote, "|p11-kit remote %s", hang);
    free(hang);
    /* Read at the next first C_Initialize. */
    use_config("spawn-hang", remote, NULL);
    CK_FUNCTION_LIST_PTR f = initialized_caller(&px, "spawn hang");
    if (!f)
        return;
    if (!t_ok(t_slot_by_label(f, "mock-hang-2") != T_NO_SLOT, "spawn hang: mock-hang's token through the command"))
        return;
    struct t_waiter w;
    t_waiter_start(&w, f);
    usleep(1000 * 1000);
    t_ok(!t_waiter_done(&w), "spawn hang: a blocking C_WaitForSlotEvent waits");
    t_ul(children_reach(self, "p11-kit-remote", 2, 2.0), 2, "spawn hang: the wait runs a command of its own");
    double t0 = t_now();
    t_rv(f->C_Finalize(NULL), CKR_OK, "spawn hang: C_Finalize");
    double took = t_now() - t0;
    t_ok(took < 8.0, "spawn hang: ... returned in %.1f s (3 s for the command to leave, then SIGTERM)", took);
    int zombies, n = children_of(self, NULL, &zombies);
    t_ok(n == 0, "spawn hang: once C_Finalize returns, no child is left (%d, %d of them zombies)", n, zombies);
    if (t_ok(t_waiter_returns(&w, PROMPT_S), "spawn hang: the waiting thread returns"))
        t_rv(w.rv, CKR_CRYPTOKI_NOT_INITIALIZED, "spawn hang: ... with CKR_CRYPTOKI_NOT_INITIALIZED");
}

static const char *find_softhsm(void)
{
    static const char *const candidates[] = {"/usr/lib/softhsm/libsofthsm2.so",
                                             "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"};
    const char *env = getenv("SOFTHSM_SO");
    if (env && env[0])
        return env;
    for (size_t i = 0; i < sizeof candidates / sizeof candidates[0]; i++)
        if (access(candidates[i], R_OK) == 0)
            return candidates[i];
    return NULL;
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    unsetenv("P11PROXY_MODULE");
    unsetenv("P11_KIT_SERVER_ADDRESS");
    unsigned char md[32];
    sha256("abc", 3, md);
    static const unsigned char abc[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                                          0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                                          0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    t_ok(memcmp(md, abc, 32) == 0, "the test's SHA-256 gives FIPS 180-2's answer for \"abc\"");
    softhsm_so = find_softhsm();
    if (t_ok(softhsm_so != NULL, "SoftHSM2's module found (SOFTHSM_SO, or apt-get install softhsm2)"))
        have_token = make_token();
    char *probe[] = {"p11-kit", "server", "--help", NULL};
    int have_p11kit = t_ok(run_command(probe, "p11-kit.log"), "`p11-kit server` runs (apt-get install p11-kit)");
    if (have_token && have_p11kit) {
        t_scenario("threads and callers", threads_and_callers, NULL);
        t_scenario("blocking wait", blocking_wait, NULL);
        t_scenario("wait beside a local module", blocking_wait, "local");
        t_scenario("server dies and comes back", server_dies, NULL);
        t_scenario("server dies under a blocking wait", server_dies_under_wait, NULL);
        t_scenario("fork", fork_with_remote, NULL);
        t_scenario("spawned command reaped", spawned_command, NULL);
    }
    return t_done();
}
