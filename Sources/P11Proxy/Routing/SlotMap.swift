// Proxy slot IDs: (module, real slot ID) pairs numbered from 1 in the order first seen, never
// reused for the life of the process, so an ID a caller holds keeps meaning the same slot.
// ProxyRuntime lists every module's slots at C_Initialize, in load order, so IDs are valid
// before any C_GetSlotList and the same in every process that loads the same configuration.
// In spy mode (SpyModule) a slot's ID is the module's own.
// Lookup by proxy ID is lock-free (an append-only buffer); the reverse look-up (a linear search
// of that buffer: a process sees a handful of slots, and a [SlotKey: CK_SLOT_ID] cost ~85k
// instructions of runtime type instantiation in the first C_GetSlotList) takes a lock only to
// add a slot.
import CPKCS11
import Synchronization

struct SlotKey: Equatable {
    var module: ModuleIndex
    var realSlot: CK_SLOT_ID
}

enum SlotMap {
    /// Distinct slots in one process's life; hot-plugged readers usually reuse their IDs.
    static let capacity = 4096

    // Who may touch them: entries below `count` are immutable and read anywhere; appends
    // happen under `lock`.
    nonisolated(unsafe) private static let entriesStorage = UnsafeMutablePointer<SlotKey>.allocate(capacity: capacity)
    /// `entriesStorage`, for the hot path (PublishedTable).
    static let entries = PublishedTable<SlotKey>()

    @inline(never)
    static func publishEntries() -> UnsafeMutablePointer<SlotKey> { entries.publish(entriesStorage) }
    static let count = Atomic<Int>(0)
    static let lock = ProcessLock()

    @inline(__always)
    static func key(for proxySlot: CK_SLOT_ID) -> SlotKey? {
        if let spy = SpyModule.index { return SlotKey(module: spy, realSlot: proxySlot) }
        guard proxySlot >= 1, proxySlot <= UInt(count.load(ordering: .acquiring)), let entries = entries.base else { return nil }
        return entries[Int(proxySlot) - 1]
    }

    /// The proxy ID for a module's slot, assigned on first sight; nil only when the map is full.
    static func proxySlot(for key: SlotKey) -> CK_SLOT_ID? {
        if SpyModule.index == key.module { return key.realSlot }
        // Known slots (every call after the first) are found without the lock: entries below
        // `count` never change.
        if let entries = entries.base {
            for index in 0..<count.load(ordering: .acquiring) where entries[index] == key { return CK_SLOT_ID(index + 1) }
        }
        return lock.withLock {
            let next = count.load(ordering: .relaxed)
            let entries = publishEntries()
            for index in 0..<next where entries[index] == key { return CK_SLOT_ID(index + 1) }
            guard next < capacity else {
                Diagnostics.report("more than \(capacity) distinct slots seen; slot \(key.realSlot) of module #\(key.module.value) is not shown")
                return nil
            }
            (entries + next).initialize(to: key)
            count.store(next + 1, ordering: .releasing)
            return CK_SLOT_ID(next + 1)
        }
    }

    static func forkChild() { lock.reinitializeInChild() }
}
