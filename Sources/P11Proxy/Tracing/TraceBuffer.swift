// The bytes of trace records: raw memory that grows by doubling, so an append is a bounds
// check and a copy (no uniqueness check, no allocation once warm). Each thread keeps its own
// for building records and one for its finished records not yet written (TraceScratch).
import Glibc

struct TraceBuffer {
    private(set) var base: UnsafeMutablePointer<UInt8>
    private(set) var count = 0
    private(set) var capacity: Int

    init(capacity: Int) {
        self.capacity = max(capacity, 64)
        base = .allocate(capacity: self.capacity)
    }

    /// Only by the owner, once (buffers are values; copies share the memory).
    func deallocate() { base.deallocate() }

    var isEmpty: Bool { count == 0 }
    var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }

    @inline(__always)
    mutating func reserve(_ extra: Int) {
        if count + extra > capacity { grow(count + extra) }
    }

    @inline(never)
    private mutating func grow(_ needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.update(from: base, count: count)
        // The old memory may hold secrets (x-log-secrets): wiped before it is given back
        // (explicit_bzero: a store before free cannot be optimised away).
        explicit_bzero(base, capacity)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) {
        reserve(1)
        base[count] = byte
        count += 1
    }

    @inline(__always)
    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        reserve(bytes.count)
        memcpy(base + count, source, bytes.count)
        count += bytes.count
    }

    /// `length` bytes written straight into the buffer by `body`, after one capacity check
    /// (number and hex formatting: a check per byte was most of a traced call's cost).
    @inline(__always)
    mutating func append(length: Int, _ body: (UnsafeMutablePointer<UInt8>) -> Void) {
        reserve(length)
        body(base + count)
        count += length
    }

    @inline(__always)
    mutating func append(_ text: StaticString) {
        append(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    mutating func append(contentsOf bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    mutating func append(contentsOf other: TraceBuffer) {
        append(other.bytes)
    }

    mutating func append(contentsOf bytes: Slice<UnsafeRawBufferPointer>) {
        append(UnsafeRawBufferPointer(rebasing: bytes))
    }

    /// Empties the buffer; `wipe` zeroes what it held first (PINs, key bytes).
    mutating func removeAll(wipe: Bool = false) {
        if wipe { explicit_bzero(base, count) }
        count = 0
    }
}

/// Each thread's pair of buffers for building records, so a traced call allocates nothing once
/// its thread has traced a call before. Freed when the thread exits.
final class TraceScratch {
    var inputs = TraceBuffer(capacity: 1024)
    var outputs = TraceBuffer(capacity: 1024)
    /// C_GetAttributeValue's template as the caller supplied it (TraceRecord.rememberTemplate).
    var supplied = TraceBuffer(capacity: 256)
    /// A record is being built with these buffers (a nested record gets its own).
    var inUse = false
    /// The kernel thread id (what top, gdb and /proc show), read once per thread.
    lazy var threadID: Int = TraceScratch.readThreadID()
    /// The date and time to the second of the last record's start, already formatted.
    var timestampSecond = Int.min
    var timestampPrefix = TraceBuffer(capacity: 32)
    /// CLOCK_REALTIME minus CLOCK_MONOTONIC, and the monotonic time it is re-read after
    /// (TraceInstant.now).
    var wallOffset: Int64 = 0
    var wallOffsetValidUntil: UInt64 = 0

    // Who may touch them: this thread, and whole-process flushes on other threads (TraceOutput),
    // only while holding `pendingLock`.
    /// Finished records not yet written, all for `pendingSink`.
    var pending = TraceBuffer(capacity: 256)
    var pendingSink: Unmanaged<TraceSink>?
    /// A pending record was traced with x-log-secrets: wiped after writing.
    var pendingHoldsSecrets = false
    /// When this thread's pending records were last written, or a write was last tried (monotonic).
    var lastFlush: UInt64 = 0
    /// The pending size at which the next write is tried (TraceOutput.append).
    var nextWriteAt = TraceOutput.threadBufferLimit
    private let pendingLock: UnsafeMutablePointer<pthread_mutex_t> = {
        let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        return mutex
    }()
    /// In TraceOutput.threads; set and cleared under TraceOutput.lock, read by this thread.
    var isRegistered = false

    deinit {
        inputs.removeAll(wipe: true)
        outputs.removeAll(wipe: true)
        pending.removeAll(wipe: pendingHoldsSecrets)
        inputs.deallocate()
        outputs.deallocate()
        supplied.deallocate()
        timestampPrefix.deallocate()
        pending.deallocate()
        pthread_mutex_destroy(pendingLock)
        pendingLock.deallocate()
    }

    @inline(__always) func lockPending() { pthread_mutex_lock(pendingLock) }
    @inline(__always) func unlockPending() { pthread_mutex_unlock(pendingLock) }

    /// Under `pendingLock`: the pending records in one write, then the buffer wiped if it held
    /// PINs or key bytes (x-log-secrets: yes). With `waiting` false, nothing happens (false) while
    /// another thread writes to the same sink.
    @discardableResult
    func writePending(waiting: Bool = true) -> Bool {
        if let sink = pendingSink, !pending.isEmpty {
            guard sink._withUnsafeGuaranteedRef({ $0.write(pending.bytes, waiting: waiting) }) else { return false }
        }
        pending.removeAll(wipe: pendingHoldsSecrets)
        pendingHoldsSecrets = false
        nextWriteAt = TraceOutput.threadBufferLimit
        return true
    }

    /// In a fork child: the parent's records are the parent's to write.
    func discardPending() {
        pending.removeAll(wipe: pendingHoldsSecrets)
        pendingHoldsSecrets = false
    }

    func reinitializePendingLockInChild() { pthread_mutex_init(pendingLock, nil) }

    // Who may touch it: created once; each thread stores only its own value.
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { pointer in
            guard let pointer else { return }
            let scratch = Unmanaged<TraceScratch>.fromOpaque(pointer)
            TraceOutput.threadExits(scratch.takeUnretainedValue())
            scratch.release()
        }
        return key
    }()

    /// From /proc/thread-self ("PID/task/TID").
    static func readThreadID() -> Int {
        var buffer = [CChar](repeating: 0, count: 64)
        let count = readlink("/proc/thread-self", &buffer, buffer.count - 1)
        guard count > 0 else { return Int(getpid()) }
        let text = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.split(separator: "/").last.flatMap { Int($0) } ?? Int(getpid())
    }

    /// In a fork child the one remaining thread has a new id.
    static func forkChild() { current().threadID = readThreadID() }

    static func current() -> TraceScratch {
        if let existing = pthread_getspecific(key) {
            return Unmanaged<TraceScratch>.fromOpaque(existing).takeUnretainedValue()
        }
        let scratch = TraceScratch()
        pthread_setspecific(key, Unmanaged.passRetained(scratch).toOpaque())
        return scratch
    }
}
