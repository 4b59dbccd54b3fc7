// The few environment variables configuration reading looks at (CurrentProcess.environment()).
// Not a Dictionary: the first Dictionary<String, String> a process builds makes the Swift
// runtime instantiate its storage type from a mangled name, with a scan of every protocol
// conformance in the library for String: Hashable: ~90k instructions, a tenth of the module's
// C_Initialize (callgrind). A linear search over a handful of names costs less.

public struct EnvironmentVariables: Sendable, Equatable, ExpressibleByDictionaryLiteral {
    /// Parallel arrays, in the order the names were first set.
    private var names: [String] = []
    private var values: [String] = []

    public init() {}

    public init(dictionaryLiteral elements: (String, String)...) {
        for (name, value) in elements { self[name] = value }
    }

    /// The value of `name`, or nil when it is not set.
    public subscript(name: String) -> String? {
        get { names.firstIndex(of: name).map { values[$0] } }
        set {
            if let index = names.firstIndex(of: name) {
                if let newValue { values[index] = newValue } else { names.remove(at: index); values.remove(at: index) }
            } else if let newValue {
                names.append(name)
                values.append(newValue)
            }
        }
    }

    public var count: Int { names.count }

    /// Every (name, value), in the order the names were first set.
    public var variables: [(name: String, value: String)] { names.indices.map { (names[$0], values[$0]) } }

    /// The variables for which `isIncluded` holds.
    public func filter(_ isIncluded: (_ name: String, _ value: String) -> Bool) -> EnvironmentVariables {
        var kept = EnvironmentVariables()
        for (name, value) in zip(names, values) where isIncluded(name, value) { kept[name] = value }
        return kept
    }

    /// Equal when they set the same names to the same values, in any order.
    public static func == (lhs: EnvironmentVariables, rhs: EnvironmentVariables) -> Bool {
        lhs.count == rhs.count && zip(lhs.names, lhs.values).allSatisfy { rhs[$0.0] == $0.1 }
    }
}
