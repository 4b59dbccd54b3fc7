// What a `pkcs11:` URI is matched against: a token as its module describes it (CK_INFO,
// CK_SLOT_INFO and the slot's ID, CK_TOKEN_INFO) in plain Swift values, filled by whoever
// holds the module, and the matching itself (p11-kit's p11_kit_uri_match_*_info).

public struct TokenDescription: Sendable, Equatable {
    /// CK_INFO: the library.
    public struct Library: Sendable, Equatable {
        public var description: String
        public var manufacturer: String
        public var version: PKCS11URI.LibraryVersion

        public init(description: String, manufacturer: String, version: PKCS11URI.LibraryVersion) {
            self.description = description
            self.manufacturer = manufacturer
            self.version = version
        }
    }

    /// CK_SLOT_INFO and the slot's ID as the module numbers it (not the proxy's renumbering).
    public struct Slot: Sendable, Equatable {
        public var id: UInt
        public var description: String
        public var manufacturer: String

        public init(id: UInt, description: String, manufacturer: String) {
            self.id = id
            self.description = description
            self.manufacturer = manufacturer
        }
    }

    /// CK_TOKEN_INFO.
    public struct Token: Sendable, Equatable {
        public var label: String
        public var manufacturer: String
        public var model: String
        public var serial: String

        public init(label: String, manufacturer: String, model: String, serial: String) {
            self.label = label
            self.manufacturer = manufacturer
            self.model = model
            self.serial = serial
        }
    }

    public var library: Library
    public var slot: Slot
    public var token: Token

    public init(library: Library, slot: Slot, token: Token) {
        self.library = library
        self.slot = slot
        self.token = token
    }

    /// A PKCS#11 text field's value: the fields are blank-padded to their fixed size, so trailing
    /// spaces are padding, never content (p11-kit's p11_kit_space_strlen). Strings may be given
    /// with or without their padding.
    public static func withoutPadding(_ text: String) -> String {
        var bytes = Array(text.utf8)
        while bytes.last == UInt8(ascii: " ") { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }
}

extension PKCS11URI {
    /// Whether the URI names this token: every library, slot and token attribute it has equals
    /// the description's (RFC 7512's matching rules, p11-kit's p11_kit_uri_match_*_info). An
    /// absent attribute matches anything; an empty one only a blank field. Object attributes
    /// (id, object, type) do not describe tokens and are not compared, nor is the query.
    /// A vendor `x-` path attribute makes the URI match nothing: RFC 7512 says an attribute the
    /// consumer does not understand must not widen the match (p11-kit does the same).
    public func matches(_ described: TokenDescription) -> Bool {
        matches(library: described.library) && matches(slot: described.slot) && matches(token: described.token)
    }

    /// The library attributes alone (p11_kit_uri_match_module_info): a URI that names no token
    /// attribute can select a whole module.
    public func matches(library: TokenDescription.Library) -> Bool {
        vendorAttributes.isEmpty
            && Self.field(libraryDescription, equals: library.description)
            && Self.field(libraryManufacturer, equals: library.manufacturer)
            && (libraryVersion == nil || libraryVersion == library.version)
    }

    /// The slot attributes alone (p11_kit_uri_match_slot_info, and slot-id).
    public func matches(slot: TokenDescription.Slot) -> Bool {
        vendorAttributes.isEmpty
            && Self.field(slotDescription, equals: slot.description)
            && Self.field(slotManufacturer, equals: slot.manufacturer)
            && (slotID == nil || slotID == slot.id)
    }

    /// The token attributes alone (p11_kit_uri_match_token_info).
    public func matches(token: TokenDescription.Token) -> Bool {
        vendorAttributes.isEmpty
            && Self.field(self.token, equals: token.label)
            && Self.field(manufacturer, equals: token.manufacturer)
            && Self.field(model, equals: token.model)
            && Self.field(serial, equals: token.serial)
    }

    /// p11-kit pads the URI's value with spaces to the field's size and compares the bytes: the
    /// same as comparing both without trailing spaces. Exact otherwise: case and leading spaces count.
    private static func field(_ wanted: String?, equals actual: String) -> Bool {
        guard let wanted else { return true }
        // Bytes, as p11-kit compares them: String's == would also equate other Unicode normal forms.
        return TokenDescription.withoutPadding(wanted).utf8.elementsEqual(TokenDescription.withoutPadding(actual).utf8)
    }
}
