// Starting the configuration's modules when the first caller initialises. ModuleStartup.walk
// (shared with `p11proxy list`/`check`) decides the order and the messages; here is what the
// module does at each step: keep each module's record (reused across C_Finalize), set up its
// tracing and token filter, and number its slots from its C_Initialize on.
import CPKCS11
import P11ProxyConfig
import P11ProxyLoader
import Synchronization

extension ProxyRuntime {
    // MARK: Starting the configuration's modules (first caller)

    static func startModules(caller: CallerNumber, options: InitializeOptions) throws(ReturnValue) {
        let environment = ConfigurationSource.environment()
        let source = ConfigurationSource.select(configDirectory: options.configDirectory, environment: environment)
        let configuration = source.read(programNames: CurrentProcess.programNamesForProxy())
        let isSpy = if case .spy = source { true } else { false }
        TokenVisibility.reset()
        var startup = Startup(caller: caller, configuration: configuration, isSpy: isSpy)
        do throws(ReturnValue) {
            try ModuleStartup.walk(configuration: configuration, isSpy: isSpy, environment: environment, host: &startup)
        } catch {
            for record in startup.started where record.isInitialized { record.finalize(caller: caller) }
            throw error
        }
        update { $0.active = startup.started.map { $0.index } }
        SpyModule.set(isSpy ? startup.started.first?.index : nil)
        for record in startup.started {
            record.entry.pointee.isUnmanaged.store(!record.isManaged, ordering: .relaxed)
            record.entry.pointee.isActive.store(true, ordering: .releasing)
        }
    }

    /// The module's side of the walk, under `lock`: it acts where the command records.
    struct Startup: ModuleStartupHost {
        let caller: CallerNumber
        let configuration: ProxyConfiguration
        let isSpy: Bool
        /// The modules initialised so far, in load order.
        var started: [ModuleRecord] = []

        func isP11Proxy(path: String, identity: FileIdentity) -> Bool {
            identity == ModuleLoader.ownIdentity
        }

        /// Records outlive C_Finalize: a module loaded before is taken up again, never loaded twice.
        func module(heldAs identity: ModuleStartup.ModuleIdentity) -> ModuleRecord? {
            state.modules.first { $0.identity == identity }
        }

        var noRoom: String? {
            state.modules.count < ModuleTable.capacity ? nil : "more than \(ModuleTable.capacity) modules"
        }

        func add(_ source: ModuleSource, functions: CK_FUNCTION_LIST_3_2, config: ModuleConfig) -> ModuleRecord {
            let record = ModuleRecord(index: ModuleIndex(state.modules.count), source: source, config: config)
            update { state in
                record.entry.load(functions)
                state.modules.append(record)
            }
            return record
        }

        func configure(_ record: ModuleRecord, config: ModuleConfig, trace: TraceSettings) {
            stateLock.withLock { record.apply(config, managed: configuration.isManaged(config)) }
            if trace.enabled { TraceOutput.configure(module: record.index, name: record.name, settings: trace) }
            record.entry.setTraceMode(trace.mode)
        }

        func initialize(_ record: ModuleRecord, config: ModuleConfig) -> CK_RV {
            record.initialize(caller: caller)
        }

        mutating func started(_ record: ModuleRecord, config: ModuleConfig, trace: TraceSettings, filter: TokenFilter?,
                              initializedElsewhere: Bool) {
            started.append(record)
            TokenVisibility.set(filter, module: record.index, caller: caller)
            // Slot IDs exist from C_Initialize on, numbered in load order (SlotMap), so a
            // program configured with one (SunPKCS11's `slot=`) needs no C_GetSlotList first.
            guard !isSpy else { return }
            for realSlot in SlotQuery.realSlots(of: record.index, caller: caller, tokenPresent: CK_BBOOL(CK_FALSE)) {
                _ = TokenVisibility.proxySlot(module: record.index, realSlot: realSlot, caller: caller)
            }
        }

        /// Nothing to keep: what the module says about a skip, it has said.
        func skipped(_ skip: ModuleStartup.Skip) {}

        func say(_ kind: ModuleStartup.MessageKind, _ text: String) {
            Diagnostics.report(text)
        }

        func failed(critical name: String, _ rv: CK_RV) throws(ReturnValue) {
            throw ReturnValue(rv)
        }
    }
}
