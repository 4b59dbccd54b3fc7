// A seeded fuzz test: thousands of random and mutated inputs through ConfigFileParser.parse.
// It must always finish, and what it returns must be self-consistent and re-parse to itself.

import Testing
import P11ProxyConfig

/// SplitMix64: small, fast, and the same sequence on every machine, so a failure replays.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct ConfigFileParserFuzzTests {
    static let seed: UInt64 = 0x5EED_0F_C0F1
    static let iterations = 2000

    /// Bytes that matter to the parser, weighted towards them, plus anything at all.
    static let interesting: [UInt8] = Array(":#[\n\r\t \u{0B}\u{0C}-,".utf8) + [0, 0xFF, 0xC3, 0xA9, 0xEF, 0xBB, 0xBF, 0x80]
    static let seeds: [String] = [
        "module: libx.so\ncritical: yes\npriority: 3\n",
        "# comment\n\nenable-in: firefox, thunderbird\ndisable-in: p11-kit-proxy\n",
        "remote: |ssh host:22 p11-kit remote /x.so\nx-init-reserved:\n",
        "[section]\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        "user-config: merge\nlog-calls: yes\r\nx-log-file: /tmp/a:b\n",
    ]

    static func randomInput(_ rng: inout SeededGenerator) -> [UInt8] {
        let length = Int.random(in: 0...400, using: &rng)
        return (0..<length).map { _ in
            Bool.random(using: &rng) ? interesting.randomElement(using: &rng)!
                : Bool.random(using: &rng) ? UInt8.random(in: 0x61...0x7A, using: &rng) : UInt8.random(in: 0...255, using: &rng)
        }
    }

    static func mutatedInput(_ rng: inout SeededGenerator) -> [UInt8] {
        var bytes = Array(seeds.randomElement(using: &rng)!.utf8)
        for _ in 0..<Int.random(in: 1...8, using: &rng) {
            let position = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &rng)
            switch Int.random(in: 0..<4, using: &rng) {
            case 0 where !bytes.isEmpty: bytes[position] = interesting.randomElement(using: &rng)!
            case 1: bytes.insert(UInt8.random(in: 0...255, using: &rng), at: position)
            case 2 where !bytes.isEmpty: bytes.remove(at: position)
            default: bytes.insert(contentsOf: bytes[position...].prefix(16), at: position)  // duplicate a run
            }
        }
        return bytes
    }

    @Test func randomAndMutatedInputsGiveConsistentResults() {
        var rng = SeededGenerator(state: Self.seed)
        for iteration in 0..<Self.iterations {
            let bytes = iteration.isMultiple(of: 2) ? Self.randomInput(&rng) : Self.mutatedInput(&rng)
            let file = "fuzz-\(iteration).module"
            let parsed = ConfigFileParser.parse(bytes: bytes, file: file)
            let lineCount = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).count

            #expect(!parsed.isRejected)
            for diagnostic in parsed.diagnostics {
                #expect(diagnostic.file == file)
                #expect(diagnostic.line.map { (1...lineCount).contains($0) } == true,
                        "iteration \(iteration): \(diagnostic)")
                #expect(!diagnostic.message.isEmpty)
            }
            // Every malformed line is reported (or covered by the summary after the cap).
            let reportedLines = Set(parsed.diagnostics.compactMap(\.line))
            if let firstUnreported = parsed.malformedLines.first(where: { !reportedLines.contains($0) }) {
                #expect(parsed.diagnostics.last?.message.contains("more problems") == true,
                        "iteration \(iteration): line \(firstUnreported) is malformed but unreported")
            }
            for (key, value) in parsed.values {
                #expect(!key.isEmpty && !key.contains(":") && !key.contains("\n") && !key.contains("\0"))
                #expect(key.first != "#" && key.first != "[")
                #expect(value.file == file && (1...lineCount).contains(value.line))
                #expect(!value.value.contains("\n") && !value.value.contains("\0"))
                #expect(!parsed.malformedLines.contains(value.line))
            }
            // What was understood writes back out and reads back the same.
            // The leading comment keeps a key that starts with U+FEFF from being read as a byte order mark.
            let rendered = "# rendered\n" + parsed.values.keys.sorted().map { "\($0): \(parsed.values[$0]!.value)\n" }.joined()
            let reparsed = ConfigFileParser.parse(bytes: Array(rendered.utf8), file: file)
            #expect(reparsed.values.mapValues(\.value) == parsed.values.mapValues(\.value),
                    "iteration \(iteration) does not round-trip")
            #expect(reparsed.isComplete)
        }
    }
}
