// p11proxy-generate: regenerates the *.generated.swift files from codegen/pkcs11-functions.txt
// and codegen/pkcs11-constants.txt.
// Usage: p11proxy-generate [--check] [REPO_ROOT]   (--check: exit 1 if any file is stale)
import Foundation
import P11ProxyCodegen

var arguments = Array(CommandLine.arguments.dropFirst())
let check = arguments.first == "--check"
if check { arguments.removeFirst() }
let root = URL(fileURLWithPath: arguments.first ?? FileManager.default.currentDirectoryPath)

do {
    let description = try String(contentsOf: root.appendingPathComponent("codegen/pkcs11-functions.txt"), encoding: .utf8)
    let functions = try FunctionDescriptionParser.parse(description)
    var stale: [String] = []
    let constants = try ConstantsDescriptionParser.parse(
        try String(contentsOf: root.appendingPathComponent(ConstantsEmitter.descriptionPath), encoding: .utf8))
    for file in SwiftEmitter.files(for: functions) + [ConstantsEmitter.file(for: constants)] {
        let url = root.appendingPathComponent(file.path)
        let current = try? String(contentsOf: url, encoding: .utf8)
        if current == file.contents { continue }
        stale.append(file.path)
        if !check {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try file.contents.write(to: url, atomically: true, encoding: .utf8)
        }
    }
    if check && !stale.isEmpty {
        FileHandle.standardError.write(Data("p11proxy-generate: stale generated files (run `make generate`): \(stale.joined(separator: ", "))\n".utf8))
        exit(1)
    }
    print(check ? "generated files are up to date" : "wrote \(stale.count) file(s)")
} catch {
    FileHandle.standardError.write(Data("p11proxy-generate: \(error)\n".utf8))
    exit(2)
}
