import P11ProxyConfig
import Testing

@Suite struct EnvironmentVariablesTests {
    @Test func setReplaceAndRemove() {
        var variables: EnvironmentVariables = ["HOME": "/home/a", "P11PROXY_MODULE": "/m.so"]
        #expect(variables["HOME"] == "/home/a" && variables["P11PROXY_MODULE"] == "/m.so")
        #expect(variables["PATH"] == nil)
        variables["HOME"] = "/home/b"
        #expect(variables["HOME"] == "/home/b" && variables.count == 2)
        variables["HOME"] = nil
        #expect(variables["HOME"] == nil && variables.count == 1)
        #expect(variables["P11PROXY_MODULE"] == "/m.so", "removing one name keeps the others' values")
        variables["XDG_CONFIG_HOME"] = "/x"
        #expect(variables.variables.map(\.name) == ["P11PROXY_MODULE", "XDG_CONFIG_HOME"])
    }

    @Test func filterKeepsWhatMatches() {
        let variables: EnvironmentVariables = ["P11PROXY_A": "1", "HOME": "/h", "P11PROXY_B": "2"]
        let kept = variables.filter { name, _ in !name.hasPrefix("P11PROXY_") }
        #expect(kept == ["HOME": "/h"])
        #expect(variables.filter { _, value in value == "2" } == ["P11PROXY_B": "2"])
    }

    @Test func equalityIgnoresOrderButNotValues() {
        #expect(EnvironmentVariables(dictionaryLiteral: ("A", "1"), ("B", "2")) == ["B": "2", "A": "1"])
        #expect(EnvironmentVariables(dictionaryLiteral: ("A", "1")) != ["A": "2"])
        #expect(EnvironmentVariables(dictionaryLiteral: ("A", "1")) != ["A": "1", "B": "2"])
        #expect(EnvironmentVariables() == [:])
    }
}
