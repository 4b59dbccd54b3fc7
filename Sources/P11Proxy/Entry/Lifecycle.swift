// C_Initialize and C_Finalize: the caller's own count; the real modules' counts
// are ProxyRuntime's.
import CPKCS11

extension Entry {
    @inline(never)
    static func C_Initialize(_ pInitArgs: CK_VOID_PTR?, _ caller: CallerNumber) -> CK_RV {
        do throws(ReturnValue) {
            let options = try InitializeOptions.parse(pInitArgs)
            try ProxyRuntime.initialize(caller: caller, options: options)
            return CK_RV(CKR_OK)
        } catch {
            return error.rawValue
        }
    }

    @inline(never)
    static func C_Finalize(_ pReserved: CK_VOID_PTR?, _ caller: CallerNumber) -> CK_RV {
        guard pReserved == nil else {
            return CallerPool.isInitialized(caller) ? CK_RV(CKR_ARGUMENTS_BAD) : CK_RV(CKR_CRYPTOKI_NOT_INITIALIZED)
        }
        do throws(ReturnValue) {
            try ProxyRuntime.finalize(caller: caller)
            return CK_RV(CKR_OK)
        } catch {
            return error.rawValue
        }
    }
}
