// Who the process runs as, and the one decision that depends on it: may user configuration
// (files under $HOME) be read? A pure function of its inputs so each rule has a unit test.

public struct ProcessIdentity: Sendable, Equatable {
    public var uid: UInt32
    public var euid: UInt32
    public var gid: UInt32
    public var egid: UInt32
    /// The kernel's AT_SECURE flag (setuid/setgid/file capabilities).
    public var secureExecution: Bool

    public init(uid: UInt32, euid: UInt32, gid: UInt32, egid: UInt32, secureExecution: Bool) {
        self.uid = uid
        self.euid = euid
        self.gid = gid
        self.egid = egid
        self.secureExecution = secureExecution
    }

    public static func current() -> ProcessIdentity {
        Syscalls.processIdentity()
    }

    /// The environment may come from a less privileged caller (setuid/setgid, file capabilities,
    /// or ids changed by the process): the case where glibc's secure_getenv returns nothing.
    /// Anything taken from the environment that names files to load (HOME, XDG_CONFIG_HOME,
    /// P11PROXY_CONFIG_DIR) must then be ignored.
    public var isSecureExecution: Bool {
        secureExecution || uid != euid || gid != egid
    }
}

/// Whether files under the user's home may configure which modules load into this process.
///
/// - `P11_KIT_NO_USER_CONFIG` set to anything (even empty) turns user config off, as in p11-kit;
///   distributions set it for trust extraction (`update-ca-trust`).
/// - Secure execution (setuid/setgid, AT_SECURE) or differing real/effective ids: off. p11-kit
///   checks AT_SECURE; the id comparison also covers a process that changed ids itself.
/// - Unlike p11-kit, uid or euid 0 is off too: a root process (often `sudo` with the caller's
///   HOME kept) must not load a module named by a file an ordinary user can write.
public func userConfigAllowed(environment: EnvironmentVariables, uid: UInt32, euid: UInt32,
                              gid: UInt32, egid: UInt32, secureExecution: Bool) -> Bool {
    if environment["P11_KIT_NO_USER_CONFIG"] != nil { return false }
    let identity = ProcessIdentity(uid: uid, euid: euid, gid: gid, egid: egid, secureExecution: secureExecution)
    if identity.isSecureExecution { return false }
    if uid == 0 || euid == 0 { return false }
    return true
}

/// `userConfigAllowed` for this process's own ids.
public func userConfigAllowed(environment: EnvironmentVariables, identity: ProcessIdentity = .current()) -> Bool {
    userConfigAllowed(environment: environment, uid: identity.uid, euid: identity.euid,
                      gid: identity.gid, egid: identity.egid, secureExecution: identity.secureExecution)
}
