/* test_remote_faults.c: a `remote:` module whose server is hostile or broken, beside a local
 * mock module, through the built proxy. The server is played here (a forked child on a unix
 * socket, speaking just enough of p11-kit's RPC framing): it answers the handshake and the
 * protocol's C_Initialize properly, then answers everything else in one bad way per scenario:
 * silence (the call must time out: x-remote-timeout), a truncated frame, a header announcing a
 * huge body, a reply to the wrong call, a slot list whose count its bytes do not back, or a
 * closed connection. Each time p11proxy must not crash or hang: the remote module's slots are
 * left out, the local module's token keeps working, and C_Finalize returns. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "p11test.h"

enum mode { SILENT, TRUNCATED, HUGE_BODY, WRONG_CALL, SHORT_SLOT_LIST, HANG_UP };
static const char *const mode_names[] = {"silent", "truncated frame", "huge body", "wrong call id",
                                         "slot count not backed by bytes", "connection closed"};

static int read_all(int fd, void *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = read(fd, (char *)buf + done, n - done);
        if (r <= 0)
            return 0;
        done += (size_t)r;
    }
    return 1;
}

static void put32(unsigned char *p, uint32_t v)
{
    p[0] = v >> 24, p[1] = v >> 16, p[2] = v >> 8, p[3] = v;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* A frame: u32 code, u32 options length, u32 body length, options, body. */
static void send_frame(int fd, uint32_t code, const unsigned char *body, uint32_t len, uint32_t claimed)
{
    unsigned char header[12];
    put32(header, code);
    put32(header + 4, 0);
    put32(header + 8, claimed);
    if (write(fd, header, 12) != 12 || (len && write(fd, body, len) != (ssize_t)len))
        return;
}

/* A reply body: u32 call id, the reply signature as a byte array, then `args`. */
static uint32_t reply_body(unsigned char *out, uint32_t id, const char *signature, const unsigned char *args,
                           uint32_t args_len)
{
    uint32_t sig = (uint32_t)strlen(signature);
    put32(out, id);
    put32(out + 4, sig);
    memcpy(out + 8, signature, sig);
    if (args_len)
        memcpy(out + 8 + sig, args, args_len);
    return 8 + sig + args_len;
}

static void serve(int fd, enum mode mode)
{
    unsigned char version;
    if (!read_all(fd, &version, 1))
        return;
    version = 0;
    if (write(fd, &version, 1) != 1)
        return;
    for (;;) {
        unsigned char header[12];
        if (!read_all(fd, header, 12))
            return;
        uint32_t code = get32(header), options = get32(header + 4), length = get32(header + 8);
        if (options > 4096 || length > (1u << 20))
            return;
        unsigned char *payload = malloc(options + length + 1);
        if (!read_all(fd, payload, options + length)) {
            free(payload);
            return;
        }
        uint32_t id = length >= 4 ? get32(payload + options) : 0;
        free(payload);
        unsigned char body[256];
        if (id == 1 || id == 2) { /* C_Initialize, C_Finalize: answered properly */
            uint32_t n = reply_body(body, id, "", NULL, 0);
            send_frame(fd, code, body, n, n);
            continue;
        }
        switch (mode) {
        case SILENT:
            pause();
            return;
        case TRUNCATED:
            send_frame(fd, code, (const unsigned char *)"\0\0\0\4xx", 6, 100);
            return;
        case HUGE_BODY:
            send_frame(fd, code, NULL, 0, 0x7FFFFFF0u);
            pause();
            return;
        case WRONG_CALL: {
            uint32_t n = reply_body(body, id + 1, "", NULL, 0);
            send_frame(fd, code, body, n, n);
            break;
        }
        case SHORT_SLOT_LIST: {
            /* "au": valid byte, u32 count 1000000, and one u64 behind it. */
            unsigned char args[13] = {1, 0x00, 0x0F, 0x42, 0x40, 0, 0, 0, 0, 0, 0, 0, 7};
            uint32_t n = reply_body(body, id, "au", args, sizeof args);
            send_frame(fd, code, body, n, n);
            break;
        }
        case HANG_UP:
            return;
        }
    }
}

/* The server: accepts connections until killed, each served in its own child. */
static pid_t start_server(const char *path, enum mode mode)
{
    int listener = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    snprintf(address.sun_path, sizeof address.sun_path, "%s", path);
    unlink(path);
    if (listener < 0 || bind(listener, (struct sockaddr *)&address, sizeof address) != 0 || listen(listener, 8) != 0) {
        t_fail("hostile server listens on %s (%s)", path, strerror(errno));
        return -1;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        /* Its own process group, so that one kill ends it and every connection it serves. */
        setpgid(0, 0);
        signal(SIGCHLD, SIG_IGN);
        for (;;) {
            int fd = accept(listener, NULL, NULL);
            if (fd < 0)
                continue;
            if (fork() == 0) {
                serve(fd, mode);
                _exit(0);
            }
            close(fd);
        }
    }
    close(listener);
    return pid;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void hostile(void *arg)
{
    enum mode mode = (enum mode)(intptr_t)arg;
    const char *what = mode_names[mode];
    char *socket_path = t_temp_path("hostile.sock");
    pid_t server = start_server(socket_path, mode);
    if (server < 0)
        return;
    char *dir = t_config_new("hostile");
    t_config_module(dir, "hostile", "remote: unix:path=%s\nx-remote-timeout: 2\n", socket_path);
    t_config_module(dir, "mock-b", "module: %s\n", t_mock_path("mock-b"));
    t_config_use(dir);
    struct t_proxy px;
    CK_FUNCTION_LIST_PTR f = t_proxy_open(&px) ? t_caller(&px) : NULL;
    if (!f)
        goto out;
    double start = now();
    if (!t_rv(f->C_Initialize(NULL), CKR_OK, "%s: C_Initialize", what))
        goto out;
    CK_SLOT_ID slots[8];
    CK_ULONG n = 8;
    t_rv(f->C_GetSlotList(CK_FALSE, slots, &n), CKR_OK, "%s: C_GetSlotList", what);
    t_ul(n, 1, "%s: only the local module's slot is listed", what);
    CK_SLOT_ID local = t_slot_by_label(f, "mock-b-1");
    CK_SESSION_HANDLE h;
    if (t_ok(local != T_NO_SLOT, "%s: the local token is there", what) &&
        t_rv(f->C_OpenSession(local, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK, "%s: a session on it", what)) {
        unsigned char md[MOCK_DIGEST_LEN];
        t_rv(t_digest(f, h, "x", 1, md), CKR_OK, "%s: the local module works", what);
        f->C_CloseSession(h);
    }
    t_rv(f->C_Finalize(NULL), CKR_OK, "%s: C_Finalize", what);
    double took = now() - start;
    /* Two timed-out calls at most (at C_Initialize and at C_GetSlotList), 2 s each. */
    t_ok(took < 12, "%s: bounded time (%.1f s)", what, took);
out:
    kill(-server, SIGKILL);
    kill(server, SIGKILL);
    waitpid(server, NULL, 0);
    free(socket_path);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    unsetenv("P11PROXY_MODULE");
    for (int mode = SILENT; mode <= HANG_UP; mode++)
        t_scenario(mode_names[mode], hostile, (void *)(intptr_t)mode);
    return t_done();
}
