// The hot half of every loaded module: its function list and whether it is live, in a fixed
// buffer read without locks on every call. Libraries are never dlclosed, so entries never move
// or die; a module leaving the configuration only clears `isActive`.
import CPKCS11
import Glibc
import Synchronization

struct ModuleSlot: ~Copyable {
    /// A copy of the module's list. For a 2.x module only the 2.40 prefix is copied and the 3.0
    /// entries stay nil, so a 3.0 call answers CKR_FUNCTION_NOT_SUPPORTED without reaching it.
    /// Written once, under ProxyRuntime's lock, before any slot or session of it is published.
    var functions: CK_FUNCTION_LIST_3_0
    /// In the current configuration and initialised (for unmanaged modules: configured).
    let isActive: Atomic<Bool>
    /// `managed: no`: C_Initialize/C_Finalize/C_CloseAllSessions pass straight through.
    let isUnmanaged: Atomic<Bool>
    /// TraceSettings.mode: 0 when log-calls is off for this module (the only cost then is this load).
    let traceMode: Atomic<UInt8>
}

enum ModuleTable {
    /// More modules than any system configures; loading beyond it reports and skips.
    static let capacity = 256

    // Who may touch it: anyone may read; `functions` is written by ProxyRuntime (under its lock)
    // before the module is first activated; the atomics are stored under that lock.
    // The 256 slots (192 KB) come from calloc, which takes memory this size straight from mmap:
    // zero pages, touched only when a module is loaded into a slot. Initialising every slot
    // here wrote all of it: 47 of the page faults of loading p11proxy (perf record -e page-faults).
    // All-zero bytes are a valid ModuleSlot (no functions, inactive, managed, not traced).
    nonisolated(unsafe) private static let slotsStorage: UnsafeMutablePointer<ModuleSlot> = {
        guard let memory = calloc(capacity, MemoryLayout<ModuleSlot>.stride) else {
            fatalError("p11proxy: cannot allocate the module table (\(capacity * MemoryLayout<ModuleSlot>.stride) bytes)")
        }
        return memory.bindMemory(to: ModuleSlot.self, capacity: capacity)
    }()

    /// `slotsStorage`'s address, published once: a `static let` with a computed initialiser
    /// costs a swift_once call on every access; this is a single load.
    private static let slotsAddress = Atomic<UInt>(0)

    @inline(__always)
    /// Only reached for a module some slot or session names, so after ProxyRuntime.prepare.
    static var slots: UnsafeMutablePointer<ModuleSlot> { publishedPointer(slotsAddress).unsafelyUnwrapped }

    @inline(never)
    static func publishSlots() -> UnsafeMutablePointer<ModuleSlot> { publish(slotsStorage, into: slotsAddress) }

    @inline(__always)
    static func slot(_ index: Int) -> UnsafeMutablePointer<ModuleSlot> { slots + index }

    @inline(__always)
    static func index(of slot: UnsafeMutablePointer<ModuleSlot>) -> Int { slot - slots }
}
