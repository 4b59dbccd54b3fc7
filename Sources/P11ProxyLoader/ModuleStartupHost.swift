// What differs between the module's start-up (ProxyRuntime.startModules, which acts) and the
// `p11proxy` command's (ModuleSurvey, which records): ModuleStartup.walk decides the order of the
// steps and the words, and asks its host at each step that is not a decision.
import CPKCS11
import P11ProxyConfig

package protocol ModuleStartupHost {
    /// What a critical module's failure throws: the module's ReturnValue, so its C_Initialize
    /// stops there; Never for the command, which records the failure and goes on.
    associatedtype Failure: Error
    /// A module whose function list the host holds (the module's ModuleRecord).
    associatedtype Module: OpenedModule

    /// Whether the library is p11proxy itself (never loaded: it would recurse).
    func isP11Proxy(path: String, identity: FileIdentity) -> Bool
    /// The module the host already holds for `identity`; nil to load or connect it afresh.
    func module(heldAs identity: ModuleStartup.ModuleIdentity) -> Module?
    /// Why no further module can be added; nil while one can.
    var noRoom: String? { get }
    /// Takes a module just loaded or connected.
    mutating func add(_ source: ModuleSource, functions: CK_FUNCTION_LIST_3_2, config: ModuleConfig) -> Module
    /// The module's configuration and trace settings, before its C_Initialize.
    mutating func configure(_ module: Module, config: ModuleConfig, trace: TraceSettings)
    /// The module's C_Initialize as p11proxy calls it (ModuleStartup.initializeArguments): its answer.
    mutating func initialize(_ module: Module, config: ModuleConfig) -> CK_RV
    /// A module that initialised: the walk is done with it.
    /// `initializedElsewhere`: its C_Initialize answered CKR_CRYPTOKI_ALREADY_INITIALIZED.
    mutating func started(_ module: Module, config: ModuleConfig, trace: TraceSettings, filter: TokenFilter?,
                          initializedElsewhere: Bool)
    /// A configured module that does not start (said, where there is a message, with `say`).
    mutating func skipped(_ skip: ModuleStartup.Skip)
    /// One line p11proxy prints ("p11proxy: " is added by the printer).
    mutating func say(_ kind: ModuleStartup.MessageKind, _ text: String)
    /// A critical module did not start: p11proxy's C_Initialize fails with `rv`.
    mutating func failed(critical name: String, _ rv: CK_RV) throws(Failure)
}

/// A module whose function list is at hand: a library loaded or a server connected.
package protocol OpenedModule {
    var source: ModuleSource { get }
}
