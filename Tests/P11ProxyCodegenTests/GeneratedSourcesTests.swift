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

    /// The explicit list of hand-written functions (Sources/P11Proxy/Entry/), as p11-kit keeps one.
    @Test func theHandWrittenFunctionsAreExactlyThese() throws {
        let functions = try FunctionDescriptionParser.parse(try readRepositoryFile("codegen/pkcs11-functions.txt"))
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

    @Test func rolesAreParsedAndUnknownOnesRejectedWithTheirLine() {
        func failure(_ line: String) -> DescriptionError? {
            do {
                _ = try FunctionDescriptionParser.parse("# header\n" + line)
                return nil
            } catch {
                return error
            }
        }
        let unknown = failure("C_A 2.40 session ( CK_SESSION_HANDLE h in, CK_BYTE_PTR p bytez(ulLen), CK_ULONG ulLen in )")
        #expect(unknown?.line == 2)
        #expect(unknown?.message == "p: unknown role 'bytez'")
        #expect(failure("C_A 2.40 session ( CK_SESSION_HANDLE h in, CK_BYTE_PTR p bytes )")?.message
            == "p: role 'bytes' takes 1 parameter(s), not 0")
        #expect(failure("C_A 2.40 session ( CK_SESSION_HANDLE h in, CK_BYTE_PTR p bytes(ulLen) )")?.message
            == "p: its role names 'ulLen', which is not an argument")
        #expect(failure("C_A 2.40 session ( CK_SESSION_HANDLE h in, CK_FLAGS f flags(CKF_NOPE) )")?.message
            .hasPrefix("f: unknown flag family 'CKF_NOPE'") == true)
        #expect(failure("C_A 2.40 session ( CK_SESSION_HANDLE h in, CK_BYTE_PTR p bytes(ulLen, CK_ULONG ulLen in )") != nil)
        let parsed = try? FunctionDescriptionParser.parse(
            "C_A 2.40 session ( CK_SESSION_HANDLE h in, CK_BYTE_PTR p pin(n), CK_ULONG n in, "
                + "CK_SLOT_ID_PTR s handles-out(c,c), CK_ULONG_PTR c inout )")
        #expect(parsed?.first?.arguments.map(\.role) == [
            .input, .bytes(length: "n", secrecy: .pin), .input, .handlesOut(maximum: "c", count: "c"), .inputOutput,
        ])
    }

    /// Every role word the description's header documents is one the parser knows.
    @Test func everyDocumentedRoleParses() throws {
        let header = try readRepositoryFile("codegen/pkcs11-functions.txt").split(separator: "\n")
            .prefix { $0.hasPrefix("#") }.joined(separator: "\n")
        let documented = header.components(separatedBy: "# role")[1].components(separatedBy: "\n#\n")[0]
        var words: [Substring] = []
        for line in documented.split(separator: "\n") {
            for word in line.split(separator: " ") {
                let bare = word.trimmingCharacters(in: CharacterSet(charactersIn: ".,:"))
                if let first = bare.first, first.isLowercase, bare.allSatisfy({ $0.isLetter || $0.isNumber || "-(),_".contains($0) }),
                   bare.contains("(") || ["in", "out", "inout", "mechanism", "struct-out", "label32", "cstring"].contains(bare) {
                    words.append(Substring(bare))
                }
            }
        }
        #expect(words.count >= 19)
        for word in words {
            if case .failure(let error) = ArgumentRole.parse(word.replacingOccurrences(of: "CKF_family", with: "CKF_SESSION")[...]) {
                Issue.record("documented role \(word): \(error.message)")
            }
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
