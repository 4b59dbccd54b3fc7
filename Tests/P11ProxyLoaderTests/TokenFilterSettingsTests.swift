// TokenFilterSettings: where a module's token filter comes from (pkcs11.conf, its .module file,
// P11PROXY_ONLY_TOKENS), and what a URI that does not parse does (it hides, with FILE:LINE).

import P11ProxyConfig
import Testing
@testable import P11ProxyLoader

@Suite struct TokenFilterSettingsTests {
    static func module(_ values: [String: String]) -> ModuleConfig {
        var config: [String: ConfigValue] = ["module": ConfigValue(value: "/lib/a.so", file: "/c/modules/a.module", line: 1)]
        for (line, (key, value)) in values.sorted(by: { $0.key < $1.key }).enumerated() {
            config[key] = ConfigValue(value: value, file: "/c/modules/a.module", line: line + 2)
        }
        return ModuleConfig(name: "a", values: config, files: ["/c/modules/a.module"], moduleDirectory: "/lib")
    }

    static func global(_ values: [String: String]) -> ProxyConfiguration {
        var global: [String: ConfigValue] = [:]
        for (key, value) in values { global[key] = ConfigValue(value: value, file: "/c/pkcs11.conf", line: 3) }
        return ProxyConfiguration(global: global)
    }

    static func resolve(module: [String: String] = [:], global: [String: String] = [:],
                        environment: EnvironmentVariables = [:], spy: Bool = false) -> (TokenFilter?, [String]) {
        var reports: [String] = []
        let filter = TokenFilterSettings.resolve(module: Self.module(module), configuration: Self.global(global),
                                                 environment: environment, spyMode: spy, report: { reports.append($0) })
        return (filter, reports)
    }

    @Test func noKeysNoFilter() {
        let (filter, reports) = Self.resolve()
        #expect(filter == nil)
        #expect(reports.isEmpty)
    }

    @Test func blankValuesAreNoFilter() {
        #expect(Self.resolve(module: ["x-only-tokens": ""], global: ["x-hide-tokens": ""]).0 == nil)
    }

    @Test func globalAndModuleRulesBothApply() throws {
        let (filter, reports) = Self.resolve(module: ["x-hide-tokens": "pkcs11:token=b"],
                                             global: ["x-only-tokens": "pkcs11:token=a pkcs11:token=b"])
        #expect(reports.isEmpty)
        let rules = try #require(filter).rules
        #expect(rules.map(\.kind) == [.only, .hide])
        #expect(rules.map(\.origin) == ["/c/pkcs11.conf:3", "/c/modules/a.module:2"])
        #expect(TokenFilterSettings.describe(try #require(filter))
            == ["only pkcs11:token=a pkcs11:token=b (/c/pkcs11.conf:3)", "hide pkcs11:token=b (/c/modules/a.module:2)"])
    }

    @Test func theEnvironmentReplacesEveryConfiguredRule() throws {
        let (filter, _) = Self.resolve(module: ["x-hide-tokens": "pkcs11:token=b"], global: ["x-only-tokens": "pkcs11:token=c"],
                                       environment: ["P11PROXY_ONLY_TOKENS": "pkcs11:token=b"])
        let rules = try #require(filter).rules
        #expect(rules == [TokenFilter.Rule(.only, [try PKCS11URI(parsing: "pkcs11:token=b")], origin: "P11PROXY_ONLY_TOKENS")])
        #expect(Self.resolve(environment: ["P11PROXY_ONLY_TOKENS": ""]).0 == nil, "empty: not set")
    }

    @Test func aBadURIHidesTheWholeModuleAndSaysWhere() throws {
        let (filter, reports) = Self.resolve(module: ["x-hide-tokens": "pkcs11:token=b", "x-only-tokens": "pkcs11:token=a pkcs11:tokn=b"])
        // The module's good x-hide-tokens is not applied alone: its file's filter is spoilt.
        #expect(try #require(filter).rules == [TokenFilter.Rule(.hideAll, [], origin: "/c/modules/a.module:3")])
        #expect(reports == ["/c/modules/a.module:3: x-only-tokens: URI 2 'pkcs11:tokn=b': offset 7: unknown path attribute 'tokn' "
            + "(RFC 7512 defines token, manufacturer, serial, model, library-manufacturer, library-description, "
            + "library-version, slot-description, slot-manufacturer, slot-id, id, object, type; vendor attributes start "
            + "with 'x-'); every token of module 'a' is hidden until it is fixed"])
    }

    @Test func aBadGlobalURIHidesEveryTokenButKeepsTheModulesOwnRules() throws {
        let (filter, reports) = Self.resolve(module: ["x-hide-tokens": "pkcs11:token=b"], global: ["x-hide-tokens": "pkcs11:token=%zz"])
        #expect(try #require(filter).rules.map(\.kind) == [.hideAll, .hide])
        #expect(reports.count == 1)
        #expect(reports.first?.hasPrefix("/c/pkcs11.conf:3: x-hide-tokens: URI 1 'pkcs11:token=%zz': offset ") == true)
        #expect(reports.first?.hasSuffix("; every token is hidden until it is fixed") == true)
    }

    @Test func aBadEnvironmentValueHidesEverything() throws {
        let (filter, reports) = Self.resolve(environment: ["P11PROXY_ONLY_TOKENS": "token=a"])
        #expect(try #require(filter).rules.map(\.kind) == [.hideAll])
        #expect(reports.first?.hasPrefix("P11PROXY_ONLY_TOKENS: URI 1 'token=a'") == true)
    }

    @Test func spyModeShowsTheModuleAsItIs() {
        let (filter, reports) = Self.resolve(module: ["x-only-tokens": "pkcs11:token=a"],
                                             environment: ["P11PROXY_ONLY_TOKENS": "pkcs11:token=a"], spy: true)
        #expect(filter == nil)
        #expect(reports == ["P11PROXY_ONLY_TOKENS='pkcs11:token=a' is ignored in spy mode (P11PROXY_MODULE shows the module as it is)"])
    }
}
