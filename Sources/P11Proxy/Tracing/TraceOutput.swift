// Where finished records go. One sink per file (or standard error); a record is appended
// in one piece under the sink lock, so records from concurrent threads never interleave.
//
// Files are buffered (up to 64 KiB) so tracing stays far under a microsecond per call, and
// flushed when the buffer fills, when a call returns anything but CKR_OK, within 100 ms of a
// record otherwise (TraceFlusher), at every C_Finalize, before fork and at exit. Standard
// error is written record by record, and so are files once a caller has initialised with
// CKF_LIBRARY_CANT_CREATE_OS_THREADS (no flusher thread then). A trace file is created with
// mode 0600.
import Glibc
import P11ProxyConfig
import P11ProxyLoader

final class TraceSink {
    let descriptor: Int32
    let buffered: Bool
    var buffer = TraceBuffer(capacity: TraceOutput.bufferLimit + 4096)
    var lastFlush: UInt64 = 0
    /// A record written since the last flush was traced with x-log-secrets: wipe after writing.
    var holdsSecrets = false

    init(descriptor: Int32, buffered: Bool) {
        self.descriptor = descriptor
        self.buffered = buffered
    }

    /// Under TraceOutput.lock.
    func flush() {
        guard !buffer.isEmpty else { return }
        let bytes = buffer.bytes
        var offset = 0
        while offset < bytes.count {
            let written = write(descriptor, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { break }
            offset += written
        }
        // The buffer may have held PINs or key bytes (x-log-secrets: yes): wiped before reuse.
        buffer.removeAll(wipe: holdsSecrets)
        holdsSecrets = false
    }
}

enum TraceOutput {
    static let bufferLimit = 64 * 1024
    static let flushInterval: UInt64 = 100_000_000

    static let lock = ProcessLock()
    // Who may touch them: only code holding `lock`.
    nonisolated(unsafe) static var sinksByPath: [String: TraceSink] = [:]
    /// By module index (ModuleTable.capacity entries). Unmanaged: every sink stays in
    /// `sinksByPath` or `standardError` for the life of the process, and a record then costs no
    /// reference counting (atomic instructions, a tenth of a traced call's time).
    nonisolated(unsafe) static var moduleSinks = [Unmanaged<TraceSink>?](repeating: nil, count: ModuleTable.capacity)
    /// Each module's name (UTF-8), replaced and the old one freed under `lock`.
    nonisolated(unsafe) static var moduleNames = [UnsafeBufferPointer<UInt8>](
        repeating: UnsafeBufferPointer(start: nil, count: 0), count: ModuleTable.capacity)
    nonisolated(unsafe) static var standardError: TraceSink?
    /// A caller initialised with CKF_LIBRARY_CANT_CREATE_OS_THREADS: no flusher thread in this
    /// process from then on, every record written as it completes. Never cleared: the flag says
    /// what the process's threads may do, and the thread would be started by one of them.
    nonisolated(unsafe) static var withoutThreads = false

    static let exitHandlerInstalled: Bool = {
        atexit { TraceOutput.flushAll() } == 0
    }()

    /// Points a module's records at its sink, opening the file the first time. Called under
    /// ProxyRuntime's lock when the configuration starts.
    static func configure(module: Int, name: String, settings: TraceSettings) {
        _ = exitHandlerInstalled
        let needsFlusher = lock.withLock {
            moduleNames[module].baseAddress?.deallocate()
            let bytes = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: name.utf8.count)
            _ = bytes.initialize(from: name.utf8)
            moduleNames[module] = UnsafeBufferPointer(bytes)
            let sink = sink(for: settings.path)
            moduleSinks[module] = Unmanaged.passUnretained(sink)
            return sink.buffered && !withoutThreads
        }
        if needsFlusher { TraceFlusher.start() }
    }

    /// CKF_LIBRARY_CANT_CREATE_OS_THREADS (ProxyRuntime.initialize, under its lock, like every
    /// start and stop of the flusher): stops the flusher if another caller had it started, and
    /// writes what it would have.
    static func stopThreads() {
        lock.withLock { withoutThreads = true }
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

    /// Appends a finished record. `urgent` (an error return) flushes at once. `now`: the
    /// record's end (monotonic), close enough to decide a flush without reading the clock again.
    static func emit(module: Int, urgent: Bool, secrets: Bool, now: UInt64,
                     build: (_ moduleName: UnsafeRawBufferPointer, _ out: inout TraceBuffer) -> Void) {
        lock.withLock {
            guard let unmanaged = moduleSinks[module] else { return }
            unmanaged._withUnsafeGuaranteedRef { sink in
                if secrets { sink.holdsSecrets = true }
                build(UnsafeRawBufferPointer(moduleNames[module]), &sink.buffer)
                if !sink.buffered || urgent || withoutThreads || sink.buffer.count >= bufferLimit {
                    sink.flush()
                    sink.lastFlush = now
                } else if now > sink.lastFlush && now - sink.lastFlush >= flushInterval {
                    // (Another thread's record may have ended later and flushed already.)
                    sink.flush()
                    sink.lastFlush = now
                }
            }
        }
    }

    static func flushAll() {
        lock.withLock { flushAllLocked() }
    }

    /// Whatever is buffered; TraceFlusher calls it every `flushInterval`, so a record waits at
    /// most that long after the call that made it.
    static func flushStale() {
        lock.withLock {
            let now = TraceInstant.monotonicNow()
            for sink in sinksByPath.values where !sink.buffer.isEmpty {
                sink.flush()
                sink.lastFlush = now
            }
        }
    }

    static func flushAllLocked() {
        for sink in sinksByPath.values { sink.flush() }
        standardError?.flush()
    }

    /// In the fork child: what the parent had buffered is the parent's to write.
    static func forkChild() {
        lock.reinitializeInChild()
        TraceFlusher.forkChild()
        for sink in sinksByPath.values { sink.buffer.removeAll(wipe: sink.holdsSecrets) }
        TraceScratch.forkChild()
    }
}

