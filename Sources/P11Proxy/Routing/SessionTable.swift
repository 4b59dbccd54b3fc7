// Proxy session handles: unique across modules and callers, resolved to (module, real handle)
// in O(1) with a few loads and no lock. Opening and closing take a small lock for the free
// list only.
//
// A handle is `generation << 20 | index`: below 2^32, so callers that keep handles in 32-bit
// integers still work. Entry 0 is never handed out, so a handle is never 0 (CK_INVALID_HANDLE)
// and the table covers every 20-bit index: resolving needs a mask and no bounds check. Each
// entry's `tag` holds the
// live bit, the entry's 12-bit generation, the owning caller and the module:
//   bit 0 live | bits 1-12 generation | bits 32-47 caller | bits 48-63 module
// A reader compares the tag with what the handle and the caller imply, reads the entry, and
// checks the tag again (a seqlock), so a handle closed and reused concurrently never resolves
// to another caller's session.
import CPKCS11
import Glibc
import Synchronization

struct SessionEntry: ~Copyable {
    let tag: Atomic<UInt64>
    let realHandle: Atomic<UInt>
    let proxySlot: Atomic<UInt>
}

/// What a live session resolves to.
struct SessionRecord {
    var index: Int
    var tag: UInt64
    var module: Int
    var realHandle: CK_SESSION_HANDLE
    var proxySlot: CK_SLOT_ID

    var caller: Int { Int((tag >> 32) & 0xFFFF) }
}

enum SessionTable {
    static let indexBits = 20
    static let indexMask = CK_SESSION_HANDLE((1 << indexBits) - 1)
    /// Entries, one per 20-bit index; index 0 stays dead (its tag is never live).
    static let entryCount = 1 << indexBits
    /// Sessions the table can hold: every index but 0.
    static let capacity = entryCount - 1
    static let liveBit: UInt64 = 1
    static let generationMask: UInt64 = 0xFFF << 1
    /// The bits a handle and its caller determine: live, generation, caller.
    static let identityMask: UInt64 = 0x0000_FFFF_0000_1FFF

    /// One flat array, reserved (not committed) up front so entries never move and a reader
    /// needs no chunk look-up: untouched pages cost nothing, zero pages read as dead entries.
    // Who may touch it: readers anywhere (atomics); `open` writes an entry before publishing its
    // tag; `release` retires it with a compare-and-exchange on the tag.
    nonisolated(unsafe) private static let entriesStorage: UnsafeMutablePointer<SessionEntry>? = {
        let bytes = entryCount * MemoryLayout<SessionEntry>.stride
        let memory = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
        guard let memory, memory != MAP_FAILED else {
            Diagnostics.report("cannot reserve the session table (\(bytes) bytes); C_OpenSession will fail")
            return nil
        }
        return memory.bindMemory(to: SessionEntry.self, capacity: entryCount)
    }()
    /// `entriesStorage`'s address, published once: the hot path reads it with one load.
    private static let entriesAddress = Atomic<UInt>(0)

    @inline(never)
    static func publishEntries() -> UnsafeMutablePointer<SessionEntry>? {
        guard let storage = entriesStorage else { return nil }
        return publish(storage, into: entriesAddress)
    }

    static let lock = ProcessLock()
    // Who may touch them: only code holding `lock`. Index 0 is never handed out.
    nonisolated(unsafe) static var highWater = 1
    nonisolated(unsafe) static var freeIndices = FreeIndexQueue()
    /// Read without the lock by scans; only grows.
    static let scanLimit = Atomic<Int>(0)

    @inline(__always)
    static func handle(index: Int, tag: UInt64) -> CK_SESSION_HANDLE {
        CK_SESSION_HANDLE((tag & generationMask) >> 1) << CK_SESSION_HANDLE(indexBits) | CK_SESSION_HANDLE(index)
    }

    /// The hot path: resolve a caller's handle, or nil if it is not a live session of that caller.
    @inline(__always)
    static func resolve(_ handle: CK_SESSION_HANDLE, caller: Int) -> SessionRecord? {
        // Any handle's index is inside the table (entry 0 is dead, so handle 0 never matches); a
        // handle of 2^32 or more has generation bits the identity mask cuts off, so it cannot match.
        let index = Int(handle & indexMask)
        guard let entries = UnsafeMutablePointer<SessionEntry>(bitPattern: entriesAddress.load(ordering: .acquiring))
        else { return nil }
        let entry = entries + index
        let expected = UInt64(truncatingIfNeeded: caller) << 32 | UInt64(handle >> UInt(indexBits)) << 1 | liveBit
        let tag = entry.pointee.tag.load(ordering: .acquiring)
        guard tag & identityMask == expected else { return nil }
        let realHandle = entry.pointee.realHandle.load(ordering: .relaxed)
        let proxySlot = entry.pointee.proxySlot.load(ordering: .relaxed)
        atomicMemoryFence(ordering: .acquiring)
        guard entry.pointee.tag.load(ordering: .relaxed) == tag else { return nil }
        return SessionRecord(index: index, tag: tag, module: Int(tag >> 48), realHandle: realHandle, proxySlot: proxySlot)
    }

    /// Registers a session the module opened; nil when the table is full.
    static func open(caller: Int, module: Int, proxySlot: CK_SLOT_ID, realHandle: CK_SESSION_HANDLE) -> CK_SESSION_HANDLE? {
        guard let entries = publishEntries() else { return nil }
        let index: Int? = lock.withLock {
            if let reused = freeIndices.pop() { return reused }
            guard highWater < entryCount else { return nil }
            (entries + highWater).initialize(to: SessionEntry(tag: Atomic(0), realHandle: Atomic(0), proxySlot: Atomic(0)))
            highWater += 1
            scanLimit.store(highWater, ordering: .releasing)
            return highWater - 1
        }
        guard let index else { return nil }
        let entry = entries + index
        let generation = ((entry.pointee.tag.load(ordering: .relaxed) & generationMask) + 2) & generationMask
        entry.pointee.realHandle.store(realHandle, ordering: .relaxed)
        entry.pointee.proxySlot.store(proxySlot, ordering: .relaxed)
        let tag = liveBit | generation | UInt64(caller) << 32 | UInt64(module) << 48
        // Sequentially consistent: pairs with the caller-state store in C_Finalize (see Sessions.swift).
        entry.pointee.tag.store(tag, ordering: .sequentiallyConsistent)
        return handle(index: index, tag: tag)
    }

    /// Retires a session; false if someone else retired it first.
    @discardableResult
    static func release(_ record: SessionRecord) -> Bool {
        guard let entries = publishEntries() else { return false }
        let dead = record.tag & generationMask
        guard (entries + record.index).pointee.tag.compareExchange(
            expected: record.tag, desired: dead, ordering: .acquiringAndReleasing).exchanged
        else { return false }
        lock.withLock { freeIndices.push(record.index) }
        return true
    }

    /// Every live session matching `filter`, for C_CloseAllSessions and C_Finalize.
    static func liveSessions(where filter: (_ caller: Int, _ module: Int, _ proxySlot: CK_SLOT_ID) -> Bool) -> [SessionRecord] {
        guard let entries = publishEntries() else { return [] }
        var found: [SessionRecord] = []
        let limit = scanLimit.load(ordering: .acquiring)
        for index in 0..<limit {
            let entry = entries + index
            let tag = entry.pointee.tag.load(ordering: .sequentiallyConsistent)
            guard tag & liveBit != 0 else { continue }
            let record = SessionRecord(index: index, tag: tag, module: Int(tag >> 48),
                                       realHandle: entry.pointee.realHandle.load(ordering: .relaxed),
                                       proxySlot: entry.pointee.proxySlot.load(ordering: .relaxed))
            guard entry.pointee.tag.load(ordering: .acquiring) == tag,
                  filter(record.caller, record.module, record.proxySlot) else { continue }
            found.append(record)
        }
        return found
    }

    /// In the fork child: every session belonged to the parent.
    static func forkChild() {
        lock.reinitializeInChild()
        guard let entries = entriesStorage else { return }
        let limit = scanLimit.load(ordering: .relaxed)
        for index in 0..<limit {
            let tag = (entries + index).pointee.tag.load(ordering: .relaxed)
            if tag & liveBit != 0 {
                (entries + index).pointee.tag.store(tag & generationMask, ordering: .relaxed)
                freeIndices.push(index)
            }
        }
    }
}

/// First-in first-out reuse of entry indices, so a just-closed handle's index is the last to
/// come back (with a new generation), which keeps stale handles from aliasing new sessions.
struct FreeIndexQueue {
    private var items: [Int] = []
    private var head = 0

    mutating func push(_ index: Int) { items.append(index) }

    mutating func pop() -> Int? {
        guard head < items.count else { return nil }
        let index = items[head]
        head += 1
        if head > 1024 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        return index
    }
}
