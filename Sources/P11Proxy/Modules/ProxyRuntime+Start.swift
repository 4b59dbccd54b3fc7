// Starting the configuration's modules when the first caller initialises: reading the
// configuration, loading or connecting each module (ModuleSource), its trace settings, its
// C_Initialize, and its slots, numbered from then on.
import CPKCS11
import Glibc
import P11ProxyConfig
import P11ProxyLoader
import P11ProxyRPC
import Synchronization

extension ProxyRuntime {
    // MARK: Starting the configuration's modules (first caller)

    static func startModules(caller: Int, options: InitializeOptions) throws(ReturnValue) {
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
        let functions: CK_FUNCTION_LIST_3_2
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
}
