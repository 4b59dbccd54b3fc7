// The router: a proxy slot ID or session handle in, the module and its real ID out. Inlined
// into every generated entry point; the failure code says why a route does not exist.
import CPKCS11
import Synchronization

struct Route {
    /// Nil when there is no route; `failure` then says why.
    var module: UnsafeMutablePointer<ModuleEntry>?
    /// The module's own slot ID or session handle.
    var handle: CK_ULONG
    var failure: CK_RV
    /// The proxy slot the call is about (for sessions: the slot the session was opened on).
    var proxySlot: CK_SLOT_ID
    var session: SessionRecord?

    /// Whether the route exists. Asked of the failure code, not of `module`: the inlined router
    /// sets the code to a constant on every path, so the check folds away, while the module's
    /// address is computed from a published base and the compiler cannot prove it non-null.
    @inline(__always)
    var exists: Bool { failure == CKR_OK }

    /// The module of a route that exists.
    @inline(__always)
    var target: UnsafeMutablePointer<ModuleEntry> { module.unsafelyUnwrapped }

    @inline(__always)
    static func failed(_ rv: ReturnValue) -> Route {
        Route(module: nil, handle: 0, failure: rv.rawValue, proxySlot: 0, session: nil)
    }
}

enum Router {
    @inline(__always)
    static func slot(_ proxySlot: CK_SLOT_ID, caller: CallerNumber) -> Route {
        guard CallerPool.isInitialized(caller) else { return .failed(.cryptokiNotInitialized) }
        guard let key = SlotMap.key(for: proxySlot), !TokenVisibility.isHidden(proxySlot) else { return .failed(.slotIDInvalid) }
        let module = ModuleTable.entry(key.module)
        // A module stops being active when its last caller finalises; a call that raced its own
        // caller's C_Finalize gets what a call after it gets.
        guard module.pointee.isActive.load(ordering: .acquiring) else {
            return .failed(CallerPool.isInitialized(caller) ? .slotIDInvalid : .cryptokiNotInitialized)
        }
        return Route(module: module, handle: key.realSlot, failure: CK_RV(CKR_OK), proxySlot: proxySlot, session: nil)
    }

    /// A live session implies an initialised caller (C_Finalize retires a caller's sessions), so
    /// the caller's state is only read to pick the right error.
    @inline(__always)
    static func session(_ handle: CK_SESSION_HANDLE, caller: CallerNumber) -> Route {
        guard let record = SessionTable.resolve(handle, caller: caller) else {
            return .failed(CallerPool.isInitialized(caller) ? .sessionHandleInvalid : .cryptokiNotInitialized)
        }
        return Route(module: record.moduleEntry, handle: record.realHandle,
                     failure: CK_RV(CKR_OK), proxySlot: record.proxySlot, session: record)
    }
}
