// Something in a trace that could not be counted, with where it is: a cut-off record, a line
// that belongs to no record, garbage. Reading goes on after each.

public struct TraceWarning: Equatable, Sendable {
    /// The file name as given (`-` for standard input).
    public let source: String
    /// 1-based; 0 when the warning is about the whole input.
    public let line: Int
    public let message: String

    public init(source: String, line: Int, message: String) {
        self.source = source
        self.line = line
        self.message = message
    }

    /// `FILE:LINE: message`, as compilers write it.
    public var text: String { line > 0 ? "\(source):\(line): \(message)" : "\(source): \(message)" }
}
