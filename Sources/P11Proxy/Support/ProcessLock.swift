// A pthread mutex that survives fork(): held across fork by the atfork handlers, re-created
// in the child. Synchronization.Mutex cannot be taken in a prepare handler and released in
// another, so the few locks that fork must see in a known state are these.
import Glibc

final class ProcessLock: @unchecked Sendable {
    // Allocated once and never freed: the address must not move while threads wait on it.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    func lock() { pthread_mutex_lock(mutex) }
    func unlock() { pthread_mutex_unlock(mutex) }

    func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lock()
        defer { unlock() }
        return try body()
    }

    /// In the fork child only: the thread that may have held it in the parent does not exist here.
    func reinitializeInChild() { pthread_mutex_init(mutex, nil) }
}
