// TokenFilter: the only/hide rules of x-only-tokens, x-hide-tokens and P11PROXY_ONLY_TOKENS,
// slots without a token, and the problems a filter value can have.

import Testing
import P11ProxyConfig

@Suite struct TokenFilterTests {
    static let library = TokenDescription.Library(description: "mock-a", manufacturer: "p11proxy-mock",
                                                  version: .init(major: 1, minor: 10))
    static func slot(_ id: UInt) -> TokenDescription.Slot {
        .init(id: id, description: "mock-a slot \(id)", manufacturer: "p11proxy-mock")
    }
    static func token(_ label: String, serial: String = "0000000A00000001") -> TokenDescription.Token {
        .init(label: label, manufacturer: "p11proxy-mock", model: "mock mock-a", serial: serial)
    }

    static func filter(_ rules: [(TokenFilter.Rule.Kind, String)]) throws -> TokenFilter {
        var filter = TokenFilter()
        for (kind, text) in rules {
            let (uris, problems) = TokenFilter.parseURIs(text)
            #expect(problems.isEmpty, "\(problems)")
            filter.rules.append(.init(kind, uris, origin: "test"))
        }
        return filter
    }

    static func shows(_ filter: TokenFilter, _ label: String?, slot id: UInt = 1, serial: String = "0000000A00000001") -> Bool {
        filter.shows(library: library, slot: slot(id), token: label.map { token($0, serial: serial) })
    }

    @Test func noRulesShowEverything() {
        #expect(Self.shows(TokenFilter(), "a"))
        #expect(Self.shows(TokenFilter(), nil))
    }

    @Test func onlyShowsWhatMatchesOneOfItsURIs() throws {
        let filter = try Self.filter([(.only, "pkcs11:token=a  pkcs11:serial=0000000A00000005\tpkcs11:token=c")])
        #expect(Self.shows(filter, "a"))
        #expect(Self.shows(filter, "c"))
        #expect(Self.shows(filter, "b", serial: "0000000A00000005"))
        #expect(!Self.shows(filter, "b"))
    }

    @Test func hideHidesWhatMatchesAnyOfItsURIs() throws {
        let filter = try Self.filter([(.hide, "pkcs11:token=a pkcs11:slot-id=7")])
        #expect(!Self.shows(filter, "a"))
        #expect(!Self.shows(filter, "b", slot: 7))
        #expect(Self.shows(filter, "b"))
    }

    @Test func everyRuleMustLetASlotThrough() throws {
        // pkcs11.conf shows only mock-a's library; the module hides one token of it.
        let filter = try Self.filter([(.only, "pkcs11:library-description=mock-a"), (.hide, "pkcs11:token=secret")])
        #expect(Self.shows(filter, "a"))
        #expect(!Self.shows(filter, "secret"))
        let other = try Self.filter([(.only, "pkcs11:library-description=mock-b")])
        #expect(!Self.shows(other, "a"))
    }

    @Test func anEmptySlotMatchesOnlyURIsThatNameNoTokenAttribute() throws {
        #expect(!Self.shows(try Self.filter([(.only, "pkcs11:token=a")]), nil))
        #expect(Self.shows(try Self.filter([(.only, "pkcs11:slot-id=1")]), nil))
        #expect(Self.shows(try Self.filter([(.only, "pkcs11:")]), nil))
        #expect(Self.shows(try Self.filter([(.hide, "pkcs11:token=a")]), nil))
        #expect(!Self.shows(try Self.filter([(.hide, "pkcs11:library-manufacturer=p11proxy-mock")]), nil))
    }

    @Test func hideAllHidesEverything() {
        let filter = TokenFilter(rules: [.init(.hideAll, [], origin: "x.module:2")])
        #expect(!Self.shows(filter, "a"))
        #expect(!Self.shows(filter, nil))
    }

    @Test func aVendorAttributeMatchesNothing() throws {
        // RFC 7512: an attribute the consumer does not understand must not widen the match.
        #expect(!Self.shows(try Self.filter([(.only, "pkcs11:x-color=red")]), "a"))
        #expect(Self.shows(try Self.filter([(.hide, "pkcs11:x-color=red")]), "a"))
    }

    @Test func eachBadURIIsNamedWithItsPositionAndWhy() {
        let (uris, problems) = TokenFilter.parseURIs("pkcs11:token=a pkcs11:tokn=b token=c pkcs11:token=d")
        #expect(uris.count == 2)
        #expect(problems.count == 2)
        #expect(problems.first?.hasPrefix("URI 2 'pkcs11:tokn=b': offset 7: unknown path attribute 'tokn'") == true)
        #expect(problems.last == "URI 3 'token=c': offset 0: not a PKCS#11 URI: it must start with 'pkcs11:'")
    }

    @Test func objectAttributesAndTheQueryAreRefused() {
        for text in ["pkcs11:token=a;object=k", "pkcs11:token=a;type=private", "pkcs11:id=%01",
                     "pkcs11:token=a?module-name=softhsm2", "pkcs11:token=a?pin-value=1234"] {
            let (uris, problems) = TokenFilter.parseURIs(text)
            #expect(uris.isEmpty, "\(text)")
            #expect(problems.first?.contains("matches library, slot and token attributes only") == true, "\(text)")
        }
    }

    @Test func aLongURIIsShortenedInItsMessage() {
        let long = "pkcs11:tokn=" + String(repeating: "a", count: 200)
        let problem = TokenFilter.parseURIs(long).problems.first ?? ""
        #expect(problem.hasPrefix("URI 1 'pkcs11:tokn=aaaa"))
        #expect(problem.contains("...': offset 7"))
    }

    @Test func blankTextHasNoURIs() {
        let (uris, problems) = TokenFilter.parseURIs("  \t ")
        #expect(uris.isEmpty && problems.isEmpty)
    }
}
