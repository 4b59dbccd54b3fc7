// Which tokens a program sees through p11proxy: the rules of `x-only-tokens` / `x-hide-tokens`
// (pkcs11.conf for every module, a .module file for its own) and P11PROXY_ONLY_TOKENS, and the
// decision for one slot. Plain values in, a yes or no out; reading a module's CK_*_INFO is the
// module's and the command's job.
//
//   var filter = TokenFilter()
//   filter.rules.append(.init(.only, uris, origin: "pkcs11.conf:3"))
//   filter.shows(library: ..., slot: ..., token: tokenOrNilForAnEmptySlot)

public struct TokenFilter: Sendable, Equatable {
    public struct Rule: Sendable, Equatable {
        public enum Kind: Sendable, Equatable {
            /// Shows only what matches one of the URIs (`x-only-tokens`, P11PROXY_ONLY_TOKENS).
            case only
            /// Hides what matches any of the URIs (`x-hide-tokens`).
            case hide
            /// Hides everything: a filter whose text could not be read, so that a typo never shows
            /// tokens the filter was written to keep out.
            case hideAll
        }

        public var kind: Kind
        public var uris: [PKCS11URI]
        /// Where the rule was set, for people: `FILE:LINE` or `P11PROXY_ONLY_TOKENS`.
        public var origin: String

        public init(_ kind: Kind, _ uris: [PKCS11URI], origin: String) {
            self.kind = kind
            self.uris = uris
            self.origin = origin
        }
    }

    /// A slot is shown when every rule lets it through (pkcs11.conf's and the module's alike).
    public var rules: [Rule]

    public init(rules: [Rule] = []) {
        self.rules = rules
    }

    /// Whether the slot is shown. `token` is nil for a slot with no token (or whose token could
    /// not be read): such a slot matches a URI that names no token attribute (token, manufacturer,
    /// model, serial) and whose library and slot attributes match, so `pkcs11:slot-id=3` keeps an
    /// empty reader while `pkcs11:token=mine` shows it only once that token is in it.
    public func shows(library: TokenDescription.Library, slot: TokenDescription.Slot,
                      token: TokenDescription.Token?) -> Bool {
        func matches(_ uri: PKCS11URI) -> Bool {
            guard uri.matches(library: library), uri.matches(slot: slot) else { return false }
            if let token { return uri.matches(token: token) }
            return !uri.namesTokenAttribute
        }
        for rule in rules {
            switch rule.kind {
            case .only: if !rule.uris.contains(where: matches) { return false }
            case .hide: if rule.uris.contains(where: matches) { return false }
            case .hideAll: return false
            }
        }
        return true
    }

    /// One `x-only-tokens` / `x-hide-tokens` value (or P11PROXY_ONLY_TOKENS): URIs separated by
    /// white space (a URI holds none: RFC 7512 has it percent-encoded). Every URI that does not
    /// parse, or that names what a filter cannot match, is a problem: `URI N 'TEXT': why`.
    public static func parseURIs(_ text: String) -> (uris: [PKCS11URI], problems: [String]) {
        var uris: [PKCS11URI] = []
        var problems: [String] = []
        for (index, word) in text.utf8.split(whereSeparator: ConfigFileParser.isSpace).enumerated() {
            let item = String(decoding: word, as: UTF8.self)
            let shown = item.utf8.count > 80 ? String(decoding: word.prefix(77), as: UTF8.self) + "..." : item
            do throws(URIError) {
                let uri = try PKCS11URI(parsing: item)
                if let problem = uri.filterProblem {
                    problems.append("URI \(index + 1) '\(shown)': \(problem)")
                } else {
                    uris.append(uri)
                }
            } catch {
                problems.append("URI \(index + 1) '\(shown)': \(error)")
            }
        }
        return (uris, problems)
    }
}

extension PKCS11URI {
    /// Names the token itself (CK_TOKEN_INFO), not only its library or slot.
    var namesTokenAttribute: Bool {
        token != nil || manufacturer != nil || model != nil || serial != nil
    }

    /// Why the URI cannot be a token filter, or nil. Object attributes describe objects, and the
    /// query (module-name, module-path, pin-*) is not matched against tokens (TokenDescription);
    /// ignoring either would make the URI select more than it says.
    var filterProblem: String? {
        var ignored: [String] = []
        if id != nil { ignored.append("id") }
        if object != nil { ignored.append("object") }
        if type != nil { ignored.append("type") }
        if pinSource != nil || pinValue != nil || moduleName != nil || modulePath != nil || !otherQueryAttributes.isEmpty {
            ignored.append("the query after '?'")
        }
        guard !ignored.isEmpty else { return nil }
        return "a token filter matches library, slot and token attributes only; remove "
            + ignored.joined(separator: ", ")
    }
}
