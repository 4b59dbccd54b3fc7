// Session lifecycle: the proxy hands out its own handles (SessionTable) and keeps each session
// with the caller that opened it, so C_CloseAllSessions closes only that caller's.
import CPKCS11
import Synchronization

extension Entry {
    @inline(never)
    static func C_OpenSession(_ slotID: CK_SLOT_ID, _ flags: CK_FLAGS, _ pApplication: CK_VOID_PTR?,
                              _ Notify: CK_NOTIFY?, _ phSession: CK_SESSION_HANDLE_PTR?, _ caller: CallerNumber) -> CK_RV {
        let route = Router.slot(slotID, caller: caller)
        guard route.exists else { return route.failure }
        let module = route.target
        guard let phSession else { return CK_RV(CKR_ARGUMENTS_BAD) }
        guard TokenVisibility.stillShown(slotID, module: ModuleTable.index(of: module), realSlot: route.handle, caller: caller) else {
            return CK_RV(CKR_SLOT_ID_INVALID)
        }
        // pApplication and Notify go through unchanged, as p11-kit's proxy passes them: a module
        // that calls Notify hands it its own session handle.
        var realHandle: CK_SESSION_HANDLE = 0
        let rv = ModuleCall.C_OpenSession(module, caller, route.handle, flags, pApplication, Notify, &realHandle)
        guard rv == CKR_OK else { return rv }
        let moduleIndex = ModuleTable.index(of: module)
        guard let handle = SessionTable.open(caller: caller, module: moduleIndex, proxySlot: slotID, realHandle: realHandle) else {
            _ = ModuleCall.C_CloseSession(module, caller, realHandle)
            return CK_RV(CKR_SESSION_COUNT)
        }
        // A C_Finalize of this caller that ran since the check above retired the caller's
        // sessions before this one existed; undo it rather than leave it behind.
        guard CallerPool.isInitialized(caller) else {
            if let record = SessionTable.resolve(handle, caller: caller), SessionTable.release(record) {
                _ = ModuleCall.C_CloseSession(module, caller, realHandle)
            }
            return CK_RV(CKR_CRYPTOKI_NOT_INITIALIZED)
        }
        phSession.pointee = handle
        return CK_RV(CKR_OK)
    }

    @inline(never)
    static func C_CloseSession(_ hSession: CK_SESSION_HANDLE, _ caller: CallerNumber) -> CK_RV {
        let route = Router.session(hSession, caller: caller)
        guard route.exists, let session = route.session else { return route.failure }
        let module = route.target
        let rv = ModuleCall.C_CloseSession(module, caller, route.handle)
        if SessionQuery.isGone(after: rv) { SessionTable.release(session) }
        return rv
    }

    /// Closes this caller's sessions on the slot one by one; other callers' sessions on the same
    /// token stay open. For a `managed: no` module the module's own C_CloseAllSessions runs and
    /// every caller's sessions on that slot go (the documented cost of managed: no).
    @inline(never)
    static func C_CloseAllSessions(_ slotID: CK_SLOT_ID, _ caller: CallerNumber) -> CK_RV {
        let route = Router.slot(slotID, caller: caller)
        guard route.exists else { return route.failure }
        let module = route.target
        let moduleIndex = ModuleTable.index(of: module)
        if module.pointee.isUnmanaged.load(ordering: .relaxed) {
            let rv = ModuleCall.C_CloseAllSessions(module, caller, route.handle)
            if rv == CKR_OK {
                for session in SessionTable.liveSessions(where: { _, module, slot in module == moduleIndex && slot == slotID }) {
                    SessionTable.release(session)
                }
            }
            return rv
        }
        var result = CK_RV(CKR_OK)
        for session in SessionTable.liveSessions(where: { sessionCaller, _, slot in sessionCaller == caller && slot == slotID })
        where SessionTable.release(session) {
            let rv = ModuleCall.C_CloseSession(module, caller, session.realHandle)
            if !SessionQuery.isGone(after: rv) && result == CKR_OK { result = rv }
        }
        return result
    }

    /// The module reports its own slot ID; the caller must see the proxy's.
    @inline(never)
    static func C_GetSessionInfo(_ hSession: CK_SESSION_HANDLE, _ pInfo: CK_SESSION_INFO_PTR?, _ caller: CallerNumber) -> CK_RV {
        let route = Router.session(hSession, caller: caller)
        guard route.exists else { return route.failure }
        let rv = ModuleCall.C_GetSessionInfo(route.target, caller, route.handle, pInfo)
        if rv == CKR_OK, let pInfo { pInfo.pointee.slotID = route.proxySlot }
        return rv
    }
}

enum SessionQuery {
    /// After C_CloseSession the session is gone in the module on success, and also when the
    /// module says it never had it (or closed it already): stop routing to it either way.
    static func isGone(after rv: CK_RV) -> Bool {
        rv == CKR_OK || rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED
    }
}
