// Lines for standard error (warnings, why `trace` could not run its command, its summary).
import Glibc

func printError(_ line: String, newline: Bool = true) {
    var text = newline ? line + "\n" : line
    text.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let written = write(2, bytes.baseAddress! + offset, bytes.count - offset)
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return }
            offset += written
        }
    }
}
