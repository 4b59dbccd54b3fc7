// The value of a `remote:` line, as p11-kit reads it (rpc-transport.c p11_rpc_transport_new):
// "unix:path=/absolute/socket" (percent-decoded) or "|command arguments" (split like argv by
// common/argv.c p11_argv_parse and run without a shell). p11-kit's `vsock:` is not supported.
// Pure Swift: unit tests drive it without a socket.
import CPKCS11

public enum RemoteAddress: Equatable, Sendable, CustomStringConvertible {
    /// A listening p11-kit server (`p11-kit server`), by absolute path.
    case unixSocket(path: String)
    /// A command speaking the protocol on its stdin and stdout (`p11-kit remote MODULE`).
    case command(arguments: [String])

    /// Parses a `remote:` value; the error's message says what is wrong with it.
    public init(parsing value: String) throws(RPCError) {
        let bytes = Array(value.utf8)
        if bytes.first == UInt8(ascii: "|") {
            let arguments = try Self.splitArguments(bytes.dropFirst())
            guard !arguments.isEmpty else { throw Self.invalid(value, "no command after '|'") }
            self = .command(arguments: arguments)
            return
        }
        let prefix = Array("unix:".utf8)
        guard bytes.starts(with: prefix) else { throw Self.invalid(value, "only unix:path= and |command are supported") }
        // p11-kit accepts exactly "unix:path=/" followed by the rest of an absolute path, and
        // percent-decodes it (p11_path_decode).
        let parameters = bytes.dropFirst(prefix.count)
        let key = Array("path=/".utf8)
        guard parameters.starts(with: key) else { throw Self.invalid(value, "unix:path= needs an absolute path") }
        guard let path = Self.percentDecoded(parameters.dropFirst(key.count - 1)), !path.contains(0) else {
            throw Self.invalid(value, "unix:path= needs an absolute path")
        }
        self = .unixSocket(path: String(decoding: path, as: UTF8.self))
    }

    public var description: String {
        switch self {
        case .unixSocket(let path): return "unix:path=" + path
        case .command(let arguments):
            var text = "|"
            for (index, argument) in arguments.enumerated() { text += (index == 0 ? "" : " ") + argument }
            return text
        }
    }

    private static func invalid(_ value: String, _ why: String) -> RPCError {
        RPCError(CK_RV(CKR_GENERAL_ERROR), "invalid remote '" + value + "': " + why)
    }

    /// p11_argv_parse: whitespace separates; '…' and "…" quote (a backslash inside quotes
    /// escapes the quote character, else it stays); outside quotes a backslash keeps itself and
    /// the next character. Unlike p11-kit, a run of spaces does not make empty arguments
    /// (p11-kit passes them on); an explicit "" does.
    static func splitArguments(_ bytes: ArraySlice<UInt8>) throws(RPCError) -> [String] {
        var arguments: [String] = []
        var current: [UInt8] = []
        var started = false
        var quote: UInt8 = 0
        var index = bytes.startIndex
        func isSpace(_ byte: UInt8) -> Bool { byte == 0x20 || (0x09...0x0D).contains(byte) }
        while index < bytes.endIndex {
            let byte = bytes[index]
            if quote != 0 {
                if byte == quote {
                    quote = 0
                } else {
                    if byte == UInt8(ascii: "\\") {
                        index += 1
                        guard index < bytes.endIndex else { throw invalid(String(decoding: bytes, as: UTF8.self), "ends in a backslash") }
                        if bytes[index] != quote { current.append(byte) }
                    }
                    current.append(bytes[index])
                }
            } else if isSpace(byte) {
                if started { arguments.append(String(decoding: current, as: UTF8.self)) }
                current = []
                started = false
            } else if byte == UInt8(ascii: "'") || byte == UInt8(ascii: "\"") {
                quote = byte
                started = true
            } else if byte == UInt8(ascii: "\\") {
                index += 1
                guard index < bytes.endIndex else { throw invalid(String(decoding: bytes, as: UTF8.self), "ends in a backslash") }
                current.append(byte)
                current.append(bytes[index])
                started = true
            } else {
                current.append(byte)
                started = true
            }
            index += 1
        }
        // p11-kit accepts an unterminated quote and keeps what it read.
        if started { arguments.append(String(decoding: current, as: UTF8.self)) }
        return arguments
    }

    /// %XX decoding as p11-kit's url_decode does for the path; nil on a malformed escape.
    static func percentDecoded(_ bytes: ArraySlice<UInt8>) -> [UInt8]? {
        var result: [UInt8] = []
        var index = bytes.startIndex
        func hex(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
            default: return nil
            }
        }
        while index < bytes.endIndex {
            if bytes[index] == UInt8(ascii: "%") {
                guard index + 2 < bytes.endIndex, let high = hex(bytes[index + 1]), let low = hex(bytes[index + 2]) else { return nil }
                result.append(high << 4 | low)
                index += 3
            } else {
                result.append(bytes[index])
                index += 1
            }
        }
        return result
    }
}
