// p11proxy's start-up, walked once for the module (when its first caller initialises) and for
// `p11proxy list`/`check`: the configuration's complaints, the modules it leaves out, then each
// module in load order: its library check, load or connect, trace settings, token filter,
// C_Initialize. The order and every message live here; the host acts (ModuleStartupHost).
import CPKCS11
import P11ProxyConfig
import P11ProxyNames

extension ModuleStartup {
    /// How `p11proxy check` weighs a message; the module prints them all alike.
    package enum MessageKind: Equatable, Sendable {
        /// Worth a look; the module starts as configured.
        case warning
        /// A configured module that does not start.
        case problem
        /// A token filter URI that does not parse: its filter hides every token in its reach.
        case badTokenFilter
        /// A critical module that does not start: p11proxy's C_Initialize fails.
        case critical
    }

    /// A configured module that does not start.
    package struct Skip: Equatable, Sendable {
        package var name: String
        /// `FILE` or `FILE:LINE`, as in the message.
        package var place: String
        package var reason: String
        /// What p11proxy prints; nil where it says nothing: for what the configuration leaves out
        /// on purpose (enable-in, disable-in, a blank module:) and for p11proxy itself.
        package var message: String?

        /// A problem to fix (`check` fails): anything p11proxy speaks of.
        package var isProblem: Bool { message != nil }
    }

    /// Starts the configuration's modules through `host`. Throws what the host's `failed` throws
    /// at the first critical module that does not start; modules the host started before are the
    /// host's to finalise.
    package static func walk<Host: ModuleStartupHost>(configuration: ProxyConfiguration, isSpy: Bool,
                                                      environment: EnvironmentVariables,
                                                      host: inout Host) throws(Host.Failure) {
        for diagnostic in configuration.diagnostics { host.say(.warning, diagnostic.description) }
        for module in configuration.skipped {
            // enable-in/disable-in and a blank module leave a module out on purpose: p11-kit says
            // nothing and never fails a load for those, even for a critical module. Reporting them
            // would put a line on every client's standard error once p11proxy is installed
            // (Debian's p11-kit-trust.module says `disable-in: p11-kit-proxy`).
            let message = module.cause.isDeliberate ? nil : skippedMessage(module)
            try leaveOut(Skip(name: module.name, place: place(of: module), reason: module.reason, message: message),
                         failsInitialize: failsInitialize(module), host: &host)
        }
        var started: [ModuleIdentity] = []
        for config in configuration.modules {
            guard let (module, identity) = try open(config, alreadyStarted: started, host: &host) else { continue }
            let trace = TraceSettings.resolve(module: config, configuration: configuration, environment: environment,
                                              report: { host.say(.warning, $0) })
            host.configure(module, config: config, trace: trace)
            // Outside spy mode each complaint is a URI that does not parse, which hides tokens. In
            // spy mode it is the note that filters do not apply.
            let filter = TokenFilterSettings.resolve(module: config, configuration: configuration, environment: environment,
                                                     spyMode: isSpy, report: { host.say(isSpy ? .warning : .badTokenFilter, $0) })
            let rv = host.initialize(module, config: config)
            guard initializeSucceeded(rv) else {
                // A remote module says why (the address and what went wrong).
                let detail = module.source.lastFailure
                let error = PKCS11Name.returnValueText(rv) + (detail.isEmpty ? "" : " (\(detail))")
                let message = initializeFailedMessage(name: config.name, path: module.source.location, error: error,
                                                      critical: config.isCritical)
                host.skipped(Skip(name: config.name, place: place(of: config), reason: "C_Initialize failed: \(error)",
                                  message: message))
                host.say(config.isCritical ? .critical : .problem, message)
                if config.isCritical { try host.failed(critical: config.name, rv) }
                continue
            }
            // Only a module that started keeps a later module file of the same library out.
            started.append(identity)
            host.started(module, config: config, trace: trace, filter: filter,
                         initializedElsewhere: rv == CKR_CRYPTOKI_ALREADY_INITIALIZED)
        }
    }

    /// The module's functions: the host's when it holds the module already, else the library
    /// loaded or the server connected. Nil (with a skip) when the module does not load.
    private static func open<Host: ModuleStartupHost>(_ config: ModuleConfig, alreadyStarted: [ModuleIdentity],
                                                      host: inout Host) throws(Host.Failure) -> (Host.Module, ModuleIdentity)? {
        /// `fatal`: whether a critical module's skip fails p11proxy's C_Initialize.
        func skip(_ reason: String, fatal: Bool = true) throws(Host.Failure) {
            let place = Self.place(of: config)
            try leaveOut(Skip(name: config.name, place: place, reason: reason,
                              message: skippedMessage(place: place, name: config.name, reason: reason)),
                         failsInitialize: fatal && config.isCritical, host: &host)
        }
        let identity: ModuleIdentity
        let start: () throws(LoadError) -> (ModuleSource, CK_FUNCTION_LIST_3_2)
        switch checkLibrary(config, alreadyStarted: alreadyStarted, isP11Proxy: { host.isP11Proxy(path: $0, identity: $1) }) {
        case .load(let path, let file):
            identity = .library(file)
            start = { () throws(LoadError) in try ModuleSource.load(path: path, identity: file) }
        case .connect(let address):
            identity = .remote(address)
            start = { () throws(LoadError) in try ModuleSource.connect(address: address, config: config) }
        case .unusable(let reason):
            try skip(reason)
            return nil
        case .itself(let reason):
            // Silent: an installed p11proxy.module is in the very configuration p11proxy reads.
            host.skipped(Skip(name: config.name, place: place(of: config), reason: reason, message: nil))
            return nil
        case .alreadyLoaded(let reason):
            // Never fatal: the library is there, under the other module's name.
            try skip(reason, fatal: false)
            return nil
        }
        if let module = host.module(heldAs: identity) { return (module, identity) }
        if let reason = host.noRoom {
            try skip(reason)
            return nil
        }
        do throws(LoadError) {
            let (source, functions) = try start()
            return (host.add(source, functions: functions, config: config), identity)
        } catch {
            try skip(error.description)
            return nil
        }
    }

    /// A skip said in its order: the module's message, then, for a critical module, that
    /// p11proxy's C_Initialize fails.
    private static func leaveOut<Host: ModuleStartupHost>(_ skip: Skip, failsInitialize: Bool,
                                                          host: inout Host) throws(Host.Failure) {
        host.skipped(skip)
        if let message = skip.message { host.say(.problem, message) }
        guard failsInitialize else { return }
        host.say(.critical, criticalMessage(name: skip.name))
        try host.failed(critical: skip.name, CK_RV(CKR_GENERAL_ERROR))
    }
}
