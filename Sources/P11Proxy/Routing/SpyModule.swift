// Spy mode (P11PROXY_MODULE): one module shown as it is, as OpenSC's pkcs11-spy shows it: its
// own slot IDs and its own C_GetInfo, so clients that key on either (SunPKCS11's `slot=`, test
// suites checking the library's manufacturer) behave as they do without p11proxy. Session
// handles stay p11proxy's, so callers stay isolated.
import Synchronization

enum SpyModule {
    // Who may touch it: stored by ProxyRuntime.startModules, under its lock, before the caller
    // whose C_Initialize started the modules is marked initialised; read anywhere after that.
    private static let indexPlusOne = Atomic<Int>(0)

    /// The module's ModuleTable index in spy mode; nil in config mode.
    @inline(__always)
    static var index: ModuleIndex? {
        let value = indexPlusOne.load(ordering: .acquiring)
        return value == 0 ? nil : ModuleIndex(value - 1)
    }

    static func set(_ index: ModuleIndex?) {
        indexPlusOne.store(index.map { $0.value + 1 } ?? 0, ordering: .releasing)
    }
}
