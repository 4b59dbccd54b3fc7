/* test_routing.c: one proxy over mock-a (3.0, slots 1 and 5, priority 10),
 * mock-b (2.40, slot 1, priority 5) and mock-c (3.0, slot 7, priority 0): slot listing
 * and its buffer conventions, routing of sessions by handle, the 3.0 interfaces, slot
 * events, hot-plug, x-init-reserved, and dlopen/dlclose cycles (also from threads). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "p11test.h"

static struct t_mock ma, mb, mc;

/* The proxy's view of one slot. */
struct view {
    CK_SLOT_ID id;
    char label[33];
    unsigned long tag; /* which mock serves it, from the label */
};

static unsigned long tag_of_label(const char *label)
{
    if (strncmp(label, "mock-a-", 7) == 0)
        return 0xA;
    if (strncmp(label, "mock-b-", 7) == 0)
        return 0xB;
    if (strncmp(label, "mock-c-", 7) == 0)
        return 0xC;
    return 0;
}

static CK_SLOT_ID unused_slot_id(const struct view *v, CK_ULONG n)
{
    CK_SLOT_ID id = 0x7fff1234;
    for (CK_ULONG i = 0; i < n; i++)
        if (v[i].id == id) {
            id++;
            i = (CK_ULONG)-1;
        }
    return id;
}

static void check_init_reserved(void)
{
    struct mock_stats a = t_mock_stats(&ma), b = t_mock_stats(&mb);
    t_str(a.last_init_reserved, "hello-reserved", "x-init-reserved reaches mock-a as pReserved");
    t_str(b.last_init_reserved, "", "mock-b (no x-init-reserved) gets pReserved NULL");
    t_ok(a.last_init_had_args && (a.last_init_flags & CKF_OS_LOCKING_OK),
         "mock-a initialised with CKF_OS_LOCKING_OK (flags 0x%lx)", a.last_init_flags);
    t_ul(a.last_init_had_mutex_callbacks, 0, "mock-a initialised without mutex callbacks");
    t_ul(a.initialize_calls, 1, "mock-a initialised once");
}

static void check_info(CK_FUNCTION_LIST_PTR f)
{
    CK_INFO info;
    memset(&info, 0, sizeof info);
    if (!t_rv(f->C_GetInfo(&info), CKR_OK, "C_GetInfo"))
        return;
    /* The list of C_GetFunctionList is the 2.40 one, and C_GetInfo says so (as p11-kit's proxy). */
    t_ok(info.cryptokiVersion.major == 2 && info.cryptokiVersion.minor == 40,
         "C_GetInfo cryptokiVersion 2.40 through the 2.40 list (got %d.%d)", info.cryptokiVersion.major,
         info.cryptokiVersion.minor);
    t_ok(memcmp(info.manufacturerID, "p11proxy", 8) == 0, "manufacturerID starts with p11proxy (got \"%.32s\")",
         info.manufacturerID);
    int nul = memchr(info.manufacturerID, 0, sizeof info.manufacturerID) != NULL ||
              memchr(info.libraryDescription, 0, sizeof info.libraryDescription) != NULL;
    t_ok(!nul, "manufacturerID and libraryDescription are blank padded, no NUL");
    char desc[33];
    t_trim(desc, info.libraryDescription, sizeof info.libraryDescription);
    t_ok(desc[0] != 0, "libraryDescription non-empty (\"%s\")", desc);
    t_diag("C_GetFunctionList list version %d.%d", f->version.major, f->version.minor);
}

/* Fills v[] (capacity 8) with the proxy's slots; returns the count. */
static CK_ULONG check_slots(CK_FUNCTION_LIST_PTR f, struct view *v)
{
    CK_ULONG n = 0, n_present = 0;
    t_rv(f->C_GetSlotList(CK_FALSE, NULL, &n), CKR_OK, "C_GetSlotList size query");
    t_ul(n, 4, "4 slots from 3 modules");
    t_rv(f->C_GetSlotList(CK_TRUE, NULL, &n_present), CKR_OK, "C_GetSlotList(tokenPresent) size query");
    t_ul(n_present, 4, "4 slots with a token");

    CK_SLOT_ID ids[8], again[8];
    CK_ULONG small = 2;
    t_rv(f->C_GetSlotList(CK_FALSE, ids, &small), CKR_BUFFER_TOO_SMALL, "C_GetSlotList with room for 2");
    t_ul(small, 4, "CKR_BUFFER_TOO_SMALL sets the needed count");
    small = 0;
    t_rv(f->C_GetSlotList(CK_FALSE, ids, &small), CKR_BUFFER_TOO_SMALL, "C_GetSlotList with room for 0");
    t_ul(small, 4, "room for 0: needed count");

    n = 8;
    if (!t_rv(f->C_GetSlotList(CK_FALSE, ids, &n), CKR_OK, "C_GetSlotList") || n > 8)
        return 0;
    CK_ULONG n2 = 8;
    t_rv(f->C_GetSlotList(CK_FALSE, again, &n2), CKR_OK, "C_GetSlotList again");
    t_ok(n2 == n && memcmp(ids, again, n * sizeof ids[0]) == 0, "slot IDs are stable between calls");
    t_ok(t_all_distinct(ids, n), "proxy slot IDs are distinct");

    for (CK_ULONG i = 0; i < n; i++) {
        v[i].id = ids[i];
        t_rv(t_token_label(f, ids[i], v[i].label), CKR_OK, "C_GetTokenInfo on slot %lu", ids[i]);
        v[i].tag = tag_of_label(v[i].label);
        t_diag("slot %lu: %s", ids[i], v[i].label);

        CK_SLOT_INFO si;
        char desc[65], want[65];
        if (t_rv(f->C_GetSlotInfo(ids[i], &si), CKR_OK, "C_GetSlotInfo on slot %lu", ids[i])) {
            t_trim(desc, si.slotDescription, sizeof si.slotDescription);
            /* label "mock-a-5" <-> description "mock-a slot 5" */
            const char *dash = strrchr(v[i].label, '-');
            snprintf(want, sizeof want, "%.*s slot %s", dash ? (int)(dash - v[i].label) : 0, v[i].label,
                     dash ? dash + 1 : "");
            t_str(desc, want, "slot info and token info of slot %lu come from the same real slot", ids[i]);
        }
    }
    if (n == 4) {
        int a01 = (!strcmp(v[0].label, "mock-a-1") && !strcmp(v[1].label, "mock-a-5")) ||
                  (!strcmp(v[0].label, "mock-a-5") && !strcmp(v[1].label, "mock-a-1"));
        t_ok(a01, "priority 10: mock-a's slots first (%s, %s)", v[0].label, v[1].label);
        t_str(v[2].label, "mock-b-1", "priority 5: mock-b's slot third");
        t_str(v[3].label, "mock-c-7", "priority 0: mock-c's slot last");
    }

    CK_SLOT_ID bad = unused_slot_id(v, n);
    CK_SLOT_INFO si;
    CK_TOKEN_INFO ti;
    CK_SESSION_HANDLE h;
    CK_ULONG count;
    t_rv(f->C_GetSlotInfo(bad, &si), CKR_SLOT_ID_INVALID, "C_GetSlotInfo on an unknown slot ID");
    t_rv(f->C_GetTokenInfo(bad, &ti), CKR_SLOT_ID_INVALID, "C_GetTokenInfo on an unknown slot ID");
    t_rv(f->C_OpenSession(bad, CKF_SERIAL_SESSION, NULL, NULL, &h), CKR_SLOT_ID_INVALID,
         "C_OpenSession on an unknown slot ID");
    t_rv(f->C_GetMechanismList(bad, NULL, &count), CKR_SLOT_ID_INVALID, "C_GetMechanismList on an unknown slot ID");
    if (n > 0) {
        t_rv(f->C_GetMechanismList(v[0].id, NULL, &count), CKR_OK, "C_GetMechanismList routed");
        t_ul(count, 9, "mock mechanism count through the proxy");
        CK_MECHANISM_INFO mi;
        t_rv(f->C_GetMechanismInfo(v[0].id, CKM_SHA256, &mi), CKR_OK, "C_GetMechanismInfo routed");
        t_ok(mi.flags & CKF_DIGEST, "CKM_SHA256 info says digest");
    }
    return n;
}

/* Puts v[] in the order mock-a-1, mock-a-5, mock-b-1, mock-c-7 (so later checks do not
 * depend on the order already checked above); 0 if a token is missing. */
static int canonical_order(struct view *v, CK_ULONG n)
{
    static const char *order[] = {"mock-a-1", "mock-a-5", "mock-b-1", "mock-c-7"};
    struct view sorted[4];
    if (n != 4)
        return 0;
    for (int k = 0; k < 4; k++) {
        int found = 0;
        for (CK_ULONG i = 0; i < n && !found; i++)
            if (!strcmp(v[i].label, order[k])) {
                sorted[k] = v[i];
                found = 1;
            }
        if (!found)
            return 0;
    }
    memcpy(v, sorted, sizeof sorted);
    return 1;
}

static void check_sessions(CK_FUNCTION_LIST_PTR f, struct view *v, CK_ULONG n)
{
    CK_SESSION_HANDLE h[8];
    for (CK_ULONG i = 0; i < n; i++)
        if (!t_rv(f->C_OpenSession(v[i].id, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &h[i]), CKR_OK,
                  "C_OpenSession on %s", v[i].label))
            return;
    t_ok(t_all_distinct(h, n), "session handles on different modules are distinct");
    t_ul(t_mock_stats(&ma).open_sessions, 2, "mock-a holds 2 sessions");
    t_ul(t_mock_stats(&mb).open_sessions, 1, "mock-b holds 1 session");
    t_ul(t_mock_stats(&mc).open_sessions, 1, "mock-c holds 1 session");

    static const char data[] = "route me";
    for (CK_ULONG i = 0; i < n; i++) {
        CK_SESSION_INFO si;
        memset(&si, 0, sizeof si);
        if (t_rv(f->C_GetSessionInfo(h[i], &si), CKR_OK, "C_GetSessionInfo on %s's session", v[i].label)) {
            t_ul(si.slotID, v[i].id, "session info gives the proxy slot ID for %s", v[i].label);
            t_ul(si.ulDeviceError, v[i].tag, "session on %s is served by its module (tag)", v[i].label);
            t_ul(si.state, CKS_RW_PUBLIC_SESSION, "session state passes through for %s", v[i].label);
        }
        unsigned char got[MOCK_DIGEST_LEN], want[MOCK_DIGEST_LEN];
        mock_fake_digest(v[i].tag, (const unsigned char *)data, sizeof data, want);
        if (t_rv(t_digest(f, h[i], data, sizeof data, got), CKR_OK, "C_Digest on %s", v[i].label))
            t_ok(memcmp(got, want, sizeof want) == 0, "digest on %s is its module's", v[i].label);
    }

    /* Output buffer conventions through the proxy (spec 2.40 section 5.2). */
    CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
    unsigned char buf[MOCK_DIGEST_LEN];
    CK_ULONG len = 0;
    f->C_DigestInit(h[2], &sha);
    t_rv(f->C_Digest(h[2], (CK_BYTE_PTR)data, sizeof data, NULL, &len), CKR_OK, "C_Digest NULL buffer");
    t_ul(len, MOCK_DIGEST_LEN, "C_Digest NULL buffer gives the length");
    len = 3;
    t_rv(f->C_Digest(h[2], (CK_BYTE_PTR)data, sizeof data, buf, &len), CKR_BUFFER_TOO_SMALL, "C_Digest short buffer");
    t_ul(len, MOCK_DIGEST_LEN, "C_Digest short buffer gives the length");
    len = sizeof buf;
    t_rv(f->C_Digest(h[2], (CK_BYTE_PTR)data, sizeof data, buf, &len), CKR_OK, "C_Digest after the queries");

    CK_SESSION_HANDLE max = 0;
    for (CK_ULONG i = 0; i < n; i++)
        max = h[i] > max ? h[i] : max;
    CK_SESSION_HANDLE bogus[] = {max + 12345, 0, ~0UL};
    for (size_t i = 0; i < 3; i++) {
        CK_SESSION_INFO si;
        t_rv(f->C_GetSessionInfo(bogus[i], &si), CKR_SESSION_HANDLE_INVALID, "C_GetSessionInfo on handle 0x%lx",
             bogus[i]);
        t_rv(f->C_DigestInit(bogus[i], &sha), CKR_SESSION_HANDLE_INVALID, "C_DigestInit on handle 0x%lx", bogus[i]);
        t_rv(f->C_CloseSession(bogus[i]), CKR_SESSION_HANDLE_INVALID, "C_CloseSession on handle 0x%lx", bogus[i]);
    }

    /* v[1] is a mock-a slot: closing it leaves the other sessions alone. */
    CK_SESSION_INFO si;
    t_rv(f->C_CloseSession(h[1]), CKR_OK, "C_CloseSession");
    t_rv(f->C_GetSessionInfo(h[1], &si), CKR_SESSION_HANDLE_INVALID, "closed handle is invalid");
    t_rv(f->C_CloseSession(h[1]), CKR_SESSION_HANDLE_INVALID, "closing twice");
    t_ul(t_mock_stats(&ma).open_sessions, 1, "mock-a closed the real session");
    for (CK_ULONG i = 0; i < n; i++)
        if (i != 1)
            t_rv(f->C_GetSessionInfo(h[i], &si), CKR_OK, "%s's session still open", v[i].label);

    t_rv(f->C_CloseAllSessions(v[2].id), CKR_OK, "C_CloseAllSessions on mock-b's slot");
    t_rv(f->C_GetSessionInfo(h[2], &si), CKR_SESSION_HANDLE_INVALID, "mock-b's session closed");
    t_rv(f->C_GetSessionInfo(h[0], &si), CKR_OK, "mock-a's session unaffected");
    t_ul(t_mock_stats(&mb).open_sessions, 0, "mock-b holds no session");
    f->C_CloseSession(h[0]);
    f->C_CloseSession(h[3]);
}

/* Object handles are per module: equal real handles on two modules must not mix. */
static void check_objects(CK_FUNCTION_LIST_PTR f, struct view *v)
{
    CK_SESSION_HANDLE ha, hc;
    if (!t_rv(f->C_OpenSession(v[0].id, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &ha), CKR_OK,
              "open mock-a session for objects") ||
        !t_rv(f->C_OpenSession(v[3].id, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &hc), CKR_OK,
              "open mock-c session for objects"))
        return;
    CK_OBJECT_CLASS cls = CKO_DATA;
    char la[] = "routing-a", lc[] = "routing-c";
    CK_ATTRIBUTE ta[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, la, sizeof la - 1}};
    CK_ATTRIBUTE tc[] = {{CKA_CLASS, &cls, sizeof cls}, {CKA_LABEL, lc, sizeof lc - 1}};
    CK_OBJECT_HANDLE oa = 0, oc = 0, found[4];
    t_rv(f->C_CreateObject(ha, ta, 2, &oa), CKR_OK, "C_CreateObject on mock-a");
    t_rv(f->C_CreateObject(hc, tc, 2, &oc), CKR_OK, "C_CreateObject on mock-c");

    char buf[32];
    CK_ATTRIBUTE get = {CKA_LABEL, NULL, 0};
    t_rv(f->C_GetAttributeValue(ha, oa, &get, 1), CKR_OK, "C_GetAttributeValue length query");
    t_ul(get.ulValueLen, sizeof la - 1, "attribute length through the proxy");
    get.pValue = buf;
    get.ulValueLen = 2;
    t_rv(f->C_GetAttributeValue(ha, oa, &get, 1), CKR_BUFFER_TOO_SMALL, "C_GetAttributeValue short buffer");
    t_ul(get.ulValueLen, CK_UNAVAILABLE_INFORMATION, "short buffer -> CK_UNAVAILABLE_INFORMATION");
    get.ulValueLen = sizeof buf;
    t_rv(f->C_GetAttributeValue(hc, oc, &get, 1), CKR_OK, "C_GetAttributeValue on mock-c");
    t_ok(get.ulValueLen == sizeof lc - 1 && memcmp(buf, lc, get.ulValueLen) == 0, "mock-c's object has its label");

    CK_ATTRIBUTE find = {CKA_LABEL, la, sizeof la - 1};
    CK_ULONG count = 99;
    f->C_FindObjectsInit(hc, &find, 1);
    t_rv(f->C_FindObjects(hc, found, 4, &count), CKR_OK, "C_FindObjects on mock-c");
    t_ul(count, 0, "mock-c does not see mock-a's object");
    f->C_FindObjectsFinal(hc);
    count = 0;
    f->C_FindObjectsInit(ha, &find, 1);
    t_rv(f->C_FindObjects(ha, found, 4, &count), CKR_OK, "C_FindObjects on mock-a");
    t_ok(count == 1 && found[0] == oa, "mock-a finds its object");
    f->C_FindObjectsFinal(ha);
    f->C_CloseSession(ha);
    f->C_CloseSession(hc);
}

static int has_interface(CK_INTERFACE *list, CK_ULONG n, int major, int minor)
{
    for (CK_ULONG i = 0; i < n; i++) {
        const CK_VERSION *ver = list[i].pFunctionList;
        if (list[i].pInterfaceName && strcmp((char *)list[i].pInterfaceName, "PKCS 11") == 0 && ver &&
            ver->major == major && ver->minor == minor)
            return 1;
    }
    return 0;
}

static void check_interfaces(struct t_proxy *px)
{
    if (!t_ok(px->get_interface_list && px->get_interface, "proxy exports C_GetInterfaceList and C_GetInterface"))
        return;
    CK_ULONG n = 0;
    t_rv(px->get_interface_list(NULL, &n), CKR_OK, "C_GetInterfaceList size query");
    t_ok(n >= 2, "at least 2 interfaces (got %lu)", n);
    CK_INTERFACE *list = calloc(n + 1, sizeof *list);
    if (n >= 2) {
        CK_ULONG one = 1;
        t_rv(px->get_interface_list(list, &one), CKR_BUFFER_TOO_SMALL, "C_GetInterfaceList short buffer");
        t_ul(one, n, "short buffer gives the count");
    }
    if (t_rv(px->get_interface_list(list, &n), CKR_OK, "C_GetInterfaceList")) {
        t_ok(has_interface(list, n, 3, 0), "\"PKCS 11\" 3.0 listed");
        t_ok(has_interface(list, n, 2, 40), "\"PKCS 11\" 2.40 listed");
    }
    free(list);

    CK_INTERFACE_PTR i30 = NULL, idef = NULL, i240 = NULL, ibad = NULL;
    CK_VERSION v30 = {3, 0}, v240 = {2, 40};
    t_rv(px->get_interface((CK_UTF8CHAR_PTR) "PKCS 11", &v30, &i30, 0), CKR_OK, "C_GetInterface(\"PKCS 11\", 3.0)");
    t_ok(i30 && i30->pFunctionList && ((CK_VERSION *)i30->pFunctionList)->major == 3 &&
             ((CK_VERSION *)i30->pFunctionList)->minor == 0,
         "3.0 interface's list has version 3.0");
    t_rv(px->get_interface(NULL, NULL, &idef, 0), CKR_OK, "C_GetInterface(NULL, NULL) (default)");
    t_ok(idef && idef->pFunctionList && ((CK_VERSION *)idef->pFunctionList)->major == 3, "default interface is 3.0");
    t_rv(px->get_interface((CK_UTF8CHAR_PTR) "PKCS 11", &v240, &i240, 0), CKR_OK, "C_GetInterface(\"PKCS 11\", 2.40)");
    t_ok(i240 && i240->pFunctionList && ((CK_VERSION *)i240->pFunctionList)->minor == 40,
         "2.40 interface's list has version 2.40");
    t_rv(px->get_interface((CK_UTF8CHAR_PTR) "Vendor Bogus", NULL, &ibad, 0), CKR_ARGUMENTS_BAD,
         "C_GetInterface with an unknown name");
    if (!i30 || !i30->pFunctionList)
        return;

    /* 3.0 functions: forwarded to a 3.0 module, CKR_FUNCTION_NOT_SUPPORTED on a 2.40 one. */
    CK_FUNCTION_LIST_3_0_PTR f = i30->pFunctionList;
    unsigned long inits = t_mock_stats(&ma).initialize_calls;
    if (!t_rv(f->C_Initialize(NULL), CKR_OK, "3.0 caller C_Initialize"))
        return;
    t_ul(t_mock_stats(&ma).initialize_calls, inits, "a second caller does not re-initialise mock-a");
    CK_SLOT_ID sa = t_slot_by_label((CK_FUNCTION_LIST_PTR)f, "mock-a-1");
    CK_SLOT_ID sb = t_slot_by_label((CK_FUNCTION_LIST_PTR)f, "mock-b-1");
    CK_SESSION_HANDLE ha, hb;
    if (!t_rv(f->C_OpenSession(sa, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &ha), CKR_OK,
              "3.0 caller opens on mock-a") ||
        !t_rv(f->C_OpenSession(sb, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &hb), CKR_OK,
              "3.0 caller opens on mock-b")) {
        f->C_Finalize(NULL);
        return;
    }
    struct mock_stats before = t_mock_stats(&ma);
    t_rv(f->C_SessionCancel(ha, CKF_DIGEST), CKR_OK, "C_SessionCancel on mock-a");
    t_rv(f->C_LoginUser(ha, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4, (CK_UTF8CHAR_PTR) "user", 4), CKR_OK,
         "C_LoginUser on mock-a");
    t_rv(f->C_Logout(ha), CKR_OK, "C_Logout on mock-a");
    CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0}, gcm = {CKM_AES_GCM, NULL, 0};
    CK_OBJECT_HANDLE key = 0;
    t_rv(f->C_GenerateKey(ha, &gen, NULL, 0, &key), CKR_OK, "C_GenerateKey on mock-a");
    unsigned char iv[12] = {1, 2, 3}, pt[] = "message", ct[sizeof pt], back[sizeof pt];
    CK_ULONG len = sizeof ct;
    t_rv(f->C_MessageEncryptInit(ha, &gcm, key), CKR_OK, "C_MessageEncryptInit on mock-a");
    t_rv(f->C_EncryptMessage(ha, iv, sizeof iv, NULL, 0, pt, sizeof pt, ct, &len), CKR_OK, "C_EncryptMessage");
    t_rv(f->C_MessageEncryptFinal(ha), CKR_OK, "C_MessageEncryptFinal");
    t_rv(f->C_MessageDecryptInit(ha, &gcm, key), CKR_OK, "C_MessageDecryptInit");
    len = sizeof back;
    t_rv(f->C_DecryptMessage(ha, iv, sizeof iv, NULL, 0, ct, sizeof ct, back, &len), CKR_OK, "C_DecryptMessage");
    t_ok(memcmp(back, pt, sizeof pt) == 0, "message round trip through the proxy");
    t_rv(f->C_MessageDecryptFinal(ha), CKR_OK, "C_MessageDecryptFinal");
    struct mock_stats after = t_mock_stats(&ma);
    t_ul(after.calls_3_0 - before.calls_3_0, 8, "mock-a saw exactly the 8 3.0 calls");
    t_ul(after.calls[MOCK_FN_C_SessionCancel] - before.calls[MOCK_FN_C_SessionCancel], 1,
         "C_SessionCancel forwarded once");
    t_ul(after.calls[MOCK_FN_C_LoginUser] - before.calls[MOCK_FN_C_LoginUser], 1, "C_LoginUser forwarded once");

    t_rv(f->C_SessionCancel(hb, CKF_DIGEST), CKR_FUNCTION_NOT_SUPPORTED, "C_SessionCancel on 2.40 mock-b");
    t_rv(f->C_LoginUser(hb, CKU_USER, (CK_UTF8CHAR_PTR) "1234", 4, (CK_UTF8CHAR_PTR) "user", 4),
         CKR_FUNCTION_NOT_SUPPORTED, "C_LoginUser on 2.40 mock-b");
    t_rv(f->C_MessageEncryptInit(hb, &gcm, 1), CKR_FUNCTION_NOT_SUPPORTED, "C_MessageEncryptInit on 2.40 mock-b");
    t_rv(f->C_SessionCancel(~0UL, CKF_DIGEST), CKR_SESSION_HANDLE_INVALID, "C_SessionCancel on a bogus handle");
    CK_SESSION_INFO si;
    t_rv(f->C_GetSessionInfo(hb, &si), CKR_OK, "mock-b session fine after the refused 3.0 calls");

    unsigned long fins = t_mock_stats(&ma).finalize_calls;
    t_rv(f->C_Finalize(NULL), CKR_OK, "3.0 caller C_Finalize");
    t_ul(t_mock_stats(&ma).finalize_calls, fins, "mock-a stays initialised for the first caller");
    t_ul(t_mock_stats(&ma).open_sessions, 0, "3.0 caller's sessions closed at its C_Finalize");
}

static void check_events(CK_FUNCTION_LIST_PTR f, struct view *v)
{
    CK_SLOT_ID slot = 0;
    t_rv(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL), CKR_NO_EVENT, "C_WaitForSlotEvent: nothing queued");
    t_mock_control(&ma, MOCK_QUEUE_EVENT, 5);
    CK_RV rv = CKR_NO_EVENT;
    for (int i = 0; i < 100 && rv == CKR_NO_EVENT; i++) {
        rv = f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL);
        if (rv == CKR_NO_EVENT)
            usleep(10000);
    }
    CK_SLOT_ID want = T_NO_SLOT;
    for (int i = 0; i < 4; i++)
        if (!strcmp(v[i].label, "mock-a-5"))
            want = v[i].id;
    if (t_rv(rv, CKR_OK, "C_WaitForSlotEvent reports mock-a's event"))
        t_ul(slot, want, "event slot is the proxy ID of mock-a's real slot 5");
    t_rv(f->C_WaitForSlotEvent(CKF_DONT_BLOCK, &slot, NULL), CKR_NO_EVENT, "the event was consumed");
}

static void check_hotplug(CK_FUNCTION_LIST_PTR f, struct view *old, CK_ULONG n_old)
{
    t_rv(t_mock_control(&mc, MOCK_ADD_SLOT, 9), CKR_OK, "hot-plug slot 9 into mock-c");
    CK_SLOT_ID *ids;
    CK_ULONG n;
    if (!t_rv(t_slot_list(f, &ids, &n), CKR_OK, "C_GetSlotList after hot-plug"))
        return;
    t_ul(n, n_old + 1, "one more slot after hot-plug");
    int kept = 1;
    for (CK_ULONG i = 0; i < n_old; i++) {
        int found = 0;
        for (CK_ULONG j = 0; j < n; j++)
            found |= ids[j] == old[i].id;
        char label[33];
        kept &= found && t_token_label(f, old[i].id, label) == CKR_OK && !strcmp(label, old[i].label);
    }
    t_ok(kept, "old slot IDs unchanged and still name the same tokens");
    t_ok(t_all_distinct(ids, n), "slot IDs distinct after hot-plug");
    CK_SLOT_ID fresh = t_slot_by_label(f, "mock-c-9");
    int is_new = fresh != T_NO_SLOT;
    for (CK_ULONG i = 0; i < n_old; i++)
        is_new &= fresh != old[i].id;
    t_ok(is_new, "the hot-plugged token has a new slot ID");
    free(ids);

    t_mock_control(&mc, MOCK_REMOVE_SLOT, 9);
    if (t_slot_list(f, &ids, &n) == CKR_OK) {
        t_diag("after removing mock-c slot 9 again: %lu slots (not part of the spec)", n);
        free(ids);
    }
}

/* Load, use and unload the proxy many times: no crash, balanced real init/finalize. */
static const char *cycle(void)
{
    static __thread char err[200];
    void *dl = dlopen(t_proxy_path, RTLD_NOW | RTLD_LOCAL);
    if (!dl)
        return "dlopen";
    CK_C_GetFunctionList get = (CK_C_GetFunctionList)dlsym(dl, "C_GetFunctionList");
    CK_FUNCTION_LIST_PTR f = NULL;
    CK_RV rv = get ? get(&f) : CKR_GENERAL_ERROR;
    const char *step = "C_GetFunctionList";
    if (rv == CKR_OK) {
        step = "C_Initialize";
        rv = f->C_Initialize(NULL);
        if (rv == CKR_OK) {
            CK_SLOT_ID slots[8];
            CK_ULONG n = 8;
            CK_SESSION_HANDLE h;
            step = "C_GetSlotList";
            rv = f->C_GetSlotList(CK_FALSE, slots, &n);
            if (rv == CKR_OK && n == 0)
                rv = CKR_SLOT_ID_INVALID;
            if (rv == CKR_OK) {
                step = "C_OpenSession";
                rv = f->C_OpenSession(slots[0], CKF_SERIAL_SESSION, NULL, NULL, &h);
            }
            CK_RV rv2 = f->C_Finalize(NULL);
            if (rv == CKR_OK) {
                step = "C_Finalize";
                rv = rv2;
            }
        }
    }
    dlclose(dl);
    if (rv == CKR_OK)
        return NULL;
    snprintf(err, sizeof err, "%s: %s", step, t_rv_name(rv));
    return err;
}

static void check_load_loop(void)
{
    struct mock_stats before = t_mock_stats(&ma);
    const char *first = NULL;
    int failures = 0;
    for (int i = 0; i < 200; i++) {
        const char *e = cycle();
        if (e && !failures++)
            first = e;
    }
    t_ok(failures == 0, "200 dlopen/init/open/finalize/dlclose cycles (%d failed%s%s)", failures,
         first ? ", first: " : "", first ? first : "");
    struct mock_stats after = t_mock_stats(&ma);
    t_ul(after.initialize_ok - before.initialize_ok, 200, "mock-a initialised once per cycle");
    t_ul(after.finalize_ok - before.finalize_ok, 200, "mock-a finalised once per cycle");
    t_ul(after.open_sessions, 0, "no session left on mock-a");
}

struct worker {
    int failures;
    char first[200];
};

static void *cycle_worker(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 50; i++) {
        const char *e = cycle();
        if (e && !w->failures++)
            snprintf(w->first, sizeof w->first, "%s", e);
    }
    return NULL;
}

static void check_load_threads(void)
{
    struct mock_stats before = t_mock_stats(&ma);
    struct worker w[4];
    pthread_t th[4];
    memset(w, 0, sizeof w);
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, cycle_worker, &w[i]);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++)
        t_ok(w[i].failures == 0, "thread %d: 50 concurrent load/use/unload cycles (%d failed%s%s)", i, w[i].failures,
             w[i].failures ? ", first: " : "", w[i].first);
    struct mock_stats after = t_mock_stats(&ma);
    t_ul(after.initialize_ok - before.initialize_ok, after.finalize_ok - before.finalize_ok,
         "concurrent cycles: mock-a initialize/finalize balance");
    t_ul(after.initialized, 0, "mock-a finalised at the end");
    t_ul(after.double_init_attempts - before.double_init_attempts, 0, "mock-a never initialised twice");
    t_no_uninit_calls(&after, before.calls_while_uninitialised, "concurrent cycles: mock-a");
    t_ul(after.open_sessions, 0, "no session left on mock-a");
}

int main(int argc, char **argv)
{
    t_init(argc, argv);
    if (!t_mock_open(&ma, "mock-a") || !t_mock_open(&mb, "mock-b") || !t_mock_open(&mc, "mock-c"))
        return t_done();
    char *dir = t_config_new("routing");
    t_config_module(dir, "mock-a", "module: %s\npriority: 10\nx-init-reserved: hello-reserved\n", ma.path);
    t_config_module(dir, "mock-b", "module: %s\npriority: 5\n", mb.path);
    t_config_module(dir, "mock-c", "module: %s\npriority: 0\n", mc.path);
    t_config_use(dir);

    struct t_proxy px;
    if (!t_proxy_open(&px))
        return t_done();
    CK_FUNCTION_LIST_PTR f = t_caller(&px);
    if (!f || !t_rv(f->C_Initialize(NULL), CKR_OK, "C_Initialize(NULL)"))
        return t_done();

    check_init_reserved();
    check_info(f);
    struct view v[8];
    memset(v, 0, sizeof v);
    CK_ULONG n = check_slots(f, v);
    if (canonical_order(v, n)) {
        check_sessions(f, v, n);
        check_objects(f, v);
        check_interfaces(&px);
        check_events(f, v);
        check_hotplug(f, v, n);
    } else {
        t_diag("skipping the session checks: need the 4 expected slots");
    }

    t_rv(f->C_Finalize(NULL), CKR_OK, "C_Finalize");
    struct t_mock *mocks[] = {&ma, &mb, &mc};
    for (int i = 0; i < 3; i++) {
        struct mock_stats s = t_mock_stats(mocks[i]);
        t_ok(s.initialize_ok == 1 && s.finalize_ok == 1 && !s.initialized,
             "%s: initialised once, finalised once (init %lu, fin %lu)", mocks[i]->name, s.initialize_ok,
             s.finalize_ok);
        t_ul(s.open_sessions, 0, "%s: no session left", mocks[i]->name);
        t_no_uninit_calls(&s, 0, mocks[i]->name);
    }
    t_proxy_close(&px);

    check_load_loop();
    check_load_threads();
    return t_done();
}
