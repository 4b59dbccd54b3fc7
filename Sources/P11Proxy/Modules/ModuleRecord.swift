// The cold half of a loaded module: where it came from and its configuration. Only touched
// under ProxyRuntime's lock; the hot half is its ModuleEntry.
import CPKCS11
import Glibc
import P11ProxyConfig
import P11ProxyLoader

final class ModuleRecord: OpenedModule {
    let index: ModuleIndex
    let source: ModuleSource
    var config: ModuleConfig
    var isManaged = true
    /// Our C_Initialize of it succeeded in this process (reset in a fork child).
    private(set) var isInitialized = false
    /// That C_Initialize answered CKR_OK: the module's initialisation is ours to finalise. False
    /// when it answered CKR_CRYPTOKI_ALREADY_INITIALIZED: someone else in the process (the
    /// application, another copy of p11proxy) owns it, and finalising it would end their sessions
    /// and login, so p11proxy never does (as p11-kit, modules.c).
    private(set) var ownsInitialization = false
    /// `x-init-reserved`, NUL-terminated, passed as CK_C_INITIALIZE_ARGS.pReserved as p11-kit does.
    private(set) var initReserved: UnsafeMutablePointer<CChar>?

    init(index: ModuleIndex, source: ModuleSource, config: ModuleConfig) {
        self.index = index
        self.source = source
        self.config = config
    }

    /// The library's path or the server's address.
    var path: String { source.location }
    var identity: ModuleStartup.ModuleIdentity { source.identity }

    var name: String { config.name }
    var isCritical: Bool { config.isCritical }
    var entry: UnsafeMutablePointer<ModuleEntry> { ModuleTable.entry(index) }

    func apply(_ config: ModuleConfig, managed: Bool) {
        self.config = config
        isManaged = managed
        if let old = initReserved { free(old) }
        initReserved = config.initReserved.map { strdup($0) }
    }

    var isInitializedElsewhere: Bool { isInitialized && !ownsInitialization }

    /// C_Initialize with OS locking and the configured pReserved: the module's answer, where
    /// ALREADY_INITIALIZED counts as success (ModuleStartup). Called again for each caller of a
    /// `managed: no` module: a later ALREADY_INITIALIZED there is our own first initialisation
    /// answering.
    @discardableResult
    func initialize(caller: CallerNumber) -> CK_RV {
        var arguments = ModuleStartup.initializeArguments(reserved: initReserved)
        let rv = withUnsafeMutablePointer(to: &arguments) {
            ModuleCall.C_Initialize(entry, caller, UnsafeMutableRawPointer($0))
        }
        guard ModuleStartup.initializeSucceeded(rv) else { return rv }
        if rv == CKR_OK || !isInitialized { ownsInitialization = rv == CKR_OK }
        isInitialized = true
        return rv
    }

    /// Undoes our initialisation; a module someone else initialised is only let go.
    func finalize(caller: CallerNumber) {
        if ownsInitialization { _ = ModuleCall.C_Finalize(entry, caller, nil) }
        isInitialized = false
        ownsInitialization = false
    }

    /// In a fork child nothing is finalised: the child initialises afresh at its first C_Initialize.
    func forgetAfterFork() {
        isInitialized = false
        ownsInitialization = false
        source.forgetAfterFork()
    }
}
