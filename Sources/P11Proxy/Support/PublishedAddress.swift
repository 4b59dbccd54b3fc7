// Hot-path access to storage allocated once. A `static let` with a computed initialiser costs
// a swift_once call on every access; a statically initialised `Atomic<UInt>` holding the
// storage's address costs one load. The storage's own lazy `static let` stays the source of
// truth (and the fallback before first publication).
import Synchronization

@inline(__always)
func publishedPointer<T: ~Copyable>(_ address: borrowing Atomic<UInt>,
                                    publish: () -> UnsafeMutablePointer<T>) -> UnsafeMutablePointer<T> {
    let value = address.load(ordering: .acquiring)
    if value != 0 { return UnsafeMutablePointer(bitPattern: value).unsafelyUnwrapped }
    return publish()
}

/// Stores `storage`'s address for `publishedPointer`; called by each table's publish function.
func publish<T: ~Copyable>(_ storage: UnsafeMutablePointer<T>, into address: borrowing Atomic<UInt>) -> UnsafeMutablePointer<T> {
    address.store(UInt(bitPattern: storage), ordering: .releasing)
    return storage
}
