// p11proxy's start-up, walked as its first caller's C_Initialize walks it (ModuleStartup.walk),
// but recorded instead of acted on: which modules load in which order, which are skipped and why,
// and every message the module would print. `list` and `check` print from one of these.
import CPKCS11
import Glibc
import P11ProxyConfig
import P11ProxyLoader

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

    /// One line the module would print, in its order.
    struct Message {
        var kind: ModuleStartup.MessageKind
        var text: String
    }

    var source: ConfigurationSource
    var programNames: [String]
    var configuration: ProxyConfiguration
    var loaded: [Loaded] = []
    /// The configured modules that do not start, in the module's order.
    var skipped: [ModuleStartup.Skip] = []
    var messages: [Message] = []
    /// The critical modules that would make p11proxy's C_Initialize fail (it then loads nothing).
    var criticalFailures: [String] = []

    /// Reads the configuration, then loads and initialises every module it names, reads its slots
    /// and tokens, and finalises it again.
    /// `environment`: what the module would read (P11PROXY_LOG_* for trace settings).
    init(source: ConfigurationSource, programNames: [String], environment: EnvironmentVariables) {
        self.source = source
        self.programNames = programNames
        configuration = source.read(programNames: programNames)
        let isSpy = if case .spy = source { true } else { false }
        ModuleStartup.walk(configuration: configuration, isSpy: isSpy, environment: environment, host: &self)
    }

    /// Whether p11proxy would start every configured module it is not told to leave out.
    var hasProblems: Bool {
        !criticalFailures.isEmpty || skipped.contains { $0.isProblem } || badFilterURIs > 0
    }

    var warnings: [Message] { messages.filter { $0.kind == .warning } }

    /// Token filter URIs that do not parse (each hides every token in its reach).
    var badFilterURIs: Int { messages.filter { $0.kind == .badTokenFilter }.count }
}

/// The command's side of the walk (ModuleStartup.walk): it records where the module acts, reads
/// each module's contents, and finalises it again.
extension ModuleSurvey: ModuleStartupHost {
    typealias Failure = Never

    /// A module loaded or connected afresh for this survey.
    struct Opened: OpenedModule {
        var source: ModuleSource
        var functions: CK_FUNCTION_LIST_3_2
    }

    /// The command is not loaded from a p11proxy library, so "itself" is any p11proxy build.
    func isP11Proxy(path: String, identity: FileIdentity) -> Bool {
        P11ProxyLibrary.isBuild(path: path)
    }

    /// The command holds no module from before, and has no table to fill.
    func module(heldAs identity: ModuleStartup.ModuleIdentity) -> Opened? { nil }
    var noRoom: String? { nil }

    func add(_ source: ModuleSource, functions: CK_FUNCTION_LIST_3_2, config: ModuleConfig) -> Opened {
        Opened(source: source, functions: functions)
    }

    /// Shown with the module once it has started.
    func configure(_ module: Opened, config: ModuleConfig, trace: TraceSettings) {}

    func initialize(_ module: Opened, config: ModuleConfig) -> CK_RV {
        let reserved = config.initReserved.map { strdup($0) } ?? nil
        defer { free(reserved) }
        var arguments = ModuleStartup.initializeArguments(reserved: reserved)
        return module.functions.C_Initialize!(&arguments)
    }

    /// The module's contents, what the module says about its slot list, then C_Finalize.
    mutating func started(_ module: Opened, config: ModuleConfig, trace: TraceSettings, filter: TokenFilter?,
                          initializedElsewhere: Bool) {
        let contents = ModuleContents(reading: module.functions, filter: filter)
        // The module lists every slot right after the module's C_Initialize (slot IDs are valid
        // from then on) and says so when the list is broken.
        if let problem = contents.slotListProblem {
            say(.warning, ModuleSlotList.problemMessage(module: config.name, problem))
        }
        if contents.slotListHadRepeats { say(.warning, ModuleSlotList.repeatsMessage(module: config.name)) }
        loaded.append(Loaded(config: config, path: module.source.location, isManaged: configuration.isManaged(config),
                             trace: trace, filter: filter, contents: contents, initializedElsewhere: initializedElsewhere,
                             remoteProtocolVersion: module.source.remoteProtocolVersion))
        // Only our own initialisation is undone: ALREADY_INITIALIZED means someone else's.
        if !initializedElsewhere { _ = module.functions.C_Finalize!(nil) }
    }

    mutating func skipped(_ skip: ModuleStartup.Skip) {
        skipped.append(skip)
    }

    /// Each distinct message once, as the module's Diagnostics prints it.
    mutating func say(_ kind: ModuleStartup.MessageKind, _ text: String) {
        if !messages.contains(where: { $0.text == text }) { messages.append(Message(kind: kind, text: text)) }
    }

    /// The command goes on, to show every module.
    mutating func failed(critical name: String, _ rv: CK_RV) {
        criticalFailures.append(name)
    }
}
