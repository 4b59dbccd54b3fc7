// Reads the text of a `pkcs11:` URI into a PKCS11URI, by RFC 7512 section 2.3's grammar; the
// rules it enforces and the choices where RFC 7512 and p11-kit differ are listed in PKCS11URI.swift.

extension PKCS11URI {
    /// Parses `text`; the error names the offset of the first fault.
    public init(parsing text: String) throws(URIError) {
        var parser = URIParser(bytes: Array(text.utf8))
        self = try parser.parse()
    }
}

/// One parse: the bytes, the URI built so far, and where each once-only attribute was first seen.
struct URIParser {
    let bytes: [UInt8]
    private var uri = PKCS11URI()
    /// Path attributes and standard query attributes seen so far, with their offsets: a short
    /// list (the input's length is capped), so a linear search is enough.
    private var seen: [(name: String, position: Int)] = []

    init(bytes: [UInt8]) { self.bytes = bytes }

    static let scheme = Array("pkcs11:".utf8)
    static let queryAttributeNames = ["pin-source", "pin-value", "module-name", "module-path"]

    mutating func parse() throws(URIError) -> PKCS11URI {
        guard bytes.count <= PKCS11URI.maximumLength else {
            throw URIError(position: PKCS11URI.maximumLength, .tooLong(bytes.count))
        }
        // The scheme is case-insensitive (RFC 3986 section 3.1; p11-kit 0.24 accepts "PKCS11:" too).
        for (offset, expected) in Self.scheme.enumerated() {
            guard offset < bytes.count, Self.lowercased(bytes[offset]) == expected else {
                throw URIError(position: offset, .notPKCS11Scheme)
            }
        }
        let pathEnd = bytes[Self.scheme.count...].firstIndex(of: UInt8(ascii: "?")) ?? bytes.count
        try parseComponent(from: Self.scheme.count, to: pathEnd, inQuery: false)
        if pathEnd < bytes.count {
            try parseComponent(from: pathEnd + 1, to: bytes.count, inQuery: true)
        }
        return uri
    }

    /// The path (attributes split by ';') or the query (split by '&'). Either may be empty, but
    /// no attribute in it may be: `pkcs11:token=a;` is an error, as in RFC 7512's grammar.
    private mutating func parseComponent(from start: Int, to end: Int, inQuery: Bool) throws(URIError) {
        guard start < end else { return }
        let separator = inQuery ? UInt8(ascii: "&") : UInt8(ascii: ";")
        var attributeStart = start
        while true {
            let attributeEnd = bytes[attributeStart..<end].firstIndex(of: separator) ?? end
            try parseAttribute(from: attributeStart, to: attributeEnd, inQuery: inQuery)
            if attributeEnd == end { return }
            attributeStart = attributeEnd + 1
        }
    }

    private mutating func parseAttribute(from start: Int, to end: Int, inQuery: Bool) throws(URIError) {
        guard start < end else { throw URIError(position: start, .emptyAttribute) }
        var index = start
        while index < end, Self.isNameByte(bytes[index]) { index += 1 }
        let name = String(decoding: bytes[start..<index], as: UTF8.self)
        guard index < end else { throw URIError(position: index, .missingEquals(name: name)) }
        guard bytes[index] == UInt8(ascii: "=") else { throw URIError(position: index, .badNameCharacter(bytes[index])) }
        guard index > start else { throw URIError(position: start, .emptyName) }
        let value = (start: index + 1, end: end)
        if inQuery {
            try assignQuery(name, at: start, value: value)
        } else {
            try assignPath(name, at: start, value: value)
        }
    }

    private mutating func assignPath(_ name: String, at position: Int, value: (start: Int, end: Int)) throws(URIError) {
        if let standard = PathAttributeName(name) {
            try noteOnce(name, at: position)
            switch standard {
            case .libraryVersion:
                uri.libraryVersion = try version(value)
            case .slotID:
                uri.slotID = try slotID(value)
            case .id:
                uri.id = try decoded(value, inQuery: false)
            case .type:
                let word = try text(name, value, inQuery: false)
                guard let type = PKCS11URI.ObjectType.allCases.first(where: { $0.name == word }) else {
                    throw URIError(position: value.start, .unknownObjectType(word))
                }
                uri.type = type
            default:
                uri.setText(standard, try text(name, value, inQuery: false))
            }
        } else if name.utf8.starts(with: "x-".utf8) {
            // RFC 7512's pk11-v-pattr: "x-" 1*(ALPHA / DIGIT / "-" / "_").
            guard name.utf8.count > 2 else { throw URIError(position: position, .emptyVendorName) }
            try noteOnce(name, at: position)
            uri.vendorAttributes.append(PKCS11URI.Attribute(name: name, value: try text(name, value, inQuery: false)))
        } else if Self.queryAttributeNames.contains(name) {
            // p11-kit still reads pin-source and pin-value here, as early drafts had them; RFC 7512 does not.
            throw URIError(position: position, .queryAttributeInPath(name))
        } else {
            throw URIError(position: position, .unknownPathAttribute(name))
        }
    }

    private mutating func assignQuery(_ name: String, at position: Int, value: (start: Int, end: Int)) throws(URIError) {
        let isStandard = Self.queryAttributeNames.contains(name)
        if isStandard { try noteOnce(name, at: position) }
        let text = try text(name, value, inQuery: true)
        switch name {
        case "pin-source": uri.pinSource = text
        case "pin-value": uri.pinValue = text
        case "module-name": uri.moduleName = text
        case "module-path": uri.modulePath = text
        default: uri.otherQueryAttributes.append(PKCS11URI.Attribute(name: name, value: text))
        }
    }

    private mutating func noteOnce(_ name: String, at position: Int) throws(URIError) {
        if let first = seen.first(where: { $0.name == name }) {
            throw URIError(position: position, .duplicate(name, firstAt: first.position))
        }
        seen.append((name, position))
    }

    /// A value's bytes, percent-decoded; a byte the component does not allow as it is, or a '%'
    /// without two hex digits, is an error at its offset.
    private func decoded(_ value: (start: Int, end: Int), inQuery: Bool) throws(URIError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(value.end - value.start)
        var index = value.start
        while index < value.end {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                guard index + 2 < value.end, let high = PercentEncoding.hexValue(bytes[index + 1]),
                      let low = PercentEncoding.hexValue(bytes[index + 2]) else {
                    throw URIError(position: index, .badPercentEncoding)
                }
                out.append(high << 4 | low)
                index += 3
            } else if Self.isAllowed(byte, inQuery: inQuery) {
                out.append(byte)
                index += 1
            } else {
                throw URIError(position: index, .mustBeEncoded(byte, inQuery: inQuery))
            }
        }
        return out
    }

    private func text(_ name: String, _ value: (start: Int, end: Int), inQuery: Bool) throws(URIError) -> String {
        let bytes = try decoded(value, inQuery: inQuery)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw URIError(position: value.start, .notUTF8(name))
        }
        return text
    }

    /// `M` or `M.N` (pk11-lib-ver); `M` is M.0 as p11-kit reads it.
    private func version(_ value: (start: Int, end: Int)) throws(URIError) -> PKCS11URI.LibraryVersion {
        var index = value.start
        guard let major = digits(&index, value.end, limit: 255) else { throw URIError(position: index, .badVersion) }
        guard !major.overflow else { throw URIError(position: value.start, .versionOutOfRange) }
        var minor: UInt = 0
        if index < value.end {
            guard bytes[index] == UInt8(ascii: ".") else { throw URIError(position: index, .badVersion) }
            index += 1
            let minorStart = index
            guard let read = digits(&index, value.end, limit: 255) else { throw URIError(position: index, .badVersion) }
            guard !read.overflow else { throw URIError(position: minorStart, .versionOutOfRange) }
            guard index == value.end else { throw URIError(position: index, .badVersion) }
            minor = read.value
        }
        return PKCS11URI.LibraryVersion(major: UInt8(major.value), minor: UInt8(minor))
    }

    /// 1*DIGIT, a CK_SLOT_ID (CK_ULONG).
    private func slotID(_ value: (start: Int, end: Int)) throws(URIError) -> UInt {
        var index = value.start
        guard let id = digits(&index, value.end, limit: .max) else { throw URIError(position: index, .badSlotID) }
        guard !id.overflow else { throw URIError(position: value.start, .slotIDOutOfRange) }
        guard index == value.end else { throw URIError(position: index, .badSlotID) }
        return id.value
    }

    /// The decimal digits from `index` on (nil when there are none), and whether their value is
    /// over `limit`; `index` ends after them.
    private func digits(_ index: inout Int, _ end: Int, limit: UInt) -> (value: UInt, overflow: Bool)? {
        let start = index
        var value: UInt = 0
        var overflow = false
        while index < end, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
            let (times10, carried) = value.multipliedReportingOverflow(by: 10)
            let (sum, added) = times10.addingReportingOverflow(UInt(bytes[index] - UInt8(ascii: "0")))
            if carried || added || sum > limit { overflow = true } else { value = sum }
            index += 1
        }
        return index > start ? (value, overflow) : nil
    }

    /// pk11-v-attr-nm-char: ALPHA / DIGIT / "-" / "_" (p11-kit's verbatim bytes but '.'). Every
    /// standard name is made of these too.
    static func isNameByte(_ byte: UInt8) -> Bool {
        PercentEncoding.isVerbatim(byte) && byte != UInt8(ascii: ".")
    }

    /// What may stand unencoded in a value: RFC 7512's pk11-pchar (unreserved, pk11-res-avail and
    /// '&') in the path, pk11-qchar (unreserved, pk11-res-avail, '/', '?', '|') in the query.
    static func isAllowed(_ byte: UInt8, inQuery: Bool) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
             UInt8(ascii: "~"), UInt8(ascii: ":"), UInt8(ascii: "["), UInt8(ascii: "]"), UInt8(ascii: "@"),
             UInt8(ascii: "!"), UInt8(ascii: "$"), UInt8(ascii: "'"), UInt8(ascii: "("), UInt8(ascii: ")"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: ","), UInt8(ascii: "="):
            return true
        case UInt8(ascii: "&"):
            return !inQuery
        case UInt8(ascii: "/"), UInt8(ascii: "?"), UInt8(ascii: "|"):
            return inQuery
        default:
            return false
        }
    }

    static func lowercased(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 0x20 : byte
    }
}
