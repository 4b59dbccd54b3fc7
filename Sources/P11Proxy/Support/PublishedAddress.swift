// Hot-path access to storage allocated once. A `static let` with a computed initialiser costs
// a swift_once call on every access; a statically initialised `Atomic<UInt>` holding the
// storage's address costs one load, and no call (so the hot functions save no registers).
// Every table is published by ProxyRuntime.prepared, which each exported entry point runs
// before it hands out a function list; until then the address reads as nil.
import Synchronization

@inline(__always)
func publishedPointer<T: ~Copyable>(_ address: borrowing Atomic<UInt>) -> UnsafeMutablePointer<T>? {
    UnsafeMutablePointer(bitPattern: address.load(ordering: .acquiring))
}

/// Stores `storage`'s address for `publishedPointer`; called by each table's publish function,
/// which cold paths call on every use, so it stores only the first time (no shared cache line
/// written on every C_OpenSession).
func publish<T: ~Copyable>(_ storage: UnsafeMutablePointer<T>, into address: borrowing Atomic<UInt>) -> UnsafeMutablePointer<T> {
    let value = UInt(bitPattern: storage)
    if address.load(ordering: .relaxed) != value { address.store(value, ordering: .releasing) }
    return storage
}
