// The process-wide lifecycle behind C_Initialize/C_Finalize: counting initialised callers,
// starting the configuration's modules with the first (ProxyRuntime+Start.swift) and finalising
// them with the last. Stack.swift shows the layers and holds the fork handlers.
import CPKCS11
import Glibc
import P11ProxyConfig
import P11ProxyLoader
import P11ProxyRPC
import Synchronization

/// Changed only while holding both `ProxyRuntime.lock` and `ProxyRuntime.stateLock`; read while
/// holding either.
struct RuntimeState {
    var initializedCallers = 0
    /// Every module ever loaded, by ModuleTable index.
    /// (A module is found again by its file's identity with a linear search: a process loads a
    /// handful, and a [FileIdentity: Int] cost ~80k instructions of runtime type instantiation
    /// in the first C_Initialize.)
    var modules: [ModuleRecord] = []
    /// The current configuration's modules, in load order (priority, then name).
    var active: [ModuleIndex] = []
}

enum ProxyRuntime {
    /// Serialises C_Initialize and C_Finalize, so every change to `state`; held across the real
    /// modules' C_Initialize/C_Finalize. Not taken by the fork prepare handler: a module loaded
    /// after p11proxy registers its own atfork handlers later, so they run before ours, and a
    /// module's prepare handler may hold the lock its C_Initialize/C_Finalize is waiting for.
    static let lock = ProcessLock()
    /// Guards `state` for readers without `lock`, and keeps it whole across fork (the prepare
    /// handler takes it). Held only around reads and writes of `state`, never across a call into
    /// a module or another lock.
    static let stateLock = ProcessLock()
    // Who may touch it: see RuntimeState.
    nonisolated(unsafe) static var state = RuntimeState()

    static func record(_ index: ModuleIndex) -> ModuleRecord? {
        stateLock.withLock { index.value < state.modules.count ? state.modules[index.value] : nil }
    }

    /// A change to `state`; only under `lock`.
    static func update(_ change: (inout RuntimeState) -> Void) {
        stateLock.withLock {
            change(&state)
            ActiveModules.publish(state.active)
        }
    }

    // MARK: C_Initialize / C_Finalize, per caller (under `lock`, so they are serialised)

    static func initialize(caller: CallerNumber, options: InitializeOptions) throws(ReturnValue) {
        try refuseReentry("C_Initialize")
        try lock.withLock { () throws(ReturnValue) in
            guard CallerPool.state(caller) != .initialized else { throw .cryptokiAlreadyInitialized }
            // PKCS#11 3.0 section 5.4: a library that needs threads would answer
            // CKR_NEED_TO_CREATE_THREADS; p11proxy's one thread is only the trace flusher, so it
            // does without it, in this process from now on (decided before startModules, which
            // would start it).
            if options.libraryCannotCreateThreads { TraceOutput.stopThreads() }
            if state.initializedCallers == 0 {
                try startModules(caller: caller, options: options)
            } else {
                // managed: no: every caller's C_Initialize reaches the module, as for a plain module.
                for index in state.active where state.modules[index.value].isManaged == false {
                    state.modules[index.value].initialize(caller: caller)
                }
            }
            update { $0.initializedCallers += 1 }
            CallerPool.setState(caller, .initialized)
        }
    }

    static func finalize(caller: CallerNumber) throws(ReturnValue) {
        try refuseReentry("C_Finalize")
        try lock.withLock { () throws(ReturnValue) in
            guard CallerPool.state(caller) == .initialized else { throw .cryptokiNotInitialized }
            // Stored before the scan below; C_OpenSession checks it after registering (Dekker).
            CallerPool.setState(caller, .finalized)
            update { $0.initializedCallers -= 1 }
            let last = state.initializedCallers == 0
            for session in SessionTable.liveSessions(where: { sessionCaller, _, _ in sessionCaller == caller }) {
                let record = state.modules[session.moduleIndex.value]
                // The last caller's sessions go with the module's C_Finalize.
                if !last || !record.isManaged {
                    _ = ModuleCall.C_CloseSession(record.entry, caller, session.realHandle)
                }
                SessionTable.release(session)
            }
            // managed: no modules stop with every caller's C_Finalize, the others with the last one.
            for index in state.active where last || !state.modules[index.value].isManaged {
                stopModule(state.modules[index.value], caller: caller)
            }
            if last {
                update { $0.active = [] }
                TraceFlusher.stop()
            }
            TraceOutput.flushAll()
        }
    }

    /// A module that loads p11proxy again (p11-kit-proxy.so configured as a module of p11proxy,
    /// with p11proxy registered in p11-kit) calls back into C_Initialize from inside our own
    /// C_Initialize; fail that inner call rather than wait forever on our own lock.
    private static func refuseReentry(_ function: String) throws(ReturnValue) {
        guard lock.isHeldByCurrentThread else { return }
        Diagnostics.report("\(function) called from inside p11proxy's own module initialisation "
            + "(does a configured module load p11proxy again?); refused")
        throw .generalError
    }

    /// Finalises a module and retires every session on it (any caller's).
    private static func stopModule(_ record: ModuleRecord, caller: CallerNumber) {
        if record.isInitialized { record.finalize(caller: caller) }
        for session in SessionTable.liveSessions(where: { _, module, _ in module == record.index }) {
            SessionTable.release(session)
        }
        if state.initializedCallers == 0 || record.isManaged {
            record.entry.pointee.isActive.store(false, ordering: .releasing)
        }
    }
}
