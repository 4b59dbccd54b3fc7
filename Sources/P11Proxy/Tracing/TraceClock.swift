// Time and thread identity for trace records: wall-clock start (UTC, microseconds), a
// monotonic duration, and the kernel thread id (what top, gdb and /proc show).
import Glibc

struct TraceInstant {
    var wallSeconds: Int
    var wallNanoseconds: Int
    var monotonicNanoseconds: UInt64

    static func now() -> TraceInstant {
        var wall = timespec(), mono = timespec()
        clock_gettime(CLOCK_REALTIME, &wall)
        clock_gettime(CLOCK_MONOTONIC, &mono)
        return TraceInstant(wallSeconds: wall.tv_sec, wallNanoseconds: wall.tv_nsec,
                            monotonicNanoseconds: UInt64(mono.tv_sec) &* 1_000_000_000 &+ UInt64(mono.tv_nsec))
    }

    static func monotonicNow() -> UInt64 {
        var mono = timespec()
        clock_gettime(CLOCK_MONOTONIC, &mono)
        return UInt64(mono.tv_sec) &* 1_000_000_000 &+ UInt64(mono.tv_nsec)
    }

    /// "2026-11-22T01:56:34.123456Z", by arithmetic (days-to-civil, H. Hinnant) rather than
    /// gmtime_r, which takes a lock on the time zone on some libcs.
    func appendISO8601(to out: inout TraceBuffer) {
        let scratch = TraceScratch.current()
        if scratch.timestampSecond != wallSeconds {
            scratch.timestampSecond = wallSeconds
            scratch.timestampPrefix.removeAll()
            appendDateAndTime(to: &scratch.timestampPrefix)
        }
        out.append(contentsOf: scratch.timestampPrefix)
        out.append(UInt8(ascii: "."))
        TraceText.appendPadded(wallNanoseconds / 1000, width: 6, to: &out)
        out.append(UInt8(ascii: "Z"))
    }

    /// "2026-11-22T01:56:34", computed once per second per thread (TraceScratch caches it).
    func appendDateAndTime(to out: inout TraceBuffer) {
        let days = wallSeconds >= 0 ? wallSeconds / 86400 : (wallSeconds - 86399) / 86400
        let secondOfDay = wallSeconds - days * 86400
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        TraceText.appendPadded(year, width: 4, to: &out)
        out.append(UInt8(ascii: "-"))
        TraceText.appendPadded(month, width: 2, to: &out)
        out.append(UInt8(ascii: "-"))
        TraceText.appendPadded(day, width: 2, to: &out)
        out.append(UInt8(ascii: "T"))
        TraceText.appendPadded(secondOfDay / 3600, width: 2, to: &out)
        out.append(UInt8(ascii: ":"))
        TraceText.appendPadded(secondOfDay / 60 % 60, width: 2, to: &out)
        out.append(UInt8(ascii: ":"))
        TraceText.appendPadded(secondOfDay % 60, width: 2, to: &out)
    }
}

enum TraceThread {
    // Who may touch it: created once by `key`'s initialiser; each thread stores only its own value.
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key, nil)
        return key
    }()

    /// The kernel thread id, read once per thread from /proc/thread-self ("PID/task/TID").
    static func current() -> Int {
        if let cached = pthread_getspecific(key) { return Int(bitPattern: cached) }
        var buffer = [CChar](repeating: 0, count: 64)
        let count = readlink("/proc/thread-self", &buffer, buffer.count - 1)
        var tid = Int(getpid())
        if count > 0 {
            let text = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if let last = text.split(separator: "/").last, let value = Int(last) { tid = value }
        }
        pthread_setspecific(key, UnsafeRawPointer(bitPattern: tid))
        return tid
    }

    /// In a fork child the one remaining thread has a new id.
    static func forkChild() { pthread_setspecific(key, nil) }
}
