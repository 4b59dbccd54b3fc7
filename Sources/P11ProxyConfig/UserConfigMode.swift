// How the per-user configuration combines with the system one: the `user-config:` key of
// pkcs11.conf, read the way p11-kit's `user_config_mode()` in p11-kit/conf.c reads it.

public enum UserConfigMode: String, Sendable, Equatable {
    /// Only the system configuration is read; user files and the user modules directory are not.
    case none
    /// The user's pkcs11.conf keys win over the system ones key by key; user modules are read
    /// first, then system and package modules fill in. p11-kit's default when the key is absent.
    case merge
    /// Only the user's pkcs11.conf and user modules directory; system and package modules are
    /// not read at all.
    case only

    /// p11-kit's default (`user_config_mode (config, CONF_USER_MERGE)`).
    public static let `default` = UserConfigMode.merge

    /// Reads a `user-config:` value. p11-kit also accepts `override`, undocumented, as a synonym
    /// for `only`; unknown values are nil (p11-kit then refuses to load anything; we report and
    /// use the default).
    public init?(configValue: String) {
        switch configValue {
        case "none": self = .none
        case "merge": self = .merge
        case "only", "override": self = .only
        default: return nil
        }
    }
}
