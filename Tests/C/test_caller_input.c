/* test_caller_input.c: every function p11proxy exports, called the way a careless
 * or hostile caller calls it, through the 2.40 table of C_GetFunctionList and the 3.2 table
 * of C_GetInterface (the default), over a 3.2 module (mock-v32) and a 2.40 one (mock-b):
 *   - before C_Initialize and after C_Finalize: CKR_CRYPTOKI_NOT_INITIALIZED;
 *   - invalid slot IDs: CKR_SLOT_ID_INVALID; invalid, closed, stale or another caller's
 *     session handles: CKR_SESSION_HANDLE_INVALID;
 *   - on a valid slot or session, NULL pointers, zero and huge lengths, invalid object
 *     handles: exactly what the module answers when called directly with the same arguments
 *     (the proxy passes them through), outputs included;
 *   - the length-pair conventions (NULL buffer asks for the size, a short buffer gets
 *     CKR_BUFFER_TOO_SMALL and the size) against the module directly, and for the lists the
 *     proxy builds itself (slots, interfaces) against the spec;
 *   - the proxy's own argument rules (C_Initialize, C_Finalize, C_GetInfo, C_GetSlotList,
 *     C_WaitForSlotEvent, C_GetInterface*, C_OpenSession);
 *   - 3.0 and 3.2 functions on a 2.40 module: CKR_FUNCTION_NOT_SUPPORTED.
 * The whole sweep runs three times: tracing off, tracing on (text), tracing on (JSON, with
 * x-log-secrets, the mode that reads the most caller memory).
 * The functions swept are a table in this file, checked against codegen/pkcs11-functions.txt
 * (name, version, route): a function in the description that is not swept in every phase
 * that applies to it fails the test. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "p11test.h"

#define HUGE_LEN ((CK_ULONG)-2) /* just below CK_UNAVAILABLE_INFORMATION */
#define BUF 4096
#define N_HANDLES 64
#define BAD_OBJECT ((CK_OBJECT_HANDLE)0xDEAD)

typedef CK_FUNCTION_LIST_3_2_PTR F;

/* ---- Arguments: one struct covers every parameter of every function ------------------ */

/* What the pointers of `struct args` point at; one per side (proxy, module) so the
 * outputs of the two calls can be compared. */
struct bufs {
    unsigned char in[BUF], in2[BUF], out[BUF], param_bytes[BUF];
    CK_ULONG out_len, count;
    CK_ULONG handles[N_HANDLES], handles2[N_HANDLES];
    CK_ATTRIBUTE tmpl[1], tmpl2[1];
    unsigned char attr[64];
    CK_MECHANISM mech;
    CK_GCM_MESSAGE_PARAMS gcm;
    CK_ASYNC_DATA async;
    union {
        CK_INFO info;
        CK_SLOT_INFO slot;
        CK_TOKEN_INFO token;
        CK_SESSION_INFO session;
        CK_MECHANISM_INFO mechanism;
    } info;
    CK_UTF8CHAR pin[8], pin2[8], label[32];
    unsigned char reserved[64];
    CK_INTERFACE interfaces[4];
    void *pp;
    CK_VERSION version;
};

struct args {
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE session;
    CK_OBJECT_HANDLE obj, obj2;
    CK_ULONG ul; /* user type, mechanism type, object count limit */
    CK_FLAGS flags;
    CK_BBOOL present;
    CK_MECHANISM_PTR mech;
    CK_ATTRIBUTE_PTR tmpl, tmpl2;
    CK_ULONG tmpl_count, tmpl2_count;
    CK_BYTE_PTR in, in2, out;
    CK_ULONG in_len, in2_len;
    CK_ULONG_PTR out_len, count, handles, handles2;
    void *info;
    CK_VOID_PTR param;
    CK_ULONG param_len;
    CK_UTF8CHAR_PTR pin, pin2, label;
    CK_ULONG pin_len, pin2_len;
    CK_VOID_PTR reserved; /* pInitArgs, pReserved, pApplication */
    void *pp;             /* CK_FUNCTION_LIST_PTR_PTR, CK_INTERFACE_PTR_PTR */
    CK_VERSION_PTR version;
    CK_INTERFACE_PTR interfaces;
    CK_ASYNC_DATA_PTR async;
};

/* ZERO: NULL pointers, zero lengths. NULL_HUGE: NULL pointers, huge lengths and counts.
 * EMPTY: valid buffers, zero lengths. PLAUSIBLE: valid buffers and lengths, invalid object
 * handles, a wrong PIN, a mechanism that exists (CKM_SHA256). */
enum shape { ZERO, NULL_HUGE, EMPTY, PLAUSIBLE, N_SHAPES };
static const char *const shape_names[] = {"NULL/0", "NULL/huge", "buffers/0", "buffers"};

static void make_args(struct args *a, struct bufs *b, enum shape shape)
{
    memset(a, 0, sizeof *a);
    if (shape == ZERO)
        return;
    if (shape == NULL_HUGE) {
        a->obj = a->obj2 = HUGE_LEN;
        a->ul = a->flags = a->tmpl_count = a->tmpl2_count = a->in_len = a->in2_len = a->param_len = a->pin_len =
            a->pin2_len = HUGE_LEN;
        a->present = CK_TRUE;
        return;
    }
    memset(b, 0, sizeof *b);
    memset(b->in, 0x5a, sizeof b->in);
    memset(b->in2, 0xa5, sizeof b->in2);
    memset(b->out, 0xee, sizeof b->out);
    memset(b->reserved, 'r', sizeof b->reserved - 1);
    memcpy(b->attr, "x", 1);
    b->tmpl[0] = (CK_ATTRIBUTE){CKA_LABEL, b->attr, 1};
    b->tmpl2[0] = (CK_ATTRIBUTE){CKA_LABEL, b->attr, 1};
    b->mech = (CK_MECHANISM){CKM_SHA256, NULL, 0};
    /* A GCM message parameter whose tag length would overflow a naive bit-to-byte rounding. */
    b->gcm = (CK_GCM_MESSAGE_PARAMS){b->param_bytes, 12, 0, CKG_NO_GENERATE, b->param_bytes + 64, (CK_ULONG)-1};
    memcpy(b->pin, "0000", 4);
    memcpy(b->pin2, "user", 4);
    memset(b->label, ' ', sizeof b->label);
    b->label[0] = 'x';
    b->version = (CK_VERSION){3, 0};
    int empty = shape == EMPTY;
    a->obj = empty ? 0 : BAD_OBJECT;
    a->obj2 = empty ? 0 : BAD_OBJECT + 1;
    a->ul = empty ? 0 : 1; /* CKU_USER, CKM_RSA_PKCS, one object */
    a->mech = &b->mech;
    a->tmpl = b->tmpl;
    a->tmpl2 = b->tmpl2;
    a->tmpl_count = a->tmpl2_count = empty ? 0 : 1;
    a->in = b->in;
    a->in2 = b->in2;
    a->in_len = a->in2_len = empty ? 0 : 16;
    a->out = b->out;
    b->out_len = empty ? 0 : BUF;
    a->out_len = &b->out_len;
    b->count = empty ? 0 : N_HANDLES;
    a->count = &b->count;
    a->handles = b->handles;
    a->handles2 = b->handles2;
    a->info = &b->info;
    a->param = &b->gcm;
    a->param_len = empty ? 0 : sizeof b->gcm;
    a->pin = b->pin;
    a->pin2 = b->pin2;
    a->label = b->label;
    a->pin_len = a->pin2_len = empty ? 0 : 4;
    a->reserved = b->reserved;
    a->pp = &b->pp;
    a->version = &b->version;
    a->interfaces = b->interfaces;
    a->async = &b->async;
}

/* ---- The functions: one line each, in CK_FUNCTION_LIST_3_2 order ---------------------- */

#define CALL(name, ...) static CK_RV call_##name(F f, struct args *a) { return f->name(__VA_ARGS__); }
CALL(C_Initialize, a->reserved)
CALL(C_Finalize, a->reserved)
CALL(C_GetInfo, a->info)
CALL(C_GetFunctionList, a->pp)
CALL(C_GetSlotList, a->present, a->handles, a->count)
CALL(C_GetSlotInfo, a->slot, a->info)
CALL(C_GetTokenInfo, a->slot, a->info)
CALL(C_GetMechanismList, a->slot, a->handles, a->count)
CALL(C_GetMechanismInfo, a->slot, a->ul, a->info)
CALL(C_InitToken, a->slot, a->pin, a->pin_len, a->label)
CALL(C_InitPIN, a->session, a->pin, a->pin_len)
CALL(C_SetPIN, a->session, a->pin, a->pin_len, a->pin2, a->pin2_len)
CALL(C_OpenSession, a->slot, a->flags, a->reserved, NULL, a->handles)
CALL(C_CloseSession, a->session)
CALL(C_CloseAllSessions, a->slot)
CALL(C_GetSessionInfo, a->session, a->info)
CALL(C_GetOperationState, a->session, a->out, a->out_len)
CALL(C_SetOperationState, a->session, a->in, a->in_len, a->obj, a->obj2)
CALL(C_Login, a->session, a->ul, a->pin, a->pin_len)
CALL(C_Logout, a->session)
CALL(C_CreateObject, a->session, a->tmpl, a->tmpl_count, a->handles)
CALL(C_CopyObject, a->session, a->obj, a->tmpl, a->tmpl_count, a->handles)
CALL(C_DestroyObject, a->session, a->obj)
CALL(C_GetObjectSize, a->session, a->obj, a->count)
CALL(C_GetAttributeValue, a->session, a->obj, a->tmpl, a->tmpl_count)
CALL(C_SetAttributeValue, a->session, a->obj, a->tmpl, a->tmpl_count)
CALL(C_FindObjectsInit, a->session, a->tmpl, a->tmpl_count)
CALL(C_FindObjects, a->session, a->handles, a->ul, a->count)
CALL(C_FindObjectsFinal, a->session)
CALL(C_EncryptInit, a->session, a->mech, a->obj)
CALL(C_Encrypt, a->session, a->in, a->in_len, a->out, a->out_len)
CALL(C_EncryptUpdate, a->session, a->in, a->in_len, a->out, a->out_len)
CALL(C_EncryptFinal, a->session, a->out, a->out_len)
CALL(C_DecryptInit, a->session, a->mech, a->obj)
CALL(C_Decrypt, a->session, a->in, a->in_len, a->out, a->out_len)
CALL(C_DecryptUpdate, a->session, a->in, a->in_len, a->out, a->out_len)
CALL(C_DecryptFinal, a->session, a->out, a->out_len)
CALL(C_DigestInit, a->session, a->mech)
CALL(C_Digest, a->session, a->in, a->in_len, a->out, a->out_len)
CALL(C_DigestUpdate, a->session, a->in, a->in_len)
CALL(C_DigestKey, a->session, a->obj)
CALL(C_DigestFinal, a->session, a->out, a->out_len)
CALL(C_SignInit, a->session, a->mech, a->obj)
CALL(C_Sign, a->session, a->in, a->in_len, a->out, a->out_len)
CALL(C_SignUpdate, a->session, a->in, a->in_len)
CALL(C_SignFinal, a->session, a->out, a->out_len)
CALL(C_SignRecoverInit, a->session, a->mech, a->obj)
CALL(C_SignRecover, a->session, a->in, a->in_len, a->out, a->out_len)
CALL(C_VerifyInit, a->session, a->mech, a->obj)
CALL(C_Verify, a->session, a->in, a->in_len, a->in2, a->in2_len)
CALL(C_VerifyUpdate, a->session, a->in, a->in_len)
CALL(C_VerifyFinal, a->session, a->in2, a->in2_len)
CALL(C_VerifyRecoverInit, a->session, a->mech, a->obj)
CALL(C_VerifyRecover, a->session, a->in2, a->in2_len, a->out, a->out_len)
CALL(C_DigestEncryptUpdate, a->session, a->in, a->in_len, a->out, a->out_len)
CALL(C_DecryptDigestUpdate, a->session, a->in, a->in_len, a->out, a->out_len)
CALL(C_SignEncryptUpdate, a->session, a->in, a->in_len, a->out, a->out_len)
CALL(C_DecryptVerifyUpdate, a->session, a->in, a->in_len, a->out, a->out_len)
CALL(C_GenerateKey, a->session, a->mech, a->tmpl, a->tmpl_count, a->handles)
CALL(C_GenerateKeyPair, a->session, a->mech, a->tmpl, a->tmpl_count, a->tmpl2, a->tmpl2_count, a->handles,
     a->handles2)
CALL(C_WrapKey, a->session, a->mech, a->obj, a->obj2, a->out, a->out_len)
CALL(C_UnwrapKey, a->session, a->mech, a->obj, a->in, a->in_len, a->tmpl, a->tmpl_count, a->handles)
CALL(C_DeriveKey, a->session, a->mech, a->obj, a->tmpl, a->tmpl_count, a->handles)
CALL(C_SeedRandom, a->session, a->in, a->in_len)
CALL(C_GenerateRandom, a->session, a->out, a->in_len)
CALL(C_GetFunctionStatus, a->session)
CALL(C_CancelFunction, a->session)
CALL(C_WaitForSlotEvent, a->flags, a->handles, a->reserved)
CALL(C_GetInterfaceList, a->interfaces, a->count)
CALL(C_GetInterface, a->label, a->version, a->pp, a->flags)
CALL(C_LoginUser, a->session, a->ul, a->pin, a->pin_len, a->pin2, a->pin2_len)
CALL(C_SessionCancel, a->session, a->flags)
CALL(C_MessageEncryptInit, a->session, a->mech, a->obj)
CALL(C_EncryptMessage, a->session, a->param, a->param_len, a->in2, a->in2_len, a->in, a->in_len, a->out, a->out_len)
CALL(C_EncryptMessageBegin, a->session, a->param, a->param_len, a->in2, a->in2_len)
CALL(C_EncryptMessageNext, a->session, a->param, a->param_len, a->in, a->in_len, a->out, a->out_len, a->flags)
CALL(C_MessageEncryptFinal, a->session)
CALL(C_MessageDecryptInit, a->session, a->mech, a->obj)
CALL(C_DecryptMessage, a->session, a->param, a->param_len, a->in2, a->in2_len, a->in, a->in_len, a->out, a->out_len)
CALL(C_DecryptMessageBegin, a->session, a->param, a->param_len, a->in2, a->in2_len)
CALL(C_DecryptMessageNext, a->session, a->param, a->param_len, a->in, a->in_len, a->out, a->out_len, a->flags)
CALL(C_MessageDecryptFinal, a->session)
CALL(C_MessageSignInit, a->session, a->mech, a->obj)
CALL(C_SignMessage, a->session, a->param, a->param_len, a->in, a->in_len, a->out, a->out_len)
CALL(C_SignMessageBegin, a->session, a->param, a->param_len)
CALL(C_SignMessageNext, a->session, a->param, a->param_len, a->in, a->in_len, a->out, a->out_len)
CALL(C_MessageSignFinal, a->session)
CALL(C_MessageVerifyInit, a->session, a->mech, a->obj)
CALL(C_VerifyMessage, a->session, a->param, a->param_len, a->in, a->in_len, a->in2, a->in2_len)
CALL(C_VerifyMessageBegin, a->session, a->param, a->param_len)
CALL(C_VerifyMessageNext, a->session, a->param, a->param_len, a->in, a->in_len, a->in2, a->in2_len)
CALL(C_MessageVerifyFinal, a->session)
/* The 3.2 functions; pin2 ("user", NUL-terminated) stands for a function name. */
CALL(C_EncapsulateKey, a->session, a->mech, a->obj, a->tmpl, a->tmpl_count, a->out, a->out_len, a->handles)
CALL(C_DecapsulateKey, a->session, a->mech, a->obj, a->tmpl, a->tmpl_count, a->in, a->in_len, a->handles)
CALL(C_VerifySignatureInit, a->session, a->mech, a->obj, a->in2, a->in2_len)
CALL(C_VerifySignature, a->session, a->in, a->in_len)
CALL(C_VerifySignatureUpdate, a->session, a->in, a->in_len)
CALL(C_VerifySignatureFinal, a->session)
CALL(C_GetSessionValidationFlags, a->session, a->ul, a->count)
CALL(C_AsyncComplete, a->session, a->pin2, a->async)
CALL(C_AsyncGetID, a->session, a->pin2, a->count)
CALL(C_AsyncJoin, a->session, a->pin2, a->ul, a->out, a->in_len)
CALL(C_WrapKeyAuthenticated, a->session, a->mech, a->obj, a->obj2, a->in2, a->in2_len, a->out, a->out_len)
CALL(C_UnwrapKeyAuthenticated, a->session, a->mech, a->obj, a->in, a->in_len, a->tmpl, a->tmpl_count, a->in2,
     a->in2_len, a->handles)
#undef CALL

enum route { NONE, SLOT, SESSION };
/* ALWAYS: callable before C_Initialize (checked by hand); NO_PASS: not compared with the
 * module (it closes sessions, or the proxy answers it itself, checked by hand). */
enum { ALWAYS = 1, NO_PASS = 2 };

/* The phases a function is swept in; which ones apply follows from its entry. */
enum phase { PH_UNINIT, PH_FINAL, PH_BAD_SLOT, PH_BAD_SESSION, PH_PASS, PH_V2_MODULE, PH_OWN_RULES, N_PHASES };
static const char *const phase_names[] = {
    "before C_Initialize", "after C_Finalize", "invalid slot IDs", "invalid session handles",
    "passed through to the module", "3.x call on a 2.40 module", "own argument rules",
};

struct fn {
    const char *name;
    int v3; /* 0: 2.40, 1: 3.0, 2: 3.2 */
    enum route route;
    int flags;
    CK_RV (*call)(F, struct args *);
    unsigned swept[2]; /* per table (0: C_GetFunctionList's, 1: C_GetInterface's), bit per phase */
};

#define E(name, v3, route, flags) {#name, v3, route, flags, call_##name, {0, 0}}
static struct fn fns[] = {
    E(C_Initialize, 0, NONE, ALWAYS | NO_PASS),
    E(C_Finalize, 0, NONE, NO_PASS),
    E(C_GetInfo, 0, NONE, NO_PASS),
    E(C_GetFunctionList, 0, NONE, ALWAYS | NO_PASS),
    E(C_GetSlotList, 0, NONE, NO_PASS),
    E(C_GetSlotInfo, 0, SLOT, 0),
    E(C_GetTokenInfo, 0, SLOT, 0),
    E(C_GetMechanismList, 0, SLOT, 0),
    E(C_GetMechanismInfo, 0, SLOT, 0),
    E(C_InitToken, 0, SLOT, 0),
    E(C_InitPIN, 0, SESSION, 0),
    E(C_SetPIN, 0, SESSION, 0),
    E(C_OpenSession, 0, SLOT, 0),
    E(C_CloseSession, 0, SESSION, NO_PASS),
    E(C_CloseAllSessions, 0, SLOT, NO_PASS),
    E(C_GetSessionInfo, 0, SESSION, 0),
    E(C_GetOperationState, 0, SESSION, 0),
    E(C_SetOperationState, 0, SESSION, 0),
    E(C_Login, 0, SESSION, 0),
    E(C_Logout, 0, SESSION, 0),
    E(C_CreateObject, 0, SESSION, 0),
    E(C_CopyObject, 0, SESSION, 0),
    E(C_DestroyObject, 0, SESSION, 0),
    E(C_GetObjectSize, 0, SESSION, 0),
    E(C_GetAttributeValue, 0, SESSION, 0),
    E(C_SetAttributeValue, 0, SESSION, 0),
    E(C_FindObjectsInit, 0, SESSION, 0),
    E(C_FindObjects, 0, SESSION, 0),
    E(C_FindObjectsFinal, 0, SESSION, 0),
    E(C_EncryptInit, 0, SESSION, 0),
    E(C_Encrypt, 0, SESSION, 0),
    E(C_EncryptUpdate, 0, SESSION, 0),
    E(C_EncryptFinal, 0, SESSION, 0),
    E(C_DecryptInit, 0, SESSION, 0),
    E(C_Decrypt, 0, SESSION, 0),
    E(C_DecryptUpdate, 0, SESSION, 0),
    E(C_DecryptFinal, 0, SESSION, 0),
    E(C_DigestInit, 0, SESSION, 0),
    E(C_Digest, 0, SESSION, 0),
    E(C_DigestUpdate, 0, SESSION, 0),
    E(C_DigestKey, 0, SESSION, 0),
    E(C_DigestFinal, 0, SESSION, 0),
    E(C_SignInit, 0, SESSION, 0),
    E(C_Sign, 0, SESSION, 0),
    E(C_SignUpdate, 0, SESSION, 0),
    E(C_SignFinal, 0, SESSION, 0),
    E(C_SignRecoverInit, 0, SESSION, 0),
    E(C_SignRecover, 0, SESSION, 0),
    E(C_VerifyInit, 0, SESSION, 0),
    E(C_Verify, 0, SESSION, 0),
    E(C_VerifyUpdate, 0, SESSION, 0),
    E(C_VerifyFinal, 0, SESSION, 0),
    E(C_VerifyRecoverInit, 0, SESSION, 0),
    E(C_VerifyRecover, 0, SESSION, 0),
    E(C_DigestEncryptUpdate, 0, SESSION, 0),
    E(C_DecryptDigestUpdate, 0, SESSION, 0),
    E(C_SignEncryptUpdate, 0, SESSION, 0),
    E(C_DecryptVerifyUpdate, 0, SESSION, 0),
    E(C_GenerateKey, 0, SESSION, 0),
    E(C_GenerateKeyPair, 0, SESSION, 0),
    E(C_WrapKey, 0, SESSION, 0),
    E(C_UnwrapKey, 0, SESSION, 0),
    E(C_DeriveKey, 0, SESSION, 0),
    E(C_SeedRandom, 0, SESSION, 0),
    E(C_GenerateRandom, 0, SESSION, 0),
    E(C_GetFunctionStatus, 0, SESSION, 0),
    E(C_CancelFunction, 0, SESSION, 0),
    E(C_WaitForSlotEvent, 0, NONE, NO_PASS),
    E(C_GetInterfaceList, 1, NONE, ALWAYS | NO_PASS),
    E(C_GetInterface, 1, NONE, ALWAYS | NO_PASS),
    E(C_LoginUser, 1, SESSION, 0),
    E(C_SessionCancel, 1, SESSION, 0),
    E(C_MessageEncryptInit, 1, SESSION, 0),
    E(C_EncryptMessage, 1, SESSION, 0),
    E(C_EncryptMessageBegin, 1, SESSION, 0),
    E(C_EncryptMessageNext, 1, SESSION, 0),
    E(C_MessageEncryptFinal, 1, SESSION, 0),
    E(C_MessageDecryptInit, 1, SESSION, 0),
    E(C_DecryptMessage, 1, SESSION, 0),
    E(C_DecryptMessageBegin, 1, SESSION, 0),
    E(C_DecryptMessageNext, 1, SESSION, 0),
    E(C_MessageDecryptFinal, 1, SESSION, 0),
    E(C_MessageSignInit, 1, SESSION, 0),
    E(C_SignMessage, 1, SESSION, 0),
    E(C_SignMessageBegin, 1, SESSION, 0),
    E(C_SignMessageNext, 1, SESSION, 0),
    E(C_MessageSignFinal, 1, SESSION, 0),
    E(C_MessageVerifyInit, 1, SESSION, 0),
    E(C_VerifyMessage, 1, SESSION, 0),
    E(C_VerifyMessageBegin, 1, SESSION, 0),
    E(C_VerifyMessageNext, 1, SESSION, 0),
    E(C_MessageVerifyFinal, 1, SESSION, 0),
    E(C_EncapsulateKey, 2, SESSION, 0),
    E(C_DecapsulateKey, 2, SESSION, 0),
    E(C_VerifySignatureInit, 2, SESSION, 0),
    E(C_VerifySignature, 2, SESSION, 0),
    E(C_VerifySignatureUpdate, 2, SESSION, 0),
    E(C_VerifySignatureFinal, 2, SESSION, 0),
    E(C_GetSessionValidationFlags, 2, SESSION, 0),
    E(C_AsyncComplete, 2, SESSION, 0),
    E(C_AsyncGetID, 2, SESSION, 0),
    E(C_AsyncJoin, 2, SESSION, 0),
    E(C_WrapKeyAuthenticated, 2, SESSION, 0),
    E(C_UnwrapKeyAuthenticated, 2, SESSION, 0),
};
#undef E
#define N_FNS (sizeof fns / sizeof fns[0])

static struct fn *fn_named(const char *name)
{
    for (size_t i = 0; i < N_FNS; i++)
        if (!strcmp(fns[i].name, name))
            return &fns[i];
    return NULL;
}

/* The phases each function must have been swept in, per table. */
static unsigned required_phases(const struct fn *e, int table)
{
    if (table == 0 && e->v3)
        return 0; /* a 2.40 caller has no 3.0 entries */
    unsigned need = 1u << PH_UNINIT | 1u << PH_FINAL;
    if (e->route == SLOT)
        need |= 1u << PH_BAD_SLOT;
    if (e->route == SESSION)
        need |= 1u << PH_BAD_SESSION;
    if (!(e->flags & NO_PASS))
        need |= 1u << PH_PASS;
    if (e->v3 && e->route == SESSION)
        need |= 1u << PH_V2_MODULE;
    if (e->route == NONE)
        need |= 1u << PH_OWN_RULES;
    return need;
}

/* ---- One table under test: a caller's function list ---------------------------------- */

struct table {
    const char *label; /* "2.40 list" / "3.2 list" */
    int index;         /* 0 or 1, for fn.swept */
    F f;
};

static int in_table(const struct table *t, const struct fn *e)
{
    return t->index == 1 || !e->v3;
}

/* Calls with every shape and expects `want` from each; one check per function. */
static void expect_all(struct table *t, struct fn *e, enum phase ph, const CK_ULONG *handles, size_t n_handles,
                       const enum shape *shapes, size_t n_shapes, CK_RV want)
{
    int calls = 0, bad = 0;
    char first[200] = "";
    for (size_t h = 0; h < n_handles; h++)
        for (size_t s = 0; s < n_shapes; s++) {
            struct bufs b;
            struct args a;
            make_args(&a, &b, shapes[s]);
            a.slot = a.session = handles[h];
            CK_RV rv = e->call(t->f, &a);
            calls++;
            if (rv != want && !bad++)
                snprintf(first, sizeof first, "handle 0x%lx, %s: got %s", handles[h], shape_names[shapes[s]],
                         t_rv_name(rv));
        }
    e->swept[t->index] |= 1u << ph;
    if (bad)
        t_fail("%s: %s %s: %s in all %d calls (%d differ; first: %s)", t->label, e->name, phase_names[ph],
               t_rv_name(want), calls, bad, first);
    else
        t_ok(1, "%s: %s %s: %s in all %d calls", t->label, e->name, phase_names[ph], t_rv_name(want), calls);
}

static const enum shape all_shapes[] = {ZERO, NULL_HUGE, EMPTY, PLAUSIBLE};

/* Before C_Initialize / after C_Finalize: everything but the four ALWAYS functions. */
static void sweep_not_initialized(struct table *t, enum phase ph, const CK_ULONG *handles, size_t n_handles)
{
    for (size_t i = 0; i < N_FNS; i++) {
        struct fn *e = &fns[i];
        if (!in_table(t, e) || (e->flags & ALWAYS))
            continue;
        expect_all(t, e, ph, handles, n_handles, all_shapes, N_SHAPES, CKR_CRYPTOKI_NOT_INITIALIZED);
    }
}

static void sweep_routes(struct table *t, enum route route, enum phase ph, const CK_ULONG *handles,
                         size_t n_handles, CK_RV want)
{
    for (size_t i = 0; i < N_FNS; i++)
        if (in_table(t, &fns[i]) && fns[i].route == route)
            expect_all(t, &fns[i], ph, handles, n_handles, all_shapes, N_SHAPES, want);
}

/* ---- Pass-through: the proxy's answer is the module's ------------------------------- */

struct side {
    F f;
    CK_SLOT_ID slot;
    CK_SESSION_HANDLE session;
};

struct outcome {
    CK_RV rv;
    CK_ULONG out_len, count;
};

static struct outcome run_side(struct fn *e, struct side *sd, enum shape shape, struct bufs *b)
{
    struct args a;
    make_args(&a, b, shape);
    a.slot = sd->slot;
    a.session = sd->session;
    struct outcome o;
    o.rv = e->call(sd->f, &a);
    o.out_len = a.out_len ? *a.out_len : 0;
    o.count = a.count ? *a.count : 0;
    return o;
}

/* Each function and shape on the proxy, then the same on the module directly, in lock step,
 * so both sessions go through the same states. */
static void sweep_pass_through(struct table *t, struct side *proxy, struct side *direct)
{
    static struct bufs bp, bd;
    for (size_t i = 0; i < N_FNS; i++) {
        struct fn *e = &fns[i];
        if (!in_table(t, e) || (e->flags & NO_PASS))
            continue;
        int bad = 0;
        char first[240] = "";
        for (int s = 0; s < N_SHAPES; s++) {
            struct outcome p = run_side(e, proxy, s, &bp);
            struct outcome d = run_side(e, direct, s, &bd);
            if ((p.rv != d.rv || p.out_len != d.out_len || p.count != d.count) && !bad++) {
                char prv[48];
                snprintf(prv, sizeof prv, "%s", t_rv_name(p.rv));
                snprintf(first, sizeof first, "%s: proxy %s len %lu count %lu, module %s len %lu count %lu",
                         shape_names[s], prv, p.out_len, p.count, t_rv_name(d.rv), d.out_len, d.count);
            }
        }
        e->swept[t->index] |= 1u << PH_PASS;
        if (bad)
            t_fail("%s: %s %s: same answers and lengths as the module (%s)", t->label, e->name, phase_names[PH_PASS],
                   first);
        else
            t_ok(1, "%s: %s %s: same answers and lengths as the module (%d shapes)", t->label, e->name,
                 phase_names[PH_PASS], N_SHAPES);
    }
}

/* ---- Length pairs: scripted sequences on each side, compared step by step ------------- */

#define ANY_LEN ((CK_ULONG)-3)
#define MAX_STEPS 96

struct step {
    char what[80];
    CK_RV rv, want_rv;
    CK_ULONG len, want_len;
    unsigned char bytes[64]; /* the output when rv is CKR_OK and it is deterministic */
    int has_bytes;
};

struct transcript {
    int n;
    struct step steps[MAX_STEPS];
};

static void record(struct transcript *tr, const char *what, CK_RV rv, CK_RV want_rv, CK_ULONG len, CK_ULONG want_len,
                   const void *bytes, size_t n_bytes)
{
    if (tr->n == MAX_STEPS)
        return;
    struct step *s = &tr->steps[tr->n++];
    memset(s, 0, sizeof *s);
    snprintf(s->what, sizeof s->what, "%s", what);
    s->rv = rv;
    s->want_rv = want_rv;
    s->len = len;
    s->want_len = want_len;
    if (bytes && rv == CKR_OK && n_bytes) {
        memcpy(s->bytes, bytes, n_bytes < sizeof s->bytes ? n_bytes : sizeof s->bytes);
        s->has_bytes = 1;
    }
}

/* The three calls of a length pair: NULL buffer, short buffer, big enough buffer. `op`
 * runs one call with (out, &len); `init` (may be NULL) starts the operation again, since a
 * successful call ends most operations. */
struct pair_call {
    F f;
    CK_SESSION_HANDLE h;
    CK_OBJECT_HANDLE key;
    CK_SLOT_ID slot;
};

typedef CK_RV (*pair_fn)(struct pair_call *c, CK_BYTE_PTR out, CK_ULONG_PTR len);
typedef CK_RV (*init_fn)(struct pair_call *c);

/* `need` is in the function's own unit (bytes, or entries of `unit` bytes for a list). */
static void length_pair(struct transcript *tr, const char *name, struct pair_call *c, init_fn init, pair_fn op,
                        CK_ULONG need, size_t unit, int deterministic)
{
    unsigned char out[512];
    char what[80];
    CK_ULONG len;
    if (init) {
        snprintf(what, sizeof what, "%s: its Init", name);
        record(tr, what, init(c), CKR_OK, 0, 0, NULL, 0);
    }
    CK_RV rv;
    len = 0;
    snprintf(what, sizeof what, "%s: NULL buffer asks for the length", name);
    rv = op(c, NULL, &len);
    record(tr, what, rv, CKR_OK, len, need, NULL, 0);
    len = 1;
    snprintf(what, sizeof what, "%s: short buffer", name);
    rv = op(c, out, &len);
    record(tr, what, rv, CKR_BUFFER_TOO_SMALL, len, need, NULL, 0);
    len = sizeof out / unit;
    memset(out, 0, sizeof out);
    snprintf(what, sizeof what, "%s: big enough buffer", name);
    rv = op(c, out, &len);
    record(tr, what, rv, CKR_OK, len, need, deterministic ? out : NULL, len <= sizeof out / unit ? len * unit : 0);
}

static CK_MECHANISM mech_kem = {CKM_ML_KEM, NULL, 0};
static CK_MECHANISM mech_sha256 = {CKM_SHA256, NULL, 0}, mech_gcm = {CKM_AES_GCM, NULL, 0},
                    mech_ecdsa = {CKM_ECDSA, NULL, 0}, mech_rsa = {CKM_RSA_PKCS, NULL, 0},
                    mech_wrap = {CKM_AES_KEY_WRAP, NULL, 0};
static unsigned char data16[16] = "sixteen bytes!!";
static unsigned char msg_param[8] = "param-1";

/* The Init calls and the length-pair calls of the sequences below, one line each. */
#define INIT(fn, ...) static CK_RV fn(struct pair_call *c) { return __VA_ARGS__; }
#define PAIR(fn, ...) static CK_RV fn(struct pair_call *c, CK_BYTE_PTR out, CK_ULONG_PTR len) { return __VA_ARGS__; }
INIT(init_digest, c->f->C_DigestInit(c->h, &mech_sha256))
INIT(init_encrypt, c->f->C_EncryptInit(c->h, &mech_gcm, c->key))
INIT(init_decrypt, c->f->C_DecryptInit(c->h, &mech_gcm, c->key))
INIT(init_sign, c->f->C_SignInit(c->h, &mech_ecdsa, c->key))
INIT(init_sign_recover, c->f->C_SignRecoverInit(c->h, &mech_rsa, c->key))
INIT(init_digest_encrypt, init_digest(c) == CKR_OK ? init_encrypt(c) : CKR_OPERATION_NOT_INITIALIZED)
INIT(init_msg_encrypt, c->f->C_MessageEncryptInit(c->h, &mech_gcm, c->key))
INIT(init_msg_sign, c->f->C_MessageSignInit(c->h, &mech_ecdsa, c->key))
PAIR(op_mechanism_list, c->f->C_GetMechanismList(c->slot, (CK_MECHANISM_TYPE_PTR)out, len))
PAIR(op_digest, c->f->C_Digest(c->h, data16, sizeof data16, out, len))
PAIR(op_digest_final, c->f->C_DigestFinal(c->h, out, len))
PAIR(op_operation_state, c->f->C_GetOperationState(c->h, out, len))
PAIR(op_encrypt, c->f->C_Encrypt(c->h, data16, sizeof data16, out, len))
PAIR(op_encrypt_update, c->f->C_EncryptUpdate(c->h, data16, sizeof data16, out, len))
PAIR(op_decrypt, c->f->C_Decrypt(c->h, data16, sizeof data16, out, len))
PAIR(op_decrypt_update, c->f->C_DecryptUpdate(c->h, data16, sizeof data16, out, len))
PAIR(op_sign, c->f->C_Sign(c->h, data16, sizeof data16, out, len))
PAIR(op_sign_final, c->f->C_SignFinal(c->h, out, len))
PAIR(op_sign_recover, c->f->C_SignRecover(c->h, data16, sizeof data16, out, len))
PAIR(op_digest_encrypt, c->f->C_DigestEncryptUpdate(c->h, data16, sizeof data16, out, len))
PAIR(op_wrap, c->f->C_WrapKey(c->h, &mech_wrap, c->key, c->key, out, len))
PAIR(op_encrypt_message,
     c->f->C_EncryptMessage(c->h, msg_param, sizeof msg_param, NULL, 0, data16, sizeof data16, out, len))
PAIR(op_sign_message, c->f->C_SignMessage(c->h, msg_param, sizeof msg_param, data16, sizeof data16, out, len))
PAIR(op_encapsulate, c->f->C_EncapsulateKey(c->h, &mech_kem, c->key, NULL, 0, out, len, &(CK_OBJECT_HANDLE){0}))
PAIR(op_wrap_authenticated,
     c->f->C_WrapKeyAuthenticated(c->h, &mech_gcm, c->key, c->key, data16, sizeof data16, out, len))
#undef INIT
#undef PAIR

/* A key both sides can make with the same secret (the mock derives it from CKA_VALUE). */
static CK_RV make_key(F f, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE *key)
{
    static CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    static CK_KEY_TYPE type = CKK_AES;
    static unsigned char value[16] = {'0', '1', '2', '3', '4', '5', '6', '7',
                                      '8', '9', 'a', 'b', 'c', 'd', 'e', 'f'};
    CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_KEY_TYPE, &type, sizeof type},
                           {CKA_VALUE, value, sizeof value}};
    return f->C_CreateObject(h, tmpl, 3, key);
}

/* Ends an operation with a buffer (a NULL buffer would only ask for the length). */
static CK_RV end_with_buffer(CK_RV (*final)(CK_SESSION_HANDLE, CK_BYTE_PTR, CK_ULONG_PTR), CK_SESSION_HANDLE h)
{
    unsigned char out[64];
    CK_ULONG len = sizeof out;
    return final(h, out, &len);
}

static void conventions(struct transcript *tr, struct side *sd, int v3)
{
    memset(tr, 0, sizeof *tr);
    struct pair_call c = {sd->f, sd->session, 0, sd->slot};
    record(tr, "C_CreateObject of a secret key", make_key(sd->f, sd->session, &c.key), CKR_OK, 0, 0, NULL, 0);
    length_pair(tr, "C_GetMechanismList", &c, NULL, op_mechanism_list, 9, sizeof(CK_MECHANISM_TYPE), 1);
    length_pair(tr, "C_Digest", &c, init_digest, op_digest, MOCK_DIGEST_LEN, 1, 1);
    length_pair(tr, "C_GetOperationState", &c, init_digest, op_operation_state, ANY_LEN, 1, 0);
    length_pair(tr, "C_DigestFinal", &c, NULL, op_digest_final, MOCK_DIGEST_LEN, 1, 1);
    length_pair(tr, "C_Encrypt", &c, init_encrypt, op_encrypt, sizeof data16, 1, 1);
    length_pair(tr, "C_EncryptUpdate", &c, init_encrypt, op_encrypt_update, sizeof data16, 1, 1);
    record(tr, "C_EncryptFinal", end_with_buffer(c.f->C_EncryptFinal, c.h), CKR_OK, 0, 0, NULL, 0);
    length_pair(tr, "C_Decrypt", &c, init_decrypt, op_decrypt, sizeof data16, 1, 1);
    length_pair(tr, "C_DecryptUpdate", &c, init_decrypt, op_decrypt_update, sizeof data16, 1, 1);
    record(tr, "C_DecryptFinal", end_with_buffer(c.f->C_DecryptFinal, c.h), CKR_OK, 0, 0, NULL, 0);
    length_pair(tr, "C_Sign", &c, init_sign, op_sign, MOCK_DIGEST_LEN, 1, 1);
    length_pair(tr, "C_SignFinal", &c, init_sign, op_sign_final, MOCK_DIGEST_LEN, 1, 1);
    length_pair(tr, "C_SignRecover", &c, init_sign_recover, op_sign_recover, MOCK_DIGEST_LEN + sizeof data16, 1, 1);
    length_pair(tr, "C_DigestEncryptUpdate", &c, init_digest_encrypt, op_digest_encrypt, sizeof data16, 1, 1);
    record(tr, "C_EncryptFinal after the dual update", end_with_buffer(c.f->C_EncryptFinal, c.h), CKR_OK, 0, 0, NULL,
           0);
    record(tr, "C_DigestFinal after the dual update", end_with_buffer(c.f->C_DigestFinal, c.h), CKR_OK, 0, 0, NULL, 0);
    length_pair(tr, "C_WrapKey", &c, NULL, op_wrap, 16, 1, 1);

    /* C_GetAttributeValue: per attribute (PKCS#11 3.0 section 5.7). */
    unsigned char value[64];
    CK_ATTRIBUTE a = {CKA_VALUE, NULL, 0};
    CK_RV rv = c.f->C_GetAttributeValue(c.h, c.key, &a, 1);
    record(tr, "C_GetAttributeValue: NULL pValue asks for the length", rv, CKR_OK, a.ulValueLen, 16, NULL, 0);
    a = (CK_ATTRIBUTE){CKA_VALUE, value, 4};
    rv = c.f->C_GetAttributeValue(c.h, c.key, &a, 1);
    record(tr, "C_GetAttributeValue: short pValue", rv, CKR_BUFFER_TOO_SMALL, a.ulValueLen, CK_UNAVAILABLE_INFORMATION,
           NULL, 0);
    a = (CK_ATTRIBUTE){CKA_VALUE, value, sizeof value};
    rv = c.f->C_GetAttributeValue(c.h, c.key, &a, 1);
    record(tr, "C_GetAttributeValue: big enough pValue", rv, CKR_OK, a.ulValueLen, 16, value, 16);
    a = (CK_ATTRIBUTE){0x7fff0001UL, value, sizeof value};
    rv = c.f->C_GetAttributeValue(c.h, c.key, &a, 1);
    record(tr, "C_GetAttributeValue: unknown attribute", rv, CKR_ATTRIBUTE_TYPE_INVALID, a.ulValueLen,
           CK_UNAVAILABLE_INFORMATION, NULL, 0);

    if (v3) {
        length_pair(tr, "C_EncryptMessage", &c, init_msg_encrypt, op_encrypt_message, sizeof data16, 1, 1);
        record(tr, "C_MessageEncryptFinal", c.f->C_MessageEncryptFinal(c.h), CKR_OK, 0, 0, NULL, 0);
        length_pair(tr, "C_SignMessage", &c, init_msg_sign, op_sign_message, MOCK_DIGEST_LEN, 1, 1);
        record(tr, "C_MessageSignFinal", c.f->C_MessageSignFinal(c.h), CKR_OK, 0, 0, NULL, 0);
        /* 3.2: the ciphertext changes with every call (a fresh shared secret), the wrapped key not. */
        length_pair(tr, "C_EncapsulateKey", &c, NULL, op_encapsulate, 32, 1, 0);
        length_pair(tr, "C_WrapKeyAuthenticated", &c, NULL, op_wrap_authenticated, 16, 1, 1);
    }
    record(tr, "C_DestroyObject of the key", c.f->C_DestroyObject(c.h, c.key), CKR_OK, 0, 0, NULL, 0);
}

static void check_conventions(struct table *t, struct side *proxy, struct side *direct)
{
    static struct transcript tp, td;
    conventions(&tp, proxy, t->index == 1);
    conventions(&td, direct, t->index == 1);
    t_ul(tp.n, td.n, "%s: length pairs: both transcripts have the same steps", t->label);
    for (int i = 0; i < tp.n && i < td.n; i++) {
        struct step *p = &tp.steps[i], *d = &td.steps[i];
        int same = p->rv == d->rv && p->len == d->len && p->has_bytes == d->has_bytes &&
                   (!p->has_bytes || !memcmp(p->bytes, d->bytes, sizeof p->bytes));
        int as_spec = p->rv == p->want_rv && (p->want_len == ANY_LEN || p->len == p->want_len);
        char prv[48];
        snprintf(prv, sizeof prv, "%s", t_rv_name(p->rv));
        t_ok(same && as_spec, "%s: %s: %s, length %lu, as the module directly (module: %s, %lu)", t->label, p->what,
             prv, p->len, t_rv_name(d->rv), d->len);
    }
}

/* ---- What the proxy answers itself -------------------------------------------------- */

static void mark(struct table *t, const char *name, enum phase ph)
{
    struct fn *e = fn_named(name);
    if (e)
        e->swept[t->index] |= 1u << ph;
    else
        t_fail("no table entry for %s", name);
}

/* The proxy's slot list: same conventions as a module's, and never writes past what it
 * says. `n` is the number of slots the configuration has. */
static void slot_list_rules(struct table *t, CK_ULONG n)
{
    CK_SLOT_ID slots[N_HANDLES];
    CK_ULONG count;
    t_rv(t->f->C_GetSlotList(CK_FALSE, NULL, NULL), CKR_ARGUMENTS_BAD, "%s: C_GetSlotList(NULL, NULL)", t->label);
    t_rv(t->f->C_GetSlotList(CK_TRUE, slots, NULL), CKR_ARGUMENTS_BAD, "%s: C_GetSlotList(list, NULL count)",
         t->label);
    count = HUGE_LEN;
    t_rv(t->f->C_GetSlotList(CK_FALSE, NULL, &count), CKR_OK, "%s: C_GetSlotList size query (count preset huge)",
         t->label);
    t_ul(count, n, "%s: C_GetSlotList size query gives the slot count", t->label);
    for (int i = 0; i < N_HANDLES; i++)
        slots[i] = 0xC0FFEE;
    count = n - 1;
    t_rv(t->f->C_GetSlotList(CK_FALSE, slots, &count), CKR_BUFFER_TOO_SMALL, "%s: C_GetSlotList one short", t->label);
    t_ul(count, n, "%s: C_GetSlotList one short: the count needed", t->label);
    count = 0;
    t_rv(t->f->C_GetSlotList(CK_FALSE, slots, &count), CKR_BUFFER_TOO_SMALL, "%s: C_GetSlotList zero-length list",
         t->label);
    count = HUGE_LEN;
    t_rv(t->f->C_GetSlotList(CK_FALSE, slots, &count), CKR_OK, "%s: C_GetSlotList with a huge count", t->label);
    t_ul(count, n, "%s: C_GetSlotList with a huge count: the real count", t->label);
    int untouched = 1;
    for (int i = (int)n; i < N_HANDLES; i++)
        untouched &= slots[i] == 0xC0FFEE;
    t_ok(untouched, "%s: C_GetSlotList wrote nothing past the slots it reported", t->label);
    mark(t, "C_GetSlotList", PH_OWN_RULES);
}

static void interface_rules(struct table *t, const char *via, CK_RV (*list)(CK_INTERFACE_PTR, CK_ULONG_PTR),
                            CK_RV (*get)(CK_UTF8CHAR_PTR, CK_VERSION_PTR, CK_INTERFACE_PTR_PTR, CK_FLAGS))
{
    CK_INTERFACE ifs[4];
    CK_INTERFACE_PTR found = NULL;
    CK_ULONG count;
    t_rv(list(NULL, NULL), CKR_ARGUMENTS_BAD, "%s: %s C_GetInterfaceList(NULL, NULL)", t->label, via);
    count = HUGE_LEN;
    t_rv(list(NULL, &count), CKR_OK, "%s: %s C_GetInterfaceList size query", t->label, via);
    t_ul(count, 3, "%s: %s C_GetInterfaceList size query gives 3", t->label, via);
    count = 1;
    t_rv(list(ifs, &count), CKR_BUFFER_TOO_SMALL, "%s: %s C_GetInterfaceList one short", t->label, via);
    t_ul(count, 3, "%s: %s C_GetInterfaceList one short: the count needed", t->label, via);
    memset(ifs, 0x77, sizeof ifs);
    count = HUGE_LEN;
    t_rv(list(ifs, &count), CKR_OK, "%s: %s C_GetInterfaceList with a huge count", t->label, via);
    unsigned char canary[sizeof ifs[0]];
    memset(canary, 0x77, sizeof canary);
    t_ok(count == 3 && !memcmp(&ifs[3], canary, sizeof canary), "%s: %s C_GetInterfaceList: count 3, nothing past",
         t->label, via);
    CK_VERSION v99 = {9, 9}, v30 = {3, 0};
    t_rv(get(NULL, NULL, NULL, 0), CKR_ARGUMENTS_BAD, "%s: %s C_GetInterface(..., NULL)", t->label, via);
    t_rv(get((CK_UTF8CHAR_PTR) "PKCS 12", NULL, &found, 0), CKR_ARGUMENTS_BAD, "%s: %s C_GetInterface unknown name",
         t->label, via);
    t_rv(get((CK_UTF8CHAR_PTR) "PKCS 11 and more", NULL, &found, 0), CKR_ARGUMENTS_BAD,
         "%s: %s C_GetInterface name with a suffix", t->label, via);
    t_rv(get((CK_UTF8CHAR_PTR) "", NULL, &found, 0), CKR_ARGUMENTS_BAD, "%s: %s C_GetInterface empty name", t->label,
         via);
    t_rv(get(NULL, &v99, &found, 0), CKR_ARGUMENTS_BAD, "%s: %s C_GetInterface unknown version", t->label, via);
    t_rv(get(NULL, &v30, &found, CKF_INTERFACE_FORK_SAFE), CKR_ARGUMENTS_BAD,
         "%s: %s C_GetInterface asking for a flag no interface has", t->label, via);
    t_rv(get(NULL, NULL, &found, ~0UL), CKR_ARGUMENTS_BAD, "%s: %s C_GetInterface with every flag", t->label, via);
}

/* Through a caller's own table, C_GetInterface* answer for that caller (the table's C_*). */
static struct table *current_table;
static CK_RV table_list(CK_INTERFACE_PTR l, CK_ULONG_PTR n) { return current_table->f->C_GetInterfaceList(l, n); }
static CK_RV table_get(CK_UTF8CHAR_PTR name, CK_VERSION_PTR v, CK_INTERFACE_PTR_PTR pp, CK_FLAGS flags)
{
    return current_table->f->C_GetInterface(name, v, pp, flags);
}

static void own_rules(struct table *t, CK_ULONG n_slots, CK_SLOT_ID slot, CK_SESSION_HANDLE session,
                      struct t_mock *mock)
{
    CK_FUNCTION_LIST_PTR again = NULL;
    t_rv(t->f->C_GetFunctionList(NULL), CKR_ARGUMENTS_BAD, "%s: its C_GetFunctionList(NULL)", t->label);
    t_rv(t->f->C_GetFunctionList(&again), CKR_OK, "%s: its C_GetFunctionList", t->label);
    /* The same entry points (C_GetInfo aside: it answers with its own list's version). */
    t_ok(again && again->C_GetSlotList == ((CK_FUNCTION_LIST_PTR)t->f)->C_GetSlotList &&
             again->C_Sign == ((CK_FUNCTION_LIST_PTR)t->f)->C_Sign,
         "%s: its C_GetFunctionList gives this caller's functions", t->label);
    mark(t, "C_GetFunctionList", PH_OWN_RULES);
    if (t->index == 1) {
        current_table = t;
        interface_rules(t, "its", table_list, table_get);
        CK_INTERFACE_PTR found = NULL;
        t_rv(t->f->C_GetInterface(NULL, NULL, &found, 0), CKR_OK, "%s: its C_GetInterface default", t->label);
        t_ok(found && found->pFunctionList == (void *)t->f, "%s: its C_GetInterface gives this very table", t->label);
        mark(t, "C_GetInterfaceList", PH_OWN_RULES);
        mark(t, "C_GetInterface", PH_OWN_RULES);
    }

    t_rv(t->f->C_GetInfo(NULL), CKR_ARGUMENTS_BAD, "%s: C_GetInfo(NULL)", t->label);
    mark(t, "C_GetInfo", PH_OWN_RULES);
    slot_list_rules(t, n_slots);

    CK_SLOT_ID event = 0xC0FFEE;
    unsigned char junk[8] = "junk";
    t_rv(t->f->C_WaitForSlotEvent(CKF_DONT_BLOCK, NULL, NULL), CKR_ARGUMENTS_BAD,
         "%s: C_WaitForSlotEvent(NULL slot)", t->label);
    t_rv(t->f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &event, junk), CKR_ARGUMENTS_BAD,
         "%s: C_WaitForSlotEvent(pReserved not NULL)", t->label);
    t_rv(t->f->C_WaitForSlotEvent(0, NULL, NULL), CKR_ARGUMENTS_BAD,
         "%s: blocking C_WaitForSlotEvent(NULL slot) does not block", t->label);
    t_rv(t->f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &event, NULL), CKR_NO_EVENT, "%s: C_WaitForSlotEvent no event",
         t->label);
    t_rv(t->f->C_WaitForSlotEvent(~0UL, &event, NULL), CKR_NO_EVENT,
         "%s: C_WaitForSlotEvent with every flag (CKF_DONT_BLOCK among them)", t->label);
    t_ul(event, 0xC0FFEE, "%s: C_WaitForSlotEvent without an event leaves *pSlot alone", t->label);
    mark(t, "C_WaitForSlotEvent", PH_OWN_RULES);

    struct mock_stats before = t_mock_stats(mock);
    t_rv(t->f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, NULL), CKR_ARGUMENTS_BAD,
         "%s: C_OpenSession(NULL phSession)", t->label);
    t_ul(t_mock_stats(mock).sessions_opened_total, before.sessions_opened_total,
         "%s: C_OpenSession(NULL phSession) opened nothing in the module", t->label);
    CK_SESSION_HANDLE h = 0;
    t_rv(t->f->C_OpenSession(slot, 0, NULL, NULL, &h), CKR_SESSION_PARALLEL_NOT_SUPPORTED,
         "%s: C_OpenSession without CKF_SERIAL_SESSION: the module's answer", t->label);
    t_ul(h, 0, "%s: a failed C_OpenSession leaves *phSession alone", t->label);
    CK_SESSION_INFO si;
    t_rv(t->f->C_GetSessionInfo(session, NULL), CKR_ARGUMENTS_BAD, "%s: C_GetSessionInfo(NULL)", t->label);
    t_rv(t->f->C_GetSessionInfo(session, &si), CKR_OK, "%s: C_GetSessionInfo", t->label);
    t_ul(si.slotID, slot, "%s: C_GetSessionInfo reports the proxy's slot ID", t->label);

    unsigned char reserved[8] = "x";
    t_rv(t->f->C_Finalize(reserved), CKR_ARGUMENTS_BAD, "%s: C_Finalize(pReserved not NULL)", t->label);
    t_rv(t->f->C_GetSessionInfo(session, &si), CKR_OK, "%s: still initialised after the refused C_Finalize", t->label);
    mark(t, "C_Finalize", PH_OWN_RULES);
}

static CK_RV dummy_mutex(CK_VOID_PTR_PTR m) { (void)m; return CKR_OK; }
static CK_RV dummy_mutex_op(CK_VOID_PTR m) { (void)m; return CKR_OK; }

/* C_Initialize's arguments (PKCS#11 3.0 section 5.4); the caller stays uninitialised after
 * each refusal. */
static void initialize_rules(struct table *t)
{
    CK_ULONG n;
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof args);
    args.CreateMutex = dummy_mutex;
    args.LockMutex = dummy_mutex_op;
    t_rv(t->f->C_Initialize(&args), CKR_ARGUMENTS_BAD, "%s: C_Initialize with two of four mutex callbacks", t->label);
    memset(&args, 0, sizeof args);
    args.pReserved = "garbage";
    t_rv(t->f->C_Initialize(&args), CKR_ARGUMENTS_BAD, "%s: C_Initialize with a garbage pReserved", t->label);
    args.pReserved = "config-dir=";
    t_rv(t->f->C_Initialize(&args), CKR_ARGUMENTS_BAD, "%s: C_Initialize with an empty config-dir", t->label);
    static char unterminated[8192];
    memset(unterminated, 'A', sizeof unterminated); /* no NUL within the proxy's 4096-byte limit */
    args.pReserved = unterminated;
    t_rv(t->f->C_Initialize(&args), CKR_ARGUMENTS_BAD, "%s: C_Initialize with an overlong pReserved", t->label);
    t_rv(t->f->C_GetSlotList(CK_FALSE, NULL, &n), CKR_CRYPTOKI_NOT_INITIALIZED,
         "%s: still uninitialised after the refused C_Initialize calls", t->label);
    memset(&args, 0, sizeof args);
    args.flags = CKF_OS_LOCKING_OK;
    t_rv(t->f->C_Initialize(&args), CKR_OK, "%s: C_Initialize(CKF_OS_LOCKING_OK)", t->label);
    t_rv(t->f->C_Initialize(NULL), CKR_CRYPTOKI_ALREADY_INITIALIZED, "%s: a second C_Initialize", t->label);
    mark(t, "C_Initialize", PH_OWN_RULES);
    mark(t, "C_Initialize", PH_UNINIT);
    mark(t, "C_Initialize", PH_FINAL);
}

/* The exported getters, before anything is initialised. */
static void export_rules(struct t_proxy *px)
{
    static struct table exported = {"exported", 1, NULL};
    t_rv(px->get_function_list(NULL), CKR_ARGUMENTS_BAD, "exported C_GetFunctionList(NULL)");
    if (!px->get_interface_list || !px->get_interface) {
        t_fail("proxy exports C_GetInterfaceList and C_GetInterface");
        return;
    }
    interface_rules(&exported, "exported", px->get_interface_list, px->get_interface);
}

/* The functions a caller may call before C_Initialize and after C_Finalize (3.0 section 5.4). */
static void always_callable(struct table *t, enum phase ph)
{
    CK_FUNCTION_LIST_PTR list = NULL;
    t_rv(t->f->C_GetFunctionList(&list), CKR_OK, "%s: its C_GetFunctionList works %s", t->label, phase_names[ph]);
    mark(t, "C_GetFunctionList", ph);
    if (t->index == 1) {
        CK_ULONG n = 0;
        CK_INTERFACE_PTR found = NULL;
        t_rv(t->f->C_GetInterfaceList(NULL, &n), CKR_OK, "%s: its C_GetInterfaceList works %s", t->label,
             phase_names[ph]);
        t_rv(t->f->C_GetInterface(NULL, NULL, &found, 0), CKR_OK, "%s: its C_GetInterface works %s", t->label,
             phase_names[ph]);
        mark(t, "C_GetInterfaceList", ph);
        mark(t, "C_GetInterface", ph);
    }
}

/* ---- The function description, so that no function is forgotten -------------------- */

static const char *description_path(void)
{
    static char path[4096];
    if (getenv("P11TEST_FUNCTIONS_FILE"))
        return getenv("P11TEST_FUNCTIONS_FILE");
    const char *self = __FILE__, *tail = strstr(self, "Tests/C/test_caller_input.c");
    snprintf(path, sizeof path, "%.*scodegen/pkcs11-functions.txt", tail ? (int)(tail - self) : 0, self);
    return path;
}

static void check_description(void)
{
    const char *path = description_path();
    FILE *in = fopen(path, "r");
    if (!t_ok(in != NULL, "function description %s readable", path))
        return;
    char line[4096];
    int described = 0;
    int seen[N_FNS];
    memset(seen, 0, sizeof seen);
    while (fgets(line, sizeof line, in)) {
        char name[64], version[8], route[16];
        if (strncmp(line, "C_", 2) != 0 || sscanf(line, "%63s %7s %15s", name, version, route) != 3)
            continue;
        described++;
        struct fn *e = fn_named(name);
        if (!e) {
            t_fail("%s (in the description) is in this test's table", name);
            continue;
        }
        seen[e - fns] = 1;
        int v3 = !strcmp(version, "2.40") ? 0 : !strcmp(version, "3.0") ? 1 : 2;
        int route_ok = (!strcmp(route, "slot") && e->route == SLOT) || (!strcmp(route, "session") && e->route == SESSION) ||
                       !strcmp(route, "manual");
        if (!t_ok(v3 == e->v3 && route_ok, "%s: version %s and route %s as in the description", name, version, route))
            continue;
        char missing[300] = "";
        for (int table = 0; table < 2; table++) {
            unsigned lacking = required_phases(e, table) & ~e->swept[table];
            for (int ph = 0; ph < N_PHASES; ph++)
                if (lacking & (1u << ph))
                    snprintf(missing + strlen(missing), sizeof missing - strlen(missing), "%s%s list: %s",
                             missing[0] ? "; " : "", table ? "3.2" : "2.40", phase_names[ph]);
        }
        if (missing[0])
            t_fail("%s swept in every phase that applies (missing: %s)", name, missing);
        else
            t_ok(1, "%s swept in every phase that applies", name);
    }
    fclose(in);
    t_ul(described, N_FNS, "the description lists as many functions as this test sweeps");
    for (size_t i = 0; i < N_FNS; i++)
        if (!seen[i])
            t_fail("%s (in this test's table) is in the description", fns[i].name);
}

/* ---- The scenario ------------------------------------------------------------------ */

struct mode {
    const char *name;
    const char *log_calls; /* NULL: tracing off */
    const char *format;
    const char *secrets;
};

static struct t_mock ma, mb;

static CK_SESSION_HANDLE open_ro(F f, CK_SLOT_ID slot, const char *what)
{
    CK_SESSION_HANDLE h = 0;
    t_rv(f->C_OpenSession(slot, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_OK, "%s", what);
    return h;
}

/* The valid-handle phases of one initialised table. */
static void sweep_initialised(struct table *t, F direct_f, CK_SESSION_HANDLE other_callers_session, CK_ULONG n_slots)
{
    CK_SLOT_ID slot_a = t_slot_by_label((CK_FUNCTION_LIST_PTR)t->f, "mock-v32-1");
    CK_SLOT_ID slot_b = t_slot_by_label((CK_FUNCTION_LIST_PTR)t->f, "mock-b-1");
    if (!t_ok(slot_a != T_NO_SLOT && slot_b != T_NO_SLOT, "%s: mock-v32-1 and mock-b-1 listed", t->label))
        return;
    char what[80];
    snprintf(what, sizeof what, "%s: session on mock-v32-1", t->label);
    CK_SESSION_HANDLE live = open_ro(t->f, slot_a, what), closed = open_ro(t->f, slot_a, what);
    t->f->C_CloseSession(closed);

    const CK_ULONG bad_slots[] = {0, n_slots + 1, 4096, 0x7fffffffUL, (1UL << 32) | slot_a, (CK_ULONG)-1};
    sweep_routes(t, SLOT, PH_BAD_SLOT, bad_slots, sizeof bad_slots / sizeof bad_slots[0], CKR_SLOT_ID_INVALID);
    const CK_ULONG bad_sessions[] = {
        0, 1, 2, 0xFFFFF, 0x100000, other_callers_session, closed, live + (1UL << 20), live | (1UL << 32),
        (CK_ULONG)-1,
    };
    sweep_routes(t, SESSION, PH_BAD_SESSION, bad_sessions, sizeof bad_sessions / sizeof bad_sessions[0],
                 CKR_SESSION_HANDLE_INVALID);
    t_rv(t->f->C_CloseSession(other_callers_session), CKR_SESSION_HANDLE_INVALID,
         "%s: C_CloseSession of another caller's session refused", t->label);
    t_rv(t->f->C_CloseAllSessions(0), CKR_SLOT_ID_INVALID, "%s: C_CloseAllSessions(0)", t->label);

    /* The module, called directly on its own slot 1 with sessions of its own. */
    struct side proxy = {t->f, slot_a, 0}, direct = {direct_f, 1, 0};
    snprintf(what, sizeof what, "%s: session for the pass-through sweep", t->label);
    proxy.session = open_ro(t->f, slot_a, what);
    direct.session = open_ro(direct_f, 1, "direct session on mock-v32's slot 1");
    sweep_pass_through(t, &proxy, &direct);
    t->f->C_CloseSession(proxy.session);
    direct_f->C_CloseSession(direct.session);
    snprintf(what, sizeof what, "%s: session for the length pairs", t->label);
    proxy.session = open_ro(t->f, slot_a, what);
    direct.session = open_ro(direct_f, 1, "direct session on mock-v32's slot 1");
    check_conventions(t, &proxy, &direct);
    direct_f->C_CloseSession(direct.session);

    own_rules(t, n_slots, slot_a, proxy.session, &ma);

    if (t->index == 1) {
        snprintf(what, sizeof what, "%s: session on the 2.40 module mock-b", t->label);
        CK_SESSION_HANDLE hb = open_ro(t->f, slot_b, what);
        for (size_t i = 0; i < N_FNS; i++)
            if (fns[i].v3 && fns[i].route == SESSION)
                expect_all(t, &fns[i], PH_V2_MODULE, &hb, 1, all_shapes, N_SHAPES, CKR_FUNCTION_NOT_SUPPORTED);
    }
    t_rv(t->f->C_GetSessionInfo(live, &(CK_SESSION_INFO){0}), CKR_OK, "%s: the live session survived the sweep",
         t->label);
}

static void sweep(void *arg)
{
    const struct mode *mode = arg;
    char *dir = t_config_new("caller-input");
    t_config_module(dir, "mock-v32", "module: %s\npriority: 2\n", ma.path);
    t_config_module(dir, "mock-b", "module: %s\npriority: 1\n", mb.path);
    t_config_use(dir);
    char *trace = t_temp_path(mode->name);
    if (mode->log_calls) {
        setenv("P11PROXY_LOG_CALLS", mode->log_calls, 1);
        setenv("P11PROXY_LOG_FILE", trace, 1);
        setenv("P11PROXY_LOG_FORMAT", mode->format, 1);
        setenv("P11PROXY_LOG_SECRETS", mode->secrets, 1);
    }
    struct t_proxy px;
    if (!t_proxy_open(&px))
        return;
    CK_FUNCTION_LIST_PTR list240 = t_caller(&px), other = t_caller(&px);
    CK_INTERFACE_PTR iface = NULL;
    CK_RV rv = px.get_interface ? px.get_interface(NULL, NULL, &iface, 0) : CKR_GENERAL_ERROR;
    if (!list240 || !other || !t_rv(rv, CKR_OK, "exported C_GetInterface gives a caller") || !iface)
        return;
    struct table t240 = {"2.40 list", 0, (F)list240}, t30 = {"3.2 list", 1, (F)iface->pFunctionList};
    t_ul(list240->version.major, 2, "C_GetFunctionList's table is version 2.x");
    t_ok(t30.f->version.major == 3 && t30.f->version.minor == 2, "C_GetInterface's default table is version 3.2");

    F direct_f = NULL;
    CK_C_GetFunctionList mock_gfl = (CK_C_GetFunctionList)dlsym(ma.dl, "C_GetFunctionList");
    if (!mock_gfl || mock_gfl((CK_FUNCTION_LIST_PTR_PTR)&direct_f) != CKR_OK || !direct_f) {
        t_fail("mock-v32's own function list");
        return;
    }

    export_rules(&px);
    /* Nothing initialised in the process yet. */
    const CK_ULONG early_handles[] = {0, 1, 2, (CK_ULONG)-1};
    sweep_not_initialized(&t240, PH_UNINIT, early_handles, 4);
    always_callable(&t240, PH_UNINIT);
    initialize_rules(&t240);

    /* Another caller initialised, with a live session: still nothing for an uninitialised one. */
    if (!t_rv(other->C_Initialize(NULL), CKR_OK, "other caller: C_Initialize"))
        return;
    CK_SLOT_ID other_slot = t_slot_by_label(other, "mock-v32-5");
    CK_SESSION_HANDLE other_session = open_ro((F)other, other_slot, "other caller: session on mock-v32-5");
    const CK_ULONG uninit_handles[] = {0, 1, other_slot, other_session, (CK_ULONG)-1};
    sweep_not_initialized(&t30, PH_UNINIT, uninit_handles, 5);
    always_callable(&t30, PH_UNINIT);
    initialize_rules(&t30);

    CK_SLOT_ID *slots;
    CK_ULONG n_slots = 0;
    if (t_rv(t_slot_list(list240, &slots, &n_slots), CKR_OK, "C_GetSlotList"))
        free(slots);
    t_ul(n_slots, 3, "three slots: mock-v32-1, mock-v32-5, mock-b-1");

    sweep_initialised(&t240, direct_f, other_session, n_slots);
    sweep_initialised(&t30, direct_f, other_session, n_slots);

    /* Finalised while another caller still runs: the old handles mean nothing to it. */
    CK_SESSION_HANDLE stale = open_ro(t240.f, t_slot_by_label(list240, "mock-v32-1"),
                                      "2.40 list: a session left open at C_Finalize");
    t_rv(t240.f->C_Finalize(NULL), CKR_OK, "2.40 list: C_Finalize");
    const CK_ULONG final_handles[] = {0, 1, stale, other_session, other_slot, (CK_ULONG)-1};
    sweep_not_initialized(&t240, PH_FINAL, final_handles, 6);
    always_callable(&t240, PH_FINAL);
    t_rv(other->C_GetSessionInfo(other_session, &(CK_SESSION_INFO){0}), CKR_OK,
         "other caller's session unaffected by the sweeps");
    t_rv(t30.f->C_Finalize(NULL), CKR_OK, "3.2 list: C_Finalize");
    t_rv(other->C_Finalize(NULL), CKR_OK, "other caller: C_Finalize (the last)");
    /* Everything finalised in the process. */
    sweep_not_initialized(&t30, PH_FINAL, final_handles, 6);
    always_callable(&t30, PH_FINAL);
    t_rv(t30.f->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED, "3.2 list: a second C_Finalize");

    struct mock_stats sa = t_mock_stats(&ma), sb = t_mock_stats(&mb);
    t_ok(!sa.initialized && !sb.initialized && sa.open_sessions == 0 && sb.open_sessions == 0,
         "the modules are finalised with no session left (mock-v32 %lu, mock-b %lu open)", sa.open_sessions,
         sb.open_sessions);
    if (mode->log_calls) {
        FILE *in = fopen(trace, "r");
        long size = 0;
        int message_calls = 0;
        char line[4096];
        while (in && fgets(line, sizeof line, in)) {
            size += (long)strlen(line);
            message_calls += strstr(line, "C_EncryptMessage") != NULL;
        }
        if (in)
            fclose(in);
        t_ok(size > 0 && message_calls > 0, "%s: the trace file has the sweep's records (%ld bytes)", mode->name, size);
    }
    check_description();
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    if (!t_mock_open(&ma, "mock-v32") || !t_mock_open(&mb, "mock-b"))
        return t_done();
    static const struct mode modes[] = {
        {"tracing off", NULL, NULL, NULL},
        {"tracing on (text)", "yes", "text", "no"},
        {"tracing on (JSON, secrets shown)", "yes", "json", "yes"},
    };
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
        t_scenario(modes[i].name, sweep, (void *)&modes[i]);
    return t_done();
}
