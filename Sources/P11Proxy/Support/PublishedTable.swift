// The address of a table allocated once (a caller's states, the slot, session and module tables,
// the token marks, the trace targets), published so that the hot path reads it with one load.
import Synchronization

/// Where a table's storage is, once it is published; nil before.
///
/// Why not read the storage's `static let` itself: a `static let` with a computed initialiser
/// (the allocation) costs a swift_once call on every access, and a call makes the hot functions
/// save registers. A `static let` of this type is initialised statically (its only stored
/// property is an `Atomic<UInt>` of 0: no swift_once; check with `objdump -d` when changing it),
/// so reading the address costs one load. Each table keeps its own allocation (calloc, mmap,
/// ...) in a `static let` that only its cold paths touch, and publishes it with `publish(_:)`.
/// ProxyRuntime.prepared, which every exported entry point runs before it hands out a function
/// list, publishes the tables every call reads; the others are published when first needed.
struct PublishedTable<Element: ~Copyable>: ~Copyable {
    private let address = Atomic<UInt>(0)

    init() {}

    /// The table, or nil before it is published.
    @inline(__always)
    var base: UnsafeMutablePointer<Element>? {
        UnsafeMutablePointer(bitPattern: address.load(ordering: .acquiring))
    }

    /// The table, with no nil test: only for paths that cannot run before it is published.
    @inline(__always)
    var uncheckedBase: UnsafeMutablePointer<Element> {
        base.unsafelyUnwrapped
    }

    /// Publishes `storage` (always the same one) and returns it. Cold paths call this on every
    /// use, so it stores only the first time: no shared cache line written on every
    /// C_OpenSession.
    @discardableResult
    func publish(_ storage: UnsafeMutablePointer<Element>) -> UnsafeMutablePointer<Element> {
        let value = UInt(bitPattern: storage)
        if address.load(ordering: .relaxed) != value { address.store(value, ordering: .releasing) }
        return storage
    }
}
