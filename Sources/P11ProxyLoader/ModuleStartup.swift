// What p11proxy does with each configured module when its first caller initialises, and the
// words it uses to say so. The module (ProxyRuntime) and the `p11proxy` command both walk the
// configuration through here (ModuleStartup+Walk.swift), so `p11proxy check` prints what the
// module prints ("p11proxy: ...").
import CPKCS11
import P11ProxyConfig

package enum ModuleStartup {
    /// What to do with a configured module's library before anything is loaded.
    package enum LibraryCheck: Equatable {
        case load(path: String, identity: FileIdentity)
        /// A `remote:` module: reached over p11-kit's RPC protocol (ModuleLoader.connect).
        case connect(address: String)
        /// No library to load: a critical module then fails C_Initialize.
        case unusable(reason: String)
        /// p11proxy itself: never loaded (it would recurse), never fatal, and not reported by the
        /// module, since an installed p11proxy.module is in the very configuration p11proxy reads.
        case itself(reason: String)
        /// A library an earlier module file already loaded: never fatal, it is there under the other name.
        case alreadyLoaded(reason: String)
    }

    /// The checks before dlopen, in the module's order.
    package static func checkLibrary(_ config: ModuleConfig, alreadyStarted: [ModuleIdentity],
                                     isP11Proxy: (_ path: String, FileIdentity) -> Bool) -> LibraryCheck {
        // remote: wins over module:, as in p11-kit (modules.c take_config_and_load_module_inlock).
        if let address = config.remoteAddress {
            if alreadyStarted.contains(.remote(address)) {
                return .alreadyLoaded(reason: "\(address) is already reached by another module file")
            }
            return .connect(address: address)
        }
        guard let path = config.modulePath else { return .unusable(reason: "no module: path") }
        guard let identity = FileIdentity(path: path) else { return .unusable(reason: "\(path): no such file") }
        if isP11Proxy(path, identity) { return .itself(reason: "\(path) is p11proxy itself") }
        if alreadyStarted.contains(.library(identity)) {
            return .alreadyLoaded(reason: "\(path) is already loaded by another module file")
        }
        return .load(path: path, identity: identity)
    }

    /// What makes two configured modules one: the same library file, or the same server address.
    package enum ModuleIdentity: Equatable, Sendable {
        case library(FileIdentity)
        case remote(String)
    }

    /// The skip reason when dlopen or the function list fails.
    package static func loadFailure(path: String, _ error: LoadError) -> String {
        "\(path): \(error)"
    }

    /// The configuration left the module out, or its library cannot be used. enable-in/disable-in
    /// and a blank `module:` leave a module out on purpose; p11-kit never fails a load for those,
    /// even for a critical module.
    package static func failsInitialize(_ skipped: SkippedModule) -> Bool {
        skipped.isCritical && !skipped.cause.isDeliberate
    }

    /// Where a message about a module points: its first file.
    package static func place(of config: ModuleConfig) -> String {
        config.files.first ?? "configuration"
    }

    /// Where a message about a module the configuration left out points: `FILE:LINE` when known.
    package static func place(of skipped: SkippedModule) -> String {
        skipped.file.map { file in skipped.line.map { "\(file):\($0)" } ?? file } ?? "configuration"
    }

    // MARK: The messages (Diagnostics.report prefixes "p11proxy: ")

    package static func skippedMessage(place: String, name: String, reason: String) -> String {
        "\(place): module '\(name)' skipped: \(reason)"
    }

    package static func skippedMessage(_ skipped: SkippedModule) -> String {
        skippedMessage(place: place(of: skipped), name: skipped.name, reason: skipped.reason)
    }

    package static func criticalMessage(name: String) -> String {
        "module '\(name)' is critical; C_Initialize fails"
    }

    package static func initializeFailedMessage(name: String, path: String, error: String, critical: Bool) -> String {
        "module '\(name)' (\(path)): C_Initialize failed: \(error)"
            + (critical ? "; it is critical, so C_Initialize fails" : "; skipped")
    }

    // MARK: C_Initialize of a real module

    /// Real modules are always initialised with OS locking and their `x-init-reserved` as pReserved,
    /// as p11-kit does, whatever the caller asked of p11proxy.
    package static func initializeArguments(reserved: UnsafeMutablePointer<CChar>?) -> CK_C_INITIALIZE_ARGS {
        var arguments = CK_C_INITIALIZE_ARGS()
        arguments.flags = CK_FLAGS(CKF_OS_LOCKING_OK)
        arguments.pReserved = UnsafeMutableRawPointer(reserved)
        return arguments
    }

    /// ALREADY_INITIALIZED counts as success, as in p11-kit: someone else in the process (the
    /// application itself, another copy of p11proxy, p11-kit) initialised the module first. It is
    /// used as it is and never finalised by p11proxy (p11-kit/modules.c: "Module was already
    /// initialized, we don't call C_Finalize"), or its owner's sessions and login would go.
    package static func initializeSucceeded(_ rv: CK_RV) -> Bool {
        rv == CKR_OK || rv == CKR_CRYPTOKI_ALREADY_INITIALIZED
    }

    /// How `list` and `check` describe such a module.
    package static let initializedElsewhereText =
        "elsewhere (its C_Initialize answered CKR_CRYPTOKI_ALREADY_INITIALIZED); p11proxy uses it and never finalises it"

}
