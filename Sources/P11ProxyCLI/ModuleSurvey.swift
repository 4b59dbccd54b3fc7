// p11proxy's start-up, as its first caller's C_Initialize runs it (ProxyRuntime.startModules), but
// recorded instead of acted on: which modules load in which order, which are skipped and why, and
// every message the module would print. `list` and `check` print from one of these.
import CPKCS11
import Glibc
import P11ProxyConfig
import P11ProxyLoader
import P11ProxyNames
import P11ProxyRPC

struct ModuleSurvey {
    /// A module that loads and initialises, with what it showed.
    struct Loaded {
        var config: ModuleConfig
        var path: String
        var isManaged: Bool
        var trace: TraceSettings
        /// Nil: no token filter (TokenFilterSettings); the hidden slots are marked in `contents`.
        var filter: TokenFilter?
        var contents: ModuleContents
        /// Its C_Initialize answered CKR_CRYPTOKI_ALREADY_INITIALIZED: someone else in the process
        /// initialised it, and p11proxy never finalises it.
        var initializedElsewhere: Bool
        /// A `remote:` module: the RPC protocol version the server answered.
        var remoteProtocolVersion: UInt8?
    }

    /// A configured module that does not load.
    struct Skipped {
        var name: String
        /// `FILE` or `FILE:LINE`, as in the module's message.
        var place: String
        var reason: String
        /// A problem to fix (check fails); false for what the configuration asks for on purpose
        /// (enable-in, disable-in, a blank module:) and for p11proxy itself, which the module skips
        /// without a word.
        var isProblem: Bool
        /// The module's message; nil where the module says nothing.
        var message: String?
    }

    /// One line the module would print, in its order.
    struct Message {
        enum Kind { case warning, problem, critical }
        var kind: Kind
        var text: String
    }

    var source: ConfigurationSource
    var programNames: [String]
    var configuration: ProxyConfiguration
    var loaded: [Loaded] = []
    var skipped: [Skipped] = []
    var messages: [Message] = []
    /// The critical modules that would make p11proxy's C_Initialize fail (it then loads nothing).
    var criticalFailures: [String] = []
    /// Token filter URIs that do not parse (each hides every token in its reach).
    var badFilterURIs = 0

    /// Reads the configuration and, unless `initialize` is false, loads and initialises every module
    /// it names, reads its slots and tokens, and finalises it again.
    /// `environment`: what the module would read (P11PROXY_LOG_* for trace settings).
    init(source: ConfigurationSource, programNames: [String], environment: EnvironmentVariables, initialize: Bool = true) {
        self.source = source
        self.programNames = programNames
        configuration = source.read(programNames: programNames)
        for diagnostic in configuration.diagnostics { say(.warning, diagnostic.description) }
        for module in configuration.skipped {
            let isProblem = !module.cause.isDeliberate
            let message = ModuleStartup.skippedMessage(module)
            skipped.append(Skipped(name: module.name, place: ModuleStartup.place(of: module), reason: module.reason,
                                   isProblem: isProblem, message: isProblem ? message : nil))
            if isProblem { say(.problem, message) }
            if ModuleStartup.failsInitialize(module) { critical(module.name) }
        }
        guard initialize else { return }
        var started: [ModuleStartup.ModuleIdentity] = []
        for config in configuration.modules {
            if let identity = start(config, alreadyStarted: started, environment: environment) { started.append(identity) }
        }
    }

    /// Whether p11proxy would start every configured module it is not told to leave out.
    var hasProblems: Bool {
        !criticalFailures.isEmpty || skipped.contains { $0.isProblem } || badFilterURIs > 0
    }

    var warnings: [Message] { messages.filter { $0.kind == .warning } }

    // MARK: One module, as ProxyRuntime.load and startModules take it

    private mutating func start(_ config: ModuleConfig, alreadyStarted: [ModuleStartup.ModuleIdentity],
                                environment: EnvironmentVariables) -> ModuleStartup.ModuleIdentity? {
        let place = ModuleStartup.place(of: config)
        func skip(_ reason: String, isProblem: Bool = true, silent: Bool = false, failsInitialize: Bool = true) {
            let message = ModuleStartup.skippedMessage(place: place, name: config.name, reason: reason)
            skipped.append(Skipped(name: config.name, place: place, reason: reason, isProblem: isProblem,
                                   message: silent ? nil : message))
            if !silent { say(.problem, message) }
            if failsInitialize && config.isCritical { critical(config.name) }
        }
        // The command is not loaded from a p11proxy library, so "itself" is any p11proxy build.
        switch ModuleStartup.checkLibrary(config, alreadyStarted: alreadyStarted,
                                          isP11Proxy: { path, _ in P11ProxyLibrary.isBuild(path: path) }) {
        case .unusable(let reason):
            skip(reason)
            return nil
        case .itself(let reason):
            skip(reason, isProblem: false, silent: true, failsInitialize: false)
            return nil
        case .alreadyLoaded(let reason):
            skip(reason, failsInitialize: false)
            return nil
        case .load(let path, let identity):
            let functions: CK_FUNCTION_LIST_3_2
            do throws(LoadError) {
                functions = try ModuleLoader.load(path: path)
            } catch {
                skip(ModuleStartup.loadFailure(path: path, error))
                return nil
            }
            return started(config, location: path, functions, remote: nil, environment: environment) ? .library(identity) : nil
        case .connect(let address):
            let remote: RemoteModule, functions: CK_FUNCTION_LIST_3_2
            do throws(LoadError) {
                (remote, functions) = try ModuleLoader.connect(address: address, config: config)
            } catch {
                skip("\(error)")
                return nil
            }
            return started(config, location: address, functions, remote: remote, environment: environment) ? .remote(address) : nil
        }
    }

    /// A module whose functions are at hand: its trace settings, then C_Initialize and its contents.
    private mutating func started(_ config: ModuleConfig, location: String, _ functions: CK_FUNCTION_LIST_3_2,
                                  remote: RemoteModule?, environment: EnvironmentVariables) -> Bool {
        // Resolved before C_Initialize, as the module does, so its complaints come in its order.
        var complaints: [String] = []
        let trace = TraceSettings.resolve(module: config, configuration: configuration, environment: environment,
                                          report: { complaints.append($0) })
        for complaint in complaints { say(.warning, complaint) }
        complaints = []
        let isSpy = if case .spy = source { true } else { false }
        let filter = TokenFilterSettings.resolve(module: config, configuration: configuration, environment: environment,
                                                 spyMode: isSpy, report: { complaints.append($0) })
        for complaint in complaints {
            // Outside spy mode each complaint is a URI that does not parse, which hides tokens:
            // a problem to fix. In spy mode it is the note that filters do not apply.
            if !isSpy && !messages.contains(where: { $0.text == complaint }) { badFilterURIs += 1 }
            say(isSpy ? .warning : .problem, complaint)
        }
        guard let (contents, elsewhere, version) = initializeAndRead(config, path: location, functions, remote: remote,
                                                                     filter: filter) else {
            return false
        }
        loaded.append(Loaded(config: config, path: location, isManaged: configuration.isManaged(config),
                             trace: trace, filter: filter, contents: contents, initializedElsewhere: elsewhere,
                             remoteProtocolVersion: version))
        return true
    }

    /// C_Initialize as the module calls it, the module's contents, then C_Finalize.
    private mutating func initializeAndRead(_ config: ModuleConfig, path: String, _ functions: CK_FUNCTION_LIST_3_2,
                                            remote: RemoteModule?, filter: TokenFilter?)
        -> (ModuleContents, initializedElsewhere: Bool, remoteVersion: UInt8?)? {
        let reserved = config.initReserved.map { strdup($0) } ?? nil
        defer { free(reserved) }
        var arguments = ModuleStartup.initializeArguments(reserved: reserved)
        let rv = functions.C_Initialize!(&arguments)
        guard ModuleStartup.initializeSucceeded(rv) else {
            // A remote module says why (the address and what went wrong), as the module prints it.
            let detail = remote?.lastErrorMessage ?? ""
            let error = PKCS11Name.returnValueText(rv) + (detail.isEmpty ? "" : " (\(detail))")
            let message = ModuleStartup.initializeFailedMessage(
                name: config.name, path: path, error: error, critical: config.isCritical)
            skipped.append(Skipped(name: config.name, place: ModuleStartup.place(of: config),
                                   reason: "C_Initialize failed: \(error)",
                                   isProblem: true, message: message))
            say(config.isCritical ? .critical : .problem, message)
            if config.isCritical { criticalFailures.append(config.name) }
            return nil
        }
        let contents = ModuleContents(reading: functions, filter: filter)
        let version = remote?.negotiatedVersion
        // The module lists every slot right after the module's C_Initialize (slot IDs are valid
        // from then on) and says so when the list is broken.
        if let problem = contents.slotListProblem {
            say(.warning, ModuleSlotList.problemMessage(module: config.name, problem))
        }
        if contents.slotListHadRepeats { say(.warning, ModuleSlotList.repeatsMessage(module: config.name)) }
        // Only our own initialisation is undone: ALREADY_INITIALIZED means someone else's.
        if rv == CKR_OK { _ = functions.C_Finalize!(nil) }
        return (contents, rv == CKR_CRYPTOKI_ALREADY_INITIALIZED, version)
    }

    private mutating func critical(_ name: String) {
        criticalFailures.append(name)
        say(.critical, ModuleStartup.criticalMessage(name: name))
    }

    /// Each distinct message once, as the module's Diagnostics prints it.
    private mutating func say(_ kind: Message.Kind, _ text: String) {
        if !messages.contains(where: { $0.text == text }) { messages.append(Message(kind: kind, text: text)) }
    }
}
