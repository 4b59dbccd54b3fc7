// The process-wide lifecycle behind C_Initialize/C_Finalize: reading the configuration,
// loading and initialising real modules when the first caller initialises, finalising them
// when the last caller finalises, and putting everything right in a fork child.
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
    /// in the first C_Initialize, issue 5.)
    var modules: [ModuleRecord] = []
    /// The current configuration's modules, in load order (priority, then name).
    var active: [Int] = []
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

    /// Registers the fork handlers once; called from every exported entry point. It also creates
    /// every lazily initialised global now, on the first caller's thread (their one-time
    /// initialisation then happens before any thread the application starts afterwards), and
    /// publishes the tables the hot path reads (PublishedAddress.swift).
    static let prepared: Bool = {
        _ = (lock, stateLock, CallerPool.lock, CallerPool.publishStates(), CallerPool.interfaceName, SlotMap.lock,
             SlotMap.publishEntries(), SessionTable.lock, SessionTable.publishEntries(), ModuleTable.publishEntries(), ModuleTable.noFunctions,
             TraceOutput.lock)
        Diagnostics.warmUp()
        return pthread_atfork(forkPrepare, forkParent, forkChild) == 0
    }()

    /// The active modules' indices, for calls that visit every module (C_GetSlotList).
    static func activeModules() -> [Int] {
        stateLock.withLock { state.active }
    }

    static func record(_ index: Int) -> ModuleRecord? {
        stateLock.withLock { index < state.modules.count ? state.modules[index] : nil }
    }

    /// A change to `state`; only under `lock`.
    private static func update(_ change: (inout RuntimeState) -> Void) {
        stateLock.withLock { change(&state) }
    }

    // MARK: C_Initialize / C_Finalize, per caller (under `lock`, so they are serialised)

    static func initialize(caller: Int, options: InitializeOptions) throws(ReturnValue) {
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
                for index in state.active where state.modules[index].isManaged == false {
                    try? state.modules[index].initialize(caller: caller)
                }
            }
            update { $0.initializedCallers += 1 }
            CallerPool.setState(caller, .initialized)
        }
    }

    static func finalize(caller: Int) throws(ReturnValue) {
        try refuseReentry("C_Finalize")
        try lock.withLock { () throws(ReturnValue) in
            guard CallerPool.state(caller) == .initialized else { throw .cryptokiNotInitialized }
            // Stored before the scan below; C_OpenSession checks it after registering (Dekker).
            CallerPool.setState(caller, .finalized)
            update { $0.initializedCallers -= 1 }
            let last = state.initializedCallers == 0
            for session in SessionTable.liveSessions(where: { sessionCaller, _, _ in sessionCaller == caller }) {
                let record = state.modules[session.moduleIndex]
                // The last caller's sessions go with the module's C_Finalize.
                if !last || !record.isManaged {
                    _ = ModuleCall.C_CloseSession(record.entry, caller, session.realHandle)
                }
                SessionTable.release(session)
            }
            // managed: no modules stop with every caller's C_Finalize, the others with the last one.
            for index in state.active where last || !state.modules[index].isManaged {
                stopModule(state.modules[index], caller: caller)
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
    private static func stopModule(_ record: ModuleRecord, caller: Int) {
        if record.isInitialized { record.finalize(caller: caller) }
        for session in SessionTable.liveSessions(where: { _, module, _ in module == record.index }) {
            SessionTable.release(session)
        }
        if state.initializedCallers == 0 || record.isManaged {
            record.entry.pointee.isActive.store(false, ordering: .releasing)
        }
    }

    // MARK: Starting the configuration's modules (first caller)

    private static func startModules(caller: Int, options: InitializeOptions) throws(ReturnValue) {
        let environment = ConfigurationSource.environment()
        let source = ConfigurationSource.select(configDirectory: options.configDirectory, environment: environment)
        let configuration = source.read(programNames: CurrentProcess.programNamesForProxy())
        let isSpy = if case .spy = source { true } else { false }
        TokenVisibility.reset()
        for diagnostic in configuration.diagnostics { Diagnostics.report(diagnostic.description) }
        for skipped in configuration.skipped {
            // enable-in/disable-in and a blank module leave a module out on purpose: p11-kit says
            // nothing and never fails a load for those, even for a critical module. Reporting them
            // would put a line on every client's standard error once p11proxy is installed
            // (Debian's p11-kit-trust.module says `disable-in: p11-kit-proxy`).
            if skipped.cause.isDeliberate { continue }
            Diagnostics.report(ModuleStartup.skippedMessage(skipped))
            if ModuleStartup.failsInitialize(skipped) {
                Diagnostics.report(ModuleStartup.criticalMessage(name: skipped.name))
                throw .generalError
            }
        }
        var started: [ModuleRecord] = []
        do throws(ReturnValue) {
            for config in configuration.modules {
                guard let record = try load(config, skipping: started.map { $0.identity }) else { continue }
                stateLock.withLock { record.apply(config, managed: configuration.isManaged(config)) }
                let trace = TraceSettings.resolve(module: config, configuration: configuration, environment: environment,
                                                  report: Diagnostics.report)
                if trace.enabled { TraceOutput.configure(module: record.index, name: record.name, settings: trace) }
                record.entry.setTraceMode(trace.mode)
                let filter = TokenFilterSettings.resolve(module: config, configuration: configuration, environment: environment,
                                                         spyMode: isSpy, report: Diagnostics.report)
                do throws(ReturnValue) {
                    try record.initialize(caller: caller)
                } catch {
                    let detail = record.source.lastFailure
                    Diagnostics.report(ModuleStartup.initializeFailedMessage(
                        name: record.name, path: record.path, error: detail.isEmpty ? "\(error)" : "\(error) (\(detail))",
                        critical: record.isCritical))
                    if record.isCritical { throw error }
                    continue
                }
                started.append(record)
                TokenVisibility.set(filter, module: record.index, caller: caller)
                // Slot IDs exist from C_Initialize on, numbered in load order (SlotMap), so a
                // program configured with one (SunPKCS11's `slot=`) needs no C_GetSlotList first.
                if !isSpy { registerSlots(of: record.index, caller: caller) }
            }
        } catch {
            for record in started where record.isInitialized { record.finalize(caller: caller) }
            throw error
        }
        update { $0.active = started.map { $0.index } }
        SpyModule.set(isSpy ? started.first?.index : nil)
        for record in started {
            record.entry.pointee.isUnmanaged.store(!record.isManaged, ordering: .relaxed)
            record.entry.pointee.isActive.store(true, ordering: .releasing)
        }
    }

    private static func registerSlots(of module: Int, caller: Int) {
        for realSlot in SlotQuery.realSlots(of: module, caller: caller, tokenPresent: CK_BBOOL(CK_FALSE)) {
            _ = TokenVisibility.proxySlot(module: module, realSlot: realSlot, caller: caller)
        }
    }

    /// The module's record, loading the library on first use; nil (with a message) when it is
    /// skipped. Throws only for a critical module that cannot be loaded.
    private static func load(_ config: ModuleConfig, skipping alreadyStarted: [ModuleStartup.ModuleIdentity]) throws(ReturnValue) -> ModuleRecord? {
        func report(_ reason: String) {
            Diagnostics.report(ModuleStartup.skippedMessage(place: ModuleStartup.place(of: config), name: config.name, reason: reason))
        }
        func skip(_ reason: String) throws(ReturnValue) -> ModuleRecord? {
            report(reason)
            if config.isCritical {
                Diagnostics.report(ModuleStartup.criticalMessage(name: config.name))
                throw .generalError
            }
            return nil
        }
        let known: (ModuleStartup.ModuleIdentity) -> ModuleRecord? = { identity in
            state.modules.first { $0.identity == identity }
        }
        let source: ModuleSource
        let functions: CK_FUNCTION_LIST_3_0
        switch ModuleStartup.checkLibrary(config, alreadyStarted: alreadyStarted,
                                          isP11Proxy: { _, identity in identity == ModuleLoader.ownIdentity }) {
        case .load(let path, let identity):
            if let record = known(.library(identity)) { return record }
            guard state.modules.count < ModuleTable.capacity else { return try skip("more than \(ModuleTable.capacity) modules") }
            do throws(LoadError) {
                functions = try ModuleLoader.load(path: path)
            } catch {
                return try skip(ModuleStartup.loadFailure(path: path, error))
            }
            source = .library(path: path, identity: identity)
        case .connect(let address):
            if let record = known(.remote(address)) { return record }
            guard state.modules.count < ModuleTable.capacity else { return try skip("more than \(ModuleTable.capacity) modules") }
            let connection: RemoteModule
            do throws(LoadError) {
                (connection, functions) = try ModuleLoader.connect(address: address, config: config)
            } catch {
                return try skip("\(error)")
            }
            source = .remote(address: address, connection: connection)
        case .unusable(let reason): return try skip(reason)
        case .itself: return nil
        case .alreadyLoaded(let reason): report(reason); return nil
        }
        let record = ModuleRecord(index: state.modules.count, source: source, config: config)
        update { state in
            record.entry.load(functions)
            state.modules.append(record)
        }
        return record
    }

    // MARK: fork

    // Lock order everywhere: ProxyRuntime.lock, ProxyRuntime.stateLock, CallerPool, SlotMap,
    // SessionTable, TraceOutput, Diagnostics. The prepare handler takes all but the first: none of
    // the others is ever held across a call into a module, so a module's own prepare handler (run
    // before ours) cannot be holding something their holders wait for.
    private static let forkPrepare: @convention(c) () -> Void = {
        ProxyRuntime.stateLock.lock()
        CallerPool.lock.lock()
        SlotMap.lock.lock()
        SessionTable.lock.lock()
        TraceOutput.lock.lock()
        // Written now, or the child would write the parent's buffered records a second time.
        TraceOutput.flushAllLocked()
        Diagnostics.forkPrepare()
    }

    private static let forkParent: @convention(c) () -> Void = {
        Diagnostics.forkParent()
        TraceOutput.lock.unlock()
        SessionTable.lock.unlock()
        SlotMap.lock.unlock()
        CallerPool.lock.unlock()
        ProxyRuntime.stateLock.unlock()
    }

    /// The child starts with every caller uninitialised; its first C_Initialize initialises the
    /// real modules afresh (ALREADY_INITIALIZED from a module that kept the parent's state is fine).
    /// A C_Initialize or C_Finalize another thread was running in the parent does not exist here:
    /// its lifecycle lock is made free, and `state` (whole, thanks to `stateLock`) is reset.
    private static let forkChild: @convention(c) () -> Void = {
        ProxyRuntime.lock.reinitializeInChild()
        ProxyRuntime.stateLock.reinitializeInChild()
        CallerPool.forkChild()
        SlotMap.forkChild()
        SessionTable.forkChild()
        TraceOutput.forkChild()
        Diagnostics.forkChild()
        ProxyRuntime.state.initializedCallers = 0
        for index in ProxyRuntime.state.active {
            ProxyRuntime.state.modules[index].entry.pointee.isActive.store(false, ordering: .relaxed)
        }
        ProxyRuntime.state.active = []
        for record in ProxyRuntime.state.modules { record.forgetAfterFork() }
    }
}
