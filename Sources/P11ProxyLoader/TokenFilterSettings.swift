// A module's token filter, from pkcs11.conf (every module), its .module file (its own tokens)
// and P11PROXY_ONLY_TOKENS (which replaces both, for a quick look without editing files). The
// module and `p11proxy list`/`check` resolve it here, with the same complaints about bad URIs.
import P11ProxyConfig

package enum TokenFilterSettings {
    package static let environmentVariable = "P11PROXY_ONLY_TOKENS"

    /// Nil when nothing filters the module's tokens: the module then makes no extra call.
    /// A value whose URIs do not all parse is not half-applied: it becomes a rule that hides
    /// every token in its reach (the module's, or every module's for pkcs11.conf and the
    /// environment), so a typo never shows tokens a filter was written to keep out. `report` gets
    /// one line per bad URI, `FILE:LINE: KEY: URI N '...': why; ...` (the module's Diagnostics).
    /// In spy mode (P11PROXY_MODULE) the module is shown as it is, and filters do not apply.
    package static func resolve(module: ModuleConfig, configuration: ProxyConfiguration, environment: EnvironmentVariables,
                                spyMode: Bool, report: (String) -> Void) -> TokenFilter? {
        let variable = environment[environmentVariable].flatMap { $0.isEmpty ? nil : $0 }
        if spyMode {
            if let variable { report("\(environmentVariable)='\(variable)' is ignored in spy mode (P11PROXY_MODULE shows the module as it is)") }
            return nil
        }
        var filter = TokenFilter()
        if let variable {
            filter.rules.append(rule(.only, text: variable, origin: environmentVariable, key: environmentVariable,
                                     reach: "every token", report: report))
            return filter
        }
        let scopes = [(configuration.global, "every token"), (module.values, "every token of module '\(module.name)'")]
        for (values, reach) in scopes {
            var scope: [TokenFilter.Rule] = []
            for (key, kind) in [(ConfigKey.onlyTokens, TokenFilter.Rule.Kind.only), (ConfigKey.hideTokens, .hide)] {
                // Blank: no filter, so a user file can lift a system one (files merge key by key).
                guard let value = values[key], !value.value.isEmpty else { continue }
                scope.append(rule(kind, text: value.value, origin: "\(value.file):\(value.line)", key: key,
                                  reach: reach, report: report))
            }
            // One bad value spoils its whole scope (the file's filter), not just its own key.
            if let broken = scope.first(where: { $0.kind == .hideAll }) { scope = [broken] }
            filter.rules += scope
        }
        return filter.rules.isEmpty ? nil : filter
    }

    private static func rule(_ kind: TokenFilter.Rule.Kind, text: String, origin: String, key: String, reach: String,
                             report: (String) -> Void) -> TokenFilter.Rule {
        let (uris, problems) = TokenFilter.parseURIs(text)
        guard problems.isEmpty else {
            let place = origin == key ? key : "\(origin): \(key)"
            for problem in problems { report("\(place): \(problem); \(reach) is hidden until it is fixed") }
            return TokenFilter.Rule(.hideAll, [], origin: origin)
        }
        return TokenFilter.Rule(kind, uris, origin: origin)
    }

    /// How `p11proxy list` shows a filter: one line per rule.
    package static func describe(_ filter: TokenFilter) -> [String] {
        filter.rules.map { rule in
            switch rule.kind {
            case .only: return "only " + rule.uris.map { $0.description }.joined(separator: " ") + " (\(rule.origin))"
            case .hide: return "hide " + rule.uris.map { $0.description }.joined(separator: " ") + " (\(rule.origin))"
            case .hideAll: return "hide every token (\(rule.origin) has a URI that does not parse)"
            }
        }
    }
}
