// A `pkcs11:` URI (RFC 7512, with p11-kit's reading of it): what it names, read from text and
// written back the way p11-kit and GnuTLS's p11tool write it.
//
// The API, in one place:
//   let uri = try PKCS11URI(parsing: "pkcs11:token=My%20token;serial=1234")  // throws(URIError)
//   uri.token                      // "My token": every value is percent-decoded
//   uri.description                // the URI again, in p11-kit's attribute order and encoding
//   PKCS11URI(token: described)    // a token's URI exactly as `p11tool --list-tokens` prints it
//   uri.matches(described)         // does the URI name this token? (TokenDescription.swift)
//
// Parsing is strict where RFC 7512's grammar is (URIError names the offset and the fault), so a
// typo in a configuration line is reported rather than silently matching nothing:
// - the scheme is case-insensitive (RFC 3986 section 3.1); attribute names are exact, lower case;
// - each path attribute at most once (RFC 7512 section 2.3); standard query attributes at most
//   once; vendor and unknown query attributes may repeat and keep their order;
// - vendor path attributes (`x-` and 1*(ALPHA / DIGIT / "-" / "_")) are kept; any other unknown
//   path attribute is an error (p11-kit instead marks the URI "unrecognized" so that it matches
//   nothing, which in a filter would hide every token without a word);
// - unknown query attributes are kept (RFC 7512: a consumer ignores those it does not know);
// - characters outside the component's set (space, '#', '"', non-ASCII, '/' in the path, ...)
//   must be percent-encoded. p11-kit strips white space instead, turning `token=My token` into
//   "Mytoken", and takes non-ASCII bytes as they are; we report both.
// - `library-version=M` means M.0 (as p11-kit reads it) and is written back as `M.0`.
// Every text value must decode to UTF-8 (CK_UTF8CHAR fields); `id` is bytes.

public struct PKCS11URI: Sendable, Equatable, CustomStringConvertible {
    // Path attributes (RFC 7512 section 2.3 and p11-kit's slot attributes), in the order p11-kit's
    // p11_kit_uri_format writes them. Nil: not in the URI (matches anything); "": matches a blank field.
    public var libraryDescription: String?
    public var libraryManufacturer: String?
    public var libraryVersion: LibraryVersion?
    public var slotDescription: String?
    public var slotManufacturer: String?
    public var slotID: UInt?
    public var model: String?
    public var manufacturer: String?
    public var serial: String?
    /// The token's label.
    public var token: String?
    /// CKA_ID, raw bytes.
    public var id: [UInt8]?
    /// CKA_LABEL of an object.
    public var object: String?
    /// CKA_CLASS of an object.
    public var type: ObjectType?
    /// `x-` path attributes, in the order written (written back after the standard ones).
    public var vendorAttributes: [Attribute] = []

    // Query attributes.
    public var pinSource: String?
    public var pinValue: String?
    public var moduleName: String?
    public var modulePath: String?
    /// Every other query attribute (vendor `x-` ones and names RFC 7512 does not define), in order,
    /// repeats kept, and written back in that order (p11-kit sorts them by name instead).
    public var otherQueryAttributes: [Attribute] = []

    /// An empty URI, `pkcs11:`, which matches every token.
    public init() {}

    /// A token's URI as GnuTLS's `p11tool --list-tokens` prints it (p11_kit_uri_format with
    /// P11_KIT_URI_FOR_TOKEN): model, manufacturer, serial and token, each present even when blank,
    /// since CK_TOKEN_INFO's fields are blank-padded rather than empty.
    public init(token info: TokenDescription.Token) {
        model = TokenDescription.withoutPadding(info.model)
        manufacturer = TokenDescription.withoutPadding(info.manufacturer)
        serial = TokenDescription.withoutPadding(info.serial)
        token = TokenDescription.withoutPadding(info.label)
    }

    /// The longest URI read: the configuration reader's line limit, so any URI that fits on a
    /// configuration line parses, and parsing stays fast on hostile input.
    public static let maximumLength = 1 << 16

    /// `library-version`: CK_VERSION.
    public struct LibraryVersion: Sendable, Equatable {
        public var major: UInt8
        public var minor: UInt8

        public init(major: UInt8, minor: UInt8) {
            self.major = major
            self.minor = minor
        }
    }

    /// `type`: the object classes RFC 7512 names.
    public enum ObjectType: Sendable, Equatable, CaseIterable {
        case publicKey, privateKey, certificate, secretKey, data

        /// The word in the URI.
        public var name: String {
            switch self {
            case .publicKey: return "public"
            case .privateKey: return "private"
            case .certificate: return "cert"
            case .secretKey: return "secret-key"
            case .data: return "data"
            }
        }
    }

    /// A vendor or unknown attribute: its name and decoded value.
    public struct Attribute: Sendable, Equatable {
        public var name: String
        public var value: String

        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// The URI text: `pkcs11:`, the path attributes in p11-kit's order, `?` and the query ones.
    /// Values are percent-encoded as p11-kit does (PercentEncoding.swift), so
    /// `PKCS11URI(parsing: uri.description) == uri` for every URI.
    public var description: String {
        var out = Array("pkcs11:".utf8)
        var first = true
        for name in PathAttributeName.allCases {
            guard let value = encodedValue(name) else { continue }
            if !first { out.append(UInt8(ascii: ";")) }
            first = false
            out += name.text.utf8
            out.append(UInt8(ascii: "="))
            out += value
        }
        for attribute in vendorAttributes {
            if !first { out.append(UInt8(ascii: ";")) }
            first = false
            append(attribute.name, attribute.value, to: &out)
        }
        first = true
        for (name, value) in [("pin-source", pinSource), ("pin-value", pinValue),
                              ("module-name", moduleName), ("module-path", modulePath)] {
            guard let value else { continue }
            out.append(first ? UInt8(ascii: "?") : UInt8(ascii: "&"))
            first = false
            append(name, value, to: &out)
        }
        for attribute in otherQueryAttributes {
            out.append(first ? UInt8(ascii: "?") : UInt8(ascii: "&"))
            first = false
            append(attribute.name, attribute.value, to: &out)
        }
        return String(decoding: out, as: UTF8.self)
    }

    private func append(_ name: String, _ value: String, to out: inout [UInt8]) {
        out += name.utf8
        out.append(UInt8(ascii: "="))
        PercentEncoding.encode(value.utf8, into: &out)
    }

    /// One path attribute's value as written, or nil when the URI does not name it.
    private func encodedValue(_ name: PathAttributeName) -> [UInt8]? {
        var out: [UInt8] = []
        switch name {
        case .libraryVersion:
            guard let libraryVersion else { return nil }
            out += "\(libraryVersion.major).\(libraryVersion.minor)".utf8
        case .slotID:
            guard let slotID else { return nil }
            out += "\(slotID)".utf8
        case .id:
            // p11-kit encodes every byte of an ID, letters included: it is binary.
            guard let id else { return nil }
            PercentEncoding.encode(id, everyByte: true, into: &out)
        case .type:
            guard let type else { return nil }
            out += type.name.utf8
        default:
            guard let text = text(name) else { return nil }
            PercentEncoding.encode(text.utf8, into: &out)
        }
        return out
    }

    /// The value of a text path attribute (nil for the others, which are not text).
    func text(_ name: PathAttributeName) -> String? {
        switch name {
        case .libraryDescription: return libraryDescription
        case .libraryManufacturer: return libraryManufacturer
        case .slotDescription: return slotDescription
        case .slotManufacturer: return slotManufacturer
        case .model: return model
        case .manufacturer: return manufacturer
        case .serial: return serial
        case .token: return token
        case .object: return object
        case .libraryVersion, .slotID, .id, .type: return nil
        }
    }

    mutating func setText(_ name: PathAttributeName, _ value: String) {
        switch name {
        case .libraryDescription: libraryDescription = value
        case .libraryManufacturer: libraryManufacturer = value
        case .slotDescription: slotDescription = value
        case .slotManufacturer: slotManufacturer = value
        case .model: model = value
        case .manufacturer: manufacturer = value
        case .serial: serial = value
        case .token: token = value
        case .object: object = value
        case .libraryVersion, .slotID, .id, .type: break
        }
    }
}

/// The standard path attributes, in the order p11-kit's p11_kit_uri_format writes them (library,
/// slot, token, object), which is the order p11tool's URIs show.
enum PathAttributeName: CaseIterable {
    case libraryDescription, libraryManufacturer, libraryVersion
    case slotDescription, slotManufacturer, slotID
    case model, manufacturer, serial, token
    case id, object, type

    var text: String {
        switch self {
        case .libraryDescription: return "library-description"
        case .libraryManufacturer: return "library-manufacturer"
        case .libraryVersion: return "library-version"
        case .slotDescription: return "slot-description"
        case .slotManufacturer: return "slot-manufacturer"
        case .slotID: return "slot-id"
        case .model: return "model"
        case .manufacturer: return "manufacturer"
        case .serial: return "serial"
        case .token: return "token"
        case .id: return "id"
        case .object: return "object"
        case .type: return "type"
        }
    }

    init?(_ name: String) {
        guard let found = Self.allCases.first(where: { $0.text == name }) else { return nil }
        self = found
    }
}
