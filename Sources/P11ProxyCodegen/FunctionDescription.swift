// The parsed form of codegen/pkcs11-functions.txt: one entry per PKCS#11 function.

/// How the proxy finds the module for a call (see the description file's header).
public enum Route: String, Sendable {
    case manual, slot, session
}

public struct ArgumentDescription: Sendable, Equatable {
    public var cType: String
    public var name: String
    /// The tracer's view of the argument (ArgumentRole: `in`, `bytes(ulDataLen)`, `pin(ulPinLen)`...).
    public var role: ArgumentRole
}

public struct FunctionDescription: Sendable, Equatable {
    public var name: String
    /// "2.40", "3.0" or "3.2" (PKCS#11 3.1 added no function).
    public var version: String
    public var route: Route
    public var arguments: [ArgumentDescription]

    /// A 3.0 or 3.2 function: not in the 2.40 list.
    public var isPKCS11v3: Bool { version != "2.40" }
    /// A 3.2 function: not in the 3.0 list.
    public var isPKCS11v32: Bool { version == "3.2" }
}

public struct DescriptionError: Error, CustomStringConvertible, Sendable {
    public var line: Int
    public var message: String
    public var description: String { "pkcs11-functions.txt:\(line): \(message)" }
}

public enum FunctionDescriptionParser {
    /// Parses the whole description; any malformed line is an error naming the line.
    public static func parse(_ text: String) throws(DescriptionError) -> [FunctionDescription] {
        var functions: [FunctionDescription] = []
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.trimmingWhitespace()
            if line.isEmpty || line.hasPrefix("#") { continue }
            functions.append(try parseLine(line, lineNumber: lineNumber))
        }
        var seen = Set<String>()
        for function in functions where !seen.insert(function.name).inserted {
            throw DescriptionError(line: 0, message: "\(function.name) is described twice")
        }
        return functions
    }

    static func parseLine(_ line: Substring, lineNumber: Int) throws(DescriptionError) -> FunctionDescription {
        guard let open = line.firstIndex(of: "("), let close = line.lastIndex(of: ")"), open < close else {
            throw DescriptionError(line: lineNumber, message: "expected NAME VERSION ROUTE ( arguments )")
        }
        let head = line[..<open].split(separator: " ", omittingEmptySubsequences: true)
        guard head.count == 3 else {
            throw DescriptionError(line: lineNumber, message: "expected NAME VERSION ROUTE before '('")
        }
        guard ["2.40", "3.0", "3.2"].contains(head[1]) else {
            throw DescriptionError(line: lineNumber, message: "version must be 2.40, 3.0 or 3.2, not \(head[1])")
        }
        guard let route = Route(rawValue: String(head[2])) else {
            throw DescriptionError(line: lineNumber, message: "route must be manual, slot or session, not \(head[2])")
        }
        var arguments: [ArgumentDescription] = []
        let body = line[line.index(after: open)..<close]
        for piece in splitArguments(body) {
            let words = piece.split(separator: " ", omittingEmptySubsequences: true)
            guard words.count == 3 else {
                throw DescriptionError(line: lineNumber, message: "argument '\(piece)' must be TYPE name role")
            }
            switch ArgumentRole.parse(words[2]) {
            case .success(let role):
                arguments.append(ArgumentDescription(cType: String(words[0]), name: String(words[1]), role: role))
            case .failure(let error):
                throw DescriptionError(line: lineNumber, message: "\(words[1]): \(error.message)")
            }
        }
        for argument in arguments {
            for parameter in argument.role.parameters where !arguments.contains(where: { $0.name == parameter }) {
                throw DescriptionError(line: lineNumber, message: "\(argument.name): its role names '\(parameter)', which is not an argument")
            }
        }
        let function = FunctionDescription(name: String(head[0]), version: String(head[1]), route: route, arguments: arguments)
        if route == .slot, arguments.first?.cType != "CK_SLOT_ID" {
            throw DescriptionError(line: lineNumber, message: "\(function.name): a slot-routed function takes CK_SLOT_ID first")
        }
        if route == .session, arguments.first?.cType != "CK_SESSION_HANDLE" {
            throw DescriptionError(line: lineNumber, message: "\(function.name): a session-routed function takes CK_SESSION_HANDLE first")
        }
        return function
    }

    /// Splits on commas that are not inside a role's parentheses, e.g. `handles-out(a,b)`.
    static func splitArguments(_ body: Substring) -> [Substring] {
        var pieces: [Substring] = []
        var depth = 0
        var start = body.startIndex
        for index in body.indices {
            switch body[index] {
            case "(": depth += 1
            case ")": depth -= 1
            case "," where depth == 0:
                pieces.append(body[start..<index].trimmingWhitespace())
                start = body.index(after: index)
            default: break
            }
        }
        let last = body[start...].trimmingWhitespace()
        if !last.isEmpty { pieces.append(last) }
        return pieces
    }
}

extension Substring {
    func trimmingWhitespace() -> Substring {
        var result = self
        while let first = result.first, first == " " || first == "\t" || first == "\r" { result.removeFirst() }
        while let last = result.last, last == " " || last == "\t" || last == "\r" { result.removeLast() }
        return result
    }
}
