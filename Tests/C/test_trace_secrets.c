/* test_trace_secrets.c: with x-log-secrets a trace shows PINs and key bytes (as hex); once the
 * traced call has returned, no copy of that hex may be left anywhere in the process (the rule:
 * "nothing p11proxy allocates to hold a PIN or key bytes for tracing outlives the call").
 * After C_Login, C_SeedRandom and C_CreateObject with a secret key's CKA_VALUE, made through
 * the proxy over mock-fast with tracing to a file (buffered), the test reads its own writable
 * memory (/proc/self/maps + /proc/self/mem: heap, anonymous mappings, every thread's stack)
 * and looks for the hex the trace holds. Controls keep it honest: the trace file does show the
 * secrets, and the hex of a plain (non-secret) buffer traced the same way is found in memory.
 * The hex needles are never built here: the scanner compares against the raw bytes, nibble by
 * nibble, so the only hex copies are p11proxy's.
 * Also: a trace file named by P11PROXY_LOG_FILE is created with mode 0600 (umask 022).
 *   test_trace_secrets PROXY_SO MOCK_DIR */
#define _GNU_SOURCE
#include "p11test.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Distinctive values, long enough that their hex cannot appear by chance. */
static const unsigned char pin[] = "wipe-me-PIN-7f3a9c2e";
static const unsigned char seed[] = {0x5e, 0xed, 0x00, 0x11, 0x9a, 0x7b, 0xc4, 0x2d, 0x18, 0xe6, 0x3f, 0x0a, 0xb5, 0x61, 0xd7, 0x8c};
static const unsigned char key_value[] = {0xc0, 0xff, 0xee, 0x5e, 0xc2, 0xe7, 0x4b, 0x3a, 0x91, 0x0d, 0x6f, 0xa8,
                                          0x27, 0xe4, 0x53, 0xbc, 0x0e, 0x79, 0xd1, 0x46, 0xaa, 0x12, 0x8f, 0x33};
static const unsigned char plain_data[] = {0xd1, 0x9e, 0x57, 0x0c, 0xa3, 0x6b, 0x2f, 0xe0, 0x48, 0xb7, 0x15, 0x9d, 0x72, 0xc8, 0x04, 0x6e};

static int hex_digit_matches(unsigned char got, unsigned nibble)
{
    static const char digits[] = "0123456789ABCDEF";
    return got == (unsigned char)digits[nibble] || got == (unsigned char)(digits[nibble] | 0x20);
}

/* Whether `bytes` holds the hex of `raw` (either case) at `at`. */
static int hex_at(const unsigned char *bytes, const unsigned char *raw, size_t raw_len)
{
    for (size_t i = 0; i < raw_len; i++)
        if (!hex_digit_matches(bytes[2 * i], raw[i] >> 4) || !hex_digit_matches(bytes[2 * i + 1], raw[i] & 0xF))
            return 0;
    return 1;
}

/* Occurrences of hex(raw) in the process's readable, writable mappings (regions over 1 GiB,
 * sanitizer shadow memory, are skipped). Reads through /proc/self/mem so unreadable pages are
 * an error code, not a crash. */
static int hex_in_memory(const unsigned char *raw, size_t raw_len)
{
    const size_t chunk = 1 << 20, needle = 2 * raw_len;
    FILE *maps = fopen("/proc/self/maps", "r");
    int mem = open("/proc/self/mem", O_RDONLY);
    unsigned char *buffer = mmap(NULL, chunk + needle, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!maps || mem < 0 || buffer == MAP_FAILED) {
        t_fail("open /proc/self/maps and /proc/self/mem");
        return -1;
    }
    /* The regions first: reading memory must not change the list being read. Sanitizer
     * runtimes make thousands of mappings, so the list grows as needed. */
    unsigned long *starts = NULL, *ends = NULL;
    int regions = 0, capacity = 0;
    char line[512];
    while (fgets(line, sizeof line, maps)) {
        if (regions == capacity) {
            capacity = capacity ? 2 * capacity : 1024;
            starts = realloc(starts, capacity * sizeof *starts);
            ends = realloc(ends, capacity * sizeof *ends);
            if (!starts || !ends)
                abort();
        }
        unsigned long start, end;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &start, &end, perms) != 3 || perms[0] != 'r' || perms[1] != 'w')
            continue;
        if (strstr(line, "[vvar]") || strstr(line, "[vsyscall]") || end - start > (1ul << 30))
            continue;
        if ((unsigned long)buffer >= start && (unsigned long)buffer < end)
            continue; /* the scanner's own copy */
        starts[regions] = start;
        ends[regions++] = end;
    }
    fclose(maps);
    int found = 0;
    for (int r = 0; r < regions; r++) {
        for (unsigned long at = starts[r]; at < ends[r]; at += chunk) {
            size_t want = ends[r] - at < chunk + needle ? ends[r] - at : chunk + needle;
            ssize_t got = pread(mem, buffer, want, (off_t)at);
            if (got < (ssize_t)needle)
                continue;
            size_t last = (size_t)got - needle;
            if (last >= chunk)
                last = chunk - 1; /* the overlap is scanned with the next chunk */
            for (size_t i = 0; i <= last; i++)
                if (hex_digit_matches(buffer[i], raw[0] >> 4) && hex_at(buffer + i, raw, raw_len))
                    found++;
        }
    }
    free(starts);
    free(ends);
    memset(buffer, 0, chunk + needle);
    munmap(buffer, chunk + needle);
    close(mem);
    return found;
}

static char *read_file(const char *path)
{
    FILE *file = fopen(path, "r");
    if (!file)
        return strdup("");
    static char text[1 << 16];
    size_t n = fread(text, 1, sizeof text - 1, file);
    text[n] = 0;
    fclose(file);
    return strdup(text);
}

/* hex(raw) appears in `text` (the trace file). */
static int hex_in_text(const char *text, const unsigned char *raw, size_t raw_len)
{
    for (const char *at = text; *at && strlen(at) >= 2 * raw_len; at++)
        if (hex_at((const unsigned char *)at, raw, raw_len))
            return 1;
    return 0;
}

static void scenario(void *arg)
{
    const char *format = arg;
    char *conf = t_config_new(format);
    char *mock = t_mock_path("mock-fast");
    char name[64];
    snprintf(name, sizeof name, "secrets-%s.trace", format);
    char *trace = t_temp_path(name);
    t_config_module(conf, "fast", "module: %s\n", mock);
    t_config_use(conf);
    setenv("P11PROXY_LOG_CALLS", "yes", 1);
    setenv("P11PROXY_LOG_SECRETS", "yes", 1);
    setenv("P11PROXY_LOG_FORMAT", format, 1);
    setenv("P11PROXY_LOG_FILE", trace, 1);
    umask(022);

    struct t_proxy proxy;
    CK_FUNCTION_LIST_PTR f;
    if (!t_proxy_open(&proxy) || !(f = t_caller(&proxy)))
        return;
    if (!t_rv(f->C_Initialize(NULL), CKR_OK, "%s: C_Initialize", format))
        return;
    struct stat info;
    memset(&info, 0, sizeof info);
    int stat_rv = stat(trace, &info);
    t_ok(stat_rv == 0 && (info.st_mode & 0777) == 0600, "%s: P11PROXY_LOG_FILE created with mode 0600 (got %o)",
         format, (unsigned)(info.st_mode & 0777));
    CK_SLOT_ID *slots;
    CK_ULONG n;
    CK_SESSION_HANDLE s;
    if (t_slot_list(f, &slots, &n) != CKR_OK || n == 0 ||
        !t_rv(f->C_OpenSession(slots[0], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), CKR_OK, "%s: C_OpenSession", format))
        return;
    free(slots);

    /* Control: a plain buffer's hex stays in the tracer's buffers after the call (they are reused,
     * not wiped), so the scanner does see what the tracer leaves behind. */
    unsigned char digest[64];
    CK_ULONG digest_len = sizeof digest;
    CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
    f->C_DigestInit(s, &sha);
    t_rv(f->C_Digest(s, (CK_BYTE_PTR)plain_data, sizeof plain_data, digest, &digest_len), CKR_OK, "%s: C_Digest", format);
    int plain_found = hex_in_memory(plain_data, sizeof plain_data);
    t_ok(plain_found > 0, "%s: control: the hex of C_Digest's plain data is found in memory after the call (%d copies)",
         format, plain_found);

    t_rv(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, sizeof pin - 1), CKR_OK, "%s: C_Login", format);
    int pin_found = hex_in_memory(pin, sizeof pin - 1);
    t_ul((unsigned long)pin_found, 0, "%s: no copy of the PIN's hex in memory right after C_Login returns", format);

    t_rv(f->C_SeedRandom(s, (CK_BYTE_PTR)seed, sizeof seed), CKR_OK, "%s: C_SeedRandom", format);
    t_ul((unsigned long)hex_in_memory(seed, sizeof seed), 0, "%s: no copy of the seed's hex in memory after C_SeedRandom", format);

    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_AES;
    CK_ATTRIBUTE key[] = {
        {CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &type, sizeof type}, {CKA_VALUE, (void *)key_value, sizeof key_value},
    };
    CK_OBJECT_HANDLE object = 0;
    t_rv(f->C_CreateObject(s, key, 3, &object), CKR_OK, "%s: C_CreateObject with a secret key's CKA_VALUE", format);
    t_ul((unsigned long)hex_in_memory(key_value, sizeof key_value), 0,
         "%s: no copy of the key bytes' hex in memory after C_CreateObject", format);

    /* The trace itself has them all: secrets were formatted, so the checks above mean something. */
    t_rv(f->C_Finalize(NULL), CKR_OK, "%s: C_Finalize", format);
    char *text = read_file(trace);
    t_ok(hex_in_text(text, pin, sizeof pin - 1) && hex_in_text(text, seed, sizeof seed) &&
             hex_in_text(text, key_value, sizeof key_value),
         "%s: control: the trace file shows the PIN, the seed and the key bytes (x-log-secrets)", format);
    free(text);
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    t_scenario("text", scenario, "text");
    t_scenario("json", scenario, "json");
    return t_done();
}
