// The one thread p11proxy starts, and only while a trace file is open: it writes buffered
// records that have waited 100 ms, so a program that goes quiet (or hangs) still has its
// last calls on disk. Stopped and joined when the last caller finalises, so no thread is left
// behind after C_Finalize or dlclose; never started (and stopped if running) once a caller has
// initialised with CKF_LIBRARY_CANT_CREATE_OS_THREADS (TraceOutput.stopThreads).
import Glibc

enum TraceFlusher {
    // Who may touch them: `running`/`stopping` only while holding `mutex`; `thread` only from
    // start/stop, which run under ProxyRuntime's lock.
    nonisolated(unsafe) private static var running = false
    nonisolated(unsafe) private static var stopping = false
    nonisolated(unsafe) private static var thread = pthread_t()
    nonisolated(unsafe) private static let mutex: UnsafeMutablePointer<pthread_mutex_t> = {
        let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        return mutex
    }()
    nonisolated(unsafe) private static let condition: UnsafeMutablePointer<pthread_cond_t> = {
        let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
        initialize(condition)
        return condition
    }()

    private static func initialize(_ condition: UnsafeMutablePointer<pthread_cond_t>) {
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    static func start() {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        guard !running else { return }
        stopping = false
        let created = pthread_create(&thread, nil, { _ in
            TraceFlusher.run()
            return nil
        }, nil)
        running = created == 0
        if !running { Diagnostics.report("cannot start the trace flusher thread; traces are written when buffers fill") }
    }

    /// Waits for the thread to end; the caller then flushes what is left.
    static func stop() {
        pthread_mutex_lock(mutex)
        guard running else {
            pthread_mutex_unlock(mutex)
            return
        }
        stopping = true
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
        pthread_join(thread, nil)
        pthread_mutex_lock(mutex)
        running = false
        pthread_mutex_unlock(mutex)
    }

    private static func run() {
        pthread_mutex_lock(mutex)
        while !stopping {
            var deadline = timespec()
            clock_gettime(CLOCK_MONOTONIC, &deadline)
            deadline.tv_nsec += Int(TraceOutput.flushInterval)
            if deadline.tv_nsec >= 1_000_000_000 {
                deadline.tv_sec += 1
                deadline.tv_nsec -= 1_000_000_000
            }
            pthread_cond_timedwait(condition, mutex, &deadline)
            if stopping { break }
            pthread_mutex_unlock(mutex)
            TraceOutput.flushStale()
            pthread_mutex_lock(mutex)
        }
        pthread_mutex_unlock(mutex)
    }

    /// The thread does not exist in a fork child; the next trace file opened there starts one.
    /// The condition is made afresh too: the parent's thread may have been waiting on it.
    static func forkChild() {
        pthread_mutex_init(mutex, nil)
        initialize(condition)
        running = false
        stopping = false
    }
}
