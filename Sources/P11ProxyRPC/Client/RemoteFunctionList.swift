// A remote module as a function list, so that everything above it (routing, callers, tracing)
// treats it exactly as a loaded library: each RemoteModule that asks is bound to one of a fixed
// number of generated lists (RemoteFunctionList.generated.swift), whose closures call it.
import CPKCS11
import Glibc

extension RemoteModule {
    // Who may touch them: `functionList()` binds under `bindingLock`; the closures read a bound
    // entry, which never changes or goes once bound (a remote module lives as long as the process,
    // as a dlopen'd library does).
    nonisolated(unsafe) private static let bindings: UnsafeMutablePointer<Unmanaged<RemoteModule>?> = {
        let bindings = UnsafeMutablePointer<Unmanaged<RemoteModule>?>.allocate(capacity: functionListCount)
        bindings.initialize(repeating: nil, count: functionListCount)
        return bindings
    }()
    private static let bindingLock = RPCLock()

    @inline(__always)
    static func bound(_ index: Int) -> RemoteModule {
        bindings[index].unsafelyUnwrapped.takeUnretainedValue()
    }

    /// This module's function list (the same one each time it asks); nil when every one of the
    /// `functionListCount` lists is bound to another module. The list reports version 3.0: the
    /// 3.0 functions the protocol lacks are nil, and RemoteModule itself answers
    /// CKR_FUNCTION_NOT_SUPPORTED for calls the negotiated version does not carry.
    public func functionList() -> CK_FUNCTION_LIST_3_0? {
        let index: Int? = Self.bindingLock.withLock {
            for index in 0..<Self.functionListCount {
                if let bound = Self.bindings[index], bound.takeUnretainedValue() === self { return index }
            }
            for index in 0..<Self.functionListCount where Self.bindings[index] == nil {
                Self.bindings[index] = Unmanaged.passRetained(self)
                return index
            }
            return nil
        }
        guard let index else { return nil }
        var list = CK_FUNCTION_LIST_3_0()
        list.version = CK_VERSION(major: 3, minor: 0)
        withUnsafeMutablePointer(to: &list) { Self.fill($0, index: index) }
        return list
    }
}
