// Which directory entries are module config files, and the module name each one gives,
// following p11-kit's `calc_name_from_filename` in p11-kit/conf.c.

enum ModuleConfigFileName {
    static let suffix = ".module"

    enum Verdict: Equatable {
        /// Not meant as a module config (no `.module` suffix, or a hidden file): pass over silently.
        case notModuleConfig
        /// Ends in `.module` but is not a name p11-kit accepts: report it, do not read it.
        case invalid(String)
        case module(name: String)
    }

    /// p11-kit reads every file in the directory and only warns about bad names ("will be ignored
    /// in the future"); we do what it announces: only `NAME.module`, where NAME starts with an
    /// ASCII letter or digit and continues with letters, digits, `_`, `-` or `.`. Other names,
    /// such as `foo.module~` or `foo.module.dpkg-old`, are not module configs.
    static func classify(_ bytes: [UInt8]) -> Verdict {
        let suffixBytes = Array(suffix.utf8)
        guard bytes.count >= suffixBytes.count, bytes.suffix(suffixBytes.count).elementsEqual(suffixBytes) else {
            return .notModuleConfig
        }
        let stem = bytes.dropLast(suffixBytes.count)
        guard let first = stem.first else {
            return .invalid("no module name before '.module'")
        }
        guard isAlphanumeric(first) else {
            // `.name.module` is a hidden file (an editor's or a package manager's); still say why
            // it is not read, since it looks like a module config.
            return .invalid("module config file names must start with a letter or digit")
        }
        guard stem.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-")
                                || $0 == UInt8(ascii: ".") }) else {
            return .invalid("module config file names may only contain letters, digits, '_', '-' and '.'")
        }
        return .module(name: String(decoding: stem, as: UTF8.self))
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
            || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
