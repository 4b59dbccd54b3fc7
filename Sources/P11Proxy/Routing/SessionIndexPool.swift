// Which session-table entries are free. Each thread keeps a small first-in first-out cache of
// free indices, so opening and closing sessions touches only that thread's memory; the shared
// pool behind SessionTable.lock is visited once per `batch` opens (or closes) that a cache
// cannot serve, as tcmalloc's thread caches visit its central lists. A thread that opens and
// closes in a loop never takes the lock; a session opened on one thread and closed on another
// costs one lock per `batch` sessions.
//
// Memory: one cache per thread that ever opened or closed a session, 192 bytes each (whole cache lines), kept
// for the next thread once its thread exits (so their number never exceeds the most threads
// alive at once), and at most `cacheCapacity` free indices held per live thread.
//
// Stale handles: a closed index goes to the back of its thread's cache, and a cache is topped
// up from the front of the shared pool whenever it holds `batch` or fewer, so at least `batch`
// indices are ahead of a closed one: a thread that loops open/close cycles through `batch` or
// more entries rather than one, and its stale handles take `batch` x 4096 opens, not 4096, to
// alias again (while the table has room for the caches).
import Glibc
import Synchronization

/// One thread's free indices: a ring of `SessionIndexPool.cacheCapacity`.
struct FreeIndexCache {
    var head = 0
    var count = 0
    /// Owned by no thread (its thread exited); handed to the next thread that needs one.
    var isSpare = false
    /// Every cache ever made, linked, so a thread-exit or fork child can find them all.
    var next: UnsafeMutablePointer<FreeIndexCache>?
    let items: UnsafeMutablePointer<UInt32>

    static let lineSize = 64
    /// Whole lines, so no other data shares one with a cache that another thread writes.
    static var footprint: Int { (MemoryLayout<FreeIndexCache>.stride + lineSize - 1) / lineSize * lineSize }

    init(next: UnsafeMutablePointer<FreeIndexCache>?) {
        self.next = next
        let bytes = (SessionIndexPool.cacheCapacity * MemoryLayout<UInt32>.stride + Self.lineSize - 1) / Self.lineSize * Self.lineSize
        items = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: Self.lineSize)
            .bindMemory(to: UInt32.self, capacity: SessionIndexPool.cacheCapacity)
    }

    @inline(__always)
    mutating func pop() -> Int {
        let index = Int(items[head])
        head = head + 1 == SessionIndexPool.cacheCapacity ? 0 : head + 1
        count -= 1
        return index
    }

    @inline(__always)
    mutating func push(_ index: Int) {
        var tail = head + count
        if tail >= SessionIndexPool.cacheCapacity { tail -= SessionIndexPool.cacheCapacity }
        items[tail] = UInt32(truncatingIfNeeded: index)
        count += 1
    }
}

enum SessionIndexPool {
    static let cacheCapacity = 32
    /// Indices moved between a cache and the shared pool at once.
    static let batch = 16

    // Who may touch them: only code holding SessionTable.lock. Index 0 is never handed out.
    nonisolated(unsafe) static var highWater = 1
    nonisolated(unsafe) static var shared = FreeIndexQueue()
    nonisolated(unsafe) static var caches: UnsafeMutablePointer<FreeIndexCache>?
    nonisolated(unsafe) static var cacheCount = 0

    /// The thread-specific key of each thread's cache, plus one (0: none, every open and close
    /// then takes the lock). Created by SessionTable.publishEntries, before any caller exists.
    private static let keyPlusOne = Atomic<UInt32>(0)

    static func createKey() {
        guard keyPlusOne.load(ordering: .acquiring) == 0 else { return }
        var key = pthread_key_t()
        // A thread's cache goes back at its exit: its indices to the shared pool, itself to the spares.
        guard pthread_key_create(&key, { cache in
            guard let cache else { return }
            SessionTable.lock.withLock { SessionIndexPool.retire(cache.assumingMemoryBound(to: FreeIndexCache.self)) }
        }) == 0 else { return }
        keyPlusOne.store(UInt32(key) + 1, ordering: .releasing)
    }

    @inline(__always)
    private static func threadCache() -> UnsafeMutablePointer<FreeIndexCache>? {
        let keyPlusOne = keyPlusOne.load(ordering: .relaxed)
        guard keyPlusOne != 0 else { return nil }
        if let cache = pthread_getspecific(pthread_key_t(keyPlusOne - 1)) {
            return cache.assumingMemoryBound(to: FreeIndexCache.self)
        }
        return attachCache(key: pthread_key_t(keyPlusOne - 1))
    }

    @inline(never)
    private static func attachCache(key: pthread_key_t) -> UnsafeMutablePointer<FreeIndexCache>? {
        let cache: UnsafeMutablePointer<FreeIndexCache> = SessionTable.lock.withLock {
            var spare = caches
            while let candidate = spare, !candidate.pointee.isSpare { spare = candidate.pointee.next }
            if let spare {
                spare.pointee.isSpare = false
                return spare
            }
            // A line of its own: its head and count change on every open and close.
            let made = UnsafeMutableRawPointer.allocate(byteCount: FreeIndexCache.footprint, alignment: FreeIndexCache.lineSize)
                .bindMemory(to: FreeIndexCache.self, capacity: 1)
            made.initialize(to: FreeIndexCache(next: caches))
            caches = made
            cacheCount += 1
            return made
        }
        guard pthread_setspecific(key, cache) == 0 else {
            SessionTable.lock.withLock { retire(cache) }
            return nil
        }
        return cache
    }

    /// A free index, or nil when the table is full.
    @inline(__always)
    static func take() -> Int? {
        guard let cache = threadCache() else { return SessionTable.lock.withLock { takeShared() } }
        if cache.pointee.count <= batch { refill(cache) }
        guard cache.pointee.count > 0 else { return nil }
        return cache.pointee.pop()
    }

    @inline(__always)
    static func give(_ index: Int) {
        guard let cache = threadCache() else { return SessionTable.lock.withLock { shared.push(index) } }
        if cache.pointee.count == cacheCapacity { spill(cache) }
        cache.pointee.push(index)
    }

    /// Fills the cache: the oldest free indices of the shared pool, or fresh ones while it holds
    /// less than a batch and the table has room (so a freed index waits behind others there too).
    @inline(never)
    private static func refill(_ cache: UnsafeMutablePointer<FreeIndexCache>) {
        SessionTable.lock.withLock {
            while cache.pointee.count < cacheCapacity, let index = takeShared() { cache.pointee.push(index) }
        }
    }

    /// Under the lock.
    private static func takeShared() -> Int? {
        if shared.count < batch, highWater < SessionTable.entryCount {
            highWater += 1
            SessionTable.scanLimit.store(highWater, ordering: .releasing)
            return highWater - 1
        }
        return shared.pop()
    }

    /// The cache's older half goes to the back of the shared pool.
    @inline(never)
    private static func spill(_ cache: UnsafeMutablePointer<FreeIndexCache>) {
        SessionTable.lock.withLock {
            for _ in 0..<batch { shared.push(cache.pointee.pop()) }
        }
    }

    /// Under the lock: every index the cache holds goes back to the shared pool.
    private static func retire(_ cache: UnsafeMutablePointer<FreeIndexCache>) {
        while cache.pointee.count > 0 { shared.push(cache.pointee.pop()) }
        cache.pointee.isSpare = true
    }

    /// In the fork child (the lock is fresh): only this thread exists, and no session is open, so
    /// every index below `highWater` is free. Other threads' caches become spares.
    static func forkChild() {
        shared = FreeIndexQueue()
        var cache = caches
        while let current = cache {
            current.pointee.head = 0
            current.pointee.count = 0
            current.pointee.isSpare = true
            cache = current.pointee.next
        }
        let keyPlusOne = keyPlusOne.load(ordering: .relaxed)
        if keyPlusOne != 0, let own = pthread_getspecific(pthread_key_t(keyPlusOne - 1)) {
            own.assumingMemoryBound(to: FreeIndexCache.self).pointee.isSpare = false
        }
        for index in 1..<max(highWater, 1) { shared.push(index) }
    }
}

/// First-in first-out reuse of entry indices, so a just-closed handle's index is the last to
/// come back (with a new generation), which keeps stale handles from aliasing new sessions.
struct FreeIndexQueue {
    private var items: [Int] = []
    private var head = 0

    var count: Int { items.count - head }

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
