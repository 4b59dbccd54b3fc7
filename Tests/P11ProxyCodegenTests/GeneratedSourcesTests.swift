// The generated sources must match what the generator makes from the description today,
// and the description must match the PKCS#11 3.0 function list it claims to describe.
import Foundation
import Testing
@testable import P11ProxyCodegen

private let repositoryRoot = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

private func readRepositoryFile(_ path: String) throws -> String {
    try String(contentsOf: repositoryRoot.appendingPathComponent(path), encoding: .utf8)
}

@Suite struct GeneratedSourcesTests {
    @Test func committedGeneratedFilesAreNotStale() throws {
        let functions = try FunctionDescriptionParser.parse(try readRepositoryFile("codegen/pkcs11-functions.txt"))
        for file in SwiftEmitter.files(for: functions) {
            let committed = try readRepositoryFile(file.path)
            #expect(committed == file.contents, "\(file.path) is stale: run `make generate`")
        }
    }

    @Test func descriptionFollowsTheFunctionListStructOrder() throws {
        let functions = try FunctionDescriptionParser.parse(try readRepositoryFile("codegen/pkcs11-functions.txt"))
        let header = try readRepositoryFile("include/pkcs11_3_0.h")
        let structBody = header.components(separatedBy: "typedef struct CK_FUNCTION_LIST_3_0 {")[1]
            .components(separatedBy: "} CK_FUNCTION_LIST_3_0;")[0]
        let fields = structBody.split(separator: "\n").compactMap { line -> String? in
            let words = line.split(whereSeparator: { $0 == " " || $0 == ";" })
            return words.count == 2 && words[0].hasPrefix("CK_C_") ? String(words[1]) : nil
        }
        #expect(fields.count == 92)
        #expect(functions.map(\.name) == fields)
        #expect(functions.filter(\.isPKCS11v3).count == 24)
    }

    @Test func everyRoutedFunctionTakesItsRouteKeyFirst() throws {
        let functions = try FunctionDescriptionParser.parse(try readRepositoryFile("codegen/pkcs11-functions.txt"))
        for function in functions where function.route == .session {
            #expect(function.arguments.first?.cType == "CK_SESSION_HANDLE", "\(function.name)")
        }
        let manual = functions.filter { $0.route == .manual }.map(\.name)
        #expect(manual == ["C_Initialize", "C_Finalize", "C_GetInfo", "C_GetFunctionList", "C_GetSlotList",
                           "C_OpenSession", "C_CloseSession", "C_CloseAllSessions", "C_GetSessionInfo",
                           "C_WaitForSlotEvent", "C_GetInterfaceList", "C_GetInterface"])
    }

    @Test func malformedLinesAreRejectedWithTheirLineNumber() {
        #expect(throws: DescriptionError.self) {
            try FunctionDescriptionParser.parse("# comment\nC_Foo 2.40 session ( CK_SLOT_ID slotID in )\n")
        }
        do {
            _ = try FunctionDescriptionParser.parse("\n\nC_Foo 9.9 session ( CK_SESSION_HANDLE h in )")
            Issue.record("expected an error")
        } catch {
            #expect(error.line == 3)
            #expect(error.message.contains("version"))
        }
        #expect(throws: DescriptionError.self) {
            try FunctionDescriptionParser.parse("C_A 2.40 manual ( )\nC_A 2.40 manual ( )")
        }
    }

    @Test func callerTablesGiveEveryCallerItsOwnNumber() throws {
        let functions = try FunctionDescriptionParser.parse(try readRepositoryFile("codegen/pkcs11-functions.txt"))
        let tables = SwiftEmitter.callerTables(functions)
        #expect(SwiftEmitter.callerPoolSize >= 64)
        #expect(tables.contains("list.pointee.C_Sign = { Entry.C_Sign($0, $1, $2, $3, $4, 0) }"))
        let last = SwiftEmitter.callerPoolSize - 1
        #expect(tables.contains("list.pointee.C_MessageVerifyFinal = { Entry.C_MessageVerifyFinal($0, \(last)) }"))
        #expect(tables.components(separatedBy: "Entry.C_Initialize(").count - 1 == SwiftEmitter.callerPoolSize)
    }
}
