/* mock_control.h: the test hooks every mock module variant exports (mock_stats,
 * mock_control). A test reaches them with dlopen(path) + dlsym on the same file the
 * proxy loads; glibc returns the already-loaded instance, so the counters are the ones
 * the proxy's calls moved. Include after p11proxy_pkcs11.h. */
#ifndef P11PROXY_MOCK_CONTROL_H
#define P11PROXY_MOCK_CONTROL_H

#include "mock_functions.h"

/* Index of every entry point in mock_stats.calls[] (CK_FUNCTION_LIST_3_2 order). */
enum mock_fn {
#define MOCK_FN_ENUM(name, kind, params, args) MOCK_FN_##name,
    MOCK_FUNCTIONS_2_40(MOCK_FN_ENUM)
    MOCK_FN_FIRST_3_0,
    MOCK_FN_RESERVED_ = MOCK_FN_FIRST_3_0 - 1,
    MOCK_FUNCTIONS_3_0(MOCK_FN_ENUM)
    MOCK_FUNCTIONS_3_2(MOCK_FN_ENUM)
#undef MOCK_FN_ENUM
    MOCK_FN_COUNT
};

struct mock_stats {
    unsigned long tag;                       /* MOCK_TAG of this variant */
    char name[32];                           /* MOCK_NAME of this variant */
    int v3;                                  /* built with MOCK_V3 */
    int initialized;                         /* currently initialised */

    unsigned long initialize_calls;          /* every C_Initialize call */
    unsigned long initialize_ok;             /* ... that returned CKR_OK */
    unsigned long finalize_calls;
    unsigned long finalize_ok;
    unsigned long double_init_attempts;      /* C_Initialize answered CKR_CRYPTOKI_ALREADY_INITIALIZED */
    unsigned long calls_while_uninitialised; /* any other call answered CKR_CRYPTOKI_NOT_INITIALIZED */
    int last_call_while_uninitialised;       /* its enum mock_fn, -1 if none */
    unsigned long fork_resets;               /* times a fork child dropped inherited state */

    /* Arguments of the last C_Initialize that got past argument checks. */
    int last_init_had_args;                  /* pInitArgs != NULL */
    unsigned long last_init_flags;
    int last_init_had_mutex_callbacks;       /* all four callbacks set */
    char last_init_reserved[256];            /* pReserved as a string, "" if NULL */

    unsigned long open_sessions;             /* current */
    unsigned long sessions_opened_total;
    unsigned long sessions_closed_total;     /* C_CloseSession, C_CloseAllSessions, C_Finalize */
    unsigned long objects;                   /* current, token and session objects */
    unsigned long slots;                     /* current slot count (hot-plug) */
    unsigned long events_queued;             /* pending slot events */
    unsigned long waiters;                   /* threads blocked in C_WaitForSlotEvent (MOCK_WAIT_HANG) */

    unsigned long calls_3_0;                 /* sum of calls to 3.0 functions (not GetInterface*) */
    unsigned long calls_3_2;                 /* sum of calls to the twelve 3.2 functions */
    int v32;                                 /* built with MOCK_V32 */
    unsigned long last_decapsulate_len;      /* ulCiphertextLen of the last C_DecapsulateKey */
    unsigned long calls[MOCK_FN_COUNT];      /* per entry point, by enum mock_fn */
};

/* mock_control ops. Unknown op -> CKR_ARGUMENTS_BAD. */
enum mock_op {
    MOCK_ADD_SLOT = 1,       /* arg: real slot ID; hot-plug: slot with token appears */
    MOCK_REMOVE_SLOT = 2,    /* arg: real slot ID; slot disappears, its sessions close */
    MOCK_QUEUE_EVENT = 3,    /* arg: real slot ID; next C_WaitForSlotEvent reports it */
    MOCK_RESET_STATS = 4,    /* zero counters (not state-describing fields) */
    MOCK_RESET_SLOTS = 5,    /* back to the compile-time slot list, labels and PINs */
    MOCK_FAIL_NEXT_INIT = 6, /* arg: CK_RV the next C_Initialize returns (0 = off) */
    MOCK_FAIL_NEXT_CALL = 7, /* arg: CK_RV the next wrapped call returns (0 = off) */
    MOCK_RELEASE_WAITERS = 8, /* arg: CK_RV the C_WaitForSlotEvent calls blocked so far return
                               * (CKR_OK: an event on the first compile-time slot) */
    MOCK_SET_DELAY = 9,       /* arg: microseconds every call (C_Initialize/C_Finalize too)
                               * sleeps before it takes the module's lock (0 = off) */
    MOCK_SET_OVERREPORT = 10, /* arg: 1 on, 0 off; only in MOCK_OVERREPORT variants (else
                               * CKR_ARGUMENTS_BAD): outputs claim more than the buffer holds */
};

/* "C_Digest" for MOCK_FN_C_Digest; "?" out of range. */
static inline const char *mock_fn_name(int fn)
{
    static const char *const names[] = {
#define MOCK_FN_NAME(name, kind, params, args) #name,
        MOCK_FUNCTIONS_2_40(MOCK_FN_NAME) MOCK_FUNCTIONS_3_0(MOCK_FN_NAME) MOCK_FUNCTIONS_3_2(MOCK_FN_NAME)
#undef MOCK_FN_NAME
    };
    return fn >= 0 && fn < (int)(sizeof names / sizeof names[0]) ? names[fn] : "?";
}

typedef void (*mock_stats_fn)(struct mock_stats *out);
typedef CK_RV (*mock_control_fn)(int op, CK_ULONG arg);

#endif
