// Where finished records go. One sink per file (or standard error). Each thread builds its
// records straight into its own pending buffer (TraceScratch.pending) under that thread's own
// lock, and writes the buffer, whole records only, with one write(2) under the sink's write
// lock; so threads tracing into one file share no lock per record, only one per batch, and a
// thread that finds another writing builds on instead of waiting (up to a ceiling). Records of
// concurrent threads never interleave; a file shows each thread's records in order, batches of
// threads side by side.
//
// Files are buffered (`threadBufferLimit` per thread) so tracing stays far under a
// microsecond per call, and written when the buffer fills, when a call returns anything but
// CKR_OK, within 100 ms of a record otherwise (TraceFlusher writes every thread's), at every
// C_Finalize, before fork, at a thread's exit and at the process's. Standard error is written
// record by record, and so are files once a caller has initialised with
// CKF_LIBRARY_CANT_CREATE_OS_THREADS (no flusher thread then). A trace file is created with
// mode 0600.
import Glibc
import P11ProxyConfig
import P11ProxyLoader
import Synchronization

final class TraceSink {
    let descriptor: Int32
    let buffered: Bool
    /// Held around write(2) only, so that one batch lands in one piece even where the kernel
    /// takes it in parts (a pipe, a short write).
    let writeLock = ProcessLock()

    init(descriptor: Int32, buffered: Bool) {
        self.descriptor = descriptor
        self.buffered = buffered
    }

    /// Writes `bytes` whole; with `waiting` false, only if no other thread is writing to this
    /// sink now (false: nothing written).
    @discardableResult
    func write(_ bytes: UnsafeRawBufferPointer, waiting: Bool = true) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        if waiting { writeLock.lock() } else if !writeLock.tryLock() { return false }
        defer { writeLock.unlock() }
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(descriptor, base + offset, bytes.count - offset)
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { break }
            offset += written
        }
        return true
    }
}

/// A module's sink and name as its records use them; replaced (never changed) when the
/// configuration starts again, and kept for the life of the process, since a thread may still
/// be tracing with the old one.
final class TraceTarget {
    let sink: TraceSink
    let name: UnsafeBufferPointer<UInt8>

    init(sink: TraceSink, name: String) {
        self.sink = sink
        let bytes = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: name.utf8.count)
        _ = bytes.initialize(from: name.utf8)
        self.name = UnsafeBufferPointer(bytes)
    }

    func matches(_ otherSink: TraceSink, _ otherName: String) -> Bool {
        sink === otherSink && name.elementsEqual(otherName.utf8)
    }
}

enum TraceOutput {
    /// A thread's pending records are written once they reach this, if no other thread is
    /// writing to the same file at that moment; otherwise the thread builds on and tries again
    /// every `retryStep` bytes, and waits for the file only at `threadBufferCeiling`. A thread
    /// that waited behind another's write(2) (a kernel that holds the file's lock for the
    /// whole write anyway) made 2 threads tracing into one file slower than one.
    static let threadBufferLimit = 16 * 1024
    static let retryStep = 4 * 1024
    /// Its buffer stays below this plus its largest record.
    static let threadBufferCeiling = 4 * threadBufferLimit
    static let flushInterval: UInt64 = 100_000_000

    /// Guards the lists below and the set of registered threads; taken when a thread first
    /// traces into a file, at its exit, by whole-process flushes and across fork. Lock order:
    /// `lock`, a thread's pending lock, a sink's write lock.
    static let lock = ProcessLock()
    // Who may touch them: only code holding `lock`.
    nonisolated(unsafe) static var sinksByPath: [String: TraceSink] = [:]
    nonisolated(unsafe) static var standardError: TraceSink?
    /// Every target ever made (they are never freed, see TraceTarget).
    nonisolated(unsafe) static var targets: [TraceTarget] = []
    /// Threads with a pending buffer (TraceScratch.isRegistered).
    nonisolated(unsafe) static var threads: [Unmanaged<TraceScratch>] = []

    /// By module index (ModuleTable.capacity entries): a TraceTarget's address or 0, stored
    /// under `lock`, read anywhere. Unmanaged: a record costs no reference counting.
    nonisolated(unsafe) private static let moduleTargetsStorage: UnsafeMutablePointer<Atomic<UInt>> = {
        let targets = UnsafeMutablePointer<Atomic<UInt>>.allocate(capacity: ModuleTable.capacity)
        for index in 0..<ModuleTable.capacity { (targets + index).initialize(to: Atomic(0)) }
        return targets
    }()
    /// `moduleTargetsStorage`, for records (PublishedTable): published by the first `configure`
    /// (no record is made before it).
    private static let moduleTargets = PublishedTable<Atomic<UInt>>()

    /// A caller initialised with CKF_LIBRARY_CANT_CREATE_OS_THREADS: no flusher thread in this
    /// process from then on, every record written as it completes. Never cleared: the flag says
    /// what the process's threads may do, and the thread would be started by one of them.
    static let withoutThreads = Atomic<Bool>(false)

    static let exitHandlerInstalled: Bool = {
        atexit { TraceOutput.flushAll() } == 0
    }()

    /// Points a module's records at its sink, opening the file the first time. Called under
    /// ProxyRuntime's lock when the configuration starts.
    static func configure(module: ModuleIndex, name: String, settings: TraceSettings) {
        _ = exitHandlerInstalled
        let needsFlusher = lock.withLock {
            let moduleTargets = moduleTargets.publish(moduleTargetsStorage)
            let sink = sink(for: settings.path)
            let current = UnsafeRawPointer(bitPattern: moduleTargets[module.value].load(ordering: .acquiring))
                .map { Unmanaged<TraceTarget>.fromOpaque($0).takeUnretainedValue() }
            if current == nil || !current!.matches(sink, name) {
                let target = TraceTarget(sink: sink, name: name)
                targets.append(target)
                moduleTargets[module.value].store(UInt(bitPattern: Unmanaged.passUnretained(target).toOpaque()), ordering: .releasing)
            }
            return sink.buffered && !withoutThreads.load(ordering: .relaxed)
        }
        if needsFlusher { TraceFlusher.start() }
    }

    /// CKF_LIBRARY_CANT_CREATE_OS_THREADS (ProxyRuntime.initialize, under its lock, like every
    /// start and stop of the flusher): stops the flusher if another caller had it started, and
    /// writes what it would have.
    static func stopThreads() {
        withoutThreads.store(true, ordering: .sequentiallyConsistent)
        TraceFlusher.stop()
        flushAll()
    }

    private static func sink(for path: String?) -> TraceSink {
        guard let path else { return stderrSink() }
        if let existing = sinksByPath[path] { return existing }
        let descriptor: Int32
        do {
            descriptor = try Syscalls.openForAppending(path)
        } catch {
            Diagnostics.report("cannot open trace file \(path): \(error); tracing to standard error instead")
            return stderrSink()
        }
        let sink = TraceSink(descriptor: descriptor, buffered: true)
        sinksByPath[path] = sink
        return sink
    }

    private static func stderrSink() -> TraceSink {
        if let standardError { return standardError }
        let sink = TraceSink(descriptor: 2, buffered: false)
        standardError = sink
        return sink
    }

    /// Appends a finished record to this thread's pending buffer. `urgent` (an error return, a
    /// record with secrets) writes it at once. `now`: the record's end (monotonic), close enough
    /// to decide a flush without reading the clock again. `thread`: this thread's scratch, when
    /// the record already holds it.
    static func emit(module: ModuleIndex, thread: Unmanaged<TraceScratch>?, urgent: Bool, secrets: Bool, now: UInt64,
                     build: (_ moduleName: UnsafeRawBufferPointer, _ out: inout TraceBuffer) -> Void) {
        guard let moduleTargets = moduleTargets.base,
              let address = UnsafeRawPointer(bitPattern: moduleTargets[module.value].load(ordering: .acquiring)) else { return }
        let thread = thread ?? Unmanaged.passUnretained(TraceScratch.current())
        Unmanaged<TraceTarget>.fromOpaque(address)._withUnsafeGuaranteedRef { target in
            thread._withUnsafeGuaranteedRef { scratch in
                append(to: scratch, target: target, urgent: urgent, secrets: secrets, now: now, build: build)
            }
        }
    }

    @inline(__always)
    private static func append(to scratch: TraceScratch, target: TraceTarget, urgent: Bool, secrets: Bool, now: UInt64,
                               build: (_ moduleName: UnsafeRawBufferPointer, _ out: inout TraceBuffer) -> Void) {
        if !scratch.isRegistered { register(scratch) }
        scratch.lockPending()
        defer { scratch.unlockPending() }
        let sink = Unmanaged.passUnretained(target.sink)
        // A thread's pending records all go to one sink.
        if let previous = scratch.pendingSink, previous.toOpaque() != sink.toOpaque() { scratch.writePending() }
        scratch.pendingSink = sink
        if secrets { scratch.pendingHoldsSecrets = true }
        build(UnsafeRawBufferPointer(target.name), &scratch.pending)
        if !target.sink.buffered || urgent || withoutThreads.load(ordering: .relaxed) {
            scratch.writePending()
            scratch.lastFlush = now
        } else if scratch.pending.count >= scratch.nextWriteAt
            || (now > scratch.lastFlush && now - scratch.lastFlush >= flushInterval) {
            // Written now, or at the next retry step: a failed attempt leaves lastFlush at now,
            // so the time rule does not retry on every record.
            if !scratch.writePending(waiting: scratch.pending.count >= threadBufferCeiling) {
                scratch.nextWriteAt = scratch.pending.count + retryStep
            }
            scratch.lastFlush = now
        }
    }

    /// Once per thread, before its first record.
    @inline(never)
    private static func register(_ scratch: TraceScratch) {
        // Sized once, before other threads can see it: growing by doubling would leave each
        // smaller block behind in this thread's malloc arena.
        scratch.pending.reserve(threadBufferCeiling + 4096)
        lock.withLock {
            threads.append(Unmanaged.passUnretained(scratch))
            scratch.isRegistered = true
        }
    }

    /// A thread's exit (TraceScratch's key destructor): its records are written, and it leaves
    /// the list before it is freed.
    static func threadExits(_ scratch: TraceScratch) {
        guard scratch.isRegistered else { return }
        lock.withLock {
            threads.removeAll { $0.toOpaque() == Unmanaged.passUnretained(scratch).toOpaque() }
            scratch.isRegistered = false
            scratch.lockPending()
            scratch.writePending()
            scratch.unlockPending()
        }
    }

    static func flushAll() {
        lock.withLock { flushAllLocked() }
    }

    /// Whatever is pending; TraceFlusher calls it every `flushInterval`, so a record waits at
    /// most that long after the call that made it.
    static func flushStale() {
        lock.withLock {
            let now = TraceInstant.monotonicNow()
            for thread in threads {
                let scratch = thread.takeUnretainedValue()
                scratch.lockPending()
                if !scratch.pending.isEmpty {
                    scratch.writePending()
                    scratch.lastFlush = now
                }
                scratch.unlockPending()
            }
        }
    }

    /// Under `lock`.
    static func flushAllLocked() {
        for thread in threads {
            let scratch = thread.takeUnretainedValue()
            scratch.lockPending()
            scratch.writePending()
            scratch.unlockPending()
        }
    }

    /// Before fork, on the forking thread: everything pending is written now (or the child would
    /// write the parent's records a second time), and every lock the child's copy needs whole is
    /// held across the fork.
    static func forkPrepare() {
        lock.lock()
        for thread in threads {
            let scratch = thread.takeUnretainedValue()
            scratch.lockPending()
            scratch.writePending()
        }
        for sink in sinksByPath.values { sink.writeLock.lock() }
        standardError?.writeLock.lock()
    }

    static func forkParent() {
        standardError?.writeLock.unlock()
        for sink in sinksByPath.values { sink.writeLock.unlock() }
        for thread in threads { thread.takeUnretainedValue().unlockPending() }
        lock.unlock()
    }

    /// In the fork child: only this thread exists; what the parent had pending is the parent's
    /// to write (forkPrepare wrote it, so there is none).
    static func forkChild() {
        lock.reinitializeInChild()
        for sink in sinksByPath.values { sink.writeLock.reinitializeInChild() }
        standardError?.writeLock.reinitializeInChild()
        // Other threads' entries stay (empty, never written again): their exit never runs here.
        for thread in threads {
            let scratch = thread.takeUnretainedValue()
            scratch.reinitializePendingLockInChild()
            scratch.discardPending()
        }
        TraceFlusher.forkChild()
        TraceScratch.forkChild()
    }
}
