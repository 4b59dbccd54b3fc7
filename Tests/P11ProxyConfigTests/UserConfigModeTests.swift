// The `user-config:` key (fixture: user-config/): none, merge (the default), only and its
// undocumented synonym override, an invalid value, user config not allowed, and the user file's
// own `user-config:`, following p11-kit's `_p11_conf_load_globals`.

import Testing
import P11ProxyConfig

@Suite struct UserConfigModeTests {
    let root = Fixture.path("user-config")

    func read(_ systemConfig: String, allowed: Bool = true) -> ProxyConfiguration {
        readConfiguration(Fixture.p11kit("user-config", systemConfig: "system/\(systemConfig)",
                                         userConfigAllowed: allowed),
                          programNames: ["test"])
    }

    @Test(arguments: ["pkcs11-merge.conf", "pkcs11-default.conf"])
    func mergeReadsBothUserFirst(systemConfig: String) throws {
        let config = read(systemConfig)
        #expect(config.userConfigMode == .merge)
        #expect(config.diagnostics == [])
        // shared: the user file's library, the system file's priority 2.
        #expect(config.moduleNames == ["shared", "pkg", "sys", "usr"])
        let shared = try #require(config.module("shared"))
        #expect(shared.modulePath == "/usr/lib/pkcs11/libshared-user.so")
        #expect(shared.priority == 2)
        // Global keys: user over system, key by key.
        #expect(config.global["x-origin"] == ConfigValue(value: "user", file: "\(root)/xdg/pkcs11/pkcs11.conf", line: 1))
        #expect(config.globalString("x-system-key") == "kept")
        #expect(config.globalString("x-user-key") == "mine")
        #expect(config.globalString("log-calls") == "yes")
    }

    @Test func noneReadsOnlyTheSystem() throws {
        let config = read("pkcs11-none.conf")
        #expect(config.userConfigMode == .none)
        #expect(config.moduleNames == ["shared", "pkg", "sys"])
        #expect(config.module("shared")?.modulePath == "/usr/lib/pkcs11/libshared-system.so")
        #expect(config.globalString("x-origin") == "system")
        #expect(config.globalString("x-user-key") == nil)
        #expect(config.globalString("log-calls") == "no")
    }

    @Test(arguments: ["pkcs11-only.conf", "pkcs11-override.conf"])
    func onlyAndOverrideReadOnlyTheUser(systemConfig: String) throws {
        let config = read(systemConfig)
        #expect(config.userConfigMode == .only)
        #expect(config.diagnostics == [])
        // No system or package modules; shared has no priority in the user file.
        #expect(config.moduleNames == ["shared", "usr"])
        #expect(config.module("shared")?.priority == 0)
        #expect(config.globalString("x-origin") == "user")
        #expect(config.globalString("x-system-key") == nil, "only: system keys are not merged in")
    }

    @Test func invalidModeIsReportedAndTheDefaultUsed() {
        let config = read("pkcs11-invalid.conf")
        #expect(config.userConfigMode == .merge)
        #expect(config.diagnostics.count == 1)
        #expect(config.diagnostics.first?.file == "\(root)/system/pkcs11-invalid.conf")
        #expect(config.diagnostics.first?.line == 1)
        #expect(config.diagnostics.first?.message.contains("'sometimes'") == true)
        #expect(config.moduleNames == ["shared", "pkg", "sys", "usr"])
    }

    @Test(arguments: ["pkcs11-merge.conf", "pkcs11-only.conf"])
    func userConfigNotAllowedMeansNone(systemConfig: String) {
        let config = read(systemConfig, allowed: false)
        #expect(config.userConfigMode == .none)
        #expect(config.moduleNames == ["shared", "pkg", "sys"], "even `only` falls back to the system, as p11-kit does for setuid")
        #expect(config.globalString("x-user-key") == nil)
    }

    @Test func userFileCanTurnItselfOff() throws {
        let tree = try TemporaryTree()
        try tree.write("etc/pkcs11.conf", "user-config: merge\nx-origin: system\n")
        try tree.write("etc/modules/sys.module", "module: libsys.so\n")
        try tree.write("xdg/pkcs11/pkcs11.conf", "user-config: none\nx-origin: user\n")
        try tree.write("xdg/pkcs11/modules/usr.module", "module: libusr.so\n")
        let config = readConfiguration(tree.p11kit(), programNames: ["test"])
        #expect(config.userConfigMode == .none)
        #expect(config.moduleNames == ["sys"])
        #expect(config.globalString("x-origin") == "system")
    }

    @Test func userFileCanAskForOnly() throws {
        let tree = try TemporaryTree()
        try tree.write("etc/pkcs11.conf", "x-origin: system\n")
        try tree.write("etc/modules/sys.module", "module: libsys.so\n")
        try tree.write("xdg/pkcs11/pkcs11.conf", "user-config: only\n")
        try tree.write("xdg/pkcs11/modules/usr.module", "module: libusr.so\n")
        let config = readConfiguration(tree.p11kit(), programNames: ["test"])
        #expect(config.userConfigMode == .only)
        #expect(config.moduleNames == ["usr"])
        #expect(config.globalString("x-origin") == nil)
    }

    @Test func systemNoneCannotBeUndoneByTheUser() throws {
        let tree = try TemporaryTree()
        try tree.write("etc/pkcs11.conf", "user-config: none\n")
        try tree.write("etc/modules/sys.module", "module: libsys.so\n")
        try tree.write("xdg/pkcs11/pkcs11.conf", "user-config: merge\n")
        try tree.write("xdg/pkcs11/modules/usr.module", "module: libusr.so\n")
        let config = readConfiguration(tree.p11kit(), programNames: ["test"])
        #expect(config.userConfigMode == .none)
        #expect(config.moduleNames == ["sys"])
    }

    @Test func invalidModeInTheUserFileKeepsTheSystemMode() throws {
        let tree = try TemporaryTree()
        try tree.write("etc/pkcs11.conf", "user-config: only\n")
        try tree.write("etc/modules/sys.module", "module: libsys.so\n")
        try tree.write("xdg/pkcs11/pkcs11.conf", "x-a: 1\nuser-config: everything\n")
        try tree.write("xdg/pkcs11/modules/usr.module", "module: libusr.so\n")
        let config = readConfiguration(tree.p11kit(), programNames: ["test"])
        #expect(config.userConfigMode == .only)
        #expect(config.moduleNames == ["usr"])
        #expect(config.diagnostics.map(\.line) == [2])
        #expect(config.diagnostics.first?.file == tree.path("xdg/pkcs11/pkcs11.conf"))
    }
}
