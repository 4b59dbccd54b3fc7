// Lines for standard error (warnings, and why `trace` could not run its command).
import Glibc

func printError(_ line: String) {
    let text = line + "\n"
    _ = text.withCString { write(2, $0, strlen($0)) }
}
