// Which configured modules load, in which order, with which settings: relative paths,
// enable-in/disable-in (with the `p11-kit-proxy` pseudo name), priority, skip reasons,
// duplicates, global overrides and the P11PROXY_CONFIG_DIR layout.

import Foundation
import Testing
import P11ProxyConfig

@Suite struct ModuleSelectionTests {
    @Test func relativeModulePathsResolveAgainstTheModuleDirectory() {
        let config = readConfiguration(Fixture.configDirectory("relative-paths"), programNames: ["test"])
        #expect(config.diagnostics == [], "an absent pkcs11.conf is not a problem")
        #expect(config.moduleNames == ["abs", "dotdot", "rel", "sub"])
        #expect(config.module("rel")?.modulePath == "/usr/lib/pkcs11/librel.so")
        #expect(config.module("sub")?.modulePath == "/usr/lib/pkcs11/sub/dir/libsub.so")
        #expect(config.module("abs")?.modulePath == "/opt/abs/libabs.so")
        // Joined, not normalised, exactly as p11_path_build does.
        #expect(config.module("dotdot")?.modulePath == "/usr/lib/pkcs11/../other/libdotdot.so")
        // The raw value is kept as written.
        #expect(config.module("rel")?.string("module") == "librel.so")
    }

    @Test func moduleDirectoryWithTrailingSlashDoesNotDoubleIt() {
        let locations = ConfigLocations.configDirectory(Fixture.path("relative-paths"), moduleDirectory: "/usr/lib/pkcs11/")
        let config = readConfiguration(locations, programNames: ["test"])
        #expect(config.module("rel")?.modulePath == "/usr/lib/pkcs11/librel.so")
    }

    // MARK: enable-in / disable-in

    func enablement(_ programs: [String]) -> ProxyConfiguration {
        readConfiguration(Fixture.configDirectory("enable-disable"), programNames: programs)
    }

    @Test func insideTheProxyInFirefox() throws {
        let config = enablement(["firefox", "p11-kit-proxy"])
        #expect(config.moduleNames == ["mail-only", "not-ssh", "proxy-only"])
        #expect(config.skippedNames == ["both", "empty-enable", "p11-kit-trust", "substring"])
        // Debian's own p11-kit-trust.module: `disable-in: p11-kit-proxy` keeps it out of proxies.
        let trust = try #require(config.skip("p11-kit-trust"))
        #expect(trust.cause == .disabledForProgram)
        #expect(trust.cause.isDeliberate)
        #expect(trust.reason.hasPrefix("disable-in: "), "callers and logs read the key first")
        #expect(trust.reason.contains("'p11-kit-proxy'"))
        #expect(trust.file == Fixture.path("enable-disable/modules/p11-kit-trust.module"))
        #expect(trust.line == 20)
        // `enable-in: firefox-bin` must not match "firefox" as a substring.
        #expect(config.skip("substring")?.reason.hasPrefix("enable-in: 'firefox-bin,,thunderbird-bin' does not name this program") == true)
        #expect(config.skipped.allSatisfy { $0.cause == .disabledForProgram })
    }

    @Test func insideTheProxyInSsh() {
        let config = enablement(["ssh", "p11-kit-proxy"])
        #expect(config.moduleNames == ["proxy-only"])
        #expect(config.skip("not-ssh")?.reason.contains("'ssh'") == true)
    }

    @Test func outsideAProxy() {
        let config = enablement(["seahorse"])
        // both: enable-in wins over disable-in, as in p11-kit; p11-kit-trust (priority 1) loads
        // outside proxies, first.
        #expect(config.moduleNames == ["p11-kit-trust", "both"])
        #expect(config.skippedNames == ["empty-enable", "mail-only", "not-ssh", "proxy-only", "substring"])
        #expect(config.module("p11-kit-trust")?.priority == 1)
        #expect(config.module("p11-kit-trust")?.initReserved == "")
    }

    @Test func bothKeysIsReportedOnce() {
        let config = enablement(["seahorse"])
        let both = config.diagnostics(for: Fixture.path("enable-disable/modules/both.module"))
        #expect(both.count == 1)
        #expect(both.first?.line == 2)
        #expect(both.first?.message.contains("disable-in is ignored") == true)
        #expect(config.diagnostics.count == 1)
    }

    @Test func emptyEnableInEnablesNowhere() {
        for programs in [["p11-kit-proxy"], ["firefox"], [""], []] {
            #expect(enablement(programs).skip("empty-enable") != nil, "programs \(programs)")
        }
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/usr/share/p11-kit/modules/p11-kit-trust.module"),
                   "needs Debian's p11-kit-modules package"))
    func thisMachinesPackageModulesReadCleanly() {
        let locations = ConfigLocations(packageModulesDirectory: "/usr/share/p11-kit/modules",
                                        moduleDirectory: "/usr/lib/x86_64-linux-gnu/pkcs11")
        let config = readConfiguration(locations, programNames: ["test", "p11-kit-proxy"])
        #expect(config.diagnostics == [])
        #expect(config.skip("p11-kit-trust")?.reason.contains("p11-kit-proxy") == true)
        #expect(!config.moduleNames.contains("p11-kit-trust"))
    }

    // MARK: order

    @Test func priorityDescendingThenNameAscending() {
        let config = readConfiguration(Fixture.configDirectory("priority"), programNames: ["test"])
        #expect(config.moduleNames == ["b", "c", "f", "a", "e", "g", "d"])
        let reported = config.diagnostics.map { "\(fileName($0.file)):\($0.line ?? 0)" }
        #expect(reported == ["e.module:2", "g.module:2"])
        #expect(config.diagnostics.first?.message.contains("'high'") == true)
    }

    // MARK: skip reasons

    @Test func skipReasons() throws {
        let config = readConfiguration(Fixture.configDirectory("skip-reasons"), programNames: ["test"])
        #expect(config.moduleNames == ["bad-bool", "ok", "remote"])
        #expect(config.skippedNames == ["blank-module", "blank-remote", "no-module"])

        let blankRemote = try #require(config.skip("blank-remote"))
        #expect(blankRemote.reason == "remote: is blank, so there is no server to reach")
        #expect(blankRemote.cause == .remote)
        #expect(!blankRemote.cause.isDeliberate)
        #expect(blankRemote.line == 1)
        // A remote module is a module: reached over RPC, its module: line unused.
        let remote = try #require(config.modules.first { $0.name == "remote" })
        #expect(remote.isRemote)
        #expect(remote.remoteAddress == "|ssh user@host p11-kit remote /usr/lib/x.so")

        let missing = try #require(config.skip("no-module"))
        #expect(missing.reason.contains("no module:"))
        #expect(missing.cause == .noModulePath)
        #expect(missing.line == nil)
        #expect(missing.file == Fixture.path("skip-reasons/modules/no-module.module"))
        #expect(missing.isCritical, "the caller may treat a critical module without a library as fatal")

        let blank = try #require(config.skip("blank-module"))
        #expect(blank.reason.contains("blank"))
        #expect(blank.cause == .blankModulePath)
        #expect(blank.cause.isDeliberate, "a blank module: masks a module on purpose")
        #expect(blank.line == 1)
        #expect(!blank.isCritical)
    }

    @Test func invalidBooleansAreReportedAndDefaulted() throws {
        let config = readConfiguration(Fixture.configDirectory("skip-reasons"), programNames: ["test"])
        let badBool = try #require(config.module("bad-bool"))
        #expect(!badBool.isCritical)
        #expect(badBool.isManaged)
        #expect(!badBool.logCalls)
        let lines = config.diagnostics(for: Fixture.path("skip-reasons/modules/bad-bool.module")).map(\.line)
        #expect(lines == [2, 3, 4])
    }

    @Test func unknownKeysAreKept() throws {
        let config = readConfiguration(Fixture.configDirectory("skip-reasons"), programNames: ["test"])
        let ok = try #require(config.module("ok"))
        #expect(ok.initReserved == "verbose=yes")
        #expect(ok.string("trust-policy") == "yes")
        #expect(ok.values["trust-policy"]?.line == 3)
        #expect(!ok.isRemote)
        #expect(config.module("remote")?.isRemote == true)
    }

    // MARK: duplicates

    @Test func duplicateKeysAndDuplicateLibraries() throws {
        let config = readConfiguration(Fixture.p11kit("duplicates"), programNames: ["test"])
        let system = Fixture.path("duplicates/system/modules/dup-keys.module")

        // Duplicate key in one file: the later line wins, and both lines are named.
        let dup = try #require(config.module("dup-keys"))
        #expect(dup.values["module"] == ConfigValue(value: "libdup-second.so", file: system, line: 3))
        #expect(dup.values["x-package"]?.value == "yes", "the package file fills in what the system file lacks")
        let warnings = config.diagnostics(for: system)
        #expect(warnings.count == 1)
        #expect(warnings.first?.line == 3)
        #expect(warnings.first?.message.contains("line 1") == true)

        // Three names for one library (one spelled absolute): the first in load order keeps it.
        #expect(config.moduleNames == ["same-lib-a", "dup-keys"])
        for name in ["same-lib-b", "same-lib-c"] {
            let skip = try #require(config.skip(name))
            #expect(skip.reason.contains("'same-lib-a'"), "\(skip.reason)")
            #expect(skip.cause == .duplicateLibrary)
            #expect(skip.line == 1)
        }
    }

    // MARK: global settings

    @Test func globalManagedAndLogCallsOverrideTheModule() throws {
        let config = readConfiguration(Fixture.configDirectory("global-override"), programNames: ["test"])
        let module = try #require(config.module("m"))
        #expect(module.isManaged && !module.logCalls, "the module's own settings")
        #expect(!config.isManaged(module), "global managed: no wins (p11-kit lookup_managed_option)")
        #expect(config.logCalls(module), "global log-calls: yes wins")
    }

    @Test func invalidGlobalBooleanFallsToTheDefaultNotTheModule() throws {
        let tree = try TemporaryTree()
        try tree.write("pkcs11.conf", "log-calls: loud\n")
        try tree.write("modules/m.module", "module: libm.so\nlog-calls: yes\n")
        let config = readConfiguration(tree.configDirectory, programNames: ["test"])
        let module = try #require(config.module("m"))
        #expect(!config.logCalls(module))
        #expect(config.diagnostics == [ConfigDiagnostic(
            file: tree.path("pkcs11.conf"), line: 1,
            message: "log-calls: 'loud' is not yes, no, true or false; using the default")])
    }

    @Test func configDirectoryModeReadsOnlyItsOwnFiles() {
        let config = readConfiguration(Fixture.configDirectory("config-dir"), programNames: ["test"])
        #expect(config.moduleNames == ["one"])
        #expect(config.globalString("x-log-file") == "/tmp/p11proxy.log")
        #expect(config.globalString("x-log-format") == "text")
        #expect(config.globalString("x-log-secrets") == "no")
        // `user-config: only` there has no user directory to point at: the modules/ dir still loads.
        #expect(config.userConfigMode == .none)
        #expect(config.diagnostics == [])
    }
}

/// The last component of a path, for compact expectations.
func fileName(_ path: String) -> Substring {
    path.split(separator: "/").last ?? ""
}
