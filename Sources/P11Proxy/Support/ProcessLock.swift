// A pthread mutex that survives fork(): held across fork by the atfork handlers, re-created
// in the child. Synchronization.Mutex cannot be taken in a prepare handler and released in
// another, so the few locks that fork must see in a known state are these.
import Glibc
import Synchronization

final class ProcessLock: @unchecked Sendable {
    // Allocated once and never freed: the address must not move while threads wait on it.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    /// pthread_self() of the holder, 0 when free: lets a re-entrant call fail instead of deadlocking.
    private let owner = Atomic<UInt>(0)

    init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    func lock() {
        pthread_mutex_lock(mutex)
        owner.store(UInt(pthread_self()), ordering: .relaxed)
    }

    /// Takes the lock if it is free; false (and nothing held) if another thread has it.
    func tryLock() -> Bool {
        guard pthread_mutex_trylock(mutex) == 0 else { return false }
        owner.store(UInt(pthread_self()), ordering: .relaxed)
        return true
    }

    func unlock() {
        owner.store(0, ordering: .relaxed)
        pthread_mutex_unlock(mutex)
    }

    /// True only on the thread that holds the lock (another thread's store is never our id).
    var isHeldByCurrentThread: Bool { owner.load(ordering: .relaxed) == UInt(pthread_self()) }

    func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lock()
        defer { unlock() }
        return try body()
    }

    /// In the fork child only: the thread that may have held it in the parent does not exist here.
    func reinitializeInChild() {
        owner.store(0, ordering: .relaxed)
        pthread_mutex_init(mutex, nil)
    }
}
