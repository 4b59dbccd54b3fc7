// The current configuration's modules in load order, for the calls that visit every module
// (C_GetSlotList, C_WaitForSlotEvent) without a lock: a sequence lock over a fixed array.
// It changes only when the first caller initialises and the last finalises; readers copy it and
// copy again if a change ran meanwhile.
import Synchronization

enum ActiveModules {
    // Who may touch them: stored by `publish` (ProxyRuntime.update, under ProxyRuntime's locks,
    // or the fork child's single thread); read by anyone through `current`.
    /// Odd while `publish` runs.
    private static let sequence = Atomic<UInt>(0)
    private static let count = Atomic<Int>(0)
    nonisolated(unsafe) private static let indices: UnsafeMutablePointer<Atomic<Int>> = {
        let indices = UnsafeMutablePointer<Atomic<Int>>.allocate(capacity: ModuleTable.capacity)
        for index in 0..<ModuleTable.capacity { (indices + index).initialize(to: Atomic(0)) }
        return indices
    }()

    static func publish(_ modules: [ModuleIndex]) {
        let start = sequence.load(ordering: .relaxed)
        sequence.store(start &+ 1, ordering: .relaxed)
        atomicMemoryFence(ordering: .releasing)
        let stored = min(modules.count, ModuleTable.capacity)
        for offset in 0..<stored { indices[offset].store(modules[offset].value, ordering: .relaxed) }
        count.store(stored, ordering: .relaxed)
        sequence.store(start &+ 2, ordering: .releasing)
    }

    /// The modules' ModuleTable indices, in load order.
    static func current() -> [ModuleIndex] {
        while true {
            let before = sequence.load(ordering: .acquiring)
            guard before & 1 == 0 else { continue }
            let stored = count.load(ordering: .relaxed)
            var modules: [ModuleIndex] = []
            modules.reserveCapacity(stored)
            for offset in 0..<stored { modules.append(ModuleIndex(indices[offset].load(ordering: .relaxed))) }
            atomicMemoryFence(ordering: .acquiring)
            if sequence.load(ordering: .relaxed) == before { return modules }
        }
    }
}
