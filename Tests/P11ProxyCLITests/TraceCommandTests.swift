// `p11proxy trace`'s command line: what is ours and what is COMMAND's, and the environment the
// module is given (the names and values Tracing/TraceSettings.swift reads).

import Testing
@testable import P11ProxyCLI

@Suite struct TraceCommandTests {
    static func variables(_ arguments: [String], workingDirectory: String = "/home/u") throws -> [String: String?] {
        let command = try TraceCommand.parse(arguments)
        return Dictionary(uniqueKeysWithValues: command.environment(workingDirectory: workingDirectory).map { ($0.name, $0.value) })
    }

    @Test func everythingAfterTheTerminatorIsTheCommands() throws {
        let command = try TraceCommand.parse(["--format", "json", "--", "pkcs11-tool", "-L", "--help", "--format", "x"])
        #expect(command.commandLine == ["pkcs11-tool", "-L", "--help", "--format", "x"])
        #expect(command.format == .json)
    }

    @Test func aCommandWithoutTheTerminatorIsRefused() {
        #expect(throws: (any Error).self) { try TraceCommand.parse(["pkcs11-tool", "-L"]) }
        #expect(throws: (any Error).self) { try TraceCommand.parse(["--format", "json"]) }
        #expect(throws: (any Error).self) { try TraceCommand.parse(["--format", "xml", "--", "true"]) }
    }

    @Test func defaultsTraceAsTextWithSecretsRedactedAndTheConfiguredDestination() throws {
        let variables = try Self.variables(["--", "true"])
        #expect(variables["P11PROXY_LOG_CALLS"] == "yes")
        #expect(variables["P11PROXY_LOG_FORMAT"] == "text")
        #expect(variables["P11PROXY_LOG_SECRETS"] == "no")
        #expect(variables.keys.contains("P11PROXY_LOG_FILE") && variables["P11PROXY_LOG_FILE"]! == nil,
                "an inherited P11PROXY_LOG_FILE is unset, so records go where the configuration says")
        #expect(variables["P11PROXY_CONFIG_DIR"] == nil && variables["P11PROXY_MODULE"] == nil)
    }

    @Test func aRelativeOutputIsMadeAbsoluteForACommandThatChangesDirectory() throws {
        #expect(try Self.variables(["-o", "t.txt", "--", "true"])["P11PROXY_LOG_FILE"] == "/home/u/t.txt")
        #expect(try Self.variables(["--output", "/tmp/t.txt", "--", "true"])["P11PROXY_LOG_FILE"] == "/tmp/t.txt")
    }

    @Test func optionsMapToTheModulesVariables() throws {
        let variables = try Self.variables(["--format", "json", "--secrets", "--config-dir", "/conf",
                                            "--module", "/usr/lib/softhsm/libsofthsm2.so", "--", "true"])
        #expect(variables["P11PROXY_LOG_FORMAT"] == "json")
        #expect(variables["P11PROXY_LOG_SECRETS"] == "yes")
        #expect(variables["P11PROXY_CONFIG_DIR"] == "/conf")
        #expect(variables["P11PROXY_MODULE"] == "/usr/lib/softhsm/libsofthsm2.so")
    }

    @Test func summaryOptionsRunTheCommandAsAChild() throws {
        #expect(try TraceCommand.parse(["--", "true"]).summarises == false)
        #expect(try TraceCommand.parse(["--summary", "--", "true"]).summarises)
        #expect(try TraceCommand.parse(["--by", "module", "--", "true"]).summarises)
        #expect(try TraceCommand.parse(["--histogram", "--", "true"]).summarises)
        #expect(throws: (any Error).self) { try TraceCommand.parse(["--by", "slot", "--", "true"]) }
    }

    @Test func theSummarysTemporaryFileIsTheTraceUnlessOutputIsGiven() throws {
        let temporary = try TraceCommand.parse(["--summary", "--", "true"]).environment(workingDirectory: "/w", logFile: "/tmp/p11proxy-trace.1")
        #expect(temporary.first { $0.name == "P11PROXY_LOG_FILE" }?.value == "/tmp/p11proxy-trace.1")
        let kept = try TraceCommand.parse(["--summary", "-o", "t.txt", "--", "true"]).environment(workingDirectory: "/w", logFile: "/tmp/x")
        #expect(kept.first { $0.name == "P11PROXY_LOG_FILE" }?.value == "/w/t.txt")
    }
}
