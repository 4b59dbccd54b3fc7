// One `key: value` setting as read from a p11-kit config file, with where it came from,
// and the typed readings p11-kit applies to such values (booleans, integers, program lists).

/// A setting's text and its origin. Merged configurations keep the origin of the line that won,
/// so a message about a value can always name the file and line to fix.
public struct ConfigValue: Sendable, Equatable {
    public var value: String
    public var file: String
    public var line: Int

    public init(value: String, file: String, line: Int) {
        self.value = value
        self.file = file
        self.line = line
    }

    /// `yes`/`no` as p11-kit's `_p11_conf_parse_boolean` reads them (exact, lower case), plus
    /// `true`/`false`, which pkcs11.conf(5)'s own example (`managed: true`) uses although p11-kit
    /// rejects them. Anything else is nil: the caller reports it and uses the default, as p11-kit does.
    public var boolean: Bool? {
        switch value {
        case "yes", "true": return true
        case "no", "false": return false
        default: return nil
        }
    }

    /// A whole decimal integer with an optional sign. p11-kit uses `atoi`, which reads `"10x"` as 10
    /// and `"high"` as 0; we accept only whole numbers so that a typo is reported instead of guessed.
    public var integer: Int? {
        Int(value, radix: 10)
    }

    /// The names in an `enable-in`/`disable-in` list. p11-kit's `is_list_delimiter` separates on
    /// commas and `isspace` characters; empty items between delimiters are dropped.
    public var list: [String] {
        var items: [String] = []
        var current: [UInt8] = []
        for byte in value.utf8 {
            if byte == UInt8(ascii: ",") || ConfigFileParser.isSpace(byte) {
                if !current.isEmpty { items.append(String(decoding: current, as: UTF8.self)) }
                current.removeAll(keepingCapacity: true)
            } else {
                current.append(byte)
            }
        }
        if !current.isEmpty { items.append(String(decoding: current, as: UTF8.self)) }
        return items
    }
}
