// A problem found while reading configuration: which file, which line (nil for the whole file),
// and a message a person can act on. Reading never stops at a problem; it records one of these.

public struct ConfigDiagnostic: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int?
    public var message: String

    public init(file: String, line: Int?, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    /// `FILE:LINE: MESSAGE`, or `FILE: MESSAGE` for whole-file problems, the shape p11-kit's
    /// `p11_lexer_msg` and compilers use, so editors can jump to the line.
    public var description: String {
        if let line { return "\(file):\(line): \(message)" }
        return "\(file): \(message)"
    }
}
