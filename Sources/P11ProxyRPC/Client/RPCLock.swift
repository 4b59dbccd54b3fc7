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

/// A pthread mutex with a condition variable on the monotonic clock (RPCChannel's turns).
final class RPCCondition: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func withLock<T, E: Error>(_ body: () throws(E) -> T) throws(E) -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Under the lock: wakes every waiter.
    func broadcast() { pthread_cond_broadcast(condition) }

    /// Under the lock: waits for a broadcast, or until `end` (monotonic milliseconds; nil: no
    /// bound). False once `end` has passed.
    func wait(until end: Int64?) -> Bool {
        guard let end else {
            pthread_cond_wait(condition, mutex)
            return true
        }
        var deadline = timespec(tv_sec: Int(end / 1000), tv_nsec: Int(end % 1000) * 1_000_000)
        return pthread_cond_timedwait(condition, mutex, &deadline) != ETIMEDOUT
    }
}
