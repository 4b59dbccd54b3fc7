// Turns the bytes of a `.module` file or pkcs11.conf into settings, line by line, the way
// p11-kit's lexer (common/lexer.c) does, but reporting every bad line instead of giving up.

/// Pure and total: any byte sequence yields a result in time linear in its length, so tests and
/// the fuzz test drive it without files.
public enum ConfigFileParser {
    /// Larger files are not parsed. Real module configs are a few hundred bytes; a megabyte
    /// is a mistake (or a device), and reading it inside a host application's C_Initialize
    /// would only slow that application down.
    public static let maximumFileSize = 1 << 20
    /// Longer lines are malformed. p11-kit has no limit; the cap keeps a runaway line from
    /// becoming a huge string in every diagnostic and value.
    public static let maximumLineLength = 1 << 16
    /// Line problems reported per file; the rest are counted in one closing diagnostic so a
    /// binary file does not produce thousands of messages.
    static let maximumReportedLineProblems = 20

    public static func parse(bytes: [UInt8], file: String) -> ParsedConfigFile {
        var result = ParsedConfigFile(file: file)
        guard bytes.count <= maximumFileSize else {
            result.isRejected = true
            result.diagnostics.append(ConfigDiagnostic(
                file: file, line: nil,
                message: "file is \(bytes.count) bytes, more than the \(maximumFileSize)-byte limit; not read"))
            return result
        }

        var reporter = LineProblemReporter(file: file)
        var start = bytes.startIndex
        // A UTF-8 byte order mark is not part of the first key (p11-kit would make it one).
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { start += 3 }
        var lineNumber = 0
        while start < bytes.endIndex {
            lineNumber += 1
            let end = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.endIndex
            let line = bytes[start..<end]
            start = end < bytes.endIndex ? end + 1 : end

            switch readLine(line) {
            case .ignored:
                continue
            case .malformed(let problem):
                result.malformedLines.append(lineNumber)
                reporter.report(line: lineNumber, message: problem.message)
            case .setting(let keyBytes, let valueBytes):
                var key = String(validating: keyBytes, as: UTF8.self)
                var value = String(validating: valueBytes, as: UTF8.self)
                if key == nil || value == nil {
                    // Lenient like p11-kit, which never looks at encodings: keep the line, but say
                    // that what we kept is not byte-for-byte what the file holds.
                    key = key ?? String(decoding: keyBytes, as: UTF8.self)
                    value = value ?? String(decoding: valueBytes, as: UTF8.self)
                    reporter.report(line: lineNumber, message:
                        "'\(key!)' has bytes that are not valid UTF-8; they were replaced with U+FFFD")
                }
                if let earlier = result.values[key!] {
                    // p11-kit's p11_dict_set silently keeps the later value; we keep it too, but say so.
                    reporter.report(line: lineNumber, message:
                        "duplicate key '\(key!)' (also set on line \(earlier.line)); the value on line \(lineNumber) is used")
                }
                result.values[key!] = ConfigValue(value: value!, file: file, line: lineNumber)
            }
        }
        result.diagnostics = reporter.finish()
        return result
    }

    enum Line {
        case ignored
        case malformed(LineProblem)
        case setting(key: ArraySlice<UInt8>, value: ArraySlice<UInt8>)
    }

    /// Why a line is not `key: value`. The message is only built for the lines that are
    /// reported: a megabyte of bad lines must not cost a hundred thousand strings.
    enum LineProblem {
        case tooLong(Int)
        case nulByte
        case section(ArraySlice<UInt8>)
        case pem
        case noColon(ArraySlice<UInt8>)
        case emptyKey(ArraySlice<UInt8>)

        var message: String {
            switch self {
            case .tooLong(let count): return "line is \(count) bytes long, more than the \(maximumLineLength)-byte limit"
            case .nulByte: return "line contains a NUL byte"
            case .section(let line): return "section headers like \(preview(line)) are not allowed in this file"
            case .pem: return "PEM blocks are not allowed in this file"
            case .noColon(let line): return "expected 'key: value' but found no ':' in \(preview(line))"
            // p11-kit would store a setting named "", which no one can ask for; it is a typo.
            case .emptyKey(let line): return "nothing before the ':' in \(preview(line))"
            }
        }
    }

    /// One line, without its newline. The order of checks follows p11_lexer_next: whitespace is
    /// stripped, blank and `#` lines are skipped, `[` starts a section and `-----BEGIN ` a PEM
    /// block (both rejected by p11-kit's config reader), otherwise the first `:` splits key from value.
    static func readLine(_ raw: ArraySlice<UInt8>) -> Line {
        if raw.count > maximumLineLength { return .malformed(.tooLong(raw.count)) }
        if raw.contains(0) { return .malformed(.nulByte) }
        let line = trimmed(raw)
        guard let first = line.first, first != UInt8(ascii: "#") else { return .ignored }
        if first == UInt8(ascii: "[") { return .malformed(.section(line)) }
        if line.starts(with: Array("-----BEGIN ".utf8)) { return .malformed(.pem) }
        // ':' is ASCII, so it is never part of a multi-byte UTF-8 sequence: splitting bytes is safe.
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { return .malformed(.noColon(line)) }
        let key = trimmed(line[..<colon])
        if key.isEmpty { return .malformed(.emptyKey(line)) }
        return .setting(key: key, value: trimmed(line[(colon + 1)...]))
    }

    /// C `isspace` in the C locale, which p11-kit's lexer uses: space, \t, \n, \v, \f, \r.
    /// Trimming \r makes files with CRLF line ends read the same as LF ones.
    static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || (0x09...0x0D).contains(byte)
    }

    static func trimmed(_ bytes: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        guard let first = bytes.firstIndex(where: { !isSpace($0) }),
              let last = bytes.lastIndex(where: { !isSpace($0) }) else { return bytes[bytes.endIndex...] }
        return bytes[first...last]
    }

    /// A short, printable quotation of a line for messages; control characters become '?'.
    static func preview(_ bytes: ArraySlice<UInt8>) -> String {
        let limit = 40
        let text = String(decoding: bytes.prefix(limit * 4), as: UTF8.self)
        var shown = String(String.UnicodeScalarView(text.unicodeScalars.prefix(limit).map {
            $0.value < 0x20 || $0.value == 0x7F ? "?" : $0
        }))
        if text.unicodeScalars.count > limit || bytes.count > limit * 4 { shown += "..." }
        return "'\(shown)'"
    }
}

/// Collects line diagnostics for one file up to the reporting cap.
struct LineProblemReporter {
    let file: String
    private var diagnostics: [ConfigDiagnostic] = []
    private var suppressed = 0
    private var firstSuppressedLine: Int?

    init(file: String) { self.file = file }

    mutating func report(line: Int, message: @autoclosure () -> String) {
        if diagnostics.count < ConfigFileParser.maximumReportedLineProblems {
            diagnostics.append(ConfigDiagnostic(file: file, line: line, message: message()))
        } else {
            suppressed += 1
            if firstSuppressedLine == nil { firstSuppressedLine = line }
        }
    }

    func finish() -> [ConfigDiagnostic] {
        guard let firstSuppressedLine else { return diagnostics }
        return diagnostics + [ConfigDiagnostic(
            file: file, line: firstSuppressedLine,
            message: "\(suppressed) more problems from this line on are not shown")]
    }
}
