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

    /// The fields of `typedef struct NAME { ... } NAME;` in one of our headers.
    private func functionListFields(_ header: String, _ name: String) throws -> [String] {
        let structBody = try readRepositoryFile(header).components(separatedBy: "typedef struct \(name) {")[1]
            .components(separatedBy: "} \(name);")[0]
        return structBody.split(separator: "\n").compactMap { line -> String? in
            let words = line.split(whereSeparator: { $0 == " " || $0 == ";" })
            return words.count == 2 && words[0].hasPrefix("CK_C_") ? String(words[1]) : nil
        }
    }

    @Test func descriptionFollowsTheFunctionListStructOrder() throws {
        let functions = try FunctionDescriptionParser.parse(try readRepositoryFile("codegen/pkcs11-functions.txt"))
        let fields30 = try functionListFields("include/pkcs11_3_0.h", "CK_FUNCTION_LIST_3_0")
        let fields32 = try functionListFields("include/pkcs11_3_2.h", "CK_FUNCTION_LIST_3_2")
        #expect(fields30.count == 92)
        #expect(fields32.count == 104)
        #expect(Array(fields32.prefix(92)) == fields30, "the 3.2 list starts with the 3.0 list")
        #expect(functions.map(\.name) == fields32)
        #expect(functions.filter(\.isPKCS11v3).count == 36)
        #expect(functions.filter(\.isPKCS11v32).map(\.name) == Array(fields32.suffix(12)))
    }

    /// The twelve 3.2 prototypes as OASIS's pkcs11f.h has them (3.2 section 5), argument types
    /// in order; C_DecapsulateKey's ulCiphertextLen is a CK_ULONG (p11-kit 0.26: a pointer).
    @Test func threeTwoFunctionsHaveTheOASISArguments() throws {
        let functions = try FunctionDescriptionParser.parse(try readRepositoryFile("codegen/pkcs11-functions.txt"))
        let types = Dictionary(uniqueKeysWithValues: functions.map { ($0.name, $0.arguments.map(\.cType)) })
        #expect(types["C_DecapsulateKey"] == ["CK_SESSION_HANDLE", "CK_MECHANISM_PTR", "CK_OBJECT_HANDLE",
                                              "CK_ATTRIBUTE_PTR", "CK_ULONG", "CK_BYTE_PTR", "CK_ULONG",
                                              "CK_OBJECT_HANDLE_PTR"])
        #expect(types["C_EncapsulateKey"]?[6] == "CK_ULONG_PTR")
        #expect(types["C_AsyncJoin"] == ["CK_SESSION_HANDLE", "CK_UTF8CHAR_PTR", "CK_ULONG", "CK_BYTE_PTR", "CK_ULONG"])
        #expect(types["C_UnwrapKeyAuthenticated"]?.count == 10)
        #expect(types["C_GetSessionValidationFlags"] == ["CK_SESSION_HANDLE", "CK_SESSION_VALIDATION_FLAGS_TYPE",
                                                         "CK_FLAGS_PTR"])
        // The header declares each function type with these arguments.
        let header = try readRepositoryFile("include/pkcs11_3_2.h")
        for function in functions where function.isPKCS11v32 {
            let declaration = header.components(separatedBy: "typedef CK_RV (*CK_\(function.name))(")[1]
                .components(separatedBy: ");")[0]
            let declared = declaration.split(separator: ",").map { $0.split(whereSeparator: \.isWhitespace).first.map(String.init) ?? "" }
            #expect(declared == types[function.name], "\(function.name)")
        }
    }

    @Test func remoteListsLeaveTheThreeTwoFunctionsOut() throws {
        let functions = try FunctionDescriptionParser.parse(try readRepositoryFile("codegen/pkcs11-functions.txt"))
        for function in functions where function.isPKCS11v32 {
            #expect(!SwiftEmitter.isRemote(function), "\(function.name)")
        }
        #expect(SwiftEmitter.isRemote(functions.first { $0.name == "C_LoginUser" }!))
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
        #expect(failure("C_A 2.40 session ( CK_SESSION_HANDLE h in, CK_ULONG t enum(CKX) )")?.message
            .hasPrefix("t: unknown constant family 'CKX'") == true)
        #expect(failure("C_A 3.1 session ( CK_SESSION_HANDLE h in )")?.message == "version must be 2.40, 3.0 or 3.2, not 3.1")
        let async = try? FunctionDescriptionParser.parse(
            "C_A 3.2 session ( CK_SESSION_HANDLE h in, CK_ASYNC_DATA_PTR r async-data, CK_BYTE_PTR p async-buffer(n), CK_ULONG n in )")
        #expect(async?.first?.arguments.map(\.role) == [.input, .asyncData, .asyncBuffer(length: "n"), .input])
        #expect(async?.first?.isPKCS11v32 == true)
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
            let concrete = word.replacingOccurrences(of: "CKF_family", with: "CKF_SESSION")
                .replacingOccurrences(of: "enum(family)", with: "enum(CKU)")
            if case .failure(let error) = ArgumentRole.parse(concrete[...]) {
                Issue.record("documented role \(word): \(error.message)")
            }
        }
    }

    @Test func callerTablesGiveEveryCallerItsOwnNumber() throws {
        let functions = try FunctionDescriptionParser.parse(try readRepositoryFile("codegen/pkcs11-functions.txt"))
        let tables = SwiftEmitter.callerTables(functions)
        #expect(SwiftEmitter.callerPoolSize >= 64)
        #expect(tables.contains("list.pointee.C_Sign = { Entry.C_Sign($0, $1, $2, $3, $4, CallerNumber(0)) }"))
        let last = SwiftEmitter.callerPoolSize - 1
        #expect(tables.contains("list.pointee.C_UnwrapKeyAuthenticated = { Entry.C_UnwrapKeyAuthenticated($0, $1, $2, $3, $4, $5, $6, $7, $8, $9, CallerNumber(\(last))) }"))
        // C_GetInfo of the older lists knows which list it was called through.
        #expect(tables.contains("list240.pointee.C_GetInfo = { Entry.C_GetInfo($0, CallerNumber(\(last)), .v2_40) }"))
        #expect(tables.contains("list30.pointee.C_GetInfo = { Entry.C_GetInfo($0, CallerNumber(0), .v3_0) }"))
        #expect(tables.components(separatedBy: "Entry.C_Initialize(").count - 1 == SwiftEmitter.callerPoolSize)
    }
}
