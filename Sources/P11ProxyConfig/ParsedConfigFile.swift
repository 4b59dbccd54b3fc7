// What one config file said: its settings (last duplicate wins), the problems found, and which
// lines could not be read at all, so the caller can decide whether the file is trustworthy.

public struct ParsedConfigFile: Sendable, Equatable {
    public var file: String
    public var values: [String: ConfigValue]
    public var diagnostics: [ConfigDiagnostic]
    /// Line numbers (ascending) that are not `key: value`, comments or blank. A module file with
    /// any of these is skipped: what was lost may have been its `critical:` or `disable-in:`.
    public var malformedLines: [Int]
    /// True when the file was not parsed at all (it is larger than `ConfigFileParser.maximumFileSize`).
    public var isRejected: Bool

    public init(file: String, values: [String: ConfigValue] = [:], diagnostics: [ConfigDiagnostic] = [],
                malformedLines: [Int] = [], isRejected: Bool = false) {
        self.file = file
        self.values = values
        self.diagnostics = diagnostics
        self.malformedLines = malformedLines
        self.isRejected = isRejected
    }

    /// The file can be used as written: read whole, every line understood.
    public var isComplete: Bool { !isRejected && malformedLines.isEmpty }
}
