// Why a `pkcs11:` URI did not parse: where (an offset into the text) and what was wrong there.

public struct URIError: Error, Sendable, Equatable, CustomStringConvertible {
    /// 0-based offset into the URI text. Parsing stops at the first fault and everything before
    /// it is ASCII (but for `.tooLong`, which points at the limit), so this counts bytes, Unicode
    /// scalars and Characters alike.
    public var position: Int
    public var problem: Problem

    public init(position: Int, _ problem: Problem) {
        self.position = position
        self.problem = problem
    }

    public enum Problem: Sendable, Equatable {
        /// The text is longer than PKCS11URI.maximumLength (its length).
        case tooLong(Int)
        case notPKCS11Scheme
        /// Nothing between two separators, or after the last `;` / `&`.
        case emptyAttribute
        /// A name with no `=` after it.
        case missingEquals(name: String)
        /// `=` with no name before it.
        case emptyName
        /// A byte that cannot be part of an attribute name (ALPHA / DIGIT / "-" / "_").
        case badNameCharacter(UInt8)
        /// A path attribute RFC 7512 does not define and that is not a vendor `x-` one.
        case unknownPathAttribute(String)
        /// pin-source, pin-value, module-name or module-path written in the path.
        case queryAttributeInPath(String)
        /// `x-` with no name after it.
        case emptyVendorName
        /// An attribute that may appear once, again; `firstAt` is where it first appeared.
        case duplicate(String, firstAt: Int)
        /// `%` not followed by two hex digits.
        case badPercentEncoding
        /// A byte that must be percent-encoded in this component (`inQuery`: the query's rules).
        case mustBeEncoded(UInt8, inQuery: Bool)
        /// The named attribute's decoded value is not UTF-8.
        case notUTF8(String)
        /// library-version is not M or M.N in decimal digits.
        case badVersion
        /// A library-version number over 255 (CK_VERSION holds bytes).
        case versionOutOfRange
        /// slot-id is not decimal digits.
        case badSlotID
        /// slot-id is larger than CK_SLOT_ID holds.
        case slotIDOutOfRange
        /// type is not one of RFC 7512's object types.
        case unknownObjectType(String)
    }

    public var message: String {
        switch problem {
        case .tooLong(let length):
            return "URI is \(length) bytes long, more than the \(PKCS11URI.maximumLength)-byte limit"
        case .notPKCS11Scheme: return "not a PKCS#11 URI: it must start with 'pkcs11:'"
        case .emptyAttribute: return "empty attribute: expected 'name=value'"
        case .missingEquals(let name): return "expected '=' after '\(name)'"
        case .emptyName: return "attribute has no name before '='"
        case .badNameCharacter(let byte):
            return "\(quoted(byte)) cannot be part of an attribute name (letters, digits, '-', '_')"
        case .unknownPathAttribute(let name):
            return "unknown path attribute '\(name)' (RFC 7512 defines token, manufacturer, serial, model, "
                + "library-manufacturer, library-description, library-version, slot-description, "
                + "slot-manufacturer, slot-id, id, object, type; vendor attributes start with 'x-')"
        case .queryAttributeInPath(let name):
            return "'\(name)' belongs in the query: write '?\(name)=...' after the path"
        case .emptyVendorName: return "vendor attribute needs a name after 'x-'"
        case .duplicate(let name, let firstAt):
            return "'\(name)' appears again (first at offset \(firstAt)); RFC 7512 allows it once"
        case .badPercentEncoding: return "'%' must be followed by two hex digits"
        case .mustBeEncoded(let byte, let inQuery):
            let component = inQuery ? "query" : "path"
            if byte >= 0x80 {
                return "non-ASCII byte must be percent-encoded in the \(component) (UTF-8, here %\(hex(byte)))"
            }
            return "\(quoted(byte)) must be percent-encoded as %\(hex(byte)) in the \(component)"
        case .notUTF8(let name): return "'\(name)' decodes to bytes that are not UTF-8"
        case .badVersion: return "library-version must be M or M.N, in decimal digits"
        case .versionOutOfRange: return "library-version numbers go up to 255"
        case .badSlotID: return "slot-id must be decimal digits"
        case .slotIDOutOfRange: return "slot-id is larger than a CK_SLOT_ID can hold"
        case .unknownObjectType(let value):
            return "unknown type '\(value)' (RFC 7512: public, private, cert, secret-key, data)"
        }
    }

    /// `offset N: MESSAGE`.
    public var description: String { "offset \(position): \(message)" }

    private func hex(_ byte: UInt8) -> String {
        String(decoding: [PercentEncoding.hexDigit(byte >> 4), PercentEncoding.hexDigit(byte & 0x0F)], as: UTF8.self)
    }

    /// A byte as a person reads it in a message: 'c', or a name for the invisible ones.
    private func quoted(_ byte: UInt8) -> String {
        switch byte {
        case 0x20: return "a space"
        case 0x09: return "a tab"
        case 0x0A: return "a newline"
        case 0x21...0x7E: return "'" + String(decoding: [byte], as: UTF8.self) + "'"
        default: return "byte 0x\(hex(byte))"
        }
    }
}
