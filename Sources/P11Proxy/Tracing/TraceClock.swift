// Time for trace records: wall-clock start (UTC, microseconds) and a monotonic duration.
import Glibc

struct TraceInstant {
    var wallSeconds: Int
    var wallNanoseconds: Int
    var monotonicNanoseconds: UInt64

    /// One clock read: the wall-clock time is the monotonic one plus an offset each thread
    /// refreshes from CLOCK_REALTIME once a second (`cache`), so a change of the system time
    /// shows within a second. clock_gettime was a sixth of a traced call's time here.
    static func now(cache scratch: TraceScratch) -> TraceInstant {
        let monotonic = monotonicNow()
        if monotonic >= scratch.wallOffsetValidUntil {
            var wall = timespec()
            clock_gettime(CLOCK_REALTIME, &wall)
            let wallNanoseconds = Int64(wall.tv_sec) &* 1_000_000_000 &+ Int64(wall.tv_nsec)
            scratch.wallOffset = wallNanoseconds &- Int64(bitPattern: monotonic)
            scratch.wallOffsetValidUntil = monotonic &+ 1_000_000_000
        }
        let wall = Int64(bitPattern: monotonic) &+ scratch.wallOffset
        let seconds = wall >= 0 ? wall / 1_000_000_000 : (wall - 999_999_999) / 1_000_000_000
        return TraceInstant(wallSeconds: Int(seconds), wallNanoseconds: Int(wall - seconds &* 1_000_000_000),
                            monotonicNanoseconds: monotonic)
    }

    static func monotonicNow() -> UInt64 {
        var mono = timespec()
        clock_gettime(CLOCK_MONOTONIC, &mono)
        return UInt64(mono.tv_sec) &* 1_000_000_000 &+ UInt64(mono.tv_nsec)
    }

    /// "2026-11-22T01:56:34.123456Z", by arithmetic (days-to-civil, H. Hinnant) rather than
    /// gmtime_r, which takes a lock on the time zone on some libcs.
    func appendISO8601(to out: inout TraceBuffer, cache scratch: TraceScratch) {
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
