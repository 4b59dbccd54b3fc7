// The line format of `.module` files and pkcs11.conf, driven through ConfigFileParser.parse
// without files: what counts as a setting, a comment, or a malformed line, and where it is reported.

import Testing
import P11ProxyConfig

@Suite struct ConfigFileParserTests {
    func parse(_ text: String, file: String = "test.module") -> ParsedConfigFile {
        ConfigFileParser.parse(bytes: Array(text.utf8), file: file)
    }

    @Test func settingsKeepTheirLineNumbersAcrossCommentsAndBlankLines() {
        let parsed = parse("# comment\n\n  # indented comment\nmodule: libx.so\n\npriority: 3\n")
        #expect(parsed.values["module"] == ConfigValue(value: "libx.so", file: "test.module", line: 4))
        #expect(parsed.values["priority"] == ConfigValue(value: "3", file: "test.module", line: 6))
        #expect(parsed.values.count == 2)
        #expect(parsed.diagnostics.isEmpty)
        #expect(parsed.isComplete)
    }

    @Test func valueIsEverythingAfterTheFirstColonTrimmed() {
        let parsed = parse("remote : \t |ssh host:22 p11-kit remote /x.so  \t\r\n")
        #expect(parsed.values["remote"]?.value == "|ssh host:22 p11-kit remote /x.so")
    }

    @Test func hashAfterAValueIsPartOfTheValue() {
        // pkcs11.conf(5): "Comments are not recognized when they come after a value on a line."
        let parsed = parse("x-note: keep # this\n")
        #expect(parsed.values["x-note"]?.value == "keep # this")
    }

    @Test func emptyValueIsAValue() {
        // p11-kit-trust.module ships `x-init-reserved:` with nothing after it.
        let parsed = parse("x-init-reserved:\n")
        #expect(parsed.values["x-init-reserved"]?.value == "")
        #expect(parsed.isComplete)
    }

    @Test func crlfAndOtherCWhitespaceAreTrimmed() {
        let parsed = parse("module: libcrlf.so\r\n\u{0B}critical:\u{0C}yes\u{0B}\r\n")
        #expect(parsed.values["module"]?.value == "libcrlf.so")
        #expect(parsed.values["critical"]?.value == "yes")
    }

    @Test func lastLineWithoutNewlineIsRead() {
        let parsed = parse("a: 1\nb: 2")
        #expect(parsed.values["b"] == ConfigValue(value: "2", file: "test.module", line: 2))
    }

    @Test func byteOrderMarkIsNotPartOfTheFirstKey() {
        let parsed = ConfigFileParser.parse(bytes: [0xEF, 0xBB, 0xBF] + Array("module: libbom.so\n".utf8), file: "f")
        #expect(parsed.values["module"]?.value == "libbom.so")
        #expect(parsed.values["module"]?.line == 1)
    }

    @Test func duplicateKeyLaterWinsAndBothLinesAreNamed() {
        let parsed = parse("module: first.so\nx: y\nmodule: second.so\n")
        #expect(parsed.values["module"] == ConfigValue(value: "second.so", file: "test.module", line: 3))
        #expect(parsed.diagnostics.count == 1)
        let warning = parsed.diagnostics[0]
        #expect(warning.line == 3)
        #expect(warning.message.contains("line 1"))
        #expect(warning.message.contains("line 3"))
        #expect(parsed.isComplete, "a duplicate is a warning, not a malformed line")
    }

    @Test(arguments: [
        ("critical yes", "no ':'"),
        ("[module]", "section headers"),
        ("[unclosed", "section headers"),
        (": value", "nothing before the ':'"),
        ("  \t: value", "nothing before the ':'"),
        ("-----BEGIN CERTIFICATE-----", "PEM"),
    ])
    func malformedLinesAreReportedWithTheirLineNumber(line: String, expected: String) {
        let parsed = parse("module: ok.so\n\(line)\nafter: kept\n")
        #expect(parsed.malformedLines == [2])
        #expect(!parsed.isComplete)
        #expect(parsed.diagnostics.count == 1)
        #expect(parsed.diagnostics.first?.line == 2)
        #expect(parsed.diagnostics.first?.message.contains(expected) == true,
                "\(parsed.diagnostics.first?.message ?? "no diagnostic")")
        // The rest of the file is still read, so pkcs11.conf can use it.
        #expect(parsed.values["after"]?.value == "kept")
        #expect(parsed.values["module"]?.value == "ok.so")
    }

    @Test func nulByteMakesTheLineMalformed() {
        let parsed = ConfigFileParser.parse(bytes: Array("module: a.so\ncritical: y".utf8) + [0] + Array("es\n".utf8),
                                            file: "nul.module")
        #expect(parsed.malformedLines == [2])
        #expect(parsed.values["critical"] == nil)
        #expect(parsed.diagnostics.first?.message.contains("NUL") == true)
    }

    @Test func invalidUTF8IsKeptWithReplacementAndReported() {
        let parsed = ConfigFileParser.parse(bytes: Array("module: lib".utf8) + [0xFF, 0xFE] + Array(".so\n".utf8),
                                            file: "utf8.module")
        #expect(parsed.values["module"]?.value == "lib\u{FFFD}\u{FFFD}.so")
        #expect(parsed.isComplete, "lenient: the line is kept")
        #expect(parsed.diagnostics.count == 1)
        #expect(parsed.diagnostics.first?.line == 1)
        #expect(parsed.diagnostics.first?.message.contains("UTF-8") == true)
    }

    @Test func overlongLineIsMalformedButItsNeighboursAreRead() {
        let long = "x-long: " + String(repeating: "a", count: ConfigFileParser.maximumLineLength)
        let parsed = parse("a: 1\n\(long)\nb: 2\n")
        #expect(parsed.malformedLines == [2])
        #expect(parsed.values["x-long"] == nil)
        #expect(parsed.values["b"]?.line == 3)
        #expect(parsed.diagnostics.first?.message.contains("\(ConfigFileParser.maximumLineLength)") == true)
    }

    @Test func lineOfExactlyTheLimitIsAccepted() {
        let value = String(repeating: "v", count: ConfigFileParser.maximumLineLength - 3)
        let parsed = parse("k: \(value)\n")
        #expect(parsed.values["k"]?.value == value)
        #expect(parsed.isComplete)
    }

    @Test func fileOverTheSizeLimitIsRejectedWholeWithoutALine() {
        let bytes = [UInt8](repeating: UInt8(ascii: "\n"), count: ConfigFileParser.maximumFileSize + 1)
        let parsed = ConfigFileParser.parse(bytes: bytes, file: "huge.module")
        #expect(parsed.isRejected)
        #expect(!parsed.isComplete)
        #expect(parsed.diagnostics == [ConfigDiagnostic(
            file: "huge.module", line: nil,
            message: "file is \(ConfigFileParser.maximumFileSize + 1) bytes, more than the \(ConfigFileParser.maximumFileSize)-byte limit; not read")])
    }

    @Test func manyBadLinesAreSummarisedAfterTheCap() {
        let text = String(repeating: "garbage\n", count: 100)
        let parsed = parse(text)
        #expect(parsed.malformedLines == Array(1...100), "every bad line is still counted")
        #expect(parsed.diagnostics.count == 21)
        let summary = parsed.diagnostics.last!
        #expect(summary.line == 21)
        #expect(summary.message.contains("80 more"))
    }

    @Test func controlCharactersAreNotCopiedIntoMessages() {
        let parsed = parse("bad\u{1B}[31mline\n")
        let message = parsed.diagnostics.first?.message ?? ""
        #expect(!message.unicodeScalars.contains { $0.value < 0x20 })
        #expect(message.contains("bad?[31mline"))
    }

    @Test func diagnosticDescriptionNamesFileAndLine() {
        #expect(ConfigDiagnostic(file: "/etc/pkcs11/modules/a.module", line: 3, message: "bad").description
                == "/etc/pkcs11/modules/a.module:3: bad")
        #expect(ConfigDiagnostic(file: "/etc/pkcs11/pkcs11.conf", line: nil, message: "unreadable").description
                == "/etc/pkcs11/pkcs11.conf: unreadable")
    }
}

@Suite struct ConfigValueTests {
    func value(_ text: String) -> ConfigValue { ConfigValue(value: text, file: "f", line: 1) }

    @Test(arguments: [("yes", true), ("true", true), ("no", false), ("false", false)])
    func booleansAcceptedByP11KitAndTheManualsExample(text: String, expected: Bool) {
        #expect(value(text).boolean == expected)
    }

    @Test(arguments: ["Yes", "YES", "1", "0", "on", "", " yes", "maybe"])
    func otherBooleanSpellingsAreInvalid(text: String) {
        // p11-kit compares with strcmp: case matters.
        #expect(value(text).boolean == nil)
    }

    @Test func integers() {
        #expect(value("10").integer == 10)
        #expect(value("-5").integer == -5)
        #expect(value("+3").integer == 3)
        #expect(value("10x").integer == nil)
        #expect(value("").integer == nil)
        #expect(value("99999999999999999999999").integer == nil)
    }

    @Test func listsSplitOnCommasAndWhitespace() {
        #expect(value("firefox, thunderbird").list == ["firefox", "thunderbird"])
        #expect(value("ssh\tseahorse  gnome-keyring").list == ["ssh", "seahorse", "gnome-keyring"])
        #expect(value(",,a,, b ,").list == ["a", "b"])
        #expect(value("").list == [])
    }
}
