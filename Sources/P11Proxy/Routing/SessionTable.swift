// Proxy session handles: unique across modules and callers, resolved to (module, real handle)
// in O(1) with a few atomic loads and no lock. Opening and closing take a small lock for the
// free list only.
//
// A handle is `generation << 20 | (index + 1)`, below 2^32 so callers that keep handles in
// 32-bit integers still work. Each entry's `tag` packs its 32-bit generation (odd while the
// session is live), the owning caller and the module; a reader checks the tag before and after
// reading the entry's data (a seqlock), so a handle closed and reused concurrently never
// resolves to another caller's session.
import CPKCS11
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
    var caller: Int
    var module: Int
    var realHandle: CK_SESSION_HANDLE
    var proxySlot: CK_SLOT_ID
}

enum SessionTable {
    static let indexBits = 20
    static let chunkBits = 12
    static let chunkSize = 1 << chunkBits
    static let chunkCount = (1 << indexBits) / chunkSize
    /// Index 0xFFFFF would make the low bits of the handle overflow into the generation.
    static let capacity = (1 << indexBits) - 1

    // Who may touch it: readers anywhere (atomics); chunks are allocated and published under
    // `lock` and never freed; entries are written by `open` (before publishing the tag) and
    // retired by `release` (compare-and-exchange on the tag).
    nonisolated(unsafe) private static let chunksStorage: UnsafeMutablePointer<Atomic<UnsafeMutablePointer<SessionEntry>?>> = {
        let chunks = UnsafeMutablePointer<Atomic<UnsafeMutablePointer<SessionEntry>?>>.allocate(capacity: chunkCount)
        for index in 0..<chunkCount { (chunks + index).initialize(to: Atomic(nil)) }
        return chunks
    }()

    static let lock = ProcessLock()
    // Who may touch them: only code holding `lock`.
    nonisolated(unsafe) static var highWater = 0
    nonisolated(unsafe) static var freeIndices = FreeIndexQueue()
    /// Read without the lock by scans; only grows.
    static let scanLimit = Atomic<Int>(0)

    /// `chunksStorage`'s address, published once (one load on the hot path instead of swift_once).
    private static let chunksAddress = Atomic<UInt>(0)

    @inline(__always)
    static var chunks: UnsafeMutablePointer<Atomic<UnsafeMutablePointer<SessionEntry>?>> { publishedPointer(chunksAddress, publish: publishChunks) }

    @inline(never)
    static func publishChunks() -> UnsafeMutablePointer<Atomic<UnsafeMutablePointer<SessionEntry>?>> { publish(chunksStorage, into: chunksAddress) }

    @inline(__always)
    static func entry(_ index: Int) -> UnsafeMutablePointer<SessionEntry>? {
        guard let chunk = chunks[index >> chunkBits].load(ordering: .acquiring) else { return nil }
        return chunk + (index & (chunkSize - 1))
    }

    @inline(__always)
    static func handle(index: Int, tag: UInt64) -> CK_SESSION_HANDLE {
        let generation = (UInt(truncatingIfNeeded: tag) >> 1) & 0xFFF
        return generation << UInt(indexBits) | UInt(index + 1)
    }

    /// The hot path: resolve a caller's handle, or nil if it is not a live session of that caller.
    @inline(__always)
    static func resolve(_ handle: CK_SESSION_HANDLE, caller: Int) -> SessionRecord? {
        let low = Int(handle & UInt((1 << indexBits) - 1))
        guard low != 0, handle >> 32 == 0, let entry = entry(low - 1) else { return nil }
        let tag = entry.pointee.tag.load(ordering: .acquiring)
        guard tag & 1 == 1,
              (UInt(truncatingIfNeeded: tag) >> 1) & 0xFFF == handle >> UInt(indexBits),
              Int((tag >> 32) & 0xFFFF) == caller
        else { return nil }
        let realHandle = entry.pointee.realHandle.load(ordering: .relaxed)
        let proxySlot = entry.pointee.proxySlot.load(ordering: .relaxed)
        atomicMemoryFence(ordering: .acquiring)
        guard entry.pointee.tag.load(ordering: .relaxed) == tag else { return nil }
        return SessionRecord(index: low - 1, tag: tag, caller: caller, module: Int(tag >> 48),
                             realHandle: realHandle, proxySlot: proxySlot)
    }

    /// Registers a session the module opened; nil when the table is full.
    static func open(caller: Int, module: Int, proxySlot: CK_SLOT_ID, realHandle: CK_SESSION_HANDLE) -> CK_SESSION_HANDLE? {
        let index: Int? = lock.withLock {
            if let reused = freeIndices.pop() { return reused }
            guard highWater < capacity else { return nil }
            let fresh = highWater
            if entry(fresh) == nil {
                let chunk = UnsafeMutablePointer<SessionEntry>.allocate(capacity: chunkSize)
                for offset in 0..<chunkSize {
                    (chunk + offset).initialize(to: SessionEntry(tag: Atomic(0), realHandle: Atomic(0), proxySlot: Atomic(0)))
                }
                chunks[fresh >> chunkBits].store(chunk, ordering: .releasing)
            }
            highWater += 1
            scanLimit.store(highWater, ordering: .releasing)
            return fresh
        }
        guard let index, let entry = entry(index) else { return nil }
        let generation = (entry.pointee.tag.load(ordering: .relaxed) & 0xFFFF_FFFF) | 1
        entry.pointee.realHandle.store(realHandle, ordering: .relaxed)
        entry.pointee.proxySlot.store(proxySlot, ordering: .relaxed)
        let tag = generation | UInt64(caller) << 32 | UInt64(module) << 48
        // Sequentially consistent: pairs with the caller-state store in C_Finalize (see Sessions.swift).
        entry.pointee.tag.store(tag, ordering: .sequentiallyConsistent)
        return handle(index: index, tag: tag)
    }

    /// Retires a session; false if someone else retired it first.
    @discardableResult
    static func release(_ record: SessionRecord) -> Bool {
        guard let entry = entry(record.index) else { return false }
        let dead = ((record.tag & 0xFFFF_FFFF) &+ 1) & 0xFFFF_FFFF
        guard entry.pointee.tag.compareExchange(expected: record.tag, desired: dead, ordering: .acquiringAndReleasing).exchanged
        else { return false }
        lock.withLock { freeIndices.push(record.index) }
        return true
    }

    /// Every live session matching `filter`, for C_CloseAllSessions and C_Finalize.
    static func liveSessions(where filter: (_ caller: Int, _ module: Int, _ proxySlot: CK_SLOT_ID) -> Bool) -> [SessionRecord] {
        var found: [SessionRecord] = []
        let limit = scanLimit.load(ordering: .acquiring)
        for index in 0..<limit {
            guard let entry = entry(index) else { continue }
            let tag = entry.pointee.tag.load(ordering: .sequentiallyConsistent)
            guard tag & 1 == 1 else { continue }
            let caller = Int((tag >> 32) & 0xFFFF), module = Int(tag >> 48)
            let record = SessionRecord(index: index, tag: tag, caller: caller, module: module,
                                       realHandle: entry.pointee.realHandle.load(ordering: .relaxed),
                                       proxySlot: entry.pointee.proxySlot.load(ordering: .relaxed))
            guard entry.pointee.tag.load(ordering: .acquiring) == tag,
                  filter(caller, module, record.proxySlot) else { continue }
            found.append(record)
        }
        return found
    }

    /// In the fork child: every session belonged to the parent.
    static func forkChild() {
        lock.reinitializeInChild()
        let limit = scanLimit.load(ordering: .relaxed)
        for index in 0..<limit {
            guard let entry = entry(index) else { continue }
            let tag = entry.pointee.tag.load(ordering: .relaxed)
            if tag & 1 == 1 {
                entry.pointee.tag.store(((tag & 0xFFFF_FFFF) &+ 1) & 0xFFFF_FFFF, ordering: .relaxed)
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
