// Proxy session handles: unique across modules and callers, resolved to (module, real handle)
// in O(1) with a few loads and no lock. Opening and closing take free indices from the
// thread's own cache (SessionIndexPool), so they take no lock either on the common path.
//
// A handle is `generation << 20 | index`: below 2^32, so callers that keep handles in 32-bit
// integers still work. Entry 0 is never handed out and holds a handle no index-0 input can
// equal, so a handle is never 0 (CK_INVALID_HANDLE) and the table covers every 20-bit index:
// resolving needs a mask and no bounds check. An entry holds its live handle itself (0 once
// closed), so one comparison checks index, generation and liveness, and a handle of 2^32 or
// more (which no entry holds) never matches. `packed` holds the caller in its low byte, the
// proxy slot above it and the entry's generation (kept across closes) in bits 48-59.
// A reader compares the handle, reads the entry, and compares the handle again (a seqlock),
// so a handle closed and reused concurrently never resolves to another caller's session.
import CPKCS11
import Glibc
import Synchronization

/// One cache line: entries of threads that open and close at once never share a line (with
/// 32-byte entries, the two threads of a 2-core open+close benchmark met on the line where
/// their index batches touched, and 2 threads made 1.3x one thread's pairs instead of 1.7x).
/// The table is reserved, not committed: the padding costs address space, not memory.
struct SessionEntry: ~Copyable {
    let handle: Atomic<UInt>
    let realHandle: Atomic<UInt>
    /// The ModuleEntry's address.
    let module: Atomic<UInt>
    /// Caller, proxy slot and generation (see the top of the file).
    let packed: Atomic<UInt64>
    private let padding: (UInt64, UInt64, UInt64, UInt64)
}

/// What a live session resolves to.
struct SessionRecord {
    var index: Int
    var handle: CK_SESSION_HANDLE
    var moduleEntry: UnsafeMutablePointer<ModuleEntry>
    var realHandle: CK_SESSION_HANDLE
    /// SessionEntry.packed as read.
    var packed: UInt64

    var caller: CallerNumber { CallerNumber(Int(packed & 0xFF)) }
    var proxySlot: CK_SLOT_ID { CK_SLOT_ID((packed >> 8) & 0xFFFF_FFFF) }
    /// The module's ModuleTable index.
    var moduleIndex: ModuleIndex { ModuleTable.index(of: moduleEntry) }
}

enum SessionTable {
    static let indexBits = 20
    static let indexMask = CK_SESSION_HANDLE((1 << indexBits) - 1)
    /// Entries, one per 20-bit index; index 0 stays dead (its handle is never a valid input).
    static let entryCount = 1 << indexBits
    /// Sessions the table can hold: every index but 0.
    static let capacity = entryCount - 1
    static let generationMask: UInt64 = 0xFFF
    /// Callers fit the packed word's low byte; proxy slot IDs its next 32 bits.
    static let maximumCaller = 0xFF
    static let maximumProxySlot = CK_SLOT_ID(0xFFFF_FFFF)

    /// One flat array, reserved (not committed) up front so entries never move and a reader
    /// needs no chunk look-up: untouched pages cost nothing, zero pages read as dead entries.
    // Who may touch it: readers anywhere (atomics); `open` writes an entry before publishing its
    // handle; `release` retires it with a compare-and-exchange on the handle.
    nonisolated(unsafe) private static let entriesStorage: UnsafeMutablePointer<SessionEntry>? = {
        let bytes = entryCount * MemoryLayout<SessionEntry>.stride
        let memory = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let memory, memory != UnsafeMutableRawPointer(bitPattern: -1) else {  // MAP_FAILED
            Diagnostics.report("cannot reserve the session table (\(bytes) bytes); C_GetFunctionList will fail")
            return nil
        }
        let entries = memory.bindMemory(to: SessionEntry.self, capacity: entryCount)
        // Only an input with index 0 reaches entry 0, and ~0 has index 0xFFFFF: no input matches.
        entries.pointee.handle.store(~0, ordering: .relaxed)
        return entries
    }()
    /// `entriesStorage`, for the hot path (PublishedTable). Published by ProxyRuntime.prepared,
    /// before any caller gets a function list (CallerPool.acquire fails without it), so the hot
    /// path reads it unchecked.
    private static let entries = PublishedTable<SessionEntry>()

    @inline(never)
    static func publishEntries() -> UnsafeMutablePointer<SessionEntry>? {
        guard let storage = entriesStorage else { return nil }
        SessionIndexPool.createKey()
        return entries.publish(storage)
    }

    /// Guards SessionIndexPool's shared state (not taken while a thread's cache can serve).
    static let lock = ProcessLock()
    /// SessionIndexPool.highWater, read without the lock by scans; only grows.
    static let scanLimit = Atomic<Int>(0)

    @inline(__always)
    static func handle(index: Int, generation: UInt64) -> CK_SESSION_HANDLE {
        CK_SESSION_HANDLE(generation) << CK_SESSION_HANDLE(indexBits) | CK_SESSION_HANDLE(index)
    }

    /// The hot path: resolve a caller's handle, or nil if it is not a live session of that caller.
    @inline(__always)
    static func resolve(_ handle: CK_SESSION_HANDLE, caller: CallerNumber) -> SessionRecord? {
        let index = Int(handle & indexMask)
        let entry = entries.uncheckedBase + index
        guard entry.pointee.handle.load(ordering: .acquiring) == handle else { return nil }
        let packed = entry.pointee.packed.load(ordering: .relaxed)
        guard packed & 0xFF == UInt64(truncatingIfNeeded: caller.value) else { return nil }
        let realHandle = entry.pointee.realHandle.load(ordering: .relaxed)
        let module = entry.pointee.module.load(ordering: .relaxed)
        atomicMemoryFence(ordering: .acquiring)
        guard entry.pointee.handle.load(ordering: .relaxed) == handle else { return nil }
        return SessionRecord(index: index, handle: handle,
                             moduleEntry: UnsafeMutablePointer(bitPattern: module).unsafelyUnwrapped,
                             realHandle: realHandle, packed: packed)
    }

    /// Registers a session the module opened; nil when the table is full (or `caller` or
    /// `proxySlot` is beyond what an entry holds, which CallerPool and SlotMap never hand out).
    static func open(caller: CallerNumber, module: ModuleIndex, proxySlot: CK_SLOT_ID, realHandle: CK_SESSION_HANDLE) -> CK_SESSION_HANDLE? {
        guard let entries = publishEntries(), caller.value >= 0, caller.value <= maximumCaller, proxySlot <= maximumProxySlot
        else { return nil }
        guard let index = SessionIndexPool.take() else { return nil }
        let entry = entries + index
        let generation = ((entry.pointee.packed.load(ordering: .relaxed) >> 48) + 1) & generationMask
        entry.pointee.realHandle.store(realHandle, ordering: .relaxed)
        entry.pointee.module.store(UInt(bitPattern: ModuleTable.publishEntries() + module.value), ordering: .relaxed)
        entry.pointee.packed.store(UInt64(caller.value) | UInt64(proxySlot) << 8 | generation << 48, ordering: .relaxed)
        let handle = handle(index: index, generation: generation)
        // Sequentially consistent: pairs with the caller-state store in C_Finalize (see Sessions.swift).
        entry.pointee.handle.store(handle, ordering: .sequentiallyConsistent)
        return handle
    }

    /// Retires a session; false if someone else retired it first.
    @discardableResult
    static func release(_ record: SessionRecord) -> Bool {
        guard let entries = publishEntries() else { return false }
        guard (entries + record.index).pointee.handle.compareExchange(
            expected: record.handle, desired: 0, ordering: .acquiringAndReleasing).exchanged
        else { return false }
        SessionIndexPool.give(record.index)
        return true
    }

    /// Every live session matching `filter`, for C_CloseAllSessions and C_Finalize.
    static func liveSessions(where filter: (_ caller: CallerNumber, _ module: ModuleIndex, _ proxySlot: CK_SLOT_ID) -> Bool) -> [SessionRecord] {
        guard let entries = publishEntries() else { return [] }
        var found: [SessionRecord] = []
        let limit = scanLimit.load(ordering: .acquiring)
        for index in 1..<max(limit, 1) {
            let entry = entries + index
            let handle = entry.pointee.handle.load(ordering: .sequentiallyConsistent)
            guard handle != 0 else { continue }
            let record = SessionRecord(index: index, handle: handle,
                                       moduleEntry: UnsafeMutablePointer(bitPattern: entry.pointee.module.load(ordering: .relaxed)).unsafelyUnwrapped,
                                       realHandle: entry.pointee.realHandle.load(ordering: .relaxed),
                                       packed: entry.pointee.packed.load(ordering: .relaxed))
            guard entry.pointee.handle.load(ordering: .acquiring) == handle,
                  filter(record.caller, record.moduleIndex, record.proxySlot) else { continue }
            found.append(record)
        }
        return found
    }

    /// In the fork child: every session belonged to the parent.
    static func forkChild() {
        lock.reinitializeInChild()
        guard let entries = entriesStorage else { return }
        let limit = scanLimit.load(ordering: .relaxed)
        for index in 1..<max(limit, 1) { (entries + index).pointee.handle.store(0, ordering: .relaxed) }
        SessionIndexPool.forkChild()
    }
}
