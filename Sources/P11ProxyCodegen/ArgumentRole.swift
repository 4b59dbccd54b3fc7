// What the generators need to know about an argument, parsed from its role word in
// codegen/pkcs11-functions.txt (the file's header lists them). An unknown role, or one with the
// wrong number of parameters, is an error naming the line, never a silent plain pointer.

public enum ArgumentRole: Sendable, Equatable {
    /// A scalar the tracer shows by its C type (handles, CK_BBOOL, CK_ULONG, pointers).
    case input
    /// A pointer the module writes one value through.
    case output
    /// A CK_ULONG_PTR read before and written after the call (a length or count).
    case inputOutput
    /// Caller bytes of `length` (a CK_ULONG argument); `secrecy` says what tracing hides.
    case bytes(length: String, secrecy: Secrecy)
    /// Bytes the module writes; `length` is a CK_ULONG (fixed) or CK_ULONG_PTR (in/out) argument.
    case bytesOut(length: String, secrecy: Secrecy)
    /// UTF-8 text of `length`.
    case utf8(length: String)
    /// A 3.0 message call's per-message parameter of `length` (read in, and written out).
    case messageParameter(length: String)
    /// A template of `count` attributes: read by the module, or filled by it.
    case attributes(count: String)
    case attributesOut(count: String)
    case mechanism
    /// A list the module fills: capacity from `maximum` (a count, or a pointer to one that the
    /// module overwrites), the number written in `count`.
    case handlesOut(maximum: String, count: String)
    /// A flags word named from the CKF_ family `family` (e.g. CKF_SESSION).
    case flags(family: String)
    /// A value named from the constant family `family` (e.g. CKU, CKM).
    case enumerated(family: String)
    /// A CK_*_INFO structure the module fills.
    case structOut
    /// A 32-byte blank-padded label (C_InitToken).
    case label32
    /// A NUL-terminated string.
    case cString
    /// C_AsyncComplete's CK_ASYNC_DATA: ulVersion in; the result's lengths and handles out.
    case asyncData
    /// A buffer of `length` that the module fills after the call has returned (C_AsyncJoin): it
    /// belongs to the operation until then, so the tracer shows its address and length only.
    case asyncBuffer(length: String)

    public enum Secrecy: Sendable, Equatable { case plain, secret, pin }

    /// The arguments this role names as its length or count.
    public var parameters: [String] {
        switch self {
        case .bytes(let length, _), .bytesOut(let length, _), .utf8(let length), .messageParameter(let length),
             .asyncBuffer(let length):
            [length]
        case .attributes(let count), .attributesOut(let count): [count]
        case .handlesOut(let maximum, let count): [maximum, count]
        default: []
        }
    }

    /// The flag families the tracer names (TraceEmitter maps each to a PKCS11Name family).
    public static let flagFamilies = ["CKF_SESSION", "CKF_WAIT", "CKF_MESSAGE", "CKF_INTERFACE", "CKF_MECH"]
    /// The constant families the tracer names values from; others are shown as numbers.
    public static let namedFamilies = ["CKU", "CKM", "CKS.validation"]

    /// Parses `bytes(ulDataLen)`, `in`, `handles-out(pulCount,pulCount)`...; the caller adds the
    /// file and line to a failure.
    public static func parse(_ word: Substring) -> Result<ArgumentRole, RoleError> {
        var name = word
        var parameters: [String] = []
        if let open = word.firstIndex(of: "(") {
            guard word.last == ")" else { return .failure(RoleError("role '\(word)' lacks its closing ')'")) }
            name = word[..<open]
            parameters = word[word.index(after: open)..<word.index(before: word.endIndex)]
                .split(separator: ",", omittingEmptySubsequences: false).map { String($0) }
            guard parameters.allSatisfy({ !$0.isEmpty }) else {
                return .failure(RoleError("role '\(word)' has an empty parameter"))
            }
        }
        func taking(_ count: Int, _ make: ([String]) -> ArgumentRole) -> Result<ArgumentRole, RoleError> {
            guard parameters.count == count else {
                return .failure(RoleError("role '\(name)' takes \(count) parameter(s), not \(parameters.count)"))
            }
            return .success(make(parameters))
        }
        switch name {
        case "in": return taking(0) { _ in .input }
        case "out": return taking(0) { _ in .output }
        case "inout": return taking(0) { _ in .inputOutput }
        case "bytes": return taking(1) { .bytes(length: $0[0], secrecy: .plain) }
        case "secret": return taking(1) { .bytes(length: $0[0], secrecy: .secret) }
        case "pin": return taking(1) { .bytes(length: $0[0], secrecy: .pin) }
        case "bytes-out": return taking(1) { .bytesOut(length: $0[0], secrecy: .plain) }
        case "secret-out": return taking(1) { .bytesOut(length: $0[0], secrecy: .secret) }
        case "utf8": return taking(1) { .utf8(length: $0[0]) }
        case "message-parameter": return taking(1) { .messageParameter(length: $0[0]) }
        case "attrs": return taking(1) { .attributes(count: $0[0]) }
        case "attrs-out": return taking(1) { .attributesOut(count: $0[0]) }
        case "mechanism": return taking(0) { _ in .mechanism }
        case "handles-out": return taking(2) { .handlesOut(maximum: $0[0], count: $0[1]) }
        case "flags":
            guard parameters.count != 1 || flagFamilies.contains(parameters[0]) else {
                return .failure(RoleError("unknown flag family '\(parameters[0])' (known: \(flagFamilies.joined(separator: ", ")))"))
            }
            return taking(1) { .flags(family: $0[0]) }
        case "enum":
            guard parameters.count != 1 || namedFamilies.contains(parameters[0]) else {
                return .failure(RoleError("unknown constant family '\(parameters[0])' (known: \(namedFamilies.joined(separator: ", ")))"))
            }
            return taking(1) { .enumerated(family: $0[0]) }
        case "struct-out": return taking(0) { _ in .structOut }
        case "label32": return taking(0) { _ in .label32 }
        case "cstring": return taking(0) { _ in .cString }
        case "async-data": return taking(0) { _ in .asyncData }
        case "async-buffer": return taking(1) { .asyncBuffer(length: $0[0]) }
        default: return .failure(RoleError("unknown role '\(name)'"))
        }
    }
}

public struct RoleError: Error, Equatable, Sendable {
    public var message: String
    init(_ message: String) { self.message = message }
}
