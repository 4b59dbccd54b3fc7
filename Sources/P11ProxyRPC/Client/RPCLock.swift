// A pthread mutex. The client's locks are held across blocking socket I/O and taken in a fixed
// order (RemoteModule.swift says which); Synchronization.Mutex's closure-only API would have the
// replies' decoding and the callers' buffers written inside `sending` closures for no gain.
import Glibc

final class RPCLock: @unchecked Sendable {
    // Allocated once: the address must not move while threads wait on it.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>

    init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func lock() { pthread_mutex_lock(mutex) }

    /// In a fork child only: a thread of the parent may have held the lock at fork, and that
    /// thread does not exist here.
    func reinitializeInForkChild() { pthread_mutex_init(mutex, nil) }
    func unlock() { pthread_mutex_unlock(mutex) }

    func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}
