// C_Initialize argument checks (PKCS#11 3.0 section 5.4) and the x-init-reserved convention.
import CPKCS11
import Testing
@testable import P11Proxy

@Suite struct InitializeOptionsTests {
    private let create: CK_CREATEMUTEX = { _ in CK_RV(CKR_OK) }
    private let destroy: CK_DESTROYMUTEX = { _ in CK_RV(CKR_OK) }

    private func parse(_ arguments: CK_C_INITIALIZE_ARGS) -> Result<InitializeOptions, ReturnValue> {
        var arguments = arguments
        return withUnsafeMutablePointer(to: &arguments) { pointer in
            Result { () throws(ReturnValue) in try InitializeOptions.parse(UnsafeMutableRawPointer(pointer)) }
        }
    }

    @Test func nullArgumentsAreFine() throws {
        #expect(try InitializeOptions.parse(nil).configDirectory == nil)
    }

    @Test func mutexCallbacksAreAllOrNone() {
        var some = CK_C_INITIALIZE_ARGS()
        some.CreateMutex = create
        some.DestroyMutex = destroy
        #expect(throws: ReturnValue.argumentsBad) { try parse(some).get() }
        var none = CK_C_INITIALIZE_ARGS()
        none.flags = CK_FLAGS(CKF_OS_LOCKING_OK)
        #expect(throws: Never.self) { try parse(none).get() }
    }

    @Test func reservedMustBeOurOptionString() throws {
        func reserved(_ text: String) -> Result<InitializeOptions, ReturnValue> {
            text.withCString { cString in
                Result { () throws(ReturnValue) in try InitializeOptions.parseReserved(cString) }
            }
        }
        #expect(try reserved("config-dir=/etc/p11proxy").get().configDirectory == "/etc/p11proxy")
        #expect(throws: ReturnValue.argumentsBad) { try reserved("hello-reserved").get() }
        #expect(throws: ReturnValue.argumentsBad) { try reserved("config-dir=").get() }
        #expect(throws: ReturnValue.argumentsBad) { try reserved("colour=blue").get() }
        // A blank `x-init-reserved:` reaches us as "" (p11-kit passes the value as it is).
        #expect(try reserved("").get().configDirectory == nil)
        #expect(try reserved(" \t ").get().configDirectory == nil)
        #expect(throws: ReturnValue.argumentsBad) { try reserved(String(repeating: "x", count: 5000)).get() }
    }

    @Test func cannotCreateThreadsIsRemembered() throws {
        #expect(try InitializeOptions.parse(nil).libraryCannotCreateThreads == false)
        var arguments = CK_C_INITIALIZE_ARGS()
        arguments.flags = CK_FLAGS(CKF_OS_LOCKING_OK)
        #expect(try parse(arguments).get().libraryCannotCreateThreads == false)
        arguments.flags = CK_FLAGS(CKF_LIBRARY_CANT_CREATE_OS_THREADS)
        #expect(try parse(arguments).get().libraryCannotCreateThreads == true)
    }
}
