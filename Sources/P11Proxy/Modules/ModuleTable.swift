// The hot half of every loaded module: its function list and whether it is live, in a fixed
// buffer read without locks on every call. Libraries are never dlclosed, so entries never move
// or die; a module leaving the configuration only clears `isActive`.
import CPKCS11
import Glibc
import P11ProxyLoader
import Synchronization

struct ModuleEntry: ~Copyable {
    // `functions` must stay the first stored property (see setTraceMode).
    /// A copy of the module's list, as a 3.2 list. Only the prefix of the list the module offers
    /// is copied (2.40, 3.0 or 3.2) and newer entries stay nil, so a call newer than the module
    /// answers CKR_FUNCTION_NOT_SUPPORTED without reaching it (ModuleLoader).
    /// Written once, under ProxyRuntime's lock, before any slot or session of it is published.
    var functions: CK_FUNCTION_LIST_3_2
    /// In the current configuration and initialised (for unmanaged modules: configured).
    let isActive: Atomic<Bool>
    /// `managed: no`: C_Initialize/C_Finalize/C_CloseAllSessions pass straight through.
    let isUnmanaged: Atomic<Bool>
    /// TraceMode's bits: 0 when log-calls is off for this module. Set with `setTraceMode`.
    let traceMode: Atomic<UInt8>
    /// The table the hot path calls through (ModuleCall): the address of `functions`, or of
    /// ModuleTable.noFunctions while the module is traced, so that one nil test covers both
    /// "traced" and "not supported". Zero until the module is loaded into the entry (no route
    /// names an entry before that). Relaxed loads suffice: both tables are complete before their
    /// address is stored here, and routes to the module are published with release ordering.
    let dispatchAddress: Atomic<UInt>

    @inline(__always)
    var dispatch: UnsafePointer<CK_FUNCTION_LIST_3_2> {
        UnsafePointer(bitPattern: dispatchAddress.load(ordering: .relaxed)).unsafelyUnwrapped
    }
}

extension UnsafeMutablePointer where Pointee == ModuleEntry {
    /// The module's functions (once, under ProxyRuntime's lock, before any route names it).
    func load(_ functions: CK_FUNCTION_LIST_3_2) {
        pointee.functions = functions
        setTraceMode(TraceMode(rawValue: pointee.traceMode.load(ordering: .relaxed)))
    }

    /// Turns log-calls on (a non-empty mode) or off for the module.
    func setTraceMode(_ mode: TraceMode) {
        // The mode first: a call that already saw noFunctions reads the mode in the slow path.
        pointee.traceMode.store(mode.rawValue, ordering: .relaxed)
        // `functions` is ModuleEntry's first stored property, so its address is the entry's
        // (ModuleTableTests checks that calls reach the functions loaded).
        let table = mode.isEmpty ? UnsafeRawPointer(self) : UnsafeRawPointer(ModuleTable.noFunctions)
        pointee.dispatchAddress.store(UInt(bitPattern: table), ordering: .releasing)
    }
}

enum ModuleTable {
    /// More modules than any system configures; loading beyond it reports and skips.
    static let capacity = 256

    // Who may touch it: anyone may read; `functions` is written by ProxyRuntime (under its lock)
    // before the module is first activated; the atomics are stored under that lock.
    // The 256 entries (192 KB) come from calloc, which takes memory this size straight from mmap:
    // zero pages, touched only when a module is loaded into an entry. Initialising every entry
    // here wrote all of it: 47 of the page faults of loading p11proxy (perf record -e page-faults).
    // All-zero bytes are a valid ModuleEntry (no functions, inactive, managed, not traced, no
    // dispatch table: `load` sets it).
    nonisolated(unsafe) private static let entriesStorage: UnsafeMutablePointer<ModuleEntry> = {
        guard let memory = calloc(capacity, MemoryLayout<ModuleEntry>.stride) else {
            fatalError("p11proxy: cannot allocate the module table (\(capacity * MemoryLayout<ModuleEntry>.stride) bytes)")
        }
        return memory.bindMemory(to: ModuleEntry.self, capacity: capacity)
    }()

    /// An all-nil function list: the dispatch table of traced modules.
    nonisolated(unsafe) static let noFunctions: UnsafeMutablePointer<CK_FUNCTION_LIST_3_2> = {
        let list = UnsafeMutablePointer<CK_FUNCTION_LIST_3_2>.allocate(capacity: 1)
        list.initialize(to: CK_FUNCTION_LIST_3_2())
        return list
    }()

    /// `entriesStorage`, for the hot path (PublishedTable). Read unchecked: only reached for a
    /// module some slot or session names, so after ProxyRuntime.prepared.
    private static let entries = PublishedTable<ModuleEntry>()

    @inline(never)
    static func publishEntries() -> UnsafeMutablePointer<ModuleEntry> { entries.publish(entriesStorage) }

    @inline(__always)
    static func entry(_ index: ModuleIndex) -> UnsafeMutablePointer<ModuleEntry> { entries.uncheckedBase + index.value }

    @inline(__always)
    static func index(of entry: UnsafeMutablePointer<ModuleEntry>) -> ModuleIndex { ModuleIndex(entry - entries.uncheckedBase) }
}
