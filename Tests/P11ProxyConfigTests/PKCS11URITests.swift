// `pkcs11:` URIs (PKCS11URI, URIParser, TokenDescription): RFC 7512's own examples, the
// strings p11tool prints, round trips, every parse error at its offset, and token matching.

import Testing
import P11ProxyConfig

@Suite struct PKCS11URIParsingTests {
    /// RFC 7512 section 3, each example on one line (the RFC wraps the long ones for print).
    static let rfcExamples = [
        "pkcs11:",
        "pkcs11:object=my-pubkey;type=public",
        "pkcs11:object=my-key;type=private?pin-source=file:/etc/token",
        "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;manufacturer=Snake%20Oil,%20Inc.;model=1.0;"
            + "object=my-certificate;type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=?pin-source=file:/etc/token_pin",
        "pkcs11:object=my-sign-key;type=private?module-name=mypkcs11",
        "pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1",
        "pkcs11:token=Software%20PKCS%2311%20softtoken;manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin",
        "pkcs11:slot-description=Sun%20Metaslot",
        "pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;library-description=Soft%20Token%20Library;library-version=1.23",
        "pkcs11:token=My%20token%25%20created%20by%20Joe;library-version=3;id=%01%02%03%Ba%dd%Ca%fe%04%05%06",
        "pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert",
        "pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;object=my-certificate;type=cert",
    ]

    @Test(arguments: rfcExamples) func rfcExampleParsesAndSurvivesFormatting(_ text: String) throws {
        let uri = try PKCS11URI(parsing: text)
        #expect(try PKCS11URI(parsing: uri.description) == uri)
    }

    @Test func rfcExampleWithEveryTokenAttribute() throws {
        let uri = try PKCS11URI(parsing: Self.rfcExamples[3])
        var expected = PKCS11URI()
        expected.token = "The Software PKCS#11 Softtoken"
        expected.manufacturer = "Snake Oil, Inc."
        expected.model = "1.0"
        expected.object = "my-certificate"
        expected.type = .certificate
        expected.id = [0x69, 0x95, 0x3E, 0x5C, 0xF4, 0xBD, 0xEC, 0x91]
        expected.serial = ""
        expected.pinSource = "file:/etc/token_pin"
        #expect(uri == expected)
        // p11-kit's order and encoding: ',' and ':' and '/' are encoded, the id byte by byte.
        #expect(uri.description == "pkcs11:model=1.0;manufacturer=Snake%20Oil%2C%20Inc.;serial=;"
            + "token=The%20Software%20PKCS%2311%20Softtoken;id=%69%95%3E%5C%F4%BD%EC%91;object=my-certificate;"
            + "type=cert?pin-source=file%3A%2Fetc%2Ftoken_pin")
    }

    @Test func rfcExamplesOfLibraryAndQueryAttributes() throws {
        let library = try PKCS11URI(parsing: Self.rfcExamples[8])
        #expect(library.libraryManufacturer == "Snake Oil, Inc.")
        #expect(library.libraryDescription == "Soft Token Library")
        #expect(library.libraryVersion == PKCS11URI.LibraryVersion(major: 1, minor: 23))

        let majorOnly = try PKCS11URI(parsing: Self.rfcExamples[9])
        #expect(majorOnly.token == "My token% created by Joe")
        #expect(majorOnly.libraryVersion == PKCS11URI.LibraryVersion(major: 3, minor: 0))
        #expect(majorOnly.id == [1, 2, 3, 0xBA, 0xDD, 0xCA, 0xFE, 4, 5, 6])

        #expect(try PKCS11URI(parsing: Self.rfcExamples[4]).moduleName == "mypkcs11")
        #expect(try PKCS11URI(parsing: Self.rfcExamples[5]).modulePath == "/mnt/libmypkcs11.so.1")
        #expect(try PKCS11URI(parsing: Self.rfcExamples[6]).pinValue == "the-pin")
        #expect(try PKCS11URI(parsing: Self.rfcExamples[7]).slotDescription == "Sun Metaslot")
        #expect(try PKCS11URI(parsing: Self.rfcExamples[10]).token == "A name with a substring %;")
        #expect(try PKCS11URI(parsing: Self.rfcExamples[11]).token == "Name with a small A with acute: \u{E1}")
        #expect(try PKCS11URI(parsing: Self.rfcExamples[0]) == PKCS11URI())
    }

    @Test func everyPathAttribute() throws {
        let uri = try PKCS11URI(parsing: "pkcs11:library-description=L;library-manufacturer=LM;library-version=2.255;"
            + "slot-description=S;slot-manufacturer=SM;slot-id=18446744073709551615;model=M;manufacturer=TM;"
            + "serial=42;token=T;id=%00;object=O;type=secret-key;x-vendor_1=v")
        #expect(uri.libraryDescription == "L")
        #expect(uri.libraryManufacturer == "LM")
        #expect(uri.libraryVersion == PKCS11URI.LibraryVersion(major: 2, minor: 255))
        #expect(uri.slotDescription == "S")
        #expect(uri.slotManufacturer == "SM")
        #expect(uri.slotID == UInt.max)
        #expect(uri.model == "M")
        #expect(uri.manufacturer == "TM")
        #expect(uri.serial == "42")
        #expect(uri.token == "T")
        #expect(uri.id == [0])
        #expect(uri.object == "O")
        #expect(uri.type == .secretKey)
        #expect(uri.vendorAttributes == [PKCS11URI.Attribute(name: "x-vendor_1", value: "v")])
        #expect(uri.description == "pkcs11:library-description=L;library-manufacturer=LM;library-version=2.255;"
            + "slot-description=S;slot-manufacturer=SM;slot-id=18446744073709551615;model=M;manufacturer=TM;"
            + "serial=42;token=T;id=%00;object=O;type=secret-key;x-vendor_1=v")
    }

    @Test func everyObjectType() throws {
        for (word, type) in [("public", PKCS11URI.ObjectType.publicKey), ("private", .privateKey),
                             ("cert", .certificate), ("secret-key", .secretKey), ("data", .data)] {
            #expect(try PKCS11URI(parsing: "pkcs11:type=" + word).type == type)
        }
    }

    @Test func queryAttributesKeepUnknownOnesInOrderWithRepeats() throws {
        let uri = try PKCS11URI(parsing: "pkcs11:token=a?x-b=2&pin-value=1%202&unknown=3&x-b=4&module-name=m&pin-source=|cat%20/p?x")
        #expect(uri.pinValue == "1 2")
        #expect(uri.pinSource == "|cat /p?x")
        #expect(uri.moduleName == "m")
        #expect(uri.otherQueryAttributes == [PKCS11URI.Attribute(name: "x-b", value: "2"),
                                             PKCS11URI.Attribute(name: "unknown", value: "3"),
                                             PKCS11URI.Attribute(name: "x-b", value: "4")])
        // Standard query attributes first, in p11-kit's order, then the others as they came.
        #expect(uri.description == "pkcs11:token=a?pin-source=%7Ccat%20%2Fp%3Fx&pin-value=1%202&module-name=m"
            + "&x-b=2&unknown=3&x-b=4")
    }

    @Test func schemeIsCaseInsensitiveAndWrittenLowerCase() throws {
        let uri = try PKCS11URI(parsing: "PKCS11:token=a")
        #expect(uri.token == "a")
        #expect(uri.description == "pkcs11:token=a")
    }

    @Test func reservedCharactersTheRFCAllowsUnencoded() throws {
        // pk11-pchar: unreserved, pk11-res-avail and '&'; '=' after the first one is value.
        let uri = try PKCS11URI(parsing: "pkcs11:token=a~b:c[d]e@f!g$h'i(j)k*l+m,n=o&p")
        #expect(uri.token == "a~b:c[d]e@f!g$h'i(j)k*l+m,n=o&p")
        let query = try PKCS11URI(parsing: "pkcs11:?pin-source=file:/a/b?c|d")
        #expect(query.pinSource == "file:/a/b?c|d")
    }

    @Test func emptyValuesAreValuesAndEmptyQueryIsAllowed() throws {
        let uri = try PKCS11URI(parsing: "pkcs11:token=;id=?")
        #expect(uri.token == "")
        #expect(uri.id == [])
        #expect(uri.description == "pkcs11:token=;id=")
    }

    @Test func lowerCaseHexDecodesAndUpperCaseIsWritten() throws {
        let uri = try PKCS11URI(parsing: "pkcs11:token=%c3%a9%7e")
        #expect(uri.token == "\u{E9}~")
        #expect(uri.description == "pkcs11:token=%C3%A9%7E")
    }
}

@Suite struct PKCS11URIFormattingTests {
    static func tokenURI(_ label: String, serial: String) -> String {
        PKCS11URI(token: TokenDescription.Token(label: label, manufacturer: "SoftHSM project", model: "SoftHSM v2",
                                                serial: serial)).description
    }

    /// Printed by `p11tool --list-tokens` (GnuTLS 3.7.9, p11-kit 0.24.1) for SoftHSM2 tokens with
    /// these labels; Tests/integration/test_cli.sh compares against p11tool itself.
    @Test func tokenURIsAreWhatP11toolPrints() {
        #expect(Self.tokenURI("My token 1", serial: "390958d62abd49fd")
            == "pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=390958d62abd49fd;token=My%20token%201")
        #expect(Self.tokenURI("a;b/c?d%e&f=g\"h#i,j:k@l[m]n<o>p", serial: "493784ac7f5f61df")
            == "pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=493784ac7f5f61df;"
            + "token=a%3Bb%2Fc%3Fd%25e%26f%3Dg%22h%23i%2Cj%3Ak%40l%5Bm%5Dn%3Co%3Ep")
        #expect(Self.tokenURI("\\q+r~s!t$u(v)w*x", serial: "fe4c512ed1d583e6")
            == "pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=fe4c512ed1d583e6;"
            + "token=%5Cq%2Br%7Es%21t%24u%28v%29w%2Ax")
        #expect(Self.tokenURI("\u{E9} \u{FC}n\u{EF}", serial: "d6f90ed66143f42b")
            == "pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=d6f90ed66143f42b;"
            + "token=%C3%A9%20%C3%BCn%C3%AF")
    }

    @Test func paddingIsDroppedButBlankFieldsStay() {
        // CK_TOKEN_INFO as a module fills it: every field blank-padded to its size.
        let info = TokenDescription.Token(label: "t" + String(repeating: " ", count: 31),
                                          manufacturer: String(repeating: " ", count: 32),
                                          model: "m  ", serial: " lead")
        #expect(PKCS11URI(token: info).description == "pkcs11:model=m;manufacturer=;serial=%20lead;token=t")
    }

    @Test func formattedURIsParseBackToTheSameValue() throws {
        // Every byte value in text (as UTF-8) and in an id, the query included.
        var uri = PKCS11URI()
        let everyScalar = String(String.UnicodeScalarView((UInt32(0)..<0x80).compactMap(Unicode.Scalar.init) + ["\u{E9}", "\u{1F511}"]))
        uri.token = everyScalar
        uri.object = everyScalar
        uri.id = Array(0...255)
        uri.slotID = 0
        uri.libraryVersion = PKCS11URI.LibraryVersion(major: 0, minor: 0)
        uri.vendorAttributes = [PKCS11URI.Attribute(name: "x-a", value: everyScalar)]
        uri.pinValue = everyScalar
        uri.modulePath = ""
        uri.otherQueryAttributes = [PKCS11URI.Attribute(name: "x-q", value: everyScalar),
                                    PKCS11URI.Attribute(name: "x-q", value: "")]
        let text = uri.description
        #expect(text.utf8.allSatisfy { $0 < 0x80 && $0 > 0x20 })
        #expect(try PKCS11URI(parsing: text) == uri)
    }
}

@Suite struct PKCS11URIErrorTests {
    static func error(_ text: String) -> URIError? {
        do {
            _ = try PKCS11URI(parsing: text)
            return nil
        } catch {
            return error
        }
    }

    /// Each fault, and the offset it is reported at.
    static let cases: [(String, URIError)] = [
        ("", URIError(position: 0, .notPKCS11Scheme)),
        ("pkcs1", URIError(position: 5, .notPKCS11Scheme)),
        ("pkcs12:token=a", URIError(position: 5, .notPKCS11Scheme)),
        ("https://example.com", URIError(position: 0, .notPKCS11Scheme)),
        ("pkcs11:;token=a", URIError(position: 7, .emptyAttribute)),
        ("pkcs11:token=a;", URIError(position: 15, .emptyAttribute)),
        ("pkcs11:token=a;;serial=b", URIError(position: 15, .emptyAttribute)),
        ("pkcs11:?&pin-value=1", URIError(position: 8, .emptyAttribute)),
        ("pkcs11:?pin-value=1&", URIError(position: 20, .emptyAttribute)),
        ("pkcs11:token", URIError(position: 12, .missingEquals(name: "token"))),
        ("pkcs11:token=a?pin-value", URIError(position: 24, .missingEquals(name: "pin-value"))),
        ("pkcs11:=a", URIError(position: 7, .emptyName)),
        ("pkcs11:tok en=a", URIError(position: 10, .badNameCharacter(0x20))),
        ("pkcs11:token.x=a", URIError(position: 12, .badNameCharacter(UInt8(ascii: ".")))),
        ("pkcs11:tokens=a", URIError(position: 7, .unknownPathAttribute("tokens"))),
        ("pkcs11:Token=a", URIError(position: 7, .unknownPathAttribute("Token"))),
        ("pkcs11:token=a;pin-source=file:/x", URIError(position: 15, .queryAttributeInPath("pin-source"))),
        ("pkcs11:x-=a", URIError(position: 7, .emptyVendorName)),
        ("pkcs11:token=a;serial=1;token=b", URIError(position: 24, .duplicate("token", firstAt: 7))),
        ("pkcs11:x-a=1;x-a=2", URIError(position: 13, .duplicate("x-a", firstAt: 7))),
        ("pkcs11:?pin-value=1&pin-value=2", URIError(position: 20, .duplicate("pin-value", firstAt: 8))),
        ("pkcs11:token=%", URIError(position: 13, .badPercentEncoding)),
        ("pkcs11:token=a%4", URIError(position: 14, .badPercentEncoding)),
        ("pkcs11:token=%4;serial=1", URIError(position: 13, .badPercentEncoding)),
        ("pkcs11:id=%zz", URIError(position: 10, .badPercentEncoding)),
        ("pkcs11:token=My token", URIError(position: 15, .mustBeEncoded(0x20, inQuery: false))),
        ("pkcs11:token=a/b", URIError(position: 14, .mustBeEncoded(UInt8(ascii: "/"), inQuery: false))),
        ("pkcs11:token=a#b", URIError(position: 14, .mustBeEncoded(UInt8(ascii: "#"), inQuery: false))),
        ("pkcs11:token=caf\u{E9}", URIError(position: 16, .mustBeEncoded(0xC3, inQuery: false))),
        ("pkcs11:?pin-value=a;b", URIError(position: 19, .mustBeEncoded(UInt8(ascii: ";"), inQuery: true))),
        ("pkcs11:token=a\n", URIError(position: 14, .mustBeEncoded(0x0A, inQuery: false))),
        ("pkcs11:token=%C3", URIError(position: 13, .notUTF8("token"))),
        ("pkcs11:?x-v=%FF", URIError(position: 12, .notUTF8("x-v"))),
        ("pkcs11:library-version=", URIError(position: 23, .badVersion)),
        ("pkcs11:library-version=1.", URIError(position: 25, .badVersion)),
        ("pkcs11:library-version=.1", URIError(position: 23, .badVersion)),
        ("pkcs11:library-version=1.2.3", URIError(position: 26, .badVersion)),
        ("pkcs11:library-version=1x", URIError(position: 24, .badVersion)),
        ("pkcs11:library-version=256", URIError(position: 23, .versionOutOfRange)),
        ("pkcs11:library-version=1.1000", URIError(position: 25, .versionOutOfRange)),
        ("pkcs11:slot-id=", URIError(position: 15, .badSlotID)),
        ("pkcs11:slot-id=-1", URIError(position: 15, .badSlotID)),
        ("pkcs11:slot-id=0x10", URIError(position: 16, .badSlotID)),
        ("pkcs11:slot-id=18446744073709551616", URIError(position: 15, .slotIDOutOfRange)),
        ("pkcs11:type=secretkey", URIError(position: 12, .unknownObjectType("secretkey"))),
        ("pkcs11:type=", URIError(position: 12, .unknownObjectType(""))),
    ]

    @Test(arguments: 0..<cases.count) func faultIsReportedAtItsOffset(_ index: Int) {
        let (text, expected) = Self.cases[index]
        let error = Self.error(text)
        #expect(error == expected, "\(text)")
        if let error { #expect(!error.message.isEmpty) }
    }

    @Test func overlongURIIsRejectedWhereTheLimitIs() {
        let text = "pkcs11:token=" + String(repeating: "a", count: PKCS11URI.maximumLength)
        #expect(Self.error(text) == URIError(position: PKCS11URI.maximumLength, .tooLong(text.utf8.count)))
        let longest = "pkcs11:token=" + String(repeating: "a", count: PKCS11URI.maximumLength - 13)
        #expect(Self.error(longest) == nil)
    }

    @Test func messagesSayWhatToWrite() {
        #expect(Self.error("pkcs11:token=My token")?.description
            == "offset 15: a space must be percent-encoded as %20 in the path")
        #expect(Self.error("pkcs11:token=caf\u{E9}")?.message
            == "non-ASCII byte must be percent-encoded in the path (UTF-8, here %C3)")
        #expect(Self.error("pkcs11:token=a;token=b")?.message
            == "'token' appears again (first at offset 7); RFC 7512 allows it once")
        #expect(Self.error("pkcs11:pin-value=1")?.message
            == "'pin-value' belongs in the query: write '?pin-value=...' after the path")
    }
}

@Suite struct PKCS11URIMatchingTests {
    static let softhsm = TokenDescription(
        library: .init(description: "Implementation of PKCS11" + String(repeating: " ", count: 8),
                       manufacturer: "SoftHSM" + String(repeating: " ", count: 25),
                       version: .init(major: 2, minor: 6)),
        slot: .init(id: 717048317, description: "SoftHSM slot ID 0x2abd49fd", manufacturer: "SoftHSM project"),
        token: .init(label: "My token 1" + String(repeating: " ", count: 22), manufacturer: "SoftHSM project",
                     model: "SoftHSM v2      ", serial: "390958d62abd49fd"))

    static func matches(_ text: String, _ token: TokenDescription = softhsm) throws -> Bool {
        try PKCS11URI(parsing: text).matches(token)
    }

    @Test func emptyURIMatchesEveryToken() throws {
        #expect(try Self.matches("pkcs11:"))
    }

    @Test func everyNamedAttributeMustEqualWithoutPadding() throws {
        #expect(try Self.matches("pkcs11:token=My%20token%201"))
        #expect(try Self.matches("pkcs11:token=My%20token%201%20%20"))  // padding in the URI too
        #expect(try Self.matches("pkcs11:model=SoftHSM%20v2;manufacturer=SoftHSM%20project;serial=390958d62abd49fd;token=My%20token%201"))
        #expect(try !Self.matches("pkcs11:token=My%20token"))           // a prefix is not the label
        #expect(try !Self.matches("pkcs11:token=my%20token%201"))       // case counts
        #expect(try !Self.matches("pkcs11:token=%20My%20token%201"))    // leading spaces count
        #expect(try !Self.matches("pkcs11:token=My%20token%201;serial=other"))
        #expect(try !Self.matches("pkcs11:token="))                     // empty matches only a blank field
    }

    @Test func emptyValueMatchesABlankField() throws {
        var blank = Self.softhsm
        blank.token.serial = String(repeating: " ", count: 16)
        #expect(try Self.matches("pkcs11:serial=", blank))
        #expect(try !Self.matches("pkcs11:serial="))
    }

    @Test func libraryAttributesAndVersion() throws {
        #expect(try Self.matches("pkcs11:library-description=Implementation%20of%20PKCS11;library-manufacturer=SoftHSM"))
        #expect(try Self.matches("pkcs11:library-version=2.6"))
        #expect(try !Self.matches("pkcs11:library-version=2"))          // M is M.0, as p11-kit reads it
        #expect(try Self.matches("pkcs11:library-version=2", { var t = Self.softhsm; t.library.version.minor = 0; return t }()))
        #expect(try !Self.matches("pkcs11:library-manufacturer=SoftHSM%20project"))
        let library = try PKCS11URI(parsing: "pkcs11:library-manufacturer=SoftHSM")
        #expect(library.matches(library: Self.softhsm.library))
    }

    @Test func slotAttributesAndDecimalSlotID() throws {
        #expect(try Self.matches("pkcs11:slot-id=717048317"))
        #expect(try Self.matches("pkcs11:slot-id=0717048317"))
        #expect(try !Self.matches("pkcs11:slot-id=1"))
        #expect(try Self.matches("pkcs11:slot-description=SoftHSM%20slot%20ID%200x2abd49fd;slot-manufacturer=SoftHSM%20project"))
        #expect(try !Self.matches("pkcs11:slot-manufacturer=SoftHSM"))
    }

    @Test func objectAndQueryAttributesDoNotNarrowTokens() throws {
        #expect(try Self.matches("pkcs11:token=My%20token%201;object=key;id=%01;type=private?pin-value=1234&x-q=1"))
    }

    @Test func vendorPathAttributeMatchesNothing() throws {
        #expect(try !Self.matches("pkcs11:x-anything=1"))
        #expect(try !PKCS11URI(parsing: "pkcs11:x-a=1").matches(library: Self.softhsm.library))
    }

    @Test func valuesCompareAsBytesNotAsUnicodeEquivalents() throws {
        var accented = Self.softhsm
        accented.token.label = "e\u{301}"  // e + combining acute, equivalent to U+00E9 in Swift's ==
        #expect(try Self.matches("pkcs11:token=e%CC%81", accented))
        #expect(try !Self.matches("pkcs11:token=%C3%A9", accented))
    }
}
