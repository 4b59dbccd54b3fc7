// The stack in one place. A call travels down, one layer per folder, as p11-kit assembles its
// managed, log and wrap layers in one function (modules.c):
//
//   C caller
//     -> Callers/   caller N's function list (CallerTables.generated.swift): each entry adds N
//     -> Entry/     the caller's state: its C_Initialize count, its own sessions
//                   (Forwarding.generated.swift for the routed functions, the rest by hand)
//     -> Routing/   Router: a proxy slot ID or session handle -> the module entry and real ID
//     -> Modules/   ModuleCall (ModuleCalls.generated.swift): the module entry's dispatch table
//     -> Tracing/   Traced (Traced.generated.swift), only where log-calls is on
//     -> the module's function list: a dlopen'd library, or a remote module's generated list
//        calling its RemoteModule. ModuleSource (P11ProxyLoader) is the one place a kind of
//        module plugs in.
//
// Below: the process-wide set-up every exported entry point runs first, and the fork handlers,
// which walk one list of the layers' states.
import Glibc
import Synchronization

/// One layer's state across fork: `prepare` takes its locks (the list's order is the lock order),
/// `parent` gives them back, `child` makes them new and resets what the child must not inherit.
struct ForkParticipant {
    let prepare: () -> Void
    let parent: () -> Void
    let child: () -> Void
}

extension ProxyRuntime {
    /// Registers the fork handlers once; called from every exported entry point. It also creates
    /// every lazily initialised global now, on the first caller's thread (their one-time
    /// initialisation then happens before any thread the application starts afterwards), and
    /// publishes the tables the hot path reads (PublishedTable).
    static let prepared: Bool = {
        _ = (lock, stateLock, CallerPool.lock, CallerPool.publishStates(), CallerPool.interfaceName, SlotMap.lock,
             SlotMap.publishEntries(), SessionTable.lock, SessionTable.publishEntries(), ModuleTable.publishEntries(),
             ModuleTable.noFunctions, TraceOutput.lock, forkParticipants)
        Diagnostics.warmUp()
        return pthread_atfork(forkPrepare, forkParent, forkChild) == 0
    }()

    // Lock order everywhere: ProxyRuntime.lock, then this list's. The prepare handler takes all
    // but ProxyRuntime.lock: none of these is ever held across a call into a module, so a
    // module's own prepare handler (run before ours: it registered later) cannot be holding
    // something their holders wait for, while a module's C_Initialize/C_Finalize runs under
    // ProxyRuntime.lock and may be waiting for that module's own prepare handler.
    // Who may touch it: immutable once made (by `prepared`, before any fork handler can run).
    nonisolated(unsafe) static let forkParticipants: [ForkParticipant] = [
        // The runtime's state: whole, thanks to stateLock. In the child every caller starts
        // uninitialised and its first C_Initialize initialises the modules afresh; a C_Initialize
        // or C_Finalize another thread was running in the parent does not exist there.
        ForkParticipant(prepare: { stateLock.lock() }, parent: { stateLock.unlock() }, child: {
            lock.reinitializeInChild()
            stateLock.reinitializeInChild()
            resetStateInForkChild()
        }),
        ForkParticipant(prepare: { CallerPool.lock.lock() }, parent: { CallerPool.lock.unlock() },
                        child: { CallerPool.forkChild() }),
        ForkParticipant(prepare: { SlotMap.lock.lock() }, parent: { SlotMap.lock.unlock() },
                        child: { SlotMap.forkChild() }),
        ForkParticipant(prepare: { SessionTable.lock.lock() }, parent: { SessionTable.lock.unlock() },
                        child: { SessionTable.forkChild() }),
        // Buffered records are written now, or the child would write the parent's a second time.
        ForkParticipant(prepare: { TraceOutput.forkPrepare() }, parent: { TraceOutput.forkParent() },
                        child: { TraceOutput.forkChild() }),
        ForkParticipant(prepare: { Diagnostics.forkPrepare() }, parent: { Diagnostics.forkParent() },
                        child: { Diagnostics.forkChild() }),
    ]

    private static let forkPrepare: @convention(c) () -> Void = {
        for participant in ProxyRuntime.forkParticipants { participant.prepare() }
    }

    private static let forkParent: @convention(c) () -> Void = {
        for participant in ProxyRuntime.forkParticipants.reversed() { participant.parent() }
    }

    private static let forkChild: @convention(c) () -> Void = {
        for participant in ProxyRuntime.forkParticipants { participant.child() }
    }

    /// The child's runtime state: no caller initialised, no module active, every module to be
    /// initialised afresh (ModuleRecord.forgetAfterFork: a remote connection is the parent's).
    private static func resetStateInForkChild() {
        state.initializedCallers = 0
        for index in state.active {
            state.modules[index.value].entry.pointee.isActive.store(false, ordering: .relaxed)
        }
        state.active = []
        ActiveModules.publish([])
        for record in state.modules { record.forgetAfterFork() }
    }
}
