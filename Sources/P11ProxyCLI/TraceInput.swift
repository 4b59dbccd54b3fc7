// Trace files (or standard input) read in fixed chunks into the statistics: the one place the
// stats reader touches the file system, so P11ProxyTraceStats stays pure Swift.
import Glibc
import P11ProxyTraceStats

enum TraceInput {
    /// Large enough that a read() costs little per byte, small enough to stay in cache.
    static let chunkSize = 256 << 10

    /// Reads each path ("-": standard input) into `statistics`, one TraceReader each; returns a
    /// message for each that could not be opened or read to its end.
    static func read(_ paths: [String], into statistics: inout TraceStatistics) -> [String] {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 64)
        defer { buffer.deallocate() }
        var failures: [String] = []
        for path in paths {
            let descriptor = path == "-" ? 0 : open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else {
                failures.append("cannot open \(path): \(String(cString: strerror(errno)))")
                continue
            }
            defer { if descriptor != 0 { close(descriptor) } }
            _ = posix_fadvise(descriptor, 0, 0, POSIX_FADV_SEQUENTIAL)
            var reader = TraceReader(source: path)
            while true {
                let count = Glibc.read(descriptor, buffer.baseAddress, buffer.count)
                if count < 0 && errno == EINTR { continue }
                if count < 0 {
                    failures.append("cannot read \(path) after line \(reader.lineNumber): \(String(cString: strerror(errno)))")
                    break
                }
                if count == 0 { break }
                reader.read(UnsafeRawBufferPointer(rebasing: buffer[0..<count]), into: &statistics)
            }
            reader.finish(into: &statistics)
        }
        return failures
    }

    /// Warnings as `PREFIX: FILE:LINE: message`, the first TraceStatistics.keptWarnings of them.
    static func printWarnings(_ statistics: TraceStatistics, prefix: String) {
        for warning in statistics.warnings { printError("\(prefix): \(warning.text)") }
        let unshown = statistics.warningCount - statistics.warnings.count
        if unshown > 0 { printError("\(prefix): \(unshown) more warning\(unshown == 1 ? "" : "s") not shown") }
    }
}
