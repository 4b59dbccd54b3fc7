/* mock_module.c: a real, thread-safe PKCS#11 module (fake crypto) that the proxy's C
 * tests load through the proxy. One source; variants by -D flags (Tests/C/tests.mk):
 *   MOCK_NAME "mock-a"   MOCK_TAG 0xA   MOCK_SLOTS {1,5}   MOCK_V3 0|1
 *   MOCK_FAIL_INIT <CKR> MOCK_GARBAGE_SLOTS 0|1           MOCK_FAST 0|1
 *   MOCK_WAIT_HANG 0|1 (a blocking C_WaitForSlotEvent ignores events and C_Finalize and
 *   returns only when a test calls mock_control(MOCK_RELEASE_WAITERS), or never)
 *   MOCK_OVERREPORT N (while a test has switched it on with mock_control(MOCK_SET_OVERREPORT),
 *   length-pair outputs claim N more bytes or elements than the caller's buffer holds)
 *   MOCK_PREINIT 0|1 (the library initialises itself when loaded, as a module that another
 *   part of the process initialised first looks: C_Initialize answers ALREADY_INITIALIZED)
 *   MOCK_V32 0|1|2 (with MOCK_V3: 1 offers "PKCS 11" 3.2 first and implements the twelve 3.2
 *   functions, checking their arguments; 2 offers a 3.2 list whose twelve entries are NULL,
 *   as p11-kit 0.26 builds its lists)
 * Only C_GetFunctionList, C_GetInterfaceList/C_GetInterface (MOCK_V3) and mock_* are
 * exported; build with -fvisibility=hidden. Behaviour follows PKCS#11 2.40/3.0 base
 * spec section numbers cited below; the test hooks are described in mock_control.h. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "p11proxy_pkcs11.h"
#include "mock_control.h"
#include "mock_algo.h"

#ifndef MOCK_NAME
#define MOCK_NAME "mock"
#endif
#ifndef MOCK_TAG
#define MOCK_TAG 0
#endif
#ifndef MOCK_SLOTS
#define MOCK_SLOTS {1}
#endif
#ifndef MOCK_V3
#define MOCK_V3 0
#endif
#ifndef MOCK_FAIL_INIT
#define MOCK_FAIL_INIT 0
#endif
#ifndef MOCK_GARBAGE_SLOTS
#define MOCK_GARBAGE_SLOTS 0
#endif
#ifndef MOCK_FAST
#define MOCK_FAST 0
#endif
#ifndef MOCK_WAIT_HANG
#define MOCK_WAIT_HANG 0
#endif
#ifndef MOCK_OVERREPORT
#define MOCK_OVERREPORT 0
#endif
#ifndef MOCK_PREINIT
#define MOCK_PREINIT 0
#endif
#ifndef MOCK_V32
#define MOCK_V32 0
#endif
/* The twelve 3.2 functions are implemented (MOCK_V32 1), not only listed as NULL (2). */
#define MOCK_V32_FUNCTIONS (MOCK_V32 == 1)

#define MOCK_EXPORT __attribute__((visibility("default")))

/* 3.0 flags that p11-kit 0.24's 2.40 header lacks (3.0 base spec, table 34 / 5.6). */
#ifndef CKF_MESSAGE_ENCRYPT
#define CKF_MESSAGE_ENCRYPT 0x00000002UL
#define CKF_MESSAGE_DECRYPT 0x00000004UL
#define CKF_MESSAGE_SIGN 0x00000008UL
#define CKF_MESSAGE_VERIFY 0x00000010UL
#endif
#ifndef CKF_FIND_OBJECTS
#define CKF_FIND_OBJECTS 0x00000040UL
#endif

/* The exported entry points; p11-kit 0.24's header declares only the 2.40 ones. */
MOCK_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList);
#if MOCK_V3
MOCK_EXPORT CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount);
MOCK_EXPORT CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
                                 CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags);
#endif
MOCK_EXPORT void mock_stats(struct mock_stats *out);
MOCK_EXPORT CK_RV mock_control(int op, CK_ULONG arg);

/* The hand-written entry points, declared from the one description. */
#define HAND_DECLARE(name, kind, params, args) HAND_DECLARE_##kind(name, params)
#define HAND_DECLARE_HAND(name, params) static CK_RV hand_##name params;
#define HAND_DECLARE_OK(name, params)
#define HAND_DECLARE_FILL(name, params)
MOCK_FUNCTIONS_2_40(HAND_DECLARE)
#if MOCK_V3
MOCK_FUNCTIONS_3_0(HAND_DECLARE)
#endif

static const CK_SLOT_ID initial_slots[] = MOCK_SLOTS;
#define N_INITIAL_SLOTS (sizeof initial_slots / sizeof initial_slots[0])

#define MANUFACTURER "p11proxy-mock"
#define USER_PIN "1234"
#define SO_PIN "12345678"
#define MIN_PIN 4
#define MAX_PIN 32

/* ---- What every variant answers the same way ------------------------------------ */

/* Blank-padded, not NUL-terminated, as CK_INFO / CK_SLOT_INFO / CK_TOKEN_INFO require. */
static void pad(unsigned char *dst, size_t n, const char *src)
{
    size_t len = strlen(src);
    memset(dst, ' ', n);
    memcpy(dst, src, len < n ? len : n);
}

static void fill_info(CK_INFO_PTR info)
{
    memset(info, 0, sizeof *info);
    info->cryptokiVersion.major = MOCK_V3 ? 3 : 2;
    info->cryptokiVersion.minor = MOCK_V32 ? 2 : MOCK_V3 ? 0 : 40;
    pad(info->manufacturerID, sizeof info->manufacturerID, MANUFACTURER);
    pad(info->libraryDescription, sizeof info->libraryDescription, MOCK_NAME);
    info->libraryVersion.major = 1;
    info->libraryVersion.minor = MOCK_TAG & 0xff;
}

static void fill_slot_info(CK_SLOT_ID id, CK_SLOT_INFO_PTR info)
{
    char text[80];
    memset(info, 0, sizeof *info);
    snprintf(text, sizeof text, "%s slot %lu", MOCK_NAME, (unsigned long)id);
    pad(info->slotDescription, sizeof info->slotDescription, text);
    pad(info->manufacturerID, sizeof info->manufacturerID, MANUFACTURER);
    info->flags = CKF_TOKEN_PRESENT | CKF_REMOVABLE_DEVICE | CKF_HW_SLOT;
    info->hardwareVersion.major = 1;
    info->firmwareVersion.major = 1;
}

static void fill_token_info(CK_SLOT_ID id, const char *label, CK_ULONG sessions, CK_ULONG rw_sessions,
                            CK_TOKEN_INFO_PTR info)
{
    char serial[32];
    memset(info, 0, sizeof *info);
    pad(info->label, sizeof info->label, label);
    pad(info->manufacturerID, sizeof info->manufacturerID, MANUFACTURER);
    pad(info->model, sizeof info->model, "mock " MOCK_NAME);
    snprintf(serial, sizeof serial, "%08lX%08lX", (unsigned long)MOCK_TAG, (unsigned long)id);
    pad(info->serialNumber, sizeof info->serialNumber, serial);
    info->flags = CKF_TOKEN_INITIALIZED | CKF_LOGIN_REQUIRED | CKF_USER_PIN_INITIALIZED | CKF_RNG;
    info->ulMaxSessionCount = CK_EFFECTIVELY_INFINITE;
    info->ulSessionCount = sessions;
    info->ulMaxRwSessionCount = CK_EFFECTIVELY_INFINITE;
    info->ulRwSessionCount = rw_sessions;
    info->ulMaxPinLen = MAX_PIN;
    info->ulMinPinLen = MIN_PIN;
    info->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
    info->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
    info->hardwareVersion.major = 1;
    info->firmwareVersion.major = 1;
    memset(info->utcTime, ' ', sizeof info->utcTime);
}

#if MOCK_V3
#define MSG_FLAGS_ENC (CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT)
#define MSG_FLAGS_SIG (CKF_MESSAGE_SIGN | CKF_MESSAGE_VERIFY)
#else
#define MSG_FLAGS_ENC 0
#define MSG_FLAGS_SIG 0
#endif
#define EC_FLAGS (CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS)

static const struct mechanism {
    CK_MECHANISM_TYPE type;
    CK_MECHANISM_INFO info;
} mechanisms[] = {
    {CKM_SHA256, {0, 0, CKF_HW | CKF_DIGEST}},
    {CKM_ECDSA, {256, 521, CKF_HW | CKF_SIGN | CKF_VERIFY | EC_FLAGS | MSG_FLAGS_SIG}},
    {CKM_AES_GCM, {16, 32, CKF_HW | CKF_ENCRYPT | CKF_DECRYPT | MSG_FLAGS_ENC}},
    {CKM_RSA_PKCS, {1024, 4096, CKF_HW | CKF_ENCRYPT | CKF_DECRYPT | CKF_SIGN | CKF_VERIFY |
                                   CKF_SIGN_RECOVER | CKF_VERIFY_RECOVER | CKF_WRAP | CKF_UNWRAP}},
    {CKM_AES_KEY_GEN, {16, 32, CKF_HW | CKF_GENERATE}},
    {CKM_EC_KEY_PAIR_GEN, {256, 521, CKF_HW | CKF_GENERATE_KEY_PAIR | EC_FLAGS}},
    {CKM_RSA_PKCS_KEY_PAIR_GEN, {1024, 4096, CKF_HW | CKF_GENERATE_KEY_PAIR}},
    {CKM_AES_KEY_WRAP, {16, 32, CKF_HW | CKF_WRAP | CKF_UNWRAP}},
    {CKM_ECDH1_DERIVE, {256, 521, CKF_HW | CKF_DERIVE | EC_FLAGS}},
};
#define N_MECHANISMS (sizeof mechanisms / sizeof mechanisms[0])

/* Spec 2.40 section 5.2: a NULL buffer asks for the length (CKR_OK); a short buffer gets
 * CKR_BUFFER_TOO_SMALL and the length. *done says whether the output was written. */
static CK_RV output_length(CK_ULONG len, CK_BYTE_PTR out, CK_ULONG_PTR out_len, int *done)
{
    *done = 0;
    if (!out) {
        *out_len = len;
        return CKR_OK;
    }
    if (*out_len < len) {
        *out_len = len;
        return CKR_BUFFER_TOO_SMALL;
    }
    *out_len = len;
    *done = 1;
    return CKR_OK;
}

#if MOCK_FAST
/* ==== MOCK_FAST: no lock, no checks; the benchmark measures the proxy, not us ====== */

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"

/* Touched with atomics only; the rest of struct mock_stats stays zero. */
static struct mock_stats fast_stats;

#define FAST_DEFINE(name, kind, params, args) FAST_DEFINE_##kind(name, params)
#define FAST_DEFINE_HAND(name, params)
#define FAST_DEFINE_FILL(name, params)
#define FAST_DEFINE_OK(name, params) \
    static CK_RV fast_##name params { return CKR_OK; }
MOCK_FUNCTIONS_2_40(FAST_DEFINE)
#if MOCK_V3
MOCK_FUNCTIONS_3_0(FAST_DEFINE)
#endif

static CK_RV hand_C_Initialize(CK_VOID_PTR pInitArgs)
{
    __atomic_add_fetch(&fast_stats.initialize_calls, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&fast_stats.initialize_ok, 1, __ATOMIC_RELAXED);
    return CKR_OK;
}

static CK_RV hand_C_Finalize(CK_VOID_PTR pReserved)
{
    __atomic_add_fetch(&fast_stats.finalize_calls, 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&fast_stats.finalize_ok, 1, __ATOMIC_RELAXED);
    return CKR_OK;
}

static CK_RV fast_C_GetInfo(CK_INFO_PTR pInfo)
{
    fill_info(pInfo);
    return CKR_OK;
}

static CK_RV fast_C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount)
{
    int done;
    CK_RV rv = output_length(N_INITIAL_SLOTS, (CK_BYTE_PTR)pSlotList, pulCount, &done);
    if (done)
        memcpy(pSlotList, initial_slots, sizeof initial_slots);
    return rv;
}

static CK_RV fast_C_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
{
    fill_slot_info(slotID, pInfo);
    return CKR_OK;
}

static CK_RV fast_C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
    char label[40];
    snprintf(label, sizeof label, "%s-%lu", MOCK_NAME, (unsigned long)slotID);
    fill_token_info(slotID, label, 0, 0, pInfo);
    return CKR_OK;
}

static CK_RV fast_C_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList,
                                     CK_ULONG_PTR pulCount)
{
    if (pMechanismList && *pulCount >= N_MECHANISMS)
        for (size_t i = 0; i < N_MECHANISMS; i++)
            pMechanismList[i] = mechanisms[i].type;
    *pulCount = N_MECHANISMS;
    return CKR_OK;
}

/* Each thread's session counters, so that opening and closing sessions on one thread writes
 * nothing another thread touches: the benchmark's open+close then scales as the machine does,
 * and what it shows of a proxy is the proxy's own sharing. mock_stats sums them. Written by
 * their thread only (relaxed atomic stores, no locked instruction), read by mock_stats. One
 * per thread that ever opened a session, a cache line each, kept for the process's life (the
 * list makes the sums outlive the threads). */
struct fast_thread_sessions {
    unsigned long number; /* 1, 2, ...: the high bits of this thread's session handles */
    unsigned long next_handle;
    unsigned long opened;
    unsigned long closed;
    struct fast_thread_sessions *next;
} __attribute__((aligned(64)));

static __thread struct fast_thread_sessions *fast_own;
static struct fast_thread_sessions *fast_all;
static unsigned long fast_threads;
/* sessions_opened_total at the last MOCK_RESET_STATS. */
static unsigned long fast_opened_base;

static __attribute__((noinline)) struct fast_thread_sessions *fast_attach(void)
{
    struct fast_thread_sessions *own = aligned_alloc(64, sizeof *own);
    if (!own)
        abort();
    memset(own, 0, sizeof *own);
    own->number = __atomic_add_fetch(&fast_threads, 1, __ATOMIC_RELAXED);
    own->next = __atomic_load_n(&fast_all, __ATOMIC_RELAXED);
    while (!__atomic_compare_exchange_n(&fast_all, &own->next, own, 1, __ATOMIC_RELEASE, __ATOMIC_RELAXED))
        ;
    fast_own = own;
    return own;
}

static inline struct fast_thread_sessions *fast_thread(void)
{
    return fast_own ? fast_own : fast_attach();
}

static void fast_session_totals(unsigned long *opened, unsigned long *closed)
{
    *opened = *closed = 0;
    for (struct fast_thread_sessions *t = __atomic_load_n(&fast_all, __ATOMIC_ACQUIRE); t; t = t->next) {
        *opened += __atomic_load_n(&t->opened, __ATOMIC_RELAXED);
        *closed += __atomic_load_n(&t->closed, __ATOMIC_RELAXED);
    }
}

static CK_RV fast_C_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication,
                                CK_NOTIFY Notify, CK_SESSION_HANDLE_PTR phSession)
{
    struct fast_thread_sessions *own = fast_thread();
    own->next_handle++;
    *phSession = own->number << 32 | (own->next_handle & 0xFFFFFFFF);
    __atomic_store_n(&own->opened, own->opened + 1, __ATOMIC_RELAXED);
    return CKR_OK;
}

static CK_RV fast_C_CloseSession(CK_SESSION_HANDLE hSession)
{
    struct fast_thread_sessions *own = fast_thread();
    __atomic_store_n(&own->closed, own->closed + 1, __ATOMIC_RELAXED);
    return CKR_OK;
}

static CK_RV fast_C_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo)
{
    pInfo->slotID = initial_slots[0];
    pInfo->state = CKS_RW_PUBLIC_SESSION;
    pInfo->flags = CKF_SERIAL_SESSION | CKF_RW_SESSION;
    pInfo->ulDeviceError = MOCK_TAG;
    return CKR_OK;
}

static CK_RV fast_C_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                                      CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
    for (CK_ULONG i = 0; i < ulCount; i++)
        pTemplate[i].ulValueLen = 0;
    return CKR_OK;
}

static CK_RV fast_C_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject,
                                CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount)
{
    *pulObjectCount = 0;
    return CKR_OK;
}

static CK_RV fast_digest_out(CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen)
{
    int done;
    CK_RV rv = output_length(MOCK_DIGEST_LEN, pDigest, pulDigestLen, &done);
    if (done)
        memset(pDigest, MOCK_TAG, MOCK_DIGEST_LEN);
    return rv;
}

static CK_RV fast_C_Digest(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                           CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen)
{
    return fast_digest_out(pDigest, pulDigestLen);
}

static CK_RV fast_C_DigestFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen)
{
    return fast_digest_out(pDigest, pulDigestLen);
}

/* No events ever: CKR_OK here would make a poller see a storm of insertions. */
static CK_RV fast_C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved)
{
    return CKR_NO_EVENT;
}

#pragma GCC diagnostic pop

static void count_hand_call(enum mock_fn fn)
{
    (void)fn;
}

MOCK_EXPORT void mock_stats(struct mock_stats *out)
{
    memset(out, 0, sizeof *out);
    out->tag = MOCK_TAG;
    snprintf(out->name, sizeof out->name, "%s", MOCK_NAME);
    out->v3 = MOCK_V3;
    out->slots = N_INITIAL_SLOTS;
    out->last_call_while_uninitialised = -1;
    out->initialize_calls = __atomic_load_n(&fast_stats.initialize_calls, __ATOMIC_RELAXED);
    out->initialize_ok = __atomic_load_n(&fast_stats.initialize_ok, __ATOMIC_RELAXED);
    out->finalize_calls = __atomic_load_n(&fast_stats.finalize_calls, __ATOMIC_RELAXED);
    out->finalize_ok = __atomic_load_n(&fast_stats.finalize_ok, __ATOMIC_RELAXED);
    unsigned long opened, closed;
    fast_session_totals(&opened, &closed);
    out->sessions_opened_total = opened - __atomic_load_n(&fast_opened_base, __ATOMIC_RELAXED);
    out->open_sessions = opened - closed;
}

MOCK_EXPORT CK_RV mock_control(int op, CK_ULONG arg)
{
    (void)arg;
    if (op != MOCK_RESET_STATS)
        return CKR_FUNCTION_NOT_SUPPORTED;
    __atomic_store_n(&fast_stats.initialize_calls, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&fast_stats.initialize_ok, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&fast_stats.finalize_calls, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&fast_stats.finalize_ok, 0, __ATOMIC_RELAXED);
    unsigned long opened, closed;
    fast_session_totals(&opened, &closed);
    __atomic_store_n(&fast_opened_base, opened, __ATOMIC_RELAXED);
    return CKR_OK;
}

#define ENTRY_OK(name) fast_##name
#define ENTRY_FILL(name) fast_##name

#else
/* ==== The real mock: one mutex around everything ==================================== */

#define MAX_SLOTS 16
#define MAX_SESSIONS 1024
#define MAX_OBJECTS 1024
#define MAX_ATTRS 32
#define MAX_ATTR_LEN 8192
#define MAX_EVENTS 64
#define LOGIN_NONE ((CK_USER_TYPE)~0UL)
#define WRAPPED_LEN 16
#define STATE_MAGIC 0x4d4f434bU /* "MOCK" */

struct slot {
    int used;
    CK_SLOT_ID id;
    char label[33];
    char user_pin[MAX_PIN + 1];
    char so_pin[MAX_PIN + 1];
    CK_USER_TYPE login; /* token-wide login state (spec 2.40 section 6.7.1) */
};

enum op_kind {
    OP_FIND,
    OP_DIGEST,
    OP_SIGN,
    OP_VERIFY,
    OP_ENCRYPT,
    OP_DECRYPT,
    OP_SIGN_RECOVER,
    OP_VERIFY_RECOVER,
    OP_MSG_ENCRYPT,
    OP_MSG_DECRYPT,
    OP_MSG_SIGN,
    OP_MSG_VERIFY,
    OP_VERIFY_SIGNATURE, /* 3.2: the signature is given to the Init call */
    OP_COUNT
};

struct op {
    int active;
    int in_message;        /* message-based: between *MessageBegin and the last *Next */
    CK_MECHANISM_TYPE mech;
    uint64_t secret;       /* the key's secret (0 for digest) */
    uint64_t msg_secret;   /* secret mixed with the current message's parameter */
    struct mock_digest d;  /* running MAC for digest/sign/verify */
    unsigned char signature[MOCK_DIGEST_LEN]; /* C_VerifySignatureInit's */
};

/* An asynchronous session's pending C_EncapsulateKey (3.2 section 5.20): the caller's
 * buffers, written only when C_AsyncComplete finishes it. */
struct pending {
    int active;
    CK_ULONG id;
    CK_BYTE_PTR ciphertext;
    CK_ULONG_PTR ciphertext_len;
    CK_OBJECT_HANDLE_PTR key;
    uint64_t secret;
};

struct session {
    int used;
    CK_SESSION_HANDLE handle;
    CK_SLOT_ID slot;
    CK_FLAGS flags;
    struct op ops[OP_COUNT];
    CK_OBJECT_HANDLE *found; /* C_FindObjectsInit snapshot */
    CK_ULONG n_found, found_pos;
    struct pending pending;
};

struct attr {
    CK_ATTRIBUTE_TYPE type;
    CK_ULONG len;
    unsigned char *value;
};

struct object {
    int used;
    CK_OBJECT_HANDLE handle;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE owner; /* session that owns a session object; 0 for token objects */
    int is_private;
    uint64_t secret;         /* drives the fake crypto; shared by the halves of a key pair */
    CK_ULONG n_attrs;
    struct attr attrs[MAX_ATTRS];
};

/* All module state. Every field is touched only with `lock` held (the generic wrapper
 * takes it), except in the fork child handler, which runs single-threaded. */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t event_cond; /* signalled on a queued event and on C_Finalize */
    int initialized;
    unsigned long generation;  /* bumps on every initialise/finalise: wakes stale waiters */
    struct slot slots[MAX_SLOTS];
    struct session sessions[MAX_SESSIONS];
    struct object objects[MAX_OBJECTS];
    CK_SESSION_HANDLE next_session;
    CK_OBJECT_HANDLE next_object;
    CK_SLOT_ID events[MAX_EVENTS];
    unsigned event_head, n_events;
    unsigned char random_counter;
    uint64_t secret_state;
    CK_RV fail_next_init, fail_next_call;
    unsigned long release_round; /* MOCK_RELEASE_WAITERS: bumps it, wakes hung waiters */
    CK_RV release_rv;            /* ... and what they then return */
    struct mock_stats stats;
} st = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .event_cond = PTHREAD_COND_INITIALIZER,
    /* Every variant counts from 1, so handles overlap between modules on purpose. */
    .next_session = 1,
    .next_object = 1,
    .secret_state = MOCK_TAG,
};

/* MOCK_SET_DELAY: every call sleeps this long before taking the lock, so a test can have
 * threads inside the module (and not holding its lock) when something else happens. Atomic:
 * read outside the lock. */
static unsigned long delay_us;

/* MOCK_OVERREPORT: a misbehaving module. While a test has switched it on
 * (MOCK_SET_OVERREPORT), C_GetSlotList, C_GetMechanismList, C_GetAttributeValue, C_FindObjects,
 * digest/sign (single-part and final) and encrypt/decrypt answer CKR_OK with a length or count
 * MOCK_OVERREPORT more than the caller's buffer holds, and write only within that buffer. A size
 * query (NULL buffer) is answered truthfully. Under `lock`. */
static int overreporting;

static void call_delay(void)
{
    unsigned long us = __atomic_load_n(&delay_us, __ATOMIC_RELAXED);
    if (us) {
        struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
        nanosleep(&ts, NULL);
    }
}

static void lock(void)
{
    pthread_mutex_lock(&st.lock);
}

static void unlock(void)
{
    pthread_mutex_unlock(&st.lock);
}

static void count_hand_call(enum mock_fn fn)
{
    lock();
    st.stats.calls[fn]++;
    unlock();
}

/* ---- Slots ---- */

static struct slot *slot_get(CK_SLOT_ID id)
{
    for (int i = 0; i < MAX_SLOTS; i++)
        if (st.slots[i].used && st.slots[i].id == id)
            return &st.slots[i];
    return NULL;
}

static void slot_reset_token(struct slot *s)
{
    snprintf(s->label, sizeof s->label, "%s-%lu", MOCK_NAME, (unsigned long)s->id);
    snprintf(s->user_pin, sizeof s->user_pin, "%s", USER_PIN);
    snprintf(s->so_pin, sizeof s->so_pin, "%s", SO_PIN);
}

static struct slot *slot_add(CK_SLOT_ID id)
{
    if (slot_get(id))
        return NULL;
    for (int i = 0; i < MAX_SLOTS; i++) {
        struct slot *s = &st.slots[i];
        if (s->used)
            continue;
        memset(s, 0, sizeof *s);
        s->used = 1;
        s->id = id;
        s->login = LOGIN_NONE;
        slot_reset_token(s);
        return s;
    }
    return NULL;
}

/* ---- Objects ---- */

static uint64_t secret_new(void)
{
    st.secret_state = st.secret_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (st.secret_state >> 1) | 1;
}

static void object_free(struct object *o)
{
    for (CK_ULONG i = 0; i < o->n_attrs; i++)
        free(o->attrs[i].value);
    memset(o, 0, sizeof *o);
}

static void object_destroy(struct object *o)
{
    object_free(o);
    st.stats.objects--;
}

static struct attr *attr_find(struct object *o, CK_ATTRIBUTE_TYPE type)
{
    for (CK_ULONG i = 0; i < o->n_attrs; i++)
        if (o->attrs[i].type == type)
            return &o->attrs[i];
    return NULL;
}

static CK_RV attr_set(struct object *o, CK_ATTRIBUTE_TYPE type, const void *value, CK_ULONG len)
{
    if (len > MAX_ATTR_LEN || (!value && len))
        return CKR_ATTRIBUTE_VALUE_INVALID;
    unsigned char *copy = malloc(len ? len : 1);
    if (!copy)
        return CKR_HOST_MEMORY;
    if (len)
        memcpy(copy, value, len);
    struct attr *a = attr_find(o, type);
    if (!a) {
        if (o->n_attrs == MAX_ATTRS) {
            free(copy);
            return CKR_DEVICE_MEMORY;
        }
        a = &o->attrs[o->n_attrs++];
        a->type = type;
    } else {
        free(a->value);
    }
    a->value = copy;
    a->len = len;
    return CKR_OK;
}

static CK_BBOOL attr_bool(struct object *o, CK_ATTRIBUTE_TYPE type, CK_BBOOL dflt)
{
    struct attr *a = attr_find(o, type);
    if (!a || a->len != sizeof(CK_BBOOL))
        return dflt;
    return *(CK_BBOOL *)a->value ? CK_TRUE : CK_FALSE;
}

static CK_ULONG attr_ulong(struct object *o, CK_ATTRIBUTE_TYPE type, CK_ULONG dflt)
{
    struct attr *a = attr_find(o, type);
    if (!a || a->len != sizeof(CK_ULONG))
        return dflt;
    CK_ULONG v;
    memcpy(&v, a->value, sizeof v);
    return v;
}

static int template_ulong(const CK_ATTRIBUTE *t, CK_ULONG n, CK_ATTRIBUTE_TYPE type, CK_ULONG *out)
{
    for (CK_ULONG i = 0; i < n; i++)
        if (t[i].type == type && t[i].pValue && t[i].ulValueLen == sizeof(CK_ULONG)) {
            memcpy(out, t[i].pValue, sizeof *out);
            return 1;
        }
    return 0;
}

static int is_key_class(CK_OBJECT_CLASS c)
{
    return c == CKO_SECRET_KEY || c == CKO_PUBLIC_KEY || c == CKO_PRIVATE_KEY;
}

static CK_BBOOL slot_user_logged_in(CK_SLOT_ID id)
{
    struct slot *s = slot_get(id);
    return s && s->login == CKU_USER;
}

/* An object this session may see: same token; private ones only after a user login
 * (spec 2.40 section 4.4.2). */
static struct object *object_get(struct session *s, CK_OBJECT_HANDLE h)
{
    if (!h)
        return NULL;
    for (int i = 0; i < MAX_OBJECTS; i++) {
        struct object *o = &st.objects[i];
        if (o->used && o->handle == h && o->slot == s->slot) {
            if (o->is_private && !slot_user_logged_in(s->slot))
                return NULL;
            return o;
        }
    }
    return NULL;
}

/* Creates an object from `base` (what the mechanism or the copied object supplies) and
 * then the caller's template on top. A template may not change CKA_CLASS. */
static CK_RV object_new(struct session *s, const CK_ATTRIBUTE *base, CK_ULONG n_base,
                        const CK_ATTRIBUTE *tmpl, CK_ULONG n, uint64_t secret, struct object **out)
{
    if (n && !tmpl)
        return CKR_ARGUMENTS_BAD;
    for (CK_ULONG i = 0; i < n; i++) {
        if ((!tmpl[i].pValue && tmpl[i].ulValueLen) || tmpl[i].ulValueLen > MAX_ATTR_LEN)
            return CKR_ATTRIBUTE_VALUE_INVALID;
        if (tmpl[i].type != CKA_CLASS)
            continue;
        for (CK_ULONG j = 0; j < n_base; j++)
            if (base[j].type == CKA_CLASS &&
                (base[j].ulValueLen != tmpl[i].ulValueLen ||
                 memcmp(base[j].pValue, tmpl[i].pValue, tmpl[i].ulValueLen) != 0))
                return CKR_TEMPLATE_INCONSISTENT;
    }
    struct object *o = NULL;
    for (int i = 0; i < MAX_OBJECTS && !o; i++)
        if (!st.objects[i].used)
            o = &st.objects[i];
    if (!o)
        return CKR_DEVICE_MEMORY;
    memset(o, 0, sizeof *o);
    o->used = 1;
    o->slot = s->slot;
    CK_RV rv = CKR_OK;
    for (CK_ULONG i = 0; i < n_base && rv == CKR_OK; i++)
        rv = attr_set(o, base[i].type, base[i].pValue, base[i].ulValueLen);
    for (CK_ULONG i = 0; i < n && rv == CKR_OK; i++)
        rv = attr_set(o, tmpl[i].type, tmpl[i].pValue, tmpl[i].ulValueLen);
    if (rv == CKR_OK && !attr_find(o, CKA_CLASS))
        rv = CKR_TEMPLATE_INCOMPLETE;
    CK_BBOOL token = attr_bool(o, CKA_TOKEN, CK_FALSE);
    CK_BBOOL priv = attr_bool(o, CKA_PRIVATE, CK_FALSE);
    if (rv == CKR_OK)
        rv = attr_set(o, CKA_TOKEN, &token, sizeof token);
    if (rv == CKR_OK)
        rv = attr_set(o, CKA_PRIVATE, &priv, sizeof priv);
    if (rv == CKR_OK && token && !(s->flags & CKF_RW_SESSION))
        rv = CKR_SESSION_READ_ONLY;
    if (rv == CKR_OK && priv && !slot_user_logged_in(s->slot))
        rv = CKR_USER_NOT_LOGGED_IN;
    if (rv != CKR_OK) {
        object_free(o);
        return rv;
    }
    o->owner = token ? 0 : s->handle;
    o->is_private = priv;
    if (!secret) {
        struct attr *v = attr_find(o, CKA_VALUE);
        secret = v ? (mock_param_mix(v->value, v->len) | 1) : secret_new();
    }
    o->secret = secret;
    o->handle = st.next_object++;
    st.stats.objects++;
    *out = o;
    return CKR_OK;
}

static int object_matches(struct object *o, const CK_ATTRIBUTE *t, CK_ULONG n)
{
    for (CK_ULONG i = 0; i < n; i++) {
        struct attr *a = attr_find(o, t[i].type);
        if (!a || a->len != t[i].ulValueLen || (a->len && memcmp(a->value, t[i].pValue, a->len) != 0))
            return 0;
    }
    return 1;
}

/* ---- Sessions ---- */

static struct session *session_get(CK_SESSION_HANDLE h)
{
    if (!h)
        return NULL;
    for (int i = 0; i < MAX_SESSIONS; i++)
        if (st.sessions[i].used && st.sessions[i].handle == h)
            return &st.sessions[i];
    return NULL;
}

#define SESSION(s, h)                         \
    struct session *s = session_get(h);       \
    if (!s)                                   \
    return CKR_SESSION_HANDLE_INVALID

static CK_ULONG slot_session_count(CK_SLOT_ID id, int rw_only)
{
    CK_ULONG n = 0;
    for (int i = 0; i < MAX_SESSIONS; i++)
        if (st.sessions[i].used && st.sessions[i].slot == id &&
            (!rw_only || (st.sessions[i].flags & CKF_RW_SESSION)))
            n++;
    return n;
}

static CK_STATE session_state(struct session *s)
{
    struct slot *sl = slot_get(s->slot);
    CK_USER_TYPE login = sl ? sl->login : LOGIN_NONE;
    int rw = (s->flags & CKF_RW_SESSION) != 0;
    if (login == CKU_SO)
        return CKS_RW_SO_FUNCTIONS;
    if (login == CKU_USER)
        return rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
    return rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION;
}

static void op_end(struct session *s, int kind)
{
    if (kind == OP_FIND) {
        free(s->found);
        s->found = NULL;
        s->n_found = s->found_pos = 0;
    }
    memset(&s->ops[kind], 0, sizeof s->ops[kind]);
}

/* Drops a session and its session objects; the last session on a token logs it out
 * (spec 2.40 section 5.6, C_CloseSession). */
static void session_close(struct session *s)
{
    CK_SLOT_ID slot = s->slot;
    CK_SESSION_HANDLE h = s->handle;
    op_end(s, OP_FIND);
    memset(s, 0, sizeof *s);
    for (int i = 0; i < MAX_OBJECTS; i++)
        if (st.objects[i].used && st.objects[i].owner == h)
            object_destroy(&st.objects[i]);
    st.stats.open_sessions--;
    st.stats.sessions_closed_total++;
    struct slot *sl = slot_get(slot);
    if (sl && slot_session_count(slot, 0) == 0)
        sl->login = LOGIN_NONE;
}

static void slot_remove(struct slot *sl)
{
    for (int i = 0; i < MAX_SESSIONS; i++)
        if (st.sessions[i].used && st.sessions[i].slot == sl->id)
            session_close(&st.sessions[i]);
    for (int i = 0; i < MAX_OBJECTS; i++)
        if (st.objects[i].used && st.objects[i].slot == sl->id)
            object_destroy(&st.objects[i]);
    memset(sl, 0, sizeof *sl);
}

static void slots_reset(void)
{
    for (int i = 0; i < MAX_SLOTS; i++) {
        struct slot *sl = &st.slots[i];
        if (!sl->used)
            continue;
        int initial = 0;
        for (size_t k = 0; k < N_INITIAL_SLOTS; k++)
            initial |= initial_slots[k] == sl->id;
        if (initial)
            slot_reset_token(sl);
        else
            slot_remove(sl);
    }
    for (size_t k = 0; k < N_INITIAL_SLOTS; k++)
        if (!slot_get(initial_slots[k]))
            slot_add(initial_slots[k]);
}

/* ---- Operations ---- */

static int mechanism_known(CK_MECHANISM_TYPE m)
{
    for (size_t i = 0; i < N_MECHANISMS; i++)
        if (mechanisms[i].type == m)
            return 1;
    return 0;
}

static int mechanism_allowed(int kind, CK_MECHANISM_TYPE m)
{
    switch (kind) {
    case OP_DIGEST:
        return m == CKM_SHA256;
    case OP_SIGN:
    case OP_VERIFY:
    case OP_VERIFY_SIGNATURE:
        return m == CKM_ECDSA || m == CKM_RSA_PKCS;
    case OP_ENCRYPT:
    case OP_DECRYPT:
        return m == CKM_AES_GCM || m == CKM_RSA_PKCS;
    case OP_SIGN_RECOVER:
    case OP_VERIFY_RECOVER:
        return m == CKM_RSA_PKCS;
    case OP_MSG_ENCRYPT:
    case OP_MSG_DECRYPT:
        return m == CKM_AES_GCM;
    case OP_MSG_SIGN:
    case OP_MSG_VERIFY:
        return m == CKM_ECDSA;
    }
    return 0;
}

/* C_xxxInit. A NULL mechanism cancels the operation in 3.0 (section 5.2 of 3.0). */
static CK_RV op_init(CK_SESSION_HANDLE h, int kind, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key)
{
    SESSION(s, h);
    struct op *op = &s->ops[kind];
    if (!mech) {
        if (MOCK_V3 && op->active) {
            op_end(s, kind);
            return CKR_OK;
        }
        return CKR_ARGUMENTS_BAD;
    }
    if (op->active)
        return CKR_OPERATION_ACTIVE;
    if (!mechanism_known(mech->mechanism) || !mechanism_allowed(kind, mech->mechanism))
        return CKR_MECHANISM_INVALID;
    uint64_t secret = 0;
    if (kind != OP_DIGEST) {
        struct object *k = object_get(s, key);
        if (!k)
            return CKR_KEY_HANDLE_INVALID;
        if (!is_key_class(attr_ulong(k, CKA_CLASS, CKO_DATA)))
            return CKR_KEY_TYPE_INCONSISTENT;
        secret = k->secret;
    }
    memset(op, 0, sizeof *op);
    op->active = 1;
    op->mech = mech->mechanism;
    op->secret = secret;
    mock_digest_init(&op->d, MOCK_TAG, secret);
    return CKR_OK;
}

static struct op *op_get(struct session *s, int kind)
{
    return s->ops[kind].active ? &s->ops[kind] : NULL;
}

#define OPERATION(op, s, kind)                \
    struct op *op = op_get(s, kind);          \
    if (!op)                                  \
    return CKR_OPERATION_NOT_INITIALIZED

/* Single-part digest/sign: the running MAC plus `data`, without disturbing the state
 * when only the length was asked for. */
static CK_RV mac_single(CK_SESSION_HANDLE h, int kind, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR out,
                        CK_ULONG_PTR out_len)
{
    SESSION(s, h);
    OPERATION(op, s, kind);
    if (!out_len || (!data && len)) {
        op_end(s, kind);
        return CKR_ARGUMENTS_BAD;
    }
    struct mock_digest d = op->d;
    unsigned char mac[MOCK_DIGEST_LEN];
    mock_digest_update(&d, data, len);
    mock_digest_final(&d, mac);
    if (MOCK_OVERREPORT && overreporting && out) {
        memcpy(out, mac, *out_len < MOCK_DIGEST_LEN ? *out_len : MOCK_DIGEST_LEN);
        *out_len += MOCK_OVERREPORT;
        op_end(s, kind);
        return CKR_OK;
    }
    int done;
    CK_RV rv = output_length(MOCK_DIGEST_LEN, out, out_len, &done);
    if (done) {
        memcpy(out, mac, MOCK_DIGEST_LEN);
        op_end(s, kind);
    }
    return rv;
}

static CK_RV mac_update(CK_SESSION_HANDLE h, int kind, CK_BYTE_PTR part, CK_ULONG len)
{
    SESSION(s, h);
    OPERATION(op, s, kind);
    if (!part && len) {
        op_end(s, kind);
        return CKR_ARGUMENTS_BAD;
    }
    mock_digest_update(&op->d, part, len);
    return CKR_OK;
}

static CK_RV mac_final(CK_SESSION_HANDLE h, int kind, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    return mac_single(h, kind, NULL, 0, out, out_len);
}

/* Verify ends the operation whatever the outcome (spec 2.40 section 5.13). */
static CK_RV mac_verify(CK_SESSION_HANDLE h, int kind, CK_BYTE_PTR data, CK_ULONG len, CK_BYTE_PTR sig,
                        CK_ULONG sig_len)
{
    SESSION(s, h);
    OPERATION(op, s, kind);
    CK_RV rv = CKR_OK;
    if ((!data && len) || !sig) {
        rv = CKR_ARGUMENTS_BAD;
    } else if (sig_len != MOCK_DIGEST_LEN) {
        rv = CKR_SIGNATURE_LEN_RANGE;
    } else {
        unsigned char mac[MOCK_DIGEST_LEN];
        mock_digest_update(&op->d, data, len);
        mock_digest_final(&op->d, mac);
        if (memcmp(mac, sig, MOCK_DIGEST_LEN) != 0)
            rv = CKR_SIGNATURE_INVALID;
    }
    op_end(s, kind);
    return rv;
}

/* Encrypt/decrypt: XOR with one key-derived byte, so output length == input length. */
static CK_RV xor_out(struct op *op, CK_BYTE_PTR in, CK_ULONG len, CK_BYTE_PTR out, CK_ULONG_PTR out_len,
                     int *done)
{
    if (MOCK_OVERREPORT && overreporting && out) {
        unsigned char b = mock_xor_byte(op->secret ^ op->msg_secret);
        for (CK_ULONG i = 0; i < len && i < *out_len; i++)
            out[i] = in[i] ^ b;
        *out_len += MOCK_OVERREPORT;
        *done = 1;
        return CKR_OK;
    }
    CK_RV rv = output_length(len, out, out_len, done);
    if (*done) {
        unsigned char b = mock_xor_byte(op->secret ^ op->msg_secret);
        for (CK_ULONG i = 0; i < len; i++)
            out[i] = in[i] ^ b;
    }
    return rv;
}

static CK_RV xor_step(CK_SESSION_HANDLE h, int kind, int last, CK_BYTE_PTR in, CK_ULONG len, CK_BYTE_PTR out,
                      CK_ULONG_PTR out_len)
{
    SESSION(s, h);
    OPERATION(op, s, kind);
    if (!out_len || (!in && len)) {
        op_end(s, kind);
        return CKR_ARGUMENTS_BAD;
    }
    int done;
    CK_RV rv = xor_out(op, in, len, out, out_len, &done);
    if (done && last)
        op_end(s, kind);
    return rv;
}

static CK_RV xor_final(CK_SESSION_HANDLE h, int kind, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    return xor_step(h, kind, 1, NULL, 0, out, out_len);
}

/* ---- The functions ---- */

/* Counts the call and answers for every wrapped function when the module is not
 * initialised (spec 2.40 section 5.4: CKR_CRYPTOKI_NOT_INITIALIZED). */
static CK_RV call_begin(enum mock_fn fn, int v3)
{
    st.stats.calls[fn]++;
    if (v3 == 1)
        st.stats.calls_3_0++;
    if (v3 == 2)
        st.stats.calls_3_2++;
    if (!st.initialized) {
        st.stats.calls_while_uninitialised++;
        st.stats.last_call_while_uninitialised = fn;
        return CKR_CRYPTOKI_NOT_INITIALIZED;
    }
    if (st.fail_next_call) {
        CK_RV rv = st.fail_next_call;
        st.fail_next_call = 0;
        return rv;
    }
    return CKR_OK;
}

#define WRAP_DEFINE_2_40(name, kind, params, args) WRAP_DEFINE_##kind(name, params, args, 0)
#define WRAP_DEFINE_3_0(name, kind, params, args) WRAP_DEFINE_##kind(name, params, args, 1)
#define WRAP_DEFINE_3_2(name, kind, params, args) WRAP_DEFINE_##kind(name, params, args, 2)
#define WRAP_DEFINE_HAND(name, params, args, v3)
#define WRAP_DEFINE_OK(name, params, args, v3) WRAP_DEFINE_GENERIC(name, params, args, v3)
#define WRAP_DEFINE_FILL(name, params, args, v3) WRAP_DEFINE_GENERIC(name, params, args, v3)
#define WRAP_DEFINE_GENERIC(name, params, args, v3) \
    static CK_RV impl_##name params;                 \
    static CK_RV wrap_##name params                  \
    {                                                \
        call_delay();                                \
        lock();                                      \
        CK_RV rv = call_begin(MOCK_FN_##name, v3);   \
        if (rv == CKR_OK)                            \
            rv = impl_##name args;                   \
        unlock();                                    \
        return rv;                                   \
    }
MOCK_FUNCTIONS_2_40(WRAP_DEFINE_2_40)
#if MOCK_V3
MOCK_FUNCTIONS_3_0(WRAP_DEFINE_3_0)
#endif
#if MOCK_V32_FUNCTIONS
MOCK_FUNCTIONS_3_2(WRAP_DEFINE_3_2)
#endif

static void state_drop_sessions(void)
{
    for (int i = 0; i < MAX_SESSIONS; i++)
        if (st.sessions[i].used)
            session_close(&st.sessions[i]);
    for (int i = 0; i < MAX_SLOTS; i++)
        st.slots[i].login = LOGIN_NONE;
}

/* Spec 2.40 section 5.4: C_Initialize. pReserved must be NULL by the spec, but p11-kit
 * passes a module's `x-init-reserved` string there, so it is accepted and recorded. */
static CK_RV hand_C_Initialize(CK_VOID_PTR pInitArgs)
{
    CK_C_INITIALIZE_ARGS *args = pInitArgs;
    CK_RV rv = CKR_OK;
    call_delay();
    lock();
    st.stats.calls[MOCK_FN_C_Initialize]++;
    st.stats.initialize_calls++;
    if (args) {
        int callbacks = (args->CreateMutex != NULL) + (args->DestroyMutex != NULL) + (args->LockMutex != NULL) +
                        (args->UnlockMutex != NULL);
        if (callbacks != 0 && callbacks != 4)
            rv = CKR_ARGUMENTS_BAD;
    }
    if (rv == CKR_OK) {
        st.stats.last_init_had_args = args != NULL;
        st.stats.last_init_flags = args ? args->flags : 0;
        st.stats.last_init_had_mutex_callbacks = args && args->CreateMutex != NULL;
        snprintf(st.stats.last_init_reserved, sizeof st.stats.last_init_reserved, "%s",
                 args && args->pReserved ? (const char *)args->pReserved : "");
        if (MOCK_FAIL_INIT) {
            rv = MOCK_FAIL_INIT;
        } else if (st.fail_next_init) {
            rv = st.fail_next_init;
            st.fail_next_init = 0;
        } else if (st.initialized) {
            st.stats.double_init_attempts++;
            rv = CKR_CRYPTOKI_ALREADY_INITIALIZED;
        } else {
            st.initialized = 1;
            st.generation++;
            st.n_events = st.event_head = 0;
            st.stats.initialize_ok++;
        }
    }
    unlock();
    return rv;
}

static CK_RV hand_C_Finalize(CK_VOID_PTR pReserved)
{
    CK_RV rv = CKR_OK;
    call_delay();
    lock();
    st.stats.calls[MOCK_FN_C_Finalize]++;
    st.stats.finalize_calls++;
    if (pReserved) {
        rv = CKR_ARGUMENTS_BAD;
    } else if (!st.initialized) {
        rv = CKR_CRYPTOKI_NOT_INITIALIZED;
    } else {
        state_drop_sessions();
        st.initialized = 0;
        st.generation++;
        st.stats.finalize_ok++;
        pthread_cond_broadcast(&st.event_cond);
    }
    unlock();
    return rv;
}

static CK_RV impl_C_GetInfo(CK_INFO_PTR pInfo)
{
    if (!pInfo)
        return CKR_ARGUMENTS_BAD;
    fill_info(pInfo);
    return CKR_OK;
}

#if MOCK_GARBAGE_SLOTS
/* A broken module: the size query claims 5 slots, the fill call then delivers 3 with a
 * duplicate (a count that changes between the calls, and repeated IDs). */
static CK_RV impl_C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount)
{
    (void)tokenPresent;
    if (!pulCount)
        return CKR_ARGUMENTS_BAD;
    CK_SLOT_ID first = initial_slots[0], last = initial_slots[N_INITIAL_SLOTS - 1];
    if (!pSlotList || *pulCount < 3) {
        CK_RV rv = pSlotList ? CKR_BUFFER_TOO_SMALL : CKR_OK;
        *pulCount = 5;
        return rv;
    }
    pSlotList[0] = first;
    pSlotList[1] = first;
    pSlotList[2] = last;
    *pulCount = 3;
    return CKR_OK;
}
#else
static CK_RV impl_C_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList, CK_ULONG_PTR pulCount)
{
    (void)tokenPresent; /* every slot has its token */
    if (!pulCount)
        return CKR_ARGUMENTS_BAD;
    CK_ULONG n = 0;
    if (MOCK_OVERREPORT && overreporting && pSlotList) {
        for (int i = 0; i < MAX_SLOTS && n < *pulCount; i++)
            if (st.slots[i].used)
                pSlotList[n++] = st.slots[i].id;
        *pulCount += MOCK_OVERREPORT;
        return CKR_OK;
    }
    for (int i = 0; i < MAX_SLOTS; i++)
        n += st.slots[i].used;
    int done;
    CK_RV rv = output_length(n, (CK_BYTE_PTR)pSlotList, pulCount, &done);
    if (done) {
        n = 0;
        for (int i = 0; i < MAX_SLOTS; i++)
            if (st.slots[i].used)
                pSlotList[n++] = st.slots[i].id;
    }
    return rv;
}
#endif

static CK_RV impl_C_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
{
    if (!pInfo)
        return CKR_ARGUMENTS_BAD;
    if (!slot_get(slotID))
        return CKR_SLOT_ID_INVALID;
    fill_slot_info(slotID, pInfo);
    return CKR_OK;
}

static CK_RV impl_C_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
    if (!pInfo)
        return CKR_ARGUMENTS_BAD;
    struct slot *sl = slot_get(slotID);
    if (!sl)
        return CKR_SLOT_ID_INVALID;
    fill_token_info(slotID, sl->label, slot_session_count(slotID, 0), slot_session_count(slotID, 1), pInfo);
    return CKR_OK;
}

static CK_RV impl_C_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pMechanismList,
                                     CK_ULONG_PTR pulCount)
{
    if (!pulCount)
        return CKR_ARGUMENTS_BAD;
    if (!slot_get(slotID))
        return CKR_SLOT_ID_INVALID;
    if (!pMechanismList) {
        *pulCount = N_MECHANISMS;
        return CKR_OK;
    }
    if (MOCK_OVERREPORT && overreporting) {
        for (size_t i = 0; i < N_MECHANISMS && i < *pulCount; i++)
            pMechanismList[i] = mechanisms[i].type;
        *pulCount += MOCK_OVERREPORT;
        return CKR_OK;
    }
    if (*pulCount < N_MECHANISMS) {
        *pulCount = N_MECHANISMS;
        return CKR_BUFFER_TOO_SMALL;
    }
    for (size_t i = 0; i < N_MECHANISMS; i++)
        pMechanismList[i] = mechanisms[i].type;
    *pulCount = N_MECHANISMS;
    return CKR_OK;
}

static CK_RV impl_C_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type, CK_MECHANISM_INFO_PTR pInfo)
{
    if (!pInfo)
        return CKR_ARGUMENTS_BAD;
    if (!slot_get(slotID))
        return CKR_SLOT_ID_INVALID;
    for (size_t i = 0; i < N_MECHANISMS; i++)
        if (mechanisms[i].type == type) {
            *pInfo = mechanisms[i].info;
            return CKR_OK;
        }
    return CKR_MECHANISM_INVALID;
}

static int pin_equal(const char *want, CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    return pin && strlen(want) == len && memcmp(want, pin, len) == 0;
}

/* Spec 2.40 section 5.5: C_InitToken needs the SO PIN and no open session; it wipes the
 * token's objects and relabels it. */
static CK_RV impl_C_InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pLabel)
{
    struct slot *sl = slot_get(slotID);
    if (!sl)
        return CKR_SLOT_ID_INVALID;
    if (!pPin || !pLabel)
        return CKR_ARGUMENTS_BAD;
    if (slot_session_count(slotID, 0))
        return CKR_SESSION_EXISTS;
    if (!pin_equal(sl->so_pin, pPin, ulPinLen))
        return CKR_PIN_INCORRECT;
    for (int i = 0; i < MAX_OBJECTS; i++)
        if (st.objects[i].used && st.objects[i].slot == slotID)
            object_destroy(&st.objects[i]);
    size_t n = 32;
    while (n > 0 && pLabel[n - 1] == ' ')
        n--;
    memcpy(sl->label, pLabel, n);
    sl->label[n] = 0;
    return CKR_OK;
}

static CK_RV pin_check_new(CK_UTF8CHAR_PTR pin, CK_ULONG len)
{
    if (!pin)
        return CKR_ARGUMENTS_BAD;
    if (len < MIN_PIN || len > MAX_PIN)
        return CKR_PIN_LEN_RANGE;
    return CKR_OK;
}

static CK_RV impl_C_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
    SESSION(s, hSession);
    if (session_state(s) != CKS_RW_SO_FUNCTIONS)
        return CKR_USER_NOT_LOGGED_IN;
    CK_RV rv = pin_check_new(pPin, ulPinLen);
    if (rv != CKR_OK)
        return rv;
    struct slot *sl = slot_get(s->slot);
    if (!sl)
        return CKR_DEVICE_REMOVED;
    memcpy(sl->user_pin, pPin, ulPinLen);
    sl->user_pin[ulPinLen] = 0;
    return CKR_OK;
}

/* Changes the SO PIN in an SO session, the user PIN otherwise (spec 2.40 section 5.5). */
static CK_RV impl_C_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen,
                           CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen)
{
    SESSION(s, hSession);
    if (!(s->flags & CKF_RW_SESSION))
        return CKR_SESSION_READ_ONLY;
    if (!pOldPin)
        return CKR_ARGUMENTS_BAD;
    struct slot *sl = slot_get(s->slot);
    if (!sl)
        return CKR_DEVICE_REMOVED;
    char *pin = sl->login == CKU_SO ? sl->so_pin : sl->user_pin;
    if (!pin_equal(pin, pOldPin, ulOldLen))
        return CKR_PIN_INCORRECT;
    CK_RV rv = pin_check_new(pNewPin, ulNewLen);
    if (rv != CKR_OK)
        return rv;
    memcpy(pin, pNewPin, ulNewLen);
    pin[ulNewLen] = 0;
    return CKR_OK;
}

static CK_RV impl_C_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication, CK_NOTIFY Notify,
                                CK_SESSION_HANDLE_PTR phSession)
{
    (void)pApplication;
    (void)Notify; /* no callbacks: this token never surrenders */
    if (!phSession)
        return CKR_ARGUMENTS_BAD;
    struct slot *sl = slot_get(slotID);
    if (!sl)
        return CKR_SLOT_ID_INVALID;
    if (!(flags & CKF_SERIAL_SESSION))
        return CKR_SESSION_PARALLEL_NOT_SUPPORTED;
    if (sl->login == CKU_SO && !(flags & CKF_RW_SESSION))
        return CKR_SESSION_READ_WRITE_SO_EXISTS;
    for (int i = 0; i < MAX_SESSIONS; i++) {
        struct session *s = &st.sessions[i];
        if (s->used)
            continue;
        memset(s, 0, sizeof *s);
        s->used = 1;
        s->handle = st.next_session++;
        if (st.next_session == 0)
            st.next_session = 1;
        s->slot = slotID;
        s->flags = flags & (CKF_SERIAL_SESSION | CKF_RW_SESSION | (MOCK_V32_FUNCTIONS ? CKF_ASYNC_SESSION : 0));
        st.stats.open_sessions++;
        st.stats.sessions_opened_total++;
        *phSession = s->handle;
        return CKR_OK;
    }
    return CKR_SESSION_COUNT;
}

static CK_RV impl_C_CloseSession(CK_SESSION_HANDLE hSession)
{
    SESSION(s, hSession);
    session_close(s);
    return CKR_OK;
}

static CK_RV impl_C_CloseAllSessions(CK_SLOT_ID slotID)
{
    if (!slot_get(slotID))
        return CKR_SLOT_ID_INVALID;
    for (int i = 0; i < MAX_SESSIONS; i++)
        if (st.sessions[i].used && st.sessions[i].slot == slotID)
            session_close(&st.sessions[i]);
    return CKR_OK;
}

/* ulDeviceError carries MOCK_TAG so a test can tell which module served the session. */
static CK_RV impl_C_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo)
{
    SESSION(s, hSession);
    if (!pInfo)
        return CKR_ARGUMENTS_BAD;
    pInfo->slotID = s->slot;
    pInfo->state = session_state(s);
    pInfo->flags = s->flags;
    pInfo->ulDeviceError = MOCK_TAG;
    return CKR_OK;
}

/* Only a lone digest can be saved; the blob is checked on restore. */
struct saved_state {
    uint32_t magic;
    uint32_t tag;
    CK_MECHANISM_TYPE mech;
    struct mock_digest d;
};

static CK_RV impl_C_GetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState,
                                      CK_ULONG_PTR pulOperationStateLen)
{
    SESSION(s, hSession);
    if (!pulOperationStateLen)
        return CKR_ARGUMENTS_BAD;
    for (int k = OP_SIGN; k < OP_COUNT; k++)
        if (s->ops[k].active)
            return CKR_STATE_UNSAVEABLE;
    OPERATION(op, s, OP_DIGEST);
    int done;
    CK_RV rv = output_length(sizeof(struct saved_state), pOperationState, pulOperationStateLen, &done);
    if (done) {
        struct saved_state saved = {STATE_MAGIC, MOCK_TAG, op->mech, op->d};
        memcpy(pOperationState, &saved, sizeof saved);
    }
    return rv;
}

static CK_RV impl_C_SetOperationState(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pOperationState,
                                      CK_ULONG ulOperationStateLen, CK_OBJECT_HANDLE hEncryptionKey,
                                      CK_OBJECT_HANDLE hAuthenticationKey)
{
    (void)hEncryptionKey;
    (void)hAuthenticationKey; /* a digest needs no key */
    SESSION(s, hSession);
    if (!pOperationState)
        return CKR_ARGUMENTS_BAD;
    struct saved_state saved;
    if (ulOperationStateLen != sizeof saved)
        return CKR_SAVED_STATE_INVALID;
    memcpy(&saved, pOperationState, sizeof saved);
    if (saved.magic != STATE_MAGIC || saved.tag != (uint32_t)MOCK_TAG)
        return CKR_SAVED_STATE_INVALID;
    op_end(s, OP_DIGEST);
    struct op *op = &s->ops[OP_DIGEST];
    op->active = 1;
    op->mech = saved.mech;
    op->d = saved.d;
    return CKR_OK;
}

static int slot_has_ro_session(CK_SLOT_ID id)
{
    return slot_session_count(id, 0) != slot_session_count(id, 1);
}

/* Spec 2.40 section 5.6 (C_Login) and 3.0 section 5.6 (C_LoginUser: same, plus a name). */
static CK_RV login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
    SESSION(s, hSession);
    struct slot *sl = slot_get(s->slot);
    if (!sl)
        return CKR_DEVICE_REMOVED;
    if (userType != CKU_SO && userType != CKU_USER && userType != CKU_CONTEXT_SPECIFIC)
        return CKR_USER_TYPE_INVALID;
    if (!pPin)
        return CKR_ARGUMENTS_BAD; /* no protected authentication path */
    if (userType == CKU_CONTEXT_SPECIFIC) {
        if (sl->login == LOGIN_NONE)
            return CKR_USER_NOT_LOGGED_IN;
        return pin_equal(sl->login == CKU_SO ? sl->so_pin : sl->user_pin, pPin, ulPinLen) ? CKR_OK
                                                                                          : CKR_PIN_INCORRECT;
    }
    if (sl->login == userType)
        return CKR_USER_ALREADY_LOGGED_IN;
    if (sl->login != LOGIN_NONE)
        return CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
    if (userType == CKU_SO && slot_has_ro_session(sl->id))
        return CKR_SESSION_READ_ONLY_EXISTS;
    if (!pin_equal(userType == CKU_SO ? sl->so_pin : sl->user_pin, pPin, ulPinLen))
        return CKR_PIN_INCORRECT;
    sl->login = userType;
    return CKR_OK;
}

static CK_RV impl_C_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin,
                          CK_ULONG ulPinLen)
{
    return login(hSession, userType, pPin, ulPinLen);
}

static CK_RV impl_C_Logout(CK_SESSION_HANDLE hSession)
{
    SESSION(s, hSession);
    struct slot *sl = slot_get(s->slot);
    if (!sl)
        return CKR_DEVICE_REMOVED;
    if (sl->login == LOGIN_NONE)
        return CKR_USER_NOT_LOGGED_IN;
    sl->login = LOGIN_NONE;
    return CKR_OK;
}

static CK_RV impl_C_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
                                 CK_OBJECT_HANDLE_PTR phObject)
{
    SESSION(s, hSession);
    if (!phObject || !pTemplate)
        return CKR_ARGUMENTS_BAD;
    struct object *o;
    CK_RV rv = object_new(s, NULL, 0, pTemplate, ulCount, 0, &o);
    if (rv == CKR_OK)
        *phObject = o->handle;
    return rv;
}

static CK_RV impl_C_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ATTRIBUTE_PTR pTemplate,
                               CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phNewObject)
{
    SESSION(s, hSession);
    if (!phNewObject)
        return CKR_ARGUMENTS_BAD;
    struct object *src = object_get(s, hObject);
    if (!src)
        return CKR_OBJECT_HANDLE_INVALID;
    if (!attr_bool(src, CKA_COPYABLE, CK_TRUE))
        return CKR_ACTION_PROHIBITED;
    CK_ATTRIBUTE base[MAX_ATTRS];
    for (CK_ULONG i = 0; i < src->n_attrs; i++) {
        base[i].type = src->attrs[i].type;
        base[i].pValue = src->attrs[i].value;
        base[i].ulValueLen = src->attrs[i].len;
    }
    struct object *o;
    CK_RV rv = object_new(s, base, src->n_attrs, pTemplate, ulCount, src->secret, &o);
    if (rv == CKR_OK)
        *phNewObject = o->handle;
    return rv;
}

static CK_RV impl_C_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject)
{
    SESSION(s, hSession);
    struct object *o = object_get(s, hObject);
    if (!o)
        return CKR_OBJECT_HANDLE_INVALID;
    if (!o->owner && !(s->flags & CKF_RW_SESSION))
        return CKR_SESSION_READ_ONLY;
    if (!attr_bool(o, CKA_DESTROYABLE, CK_TRUE))
        return CKR_ACTION_PROHIBITED;
    object_destroy(o);
    return CKR_OK;
}

static CK_RV impl_C_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject, CK_ULONG_PTR pulSize)
{
    SESSION(s, hSession);
    if (!pulSize)
        return CKR_ARGUMENTS_BAD;
    struct object *o = object_get(s, hObject);
    if (!o)
        return CKR_OBJECT_HANDLE_INVALID;
    CK_ULONG size = 0;
    for (CK_ULONG i = 0; i < o->n_attrs; i++)
        size += sizeof(CK_ATTRIBUTE) + o->attrs[i].len;
    *pulSize = size;
    return CKR_OK;
}

/* Spec 2.40 section 5.7, C_GetAttributeValue: each entry on its own; unknown and
 * sensitive ones get CK_UNAVAILABLE_INFORMATION, NULL pValue gets the length, a short
 * buffer gets CKR_BUFFER_TOO_SMALL with CK_UNAVAILABLE_INFORMATION. */
static CK_RV impl_C_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                                      CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
    SESSION(s, hSession);
    if (!pTemplate && ulCount)
        return CKR_ARGUMENTS_BAD;
    struct object *o = object_get(s, hObject);
    if (!o)
        return CKR_OBJECT_HANDLE_INVALID;
    int secret = attr_bool(o, CKA_SENSITIVE, CK_FALSE) || !attr_bool(o, CKA_EXTRACTABLE, CK_TRUE);
    CK_RV rv = CKR_OK;
    for (CK_ULONG i = 0; i < ulCount; i++) {
        CK_ATTRIBUTE *t = &pTemplate[i];
        struct attr *a = attr_find(o, t->type);
        if (!a) {
            t->ulValueLen = CK_UNAVAILABLE_INFORMATION;
            rv = CKR_ATTRIBUTE_TYPE_INVALID;
        } else if (secret && t->type == CKA_VALUE) {
            t->ulValueLen = CK_UNAVAILABLE_INFORMATION;
            rv = CKR_ATTRIBUTE_SENSITIVE;
        } else if (!t->pValue) {
            t->ulValueLen = a->len;
        } else if (MOCK_OVERREPORT && overreporting) {
            memcpy(t->pValue, a->value, t->ulValueLen < a->len ? t->ulValueLen : a->len);
            t->ulValueLen += MOCK_OVERREPORT;
        } else if (t->ulValueLen < a->len) {
            t->ulValueLen = CK_UNAVAILABLE_INFORMATION;
            rv = CKR_BUFFER_TOO_SMALL;
        } else {
            memcpy(t->pValue, a->value, a->len);
            t->ulValueLen = a->len;
        }
    }
    return rv;
}

static CK_RV impl_C_SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
                                      CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
    SESSION(s, hSession);
    if (!pTemplate && ulCount)
        return CKR_ARGUMENTS_BAD;
    struct object *o = object_get(s, hObject);
    if (!o)
        return CKR_OBJECT_HANDLE_INVALID;
    if (!o->owner && !(s->flags & CKF_RW_SESSION))
        return CKR_SESSION_READ_ONLY;
    if (!attr_bool(o, CKA_MODIFIABLE, CK_TRUE))
        return CKR_ACTION_PROHIBITED;
    for (CK_ULONG i = 0; i < ulCount; i++) {
        CK_ATTRIBUTE_TYPE t = pTemplate[i].type;
        if (t == CKA_CLASS || t == CKA_TOKEN || t == CKA_PRIVATE || t == CKA_KEY_TYPE)
            return CKR_ATTRIBUTE_READ_ONLY;
        if ((!pTemplate[i].pValue && pTemplate[i].ulValueLen) || pTemplate[i].ulValueLen > MAX_ATTR_LEN)
            return CKR_ATTRIBUTE_VALUE_INVALID;
    }
    for (CK_ULONG i = 0; i < ulCount; i++) {
        CK_RV rv = attr_set(o, pTemplate[i].type, pTemplate[i].pValue, pTemplate[i].ulValueLen);
        if (rv != CKR_OK)
            return rv;
    }
    return CKR_OK;
}

/* The matching set is fixed at C_FindObjectsInit; objects destroyed meanwhile are skipped. */
static CK_RV impl_C_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
    SESSION(s, hSession);
    if (!pTemplate && ulCount)
        return CKR_ARGUMENTS_BAD;
    if (s->ops[OP_FIND].active)
        return CKR_OPERATION_ACTIVE;
    CK_OBJECT_HANDLE *found = malloc(MAX_OBJECTS * sizeof *found);
    if (!found)
        return CKR_HOST_MEMORY;
    CK_ULONG n = 0;
    for (int i = 0; i < MAX_OBJECTS; i++) {
        struct object *o = &st.objects[i];
        if (o->used && object_get(s, o->handle) == o && object_matches(o, pTemplate, ulCount))
            found[n++] = o->handle;
    }
    s->found = found;
    s->n_found = n;
    s->found_pos = 0;
    s->ops[OP_FIND].active = 1;
    return CKR_OK;
}

static CK_RV impl_C_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject,
                                CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount)
{
    SESSION(s, hSession);
    if (!phObject || !pulObjectCount)
        return CKR_ARGUMENTS_BAD;
    OPERATION(op, s, OP_FIND);
    (void)op;
    CK_ULONG n = 0;
    while (n < ulMaxObjectCount && s->found_pos < s->n_found) {
        CK_OBJECT_HANDLE h = s->found[s->found_pos++];
        if (object_get(s, h))
            phObject[n++] = h;
    }
    *pulObjectCount = MOCK_OVERREPORT && overreporting ? ulMaxObjectCount + MOCK_OVERREPORT : n;
    return CKR_OK;
}

static CK_RV impl_C_FindObjectsFinal(CK_SESSION_HANDLE hSession)
{
    SESSION(s, hSession);
    OPERATION(op, s, OP_FIND);
    (void)op;
    op_end(s, OP_FIND);
    return CKR_OK;
}

static CK_RV impl_C_EncryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    return op_init(hSession, OP_ENCRYPT, pMechanism, hKey);
}

static CK_RV impl_C_Encrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                            CK_BYTE_PTR pEncryptedData, CK_ULONG_PTR pulEncryptedDataLen)
{
    return xor_step(hSession, OP_ENCRYPT, 1, pData, ulDataLen, pEncryptedData, pulEncryptedDataLen);
}

static CK_RV impl_C_EncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                                  CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
    return xor_step(hSession, OP_ENCRYPT, 0, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen);
}

static CK_RV impl_C_EncryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastEncryptedPart,
                                 CK_ULONG_PTR pulLastEncryptedPartLen)
{
    return xor_final(hSession, OP_ENCRYPT, pLastEncryptedPart, pulLastEncryptedPartLen);
}

static CK_RV impl_C_DecryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    return op_init(hSession, OP_DECRYPT, pMechanism, hKey);
}

static CK_RV impl_C_Decrypt(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedData, CK_ULONG ulEncryptedDataLen,
                            CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen)
{
    return xor_step(hSession, OP_DECRYPT, 1, pEncryptedData, ulEncryptedDataLen, pData, pulDataLen);
}

static CK_RV impl_C_DecryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart,
                                  CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen)
{
    return xor_step(hSession, OP_DECRYPT, 0, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen);
}

static CK_RV impl_C_DecryptFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pLastPart, CK_ULONG_PTR pulLastPartLen)
{
    return xor_final(hSession, OP_DECRYPT, pLastPart, pulLastPartLen);
}

static CK_RV impl_C_DigestInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism)
{
    return op_init(hSession, OP_DIGEST, pMechanism, 0);
}

static CK_RV impl_C_Digest(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pDigest,
                           CK_ULONG_PTR pulDigestLen)
{
    return mac_single(hSession, OP_DIGEST, pData, ulDataLen, pDigest, pulDigestLen);
}

static CK_RV impl_C_DigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
    return mac_update(hSession, OP_DIGEST, pPart, ulPartLen);
}

/* Digests the key's secret, as 8 little-endian bytes. */
static CK_RV impl_C_DigestKey(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey)
{
    SESSION(s, hSession);
    OPERATION(op, s, OP_DIGEST);
    struct object *k = object_get(s, hKey);
    if (!k)
        return CKR_KEY_HANDLE_INVALID;
    unsigned char bytes[8];
    for (int i = 0; i < 8; i++)
        bytes[i] = (unsigned char)(k->secret >> (8 * i));
    mock_digest_update(&op->d, bytes, sizeof bytes);
    return CKR_OK;
}

static CK_RV impl_C_DigestFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pDigest, CK_ULONG_PTR pulDigestLen)
{
    return mac_final(hSession, OP_DIGEST, pDigest, pulDigestLen);
}

static CK_RV impl_C_SignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    return op_init(hSession, OP_SIGN, pMechanism, hKey);
}

static CK_RV impl_C_Sign(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                         CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
    return mac_single(hSession, OP_SIGN, pData, ulDataLen, pSignature, pulSignatureLen);
}

static CK_RV impl_C_SignUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
    return mac_update(hSession, OP_SIGN, pPart, ulPartLen);
}

static CK_RV impl_C_SignFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
    return mac_final(hSession, OP_SIGN, pSignature, pulSignatureLen);
}

static CK_RV impl_C_SignRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                                    CK_OBJECT_HANDLE hKey)
{
    return op_init(hSession, OP_SIGN_RECOVER, pMechanism, hKey);
}

/* signature = MAC(data) || data XOR key byte; C_VerifyRecover undoes it. */
static CK_RV impl_C_SignRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                                CK_BYTE_PTR pSignature, CK_ULONG_PTR pulSignatureLen)
{
    SESSION(s, hSession);
    OPERATION(op, s, OP_SIGN_RECOVER);
    if (!pulSignatureLen || (!pData && ulDataLen)) {
        op_end(s, OP_SIGN_RECOVER);
        return CKR_ARGUMENTS_BAD;
    }
    int done;
    CK_RV rv = output_length(MOCK_DIGEST_LEN + ulDataLen, pSignature, pulSignatureLen, &done);
    if (done) {
        struct mock_digest d = op->d;
        mock_digest_update(&d, pData, ulDataLen);
        mock_digest_final(&d, pSignature);
        unsigned char b = mock_xor_byte(op->secret);
        for (CK_ULONG i = 0; i < ulDataLen; i++)
            pSignature[MOCK_DIGEST_LEN + i] = pData[i] ^ b;
        op_end(s, OP_SIGN_RECOVER);
    }
    return rv;
}

static CK_RV impl_C_VerifyInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    return op_init(hSession, OP_VERIFY, pMechanism, hKey);
}

static CK_RV impl_C_Verify(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                           CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
    return mac_verify(hSession, OP_VERIFY, pData, ulDataLen, pSignature, ulSignatureLen);
}

static CK_RV impl_C_VerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
    return mac_update(hSession, OP_VERIFY, pPart, ulPartLen);
}

static CK_RV impl_C_VerifyFinal(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
    return mac_verify(hSession, OP_VERIFY, NULL, 0, pSignature, ulSignatureLen);
}

static CK_RV impl_C_VerifyRecoverInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                                      CK_OBJECT_HANDLE hKey)
{
    return op_init(hSession, OP_VERIFY_RECOVER, pMechanism, hKey);
}

static CK_RV impl_C_VerifyRecover(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen,
                                  CK_BYTE_PTR pData, CK_ULONG_PTR pulDataLen)
{
    SESSION(s, hSession);
    OPERATION(op, s, OP_VERIFY_RECOVER);
    if (!pSignature || !pulDataLen) {
        op_end(s, OP_VERIFY_RECOVER);
        return CKR_ARGUMENTS_BAD;
    }
    if (ulSignatureLen < MOCK_DIGEST_LEN) {
        op_end(s, OP_VERIFY_RECOVER);
        return CKR_SIGNATURE_LEN_RANGE;
    }
    CK_ULONG n = ulSignatureLen - MOCK_DIGEST_LEN;
    unsigned char *data = malloc(n ? n : 1);
    if (!data)
        return CKR_HOST_MEMORY;
    unsigned char b = mock_xor_byte(op->secret), mac[MOCK_DIGEST_LEN];
    for (CK_ULONG i = 0; i < n; i++)
        data[i] = pSignature[MOCK_DIGEST_LEN + i] ^ b;
    struct mock_digest d = op->d;
    mock_digest_update(&d, data, n);
    mock_digest_final(&d, mac);
    CK_RV rv;
    if (memcmp(mac, pSignature, MOCK_DIGEST_LEN) != 0) {
        op_end(s, OP_VERIFY_RECOVER);
        rv = CKR_SIGNATURE_INVALID;
    } else {
        int done;
        rv = output_length(n, pData, pulDataLen, &done);
        if (done) {
            memcpy(pData, data, n);
            op_end(s, OP_VERIFY_RECOVER);
        }
    }
    free(data);
    return rv;
}

/* Dual-function updates (spec 2.40 section 5.14): both operations must be active; a
 * length query leaves both untouched. The MAC covers the plaintext: the input when
 * encrypting, the output when decrypting (taken before an in-place XOR overwrites it). */
static CK_RV dual_update(CK_SESSION_HANDLE h, int xor_kind, int mac_kind, int mac_output, CK_BYTE_PTR in,
                         CK_ULONG len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    SESSION(s, h);
    struct op *x = op_get(s, xor_kind), *m = op_get(s, mac_kind);
    if (!x || !m)
        return CKR_OPERATION_NOT_INITIALIZED;
    if (!out_len || (!in && len))
        return CKR_ARGUMENTS_BAD;
    int will_write = out && *out_len >= len, done;
    if (will_write && !mac_output)
        mock_digest_update(&m->d, in, len);
    CK_RV rv = xor_out(x, in, len, out, out_len, &done);
    if (done && mac_output)
        mock_digest_update(&m->d, out, len);
    return rv;
}

static CK_RV impl_C_DigestEncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                                        CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
    return dual_update(hSession, OP_ENCRYPT, OP_DIGEST, 0, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen);
}

static CK_RV impl_C_DecryptDigestUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart,
                                        CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen)
{
    return dual_update(hSession, OP_DECRYPT, OP_DIGEST, 1, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen);
}

static CK_RV impl_C_SignEncryptUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen,
                                      CK_BYTE_PTR pEncryptedPart, CK_ULONG_PTR pulEncryptedPartLen)
{
    return dual_update(hSession, OP_ENCRYPT, OP_SIGN, 0, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen);
}

static CK_RV impl_C_DecryptVerifyUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pEncryptedPart,
                                        CK_ULONG ulEncryptedPartLen, CK_BYTE_PTR pPart, CK_ULONG_PTR pulPartLen)
{
    return dual_update(hSession, OP_DECRYPT, OP_VERIFY, 1, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen);
}

static CK_RV impl_C_GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                                CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phKey)
{
    SESSION(s, hSession);
    if (!pMechanism || !phKey)
        return CKR_ARGUMENTS_BAD;
    if (pMechanism->mechanism != CKM_AES_KEY_GEN)
        return CKR_MECHANISM_INVALID;
    CK_ULONG len = 16;
    template_ulong(pTemplate, ulCount, CKA_VALUE_LEN, &len);
    if (len != 16 && len != 24 && len != 32)
        return CKR_TEMPLATE_INCONSISTENT;
    uint64_t secret = secret_new();
    unsigned char value[32];
    for (CK_ULONG i = 0; i < len; i++)
        value[i] = (unsigned char)(secret >> (8 * (i % 8))) ^ (unsigned char)i;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_AES;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE base[] = {
        {CKA_CLASS, &cls, sizeof cls},     {CKA_KEY_TYPE, &type, sizeof type},
        {CKA_VALUE, value, len},           {CKA_VALUE_LEN, &len, sizeof len},
        {CKA_LOCAL, &yes, sizeof yes},
    };
    struct object *o;
    CK_RV rv = object_new(s, base, sizeof base / sizeof base[0], pTemplate, ulCount, secret, &o);
    if (rv == CKR_OK)
        *phKey = o->handle;
    return rv;
}

/* Both halves share one secret, so a signature by one verifies with the other. */
static CK_RV impl_C_GenerateKeyPair(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                                    CK_ATTRIBUTE_PTR pPublicKeyTemplate, CK_ULONG ulPublicKeyAttributeCount,
                                    CK_ATTRIBUTE_PTR pPrivateKeyTemplate, CK_ULONG ulPrivateKeyAttributeCount,
                                    CK_OBJECT_HANDLE_PTR phPublicKey, CK_OBJECT_HANDLE_PTR phPrivateKey)
{
    SESSION(s, hSession);
    if (!pMechanism || !phPublicKey || !phPrivateKey)
        return CKR_ARGUMENTS_BAD;
    CK_KEY_TYPE type;
    if (pMechanism->mechanism == CKM_EC_KEY_PAIR_GEN)
        type = CKK_EC;
    else if (pMechanism->mechanism == CKM_RSA_PKCS_KEY_PAIR_GEN)
        type = CKK_RSA;
    else
        return CKR_MECHANISM_INVALID;
    uint64_t secret = secret_new();
    unsigned char pub[65];
    pub[0] = 0x04;
    for (size_t i = 1; i < sizeof pub; i++)
        pub[i] = (unsigned char)(secret >> (8 * (i % 8))) ^ (unsigned char)i;
    static const unsigned char exponent[] = {1, 0, 1};
    CK_OBJECT_CLASS pub_class = CKO_PUBLIC_KEY, priv_class = CKO_PRIVATE_KEY;
    CK_BBOOL yes = CK_TRUE;
    CK_ATTRIBUTE pub_base[] = {
        {CKA_CLASS, &pub_class, sizeof pub_class},
        {CKA_KEY_TYPE, &type, sizeof type},
        {CKA_LOCAL, &yes, sizeof yes},
        {type == CKK_EC ? CKA_EC_POINT : CKA_MODULUS, pub, sizeof pub},
        {CKA_PUBLIC_EXPONENT, (void *)exponent, sizeof exponent},
    };
    CK_ATTRIBUTE priv_base[] = {
        {CKA_CLASS, &priv_class, sizeof priv_class},
        {CKA_KEY_TYPE, &type, sizeof type},
        {CKA_LOCAL, &yes, sizeof yes},
        {CKA_SENSITIVE, &yes, sizeof yes},
    };
    CK_ULONG n_pub = type == CKK_EC ? 4 : 5;
    struct object *pub_obj, *priv_obj;
    CK_RV rv = object_new(s, pub_base, n_pub, pPublicKeyTemplate, ulPublicKeyAttributeCount, secret, &pub_obj);
    if (rv != CKR_OK)
        return rv;
    rv = object_new(s, priv_base, 4, pPrivateKeyTemplate, ulPrivateKeyAttributeCount, secret, &priv_obj);
    if (rv != CKR_OK) {
        object_destroy(pub_obj);
        return rv;
    }
    *phPublicKey = pub_obj->handle;
    *phPrivateKey = priv_obj->handle;
    return CKR_OK;
}

/* Wrapped blob: the key's secret (8 bytes LE) || 8 bytes of MAC, XOR the wrapping key byte. */
static void wrap_mac(uint64_t wrapping_secret, const unsigned char secret_bytes[8], unsigned char mac8[8])
{
    struct mock_digest d;
    unsigned char mac[MOCK_DIGEST_LEN];
    mock_digest_init(&d, MOCK_TAG, wrapping_secret);
    mock_digest_update(&d, secret_bytes, 8);
    mock_digest_final(&d, mac);
    memcpy(mac8, mac, 8);
}

/* The blob of a wrapped key `k`, its MAC keyed with `mac_secret` (the wrapping key's secret, or
 * that mixed with associated data), XOR the wrapping key's byte. */
static void wrap_blob(uint64_t wrapping_secret, uint64_t mac_secret, const struct object *k, CK_BYTE_PTR out)
{
    for (int i = 0; i < 8; i++)
        out[i] = (unsigned char)(k->secret >> (8 * i));
    wrap_mac(mac_secret, out, out + 8);
    unsigned char b = mock_xor_byte(wrapping_secret);
    for (int i = 0; i < WRAPPED_LEN; i++)
        out[i] ^= b;
}

/* The key secret inside a blob, or CKR_WRAPPED_KEY_INVALID when its MAC does not match. */
static CK_RV unwrap_blob(uint64_t unwrapping_secret, uint64_t mac_secret, const unsigned char *in, uint64_t *secret)
{
    unsigned char blob[WRAPPED_LEN], mac8[8], b = mock_xor_byte(unwrapping_secret);
    for (int i = 0; i < WRAPPED_LEN; i++)
        blob[i] = in[i] ^ b;
    wrap_mac(mac_secret, blob, mac8);
    if (memcmp(mac8, blob + 8, 8) != 0)
        return CKR_WRAPPED_KEY_INVALID;
    *secret = 0;
    for (int i = 0; i < 8; i++)
        *secret |= (uint64_t)blob[i] << (8 * i);
    return CKR_OK;
}

static CK_RV impl_C_WrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                            CK_OBJECT_HANDLE hWrappingKey, CK_OBJECT_HANDLE hKey, CK_BYTE_PTR pWrappedKey,
                            CK_ULONG_PTR pulWrappedKeyLen)
{
    SESSION(s, hSession);
    if (!pMechanism || !pulWrappedKeyLen)
        return CKR_ARGUMENTS_BAD;
    if (pMechanism->mechanism != CKM_AES_KEY_WRAP && pMechanism->mechanism != CKM_RSA_PKCS)
        return CKR_MECHANISM_INVALID;
    struct object *wk = object_get(s, hWrappingKey), *k = object_get(s, hKey);
    if (!wk)
        return CKR_WRAPPING_KEY_HANDLE_INVALID;
    if (!k)
        return CKR_KEY_HANDLE_INVALID;
    if (!attr_bool(k, CKA_EXTRACTABLE, CK_TRUE))
        return CKR_KEY_UNEXTRACTABLE;
    int done;
    CK_RV rv = output_length(WRAPPED_LEN, pWrappedKey, pulWrappedKeyLen, &done);
    if (done)
        wrap_blob(wk->secret, wk->secret, k, pWrappedKey);
    return rv;
}

static CK_RV impl_C_UnwrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                              CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey, CK_ULONG ulWrappedKeyLen,
                              CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
    SESSION(s, hSession);
    if (!pMechanism || !pWrappedKey || !phKey)
        return CKR_ARGUMENTS_BAD;
    if (pMechanism->mechanism != CKM_AES_KEY_WRAP && pMechanism->mechanism != CKM_RSA_PKCS)
        return CKR_MECHANISM_INVALID;
    struct object *uk = object_get(s, hUnwrappingKey);
    if (!uk)
        return CKR_UNWRAPPING_KEY_HANDLE_INVALID;
    if (ulWrappedKeyLen != WRAPPED_LEN)
        return CKR_WRAPPED_KEY_LEN_RANGE;
    uint64_t secret;
    CK_RV rv = unwrap_blob(uk->secret, uk->secret, pWrappedKey, &secret);
    if (rv != CKR_OK)
        return rv;
    struct object *o;
    rv = object_new(s, NULL, 0, pTemplate, ulAttributeCount, secret, &o);
    if (rv == CKR_OK)
        *phKey = o->handle;
    return rv;
}

static CK_RV impl_C_DeriveKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hBaseKey,
                              CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
    SESSION(s, hSession);
    if (!pMechanism || !phKey)
        return CKR_ARGUMENTS_BAD;
    if (pMechanism->mechanism != CKM_ECDH1_DERIVE)
        return CKR_MECHANISM_INVALID;
    struct object *base_key = object_get(s, hBaseKey);
    if (!base_key)
        return CKR_KEY_HANDLE_INVALID;
    uint64_t secret = (mock_param_mix(pMechanism->pParameter, pMechanism->ulParameterLen) ^ base_key->secret) | 1;
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE type = CKK_GENERIC_SECRET;
    CK_ATTRIBUTE base[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &type, sizeof type}};
    struct object *o;
    CK_RV rv = object_new(s, base, 2, pTemplate, ulAttributeCount, secret, &o);
    if (rv == CKR_OK)
        *phKey = o->handle;
    return rv;
}

static CK_RV impl_C_SeedRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen)
{
    SESSION(s, hSession);
    (void)s;
    if (!pSeed && ulSeedLen)
        return CKR_ARGUMENTS_BAD;
    for (CK_ULONG i = 0; i < ulSeedLen; i++)
        st.random_counter ^= pSeed[i];
    return CKR_OK;
}

/* "Random" = a counter, so tests can see bytes really came from here. */
static CK_RV impl_C_GenerateRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR RandomData, CK_ULONG ulRandomLen)
{
    SESSION(s, hSession);
    (void)s;
    if (!RandomData && ulRandomLen)
        return CKR_ARGUMENTS_BAD;
    for (CK_ULONG i = 0; i < ulRandomLen; i++)
        RandomData[i] = st.random_counter++;
    return CKR_OK;
}

/* Legacy functions (spec 2.40 section 5.16). */
static CK_RV impl_C_GetFunctionStatus(CK_SESSION_HANDLE hSession)
{
    SESSION(s, hSession);
    (void)s;
    return CKR_FUNCTION_NOT_PARALLEL;
}

static CK_RV impl_C_CancelFunction(CK_SESSION_HANDLE hSession)
{
    SESSION(s, hSession);
    (void)s;
    return CKR_FUNCTION_NOT_PARALLEL;
}

/* Spec 2.40 section 5.5: blocks (without CKF_DONT_BLOCK) until an event is queued or
 * the library is finalised, which answers CKR_CRYPTOKI_NOT_INITIALIZED. */
static CK_RV impl_C_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pReserved)
{
    if (!pSlot || pReserved)
        return CKR_ARGUMENTS_BAD;
#if MOCK_WAIT_HANG
    /* A broken module: the wait never ends by itself (events and C_Finalize are ignored);
     * the lock is released while waiting, so the module's other calls still work. */
    if (!(flags & CKF_DONT_BLOCK)) {
        unsigned long round = st.release_round;
        st.stats.waiters++;
        while (st.release_round == round)
            pthread_cond_wait(&st.event_cond, &st.lock);
        st.stats.waiters--;
        if (st.release_rv == CKR_OK)
            *pSlot = initial_slots[0];
        return st.release_rv;
    }
#endif
    unsigned long generation = st.generation;
    for (;;) {
        if (!st.initialized || st.generation != generation)
            return CKR_CRYPTOKI_NOT_INITIALIZED;
        if (st.n_events) {
            *pSlot = st.events[st.event_head];
            st.event_head = (st.event_head + 1) % MAX_EVENTS;
            st.n_events--;
            return CKR_OK;
        }
        if (flags & CKF_DONT_BLOCK)
            return CKR_NO_EVENT;
        pthread_cond_wait(&st.event_cond, &st.lock);
    }
}

#if MOCK_V3
/* ---- PKCS#11 3.0 ---- */

static CK_RV impl_C_LoginUser(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin,
                              CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pUsername, CK_ULONG ulUsernameLen)
{
    if (!pUsername && ulUsernameLen)
        return CKR_ARGUMENTS_BAD; /* any user name is accepted: the token has one user */
    return login(hSession, userType, pPin, ulPinLen);
}

/* C_SessionCancel flag for each operation (3.0 section 5.6.2). */
static const CK_FLAGS op_cancel_flag[OP_COUNT] = {
    CKF_FIND_OBJECTS, CKF_DIGEST, CKF_SIGN, CKF_VERIFY, CKF_ENCRYPT, CKF_DECRYPT, CKF_SIGN_RECOVER,
    CKF_VERIFY_RECOVER, CKF_MESSAGE_ENCRYPT, CKF_MESSAGE_DECRYPT, CKF_MESSAGE_SIGN, CKF_MESSAGE_VERIFY,
};

static CK_RV impl_C_SessionCancel(CK_SESSION_HANDLE hSession, CK_FLAGS flags)
{
    SESSION(s, hSession);
    for (int k = 0; k < OP_COUNT; k++)
        if (flags & op_cancel_flag[k])
            op_end(s, k);
    return CKR_OK;
}

/* Message-based encryption (3.0 section 5.9-5.10): each message XORs with the key byte
 * mixed with the message's parameter; the operation lasts until *MessageFinal. */
static CK_RV message_begin(CK_SESSION_HANDLE h, int kind, CK_VOID_PTR param, CK_ULONG param_len)
{
    SESSION(s, h);
    OPERATION(op, s, kind);
    if (op->in_message)
        return CKR_OPERATION_ACTIVE;
    if (!param && param_len)
        return CKR_ARGUMENTS_BAD;
    op->in_message = 1;
    op->msg_secret = mock_param_mix(param, param_len);
    mock_digest_init(&op->d, MOCK_TAG, op->secret ^ op->msg_secret);
    return CKR_OK;
}

static CK_RV message_xor(CK_SESSION_HANDLE h, int kind, CK_VOID_PTR param, CK_ULONG param_len, CK_BYTE_PTR in,
                         CK_ULONG len, CK_BYTE_PTR out, CK_ULONG_PTR out_len)
{
    SESSION(s, h);
    OPERATION(op, s, kind);
    if (op->in_message)
        return CKR_OPERATION_ACTIVE;
    if ((!param && param_len) || (!in && len) || !out_len)
        return CKR_ARGUMENTS_BAD;
    struct op one = *op;
    one.msg_secret = mock_param_mix(param, param_len);
    int done;
    return xor_out(&one, in, len, out, out_len, &done);
}

static CK_RV message_xor_next(CK_SESSION_HANDLE h, int kind, CK_BYTE_PTR in, CK_ULONG len, CK_BYTE_PTR out,
                              CK_ULONG_PTR out_len, CK_FLAGS flags)
{
    SESSION(s, h);
    OPERATION(op, s, kind);
    if (!op->in_message)
        return CKR_OPERATION_NOT_INITIALIZED;
    if ((!in && len) || !out_len)
        return CKR_ARGUMENTS_BAD;
    int done;
    CK_RV rv = xor_out(op, in, len, out, out_len, &done);
    if (done && (flags & CKF_END_OF_MESSAGE))
        op->in_message = 0;
    return rv;
}

static CK_RV message_final(CK_SESSION_HANDLE h, int kind)
{
    SESSION(s, h);
    OPERATION(op, s, kind);
    (void)op;
    op_end(s, kind);
    return CKR_OK;
}

static CK_RV impl_C_MessageEncryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                                       CK_OBJECT_HANDLE hKey)
{
    return op_init(hSession, OP_MSG_ENCRYPT, pMechanism, hKey);
}

static CK_RV impl_C_EncryptMessage(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
                                   CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen,
                                   CK_BYTE_PTR pPlaintext, CK_ULONG ulPlaintextLen, CK_BYTE_PTR pCiphertext,
                                   CK_ULONG_PTR pulCiphertextLen)
{
    (void)pAssociatedData;
    (void)ulAssociatedDataLen;
    return message_xor(hSession, OP_MSG_ENCRYPT, pParameter, ulParameterLen, pPlaintext, ulPlaintextLen,
                       pCiphertext, pulCiphertextLen);
}

static CK_RV impl_C_EncryptMessageBegin(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
                                        CK_ULONG ulParameterLen, CK_BYTE_PTR pAssociatedData,
                                        CK_ULONG ulAssociatedDataLen)
{
    (void)pAssociatedData;
    (void)ulAssociatedDataLen;
    return message_begin(hSession, OP_MSG_ENCRYPT, pParameter, ulParameterLen);
}

static CK_RV impl_C_EncryptMessageNext(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
                                       CK_ULONG ulParameterLen, CK_BYTE_PTR pPlaintextPart,
                                       CK_ULONG ulPlaintextPartLen, CK_BYTE_PTR pCiphertextPart,
                                       CK_ULONG_PTR pulCiphertextPartLen, CK_FLAGS flags)
{
    (void)pParameter;
    (void)ulParameterLen;
    return message_xor_next(hSession, OP_MSG_ENCRYPT, pPlaintextPart, ulPlaintextPartLen, pCiphertextPart,
                            pulCiphertextPartLen, flags);
}

static CK_RV impl_C_MessageEncryptFinal(CK_SESSION_HANDLE hSession)
{
    return message_final(hSession, OP_MSG_ENCRYPT);
}

static CK_RV impl_C_MessageDecryptInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                                       CK_OBJECT_HANDLE hKey)
{
    return op_init(hSession, OP_MSG_DECRYPT, pMechanism, hKey);
}

static CK_RV impl_C_DecryptMessage(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
                                   CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen,
                                   CK_BYTE_PTR pCiphertext, CK_ULONG ulCiphertextLen, CK_BYTE_PTR pPlaintext,
                                   CK_ULONG_PTR pulPlaintextLen)
{
    (void)pAssociatedData;
    (void)ulAssociatedDataLen;
    return message_xor(hSession, OP_MSG_DECRYPT, pParameter, ulParameterLen, pCiphertext, ulCiphertextLen,
                       pPlaintext, pulPlaintextLen);
}

static CK_RV impl_C_DecryptMessageBegin(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
                                        CK_ULONG ulParameterLen, CK_BYTE_PTR pAssociatedData,
                                        CK_ULONG ulAssociatedDataLen)
{
    (void)pAssociatedData;
    (void)ulAssociatedDataLen;
    return message_begin(hSession, OP_MSG_DECRYPT, pParameter, ulParameterLen);
}

static CK_RV impl_C_DecryptMessageNext(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
                                       CK_ULONG ulParameterLen, CK_BYTE_PTR pCiphertextPart,
                                       CK_ULONG ulCiphertextPartLen, CK_BYTE_PTR pPlaintextPart,
                                       CK_ULONG_PTR pulPlaintextPartLen, CK_FLAGS flags)
{
    (void)pParameter;
    (void)ulParameterLen;
    return message_xor_next(hSession, OP_MSG_DECRYPT, pCiphertextPart, ulCiphertextPartLen, pPlaintextPart,
                            pulPlaintextPartLen, flags);
}

static CK_RV impl_C_MessageDecryptFinal(CK_SESSION_HANDLE hSession)
{
    return message_final(hSession, OP_MSG_DECRYPT);
}

/* Message-based signatures (3.0 sections 5.13-5.14): the MAC is keyed by the key's secret
 * mixed with the message parameter. */
static CK_RV impl_C_MessageSignInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey)
{
    return op_init(hSession, OP_MSG_SIGN, pMechanism, hKey);
}

static void message_mac(struct op *op, CK_VOID_PTR param, CK_ULONG param_len, CK_BYTE_PTR data, CK_ULONG len,
                        unsigned char mac[MOCK_DIGEST_LEN])
{
    struct mock_digest d;
    mock_digest_init(&d, MOCK_TAG, op->secret ^ mock_param_mix(param, param_len));
    mock_digest_update(&d, data, len);
    mock_digest_final(&d, mac);
}

static CK_RV impl_C_SignMessage(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
                                CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                                CK_ULONG_PTR pulSignatureLen)
{
    SESSION(s, hSession);
    OPERATION(op, s, OP_MSG_SIGN);
    if (op->in_message)
        return CKR_OPERATION_ACTIVE;
    if ((!pParameter && ulParameterLen) || (!pData && ulDataLen) || !pulSignatureLen)
        return CKR_ARGUMENTS_BAD;
    int done;
    CK_RV rv = output_length(MOCK_DIGEST_LEN, pSignature, pulSignatureLen, &done);
    if (done)
        message_mac(op, pParameter, ulParameterLen, pData, ulDataLen, pSignature);
    return rv;
}

static CK_RV impl_C_SignMessageBegin(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen)
{
    return message_begin(hSession, OP_MSG_SIGN, pParameter, ulParameterLen);
}

/* pulSignatureLen NULL: a middle part; otherwise the last part, which yields the signature. */
static CK_RV impl_C_SignMessageNext(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
                                    CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                                    CK_ULONG_PTR pulSignatureLen)
{
    (void)pParameter;
    (void)ulParameterLen;
    SESSION(s, hSession);
    OPERATION(op, s, OP_MSG_SIGN);
    if (!op->in_message)
        return CKR_OPERATION_NOT_INITIALIZED;
    if (!pData && ulDataLen)
        return CKR_ARGUMENTS_BAD;
    if (!pulSignatureLen) {
        mock_digest_update(&op->d, pData, ulDataLen);
        return CKR_OK;
    }
    int done;
    CK_RV rv = output_length(MOCK_DIGEST_LEN, pSignature, pulSignatureLen, &done);
    if (done) {
        mock_digest_update(&op->d, pData, ulDataLen);
        mock_digest_final(&op->d, pSignature);
        op->in_message = 0;
    }
    return rv;
}

static CK_RV impl_C_MessageSignFinal(CK_SESSION_HANDLE hSession)
{
    return message_final(hSession, OP_MSG_SIGN);
}

static CK_RV impl_C_MessageVerifyInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                                      CK_OBJECT_HANDLE hKey)
{
    return op_init(hSession, OP_MSG_VERIFY, pMechanism, hKey);
}

static CK_RV impl_C_VerifyMessage(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter, CK_ULONG ulParameterLen,
                                  CK_BYTE_PTR pData, CK_ULONG ulDataLen, CK_BYTE_PTR pSignature,
                                  CK_ULONG ulSignatureLen)
{
    SESSION(s, hSession);
    OPERATION(op, s, OP_MSG_VERIFY);
    if (op->in_message)
        return CKR_OPERATION_ACTIVE;
    if ((!pParameter && ulParameterLen) || (!pData && ulDataLen) || !pSignature)
        return CKR_ARGUMENTS_BAD;
    if (ulSignatureLen != MOCK_DIGEST_LEN)
        return CKR_SIGNATURE_LEN_RANGE;
    unsigned char mac[MOCK_DIGEST_LEN];
    message_mac(op, pParameter, ulParameterLen, pData, ulDataLen, mac);
    return memcmp(mac, pSignature, MOCK_DIGEST_LEN) == 0 ? CKR_OK : CKR_SIGNATURE_INVALID;
}

static CK_RV impl_C_VerifyMessageBegin(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
                                       CK_ULONG ulParameterLen)
{
    return message_begin(hSession, OP_MSG_VERIFY, pParameter, ulParameterLen);
}

/* pSignature NULL: a middle part; otherwise the last part, checked against it. */
static CK_RV impl_C_VerifyMessageNext(CK_SESSION_HANDLE hSession, CK_VOID_PTR pParameter,
                                      CK_ULONG ulParameterLen, CK_BYTE_PTR pData, CK_ULONG ulDataLen,
                                      CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
    (void)pParameter;
    (void)ulParameterLen;
    SESSION(s, hSession);
    OPERATION(op, s, OP_MSG_VERIFY);
    if (!op->in_message)
        return CKR_OPERATION_NOT_INITIALIZED;
    if (!pData && ulDataLen)
        return CKR_ARGUMENTS_BAD;
    mock_digest_update(&op->d, pData, ulDataLen);
    if (!pSignature)
        return CKR_OK;
    op->in_message = 0;
    if (ulSignatureLen != MOCK_DIGEST_LEN)
        return CKR_SIGNATURE_LEN_RANGE;
    unsigned char mac[MOCK_DIGEST_LEN];
    mock_digest_final(&op->d, mac);
    return memcmp(mac, pSignature, MOCK_DIGEST_LEN) == 0 ? CKR_OK : CKR_SIGNATURE_INVALID;
}

static CK_RV impl_C_MessageVerifyFinal(CK_SESSION_HANDLE hSession)
{
    return message_final(hSession, OP_MSG_VERIFY);
}
#endif /* MOCK_V3 */

#if MOCK_V32_FUNCTIONS
/* ---- PKCS#11 3.2 ---- */

#define KEM_CIPHERTEXT_LEN 32

/* The mock's KEM: the ciphertext is a MAC of the public key's secret (both halves of a key pair
 * share it) and a per-module counter; the shared secret is read back from the ciphertext, so
 * C_EncapsulateKey and C_DecapsulateKey of one key pair make keys with the same CKA_VALUE. */
static void kem_ciphertext(uint64_t key_secret, unsigned char out[KEM_CIPHERTEXT_LEN])
{
    static uint64_t counter;
    struct mock_digest d;
    unsigned char mac[MOCK_DIGEST_LEN];
    counter++;
    mock_digest_init(&d, MOCK_TAG, key_secret);
    mock_digest_update(&d, (const unsigned char *)&counter, sizeof counter);
    mock_digest_final(&d, mac);
    for (int i = 0; i < KEM_CIPHERTEXT_LEN; i++)
        out[i] = mac[i % MOCK_DIGEST_LEN] ^ (unsigned char)i;
}

static CK_RV kem_key(struct session *s, const unsigned char *ciphertext, CK_ATTRIBUTE_PTR pTemplate,
                     CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
    static CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    static CK_KEY_TYPE type = CKK_GENERIC_SECRET;
    unsigned char value[16];
    memcpy(value, ciphertext, sizeof value);
    CK_ATTRIBUTE base[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &type, sizeof type},
                           {CKA_VALUE, value, sizeof value}};
    struct object *o;
    CK_RV rv = object_new(s, base, 3, pTemplate, ulAttributeCount, 0, &o);
    if (rv == CKR_OK)
        *phKey = o->handle;
    return rv;
}

static CK_RV kem_mechanism(CK_MECHANISM_PTR m)
{
    return m->mechanism == CKM_ML_KEM ? CKR_OK : CKR_MECHANISM_INVALID;
}

/* Size query and short buffer as for any length pair (no key made); in an asynchronous
 * session a call with a buffer answers CKR_PENDING and writes nothing until C_AsyncComplete. */
static CK_RV impl_C_EncapsulateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hPublicKey,
                                   CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_BYTE_PTR pCiphertext,
                                   CK_ULONG_PTR pulCiphertextLen, CK_OBJECT_HANDLE_PTR phKey)
{
    SESSION(s, hSession);
    if (!pMechanism || !pulCiphertextLen || !phKey || (ulAttributeCount && !pTemplate))
        return CKR_ARGUMENTS_BAD;
    CK_RV rv = kem_mechanism(pMechanism);
    if (rv != CKR_OK)
        return rv;
    struct object *k = object_get(s, hPublicKey);
    if (!k)
        return CKR_KEY_HANDLE_INVALID;
    if (pCiphertext && *pulCiphertextLen >= KEM_CIPHERTEXT_LEN && (s->flags & CKF_ASYNC_SESSION)) {
        if (s->pending.active)
            return CKR_OPERATION_ACTIVE;
        s->pending = (struct pending){1, 0x4000 + hSession, pCiphertext, pulCiphertextLen, phKey, k->secret};
        return CKR_PENDING;
    }
    int done;
    rv = output_length(KEM_CIPHERTEXT_LEN, pCiphertext, pulCiphertextLen, &done);
    if (!done)
        return rv;
    kem_ciphertext(k->secret, pCiphertext);
    return kem_key(s, pCiphertext, pTemplate, ulAttributeCount, phKey);
}

static CK_RV impl_C_DecapsulateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hPrivateKey,
                                   CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulAttributeCount, CK_BYTE_PTR pCiphertext,
                                   CK_ULONG ulCiphertextLen, CK_OBJECT_HANDLE_PTR phKey)
{
    SESSION(s, hSession);
    /* By value (OASIS): a caller that passed a pointer here, as p11-kit 0.26's header
     * declares it, shows up as a huge length. */
    st.stats.last_decapsulate_len = ulCiphertextLen;
    if (!pMechanism || !pCiphertext || !phKey || (ulAttributeCount && !pTemplate))
        return CKR_ARGUMENTS_BAD;
    CK_RV rv = kem_mechanism(pMechanism);
    if (rv != CKR_OK)
        return rv;
    if (!object_get(s, hPrivateKey))
        return CKR_KEY_HANDLE_INVALID;
    if (ulCiphertextLen != KEM_CIPHERTEXT_LEN)
        return CKR_ENCRYPTED_DATA_LEN_RANGE;
    return kem_key(s, pCiphertext, pTemplate, ulAttributeCount, phKey);
}

/* 3.2 section 5.15: the signature comes first, the data after; the operation ends with the
 * single-part call or the Final call, whatever the outcome. */
static CK_RV impl_C_VerifySignatureInit(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism, CK_OBJECT_HANDLE hKey,
                                        CK_BYTE_PTR pSignature, CK_ULONG ulSignatureLen)
{
    SESSION(s, hSession);
    if (pMechanism && !pSignature)
        return CKR_ARGUMENTS_BAD;
    if (pMechanism && ulSignatureLen != MOCK_DIGEST_LEN)
        return CKR_SIGNATURE_LEN_RANGE;
    CK_RV rv = op_init(hSession, OP_VERIFY_SIGNATURE, pMechanism, hKey);
    if (rv == CKR_OK && pMechanism)
        memcpy(s->ops[OP_VERIFY_SIGNATURE].signature, pSignature, MOCK_DIGEST_LEN);
    return rv;
}

static CK_RV verify_signature_end(struct session *s, struct op *op)
{
    unsigned char mac[MOCK_DIGEST_LEN];
    mock_digest_final(&op->d, mac);
    CK_RV rv = memcmp(mac, op->signature, MOCK_DIGEST_LEN) == 0 ? CKR_OK : CKR_SIGNATURE_INVALID;
    op_end(s, OP_VERIFY_SIGNATURE);
    return rv;
}

static CK_RV impl_C_VerifySignature(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pData, CK_ULONG ulDataLen)
{
    SESSION(s, hSession);
    OPERATION(op, s, OP_VERIFY_SIGNATURE);
    if (!pData && ulDataLen) {
        op_end(s, OP_VERIFY_SIGNATURE);
        return CKR_ARGUMENTS_BAD;
    }
    mock_digest_update(&op->d, pData, ulDataLen);
    return verify_signature_end(s, op);
}

static CK_RV impl_C_VerifySignatureUpdate(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pPart, CK_ULONG ulPartLen)
{
    return mac_update(hSession, OP_VERIFY_SIGNATURE, pPart, ulPartLen);
}

static CK_RV impl_C_VerifySignatureFinal(CK_SESSION_HANDLE hSession)
{
    SESSION(s, hSession);
    OPERATION(op, s, OP_VERIFY_SIGNATURE);
    return verify_signature_end(s, op);
}

/* The flags are the module's tag, so a test sees which module answered. */
static CK_RV impl_C_GetSessionValidationFlags(CK_SESSION_HANDLE hSession, CK_SESSION_VALIDATION_FLAGS_TYPE type,
                                              CK_FLAGS_PTR pFlags)
{
    SESSION(s, hSession);
    (void)s;
    if (!pFlags || type != CKS_LAST_VALIDATION_OK)
        return CKR_ARGUMENTS_BAD;
    *pFlags = MOCK_TAG;
    return CKR_OK;
}

static struct pending *pending_named(struct session *s, CK_UTF8CHAR_PTR name)
{
    if (!s->pending.active || strcmp((const char *)name, "C_EncapsulateKey") != 0)
        return NULL;
    return &s->pending;
}

/* Finishes the pending C_EncapsulateKey into the buffers it was given (or C_AsyncJoin's). */
static CK_RV impl_C_AsyncComplete(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pFunctionName, CK_ASYNC_DATA_PTR pResult)
{
    SESSION(s, hSession);
    if (!pFunctionName || !pResult)
        return CKR_ARGUMENTS_BAD;
    if (!(s->flags & CKF_ASYNC_SESSION))
        return CKR_SESSION_ASYNC_NOT_SUPPORTED;
    struct pending *p = pending_named(s, pFunctionName);
    if (!p)
        return CKR_OPERATION_NOT_INITIALIZED;
    kem_ciphertext(p->secret, p->ciphertext);
    *p->ciphertext_len = KEM_CIPHERTEXT_LEN;
    CK_RV rv = kem_key(s, p->ciphertext, NULL, 0, p->key);
    pResult->pValue = p->ciphertext;
    pResult->ulValue = KEM_CIPHERTEXT_LEN;
    pResult->hObject = rv == CKR_OK ? *p->key : CK_INVALID_HANDLE;
    pResult->hAdditionalObject = CK_INVALID_HANDLE;
    memset(p, 0, sizeof *p);
    return rv;
}

static CK_RV impl_C_AsyncGetID(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pFunctionName, CK_ULONG_PTR pulID)
{
    SESSION(s, hSession);
    if (!pFunctionName || !pulID)
        return CKR_ARGUMENTS_BAD;
    if (!(s->flags & CKF_ASYNC_SESSION))
        return CKR_SESSION_ASYNC_NOT_SUPPORTED;
    struct pending *p = pending_named(s, pFunctionName);
    if (!p)
        return CKR_OPERATION_NOT_INITIALIZED;
    *pulID = p->id;
    return CKR_OK;
}

/* Takes the pending operation over into another buffer (the mock's reading of 3.2 5.20). */
static CK_RV impl_C_AsyncJoin(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pFunctionName, CK_ULONG ulID,
                              CK_BYTE_PTR pData, CK_ULONG ulData)
{
    SESSION(s, hSession);
    if (!pFunctionName || !pData)
        return CKR_ARGUMENTS_BAD;
    if (!(s->flags & CKF_ASYNC_SESSION))
        return CKR_SESSION_ASYNC_NOT_SUPPORTED;
    struct pending *p = pending_named(s, pFunctionName);
    if (!p || p->id != ulID)
        return CKR_OPERATION_NOT_INITIALIZED;
    if (ulData < KEM_CIPHERTEXT_LEN)
        return CKR_BUFFER_TOO_SMALL;
    p->ciphertext = pData;
    return CKR_OK;
}

/* C_WrapKey's blob with the associated data mixed into its MAC key. */
static uint64_t ad_secret(uint64_t wrapping_secret, CK_BYTE_PTR ad, CK_ULONG len)
{
    return wrapping_secret ^ mock_param_mix(ad, len);
}

static CK_RV impl_C_WrapKeyAuthenticated(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                                         CK_OBJECT_HANDLE hWrappingKey, CK_OBJECT_HANDLE hKey,
                                         CK_BYTE_PTR pAssociatedData, CK_ULONG ulAssociatedDataLen,
                                         CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen)
{
    SESSION(s, hSession);
    if (!pMechanism || !pulWrappedKeyLen || (!pAssociatedData && ulAssociatedDataLen))
        return CKR_ARGUMENTS_BAD;
    if (pMechanism->mechanism != CKM_AES_GCM)
        return CKR_MECHANISM_INVALID;
    struct object *wk = object_get(s, hWrappingKey), *k = object_get(s, hKey);
    if (!wk)
        return CKR_WRAPPING_KEY_HANDLE_INVALID;
    if (!k)
        return CKR_KEY_HANDLE_INVALID;
    if (!attr_bool(k, CKA_EXTRACTABLE, CK_TRUE))
        return CKR_KEY_UNEXTRACTABLE;
    int done;
    CK_RV rv = output_length(WRAPPED_LEN, pWrappedKey, pulWrappedKeyLen, &done);
    if (done)
        wrap_blob(wk->secret, ad_secret(wk->secret, pAssociatedData, ulAssociatedDataLen), k, pWrappedKey);
    return rv;
}

static CK_RV impl_C_UnwrapKeyAuthenticated(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
                                           CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey,
                                           CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate,
                                           CK_ULONG ulAttributeCount, CK_BYTE_PTR pAssociatedData,
                                           CK_ULONG ulAssociatedDataLen, CK_OBJECT_HANDLE_PTR phKey)
{
    SESSION(s, hSession);
    if (!pMechanism || !pWrappedKey || !phKey || (!pAssociatedData && ulAssociatedDataLen))
        return CKR_ARGUMENTS_BAD;
    if (pMechanism->mechanism != CKM_AES_GCM)
        return CKR_MECHANISM_INVALID;
    struct object *uk = object_get(s, hUnwrappingKey);
    if (!uk)
        return CKR_UNWRAPPING_KEY_HANDLE_INVALID;
    if (ulWrappedKeyLen != WRAPPED_LEN)
        return CKR_WRAPPED_KEY_LEN_RANGE;
    uint64_t secret;
    CK_RV rv = unwrap_blob(uk->secret, ad_secret(uk->secret, pAssociatedData, ulAssociatedDataLen), pWrappedKey, &secret);
    if (rv != CKR_OK)
        return rv;
    struct object *o;
    rv = object_new(s, NULL, 0, pTemplate, ulAttributeCount, secret, &o);
    if (rv == CKR_OK)
        *phKey = o->handle;
    return rv;
}
#endif /* MOCK_V32_FUNCTIONS */

/* ---- Load, fork, test hooks ---- */

/* Fork (3.0 section 5.1.x / p11-kit's fork handling): the child inherits our memory but
 * must call C_Initialize before using the module, so the child drops the inherited
 * initialisation and sessions; until it re-initialises every call answers
 * CKR_CRYPTOKI_NOT_INITIALIZED. The lock is held across fork so the copy is consistent. */
static void fork_prepare(void)
{
    lock();
}

static void fork_parent(void)
{
    unlock();
}

static void fork_child(void)
{
    pthread_cond_init(&st.event_cond, NULL);
    st.stats.waiters = 0; /* the waiting threads stayed in the parent */
    if (st.initialized) {
        state_drop_sessions();
        st.initialized = 0;
        st.generation++;
        st.stats.fork_resets++;
    }
    unlock();
}

__attribute__((constructor)) static void mock_load(void)
{
    for (size_t k = 0; k < N_INITIAL_SLOTS; k++)
        slot_add(initial_slots[k]);
    snprintf(st.stats.name, sizeof st.stats.name, "%s", MOCK_NAME);
    st.stats.tag = MOCK_TAG;
    st.stats.v3 = MOCK_V3;
    st.stats.v32 = MOCK_V32;
    st.stats.last_call_while_uninitialised = -1;
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

MOCK_EXPORT void mock_stats(struct mock_stats *out)
{
    lock();
    *out = st.stats;
    out->initialized = st.initialized;
    out->slots = 0;
    for (int i = 0; i < MAX_SLOTS; i++)
        out->slots += st.slots[i].used;
    out->events_queued = st.n_events;
    unlock();
}

MOCK_EXPORT CK_RV mock_control(int op, CK_ULONG arg)
{
    CK_RV rv = CKR_OK;
    lock();
    switch (op) {
    case MOCK_ADD_SLOT:
        rv = slot_add(arg) ? CKR_OK : CKR_ARGUMENTS_BAD;
        break;
    case MOCK_REMOVE_SLOT: {
        struct slot *sl = slot_get(arg);
        if (sl)
            slot_remove(sl);
        else
            rv = CKR_SLOT_ID_INVALID;
        break;
    }
    case MOCK_QUEUE_EVENT:
        if (st.n_events == MAX_EVENTS) {
            rv = CKR_DEVICE_MEMORY;
            break;
        }
        st.events[(st.event_head + st.n_events) % MAX_EVENTS] = arg;
        st.n_events++;
        pthread_cond_broadcast(&st.event_cond);
        break;
    case MOCK_RESET_STATS: {
        struct mock_stats keep = st.stats;
        memset(&st.stats, 0, sizeof st.stats);
        st.stats.last_call_while_uninitialised = -1;
        memcpy(st.stats.name, keep.name, sizeof keep.name);
        st.stats.tag = keep.tag;
        st.stats.v3 = keep.v3;
        st.stats.open_sessions = keep.open_sessions;
        st.stats.objects = keep.objects;
        st.stats.waiters = keep.waiters;
        break;
    }
    case MOCK_RESET_SLOTS:
        slots_reset();
        break;
    case MOCK_FAIL_NEXT_INIT:
        st.fail_next_init = arg;
        break;
    case MOCK_FAIL_NEXT_CALL:
        st.fail_next_call = arg;
        break;
    case MOCK_SET_DELAY:
        __atomic_store_n(&delay_us, arg, __ATOMIC_RELAXED);
        break;
    case MOCK_SET_OVERREPORT:
        if (MOCK_OVERREPORT)
            overreporting = arg != 0;
        else
            rv = CKR_ARGUMENTS_BAD;
        break;
    case MOCK_RELEASE_WAITERS:
        st.release_rv = arg;
        st.release_round++;
        pthread_cond_broadcast(&st.event_cond);
        break;
    default:
        rv = CKR_ARGUMENTS_BAD;
    }
    unlock();
    return rv;
}

#define ENTRY_OK(name) wrap_##name
#define ENTRY_FILL(name) wrap_##name

#endif /* MOCK_FAST */

/* ==== Function lists and the exported entry points ================================== */

#define ENTRY_HAND(name) hand_##name
#define TABLE_ENTRY(name, kind, params, args) .name = ENTRY_##kind(name),

static CK_FUNCTION_LIST list_2_40 = {
    .version = {2, 40},
    MOCK_FUNCTIONS_2_40(TABLE_ENTRY)
};

#if MOCK_V3
static CK_FUNCTION_LIST_3_0 list_3_0 = {
    .version = {3, 0},
    MOCK_FUNCTIONS_2_40(TABLE_ENTRY)
    MOCK_FUNCTIONS_3_0(TABLE_ENTRY)
};

#if MOCK_V32
/* MOCK_V32 2: the twelve 3.2 entries stay NULL, as in p11-kit 0.26's lists. */
static CK_FUNCTION_LIST_3_2 list_3_2 = {
    .version = {3, 2},
    MOCK_FUNCTIONS_2_40(TABLE_ENTRY)
    MOCK_FUNCTIONS_3_0(TABLE_ENTRY)
#if MOCK_V32_FUNCTIONS
    MOCK_FUNCTIONS_3_2(TABLE_ENTRY)
#endif
};
#endif

/* 3.0 section 5.4: the default interface is the first one. */
static CK_INTERFACE interfaces[] = {
#if MOCK_V32
    {(CK_CHAR *)"PKCS 11", &list_3_2, 0},
#endif
    {(CK_CHAR *)"PKCS 11", &list_3_0, 0},
    {(CK_CHAR *)"PKCS 11", &list_2_40, 0},
};
#define N_INTERFACES (sizeof interfaces / sizeof interfaces[0])

static CK_RV hand_C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount)
{
    count_hand_call(MOCK_FN_C_GetInterfaceList);
    if (!pulCount)
        return CKR_ARGUMENTS_BAD;
    int done;
    CK_RV rv = output_length(N_INTERFACES, (CK_BYTE_PTR)pInterfacesList, pulCount, &done);
    if (done)
        memcpy(pInterfacesList, interfaces, sizeof interfaces);
    return rv;
}

static CK_RV hand_C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
                                 CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags)
{
    count_hand_call(MOCK_FN_C_GetInterface);
    if (!ppInterface)
        return CKR_ARGUMENTS_BAD;
    for (size_t i = 0; i < N_INTERFACES; i++) {
        const CK_VERSION *v = interfaces[i].pFunctionList; /* every list starts with its version */
        if (pInterfaceName && strcmp((const char *)pInterfaceName, (const char *)interfaces[i].pInterfaceName))
            continue;
        if (pVersion && (pVersion->major != v->major || pVersion->minor != v->minor))
            continue;
        if ((interfaces[i].flags & flags) != flags)
            continue;
        *ppInterface = &interfaces[i];
        return CKR_OK;
    }
    return CKR_ARGUMENTS_BAD;
}

CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount)
{
    return hand_C_GetInterfaceList(pInterfacesList, pulCount);
}

CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion, CK_INTERFACE_PTR_PTR ppInterface,
                     CK_FLAGS flags)
{
    return hand_C_GetInterface(pInterfaceName, pVersion, ppInterface, flags);
}
#endif

/* The 3.0 variant hands out its 3.0 list here too (version 3.0, all 3.0 entries), the 3.2
 * variant its 3.2 list. */
static CK_RV hand_C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
    count_hand_call(MOCK_FN_C_GetFunctionList);
    if (!ppFunctionList)
        return CKR_ARGUMENTS_BAD;
#if MOCK_V32
    *ppFunctionList = (CK_FUNCTION_LIST_PTR)&list_3_2;
#elif MOCK_V3
    *ppFunctionList = (CK_FUNCTION_LIST_PTR)&list_3_0;
#else
    *ppFunctionList = &list_2_40;
#endif
    return CKR_OK;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
    return hand_C_GetFunctionList(ppFunctionList);
}

#if MOCK_PREINIT
__attribute__((constructor)) static void mock_preinit(void)
{
    hand_C_Initialize(NULL);
}
#endif
