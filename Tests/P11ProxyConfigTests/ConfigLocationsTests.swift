// Where configuration is looked for (p11-kit's layout, XDG_CONFIG_HOME and HOME) and the
// decision whether user configuration may be read at all.

import Foundation
import Testing
import P11ProxyConfig

@Suite struct ConfigLocationsTests {
    func locations(_ environment: EnvironmentVariables, allowed: Bool = true) -> ConfigLocations {
        .p11kit(systemConfigFile: "/etc/pkcs11/pkcs11.conf", systemModulesDirectory: "/etc/pkcs11/modules",
                packageModulesDirectory: "/usr/share/p11-kit/modules", moduleDirectory: "/usr/lib/pkcs11",
                environment: environment, userConfigAllowed: allowed)
    }

    @Test func xdgConfigHomeWins() {
        let result = locations(["XDG_CONFIG_HOME": "/home/u/.cfg", "HOME": "/home/u"])
        #expect(result.userConfigFile == "/home/u/.cfg/pkcs11/pkcs11.conf")
        #expect(result.userModulesDirectory == "/home/u/.cfg/pkcs11/modules")
        #expect(result.globalConfigFile == "/etc/pkcs11/pkcs11.conf")
        #expect(result.systemModulesDirectory == "/etc/pkcs11/modules")
        #expect(result.packageModulesDirectory == "/usr/share/p11-kit/modules")
        #expect(result.moduleDirectory == "/usr/lib/pkcs11")
    }

    @Test(arguments: [["HOME": "/home/u"], ["HOME": "/home/u", "XDG_CONFIG_HOME": ""],
                      ["HOME": "/home/u", "XDG_CONFIG_HOME": "relative/dir"]])
    func homeDotConfigOtherwise(environment: EnvironmentVariables) {
        let result = locations(environment)
        #expect(result.userConfigFile == "/home/u/.config/pkcs11/pkcs11.conf")
        #expect(result.userModulesDirectory == "/home/u/.config/pkcs11/modules")
    }

    @Test func trailingSlashInHomeIsNotDoubled() {
        #expect(locations(["HOME": "/root/"]).userConfigFile == "/root/.config/pkcs11/pkcs11.conf")
    }

    @Test(arguments: [[:], ["HOME": ""], ["HOME": "relative"]])
    func noUsableHomeMeansNoUserConfig(environment: EnvironmentVariables) {
        let result = locations(environment)
        #expect(result.userConfigFile == nil)
        #expect(result.userModulesDirectory == nil)
        #expect(result.systemModulesDirectory == "/etc/pkcs11/modules")
    }

    @Test func notAllowedMeansNoUserConfig() {
        let result = locations(["XDG_CONFIG_HOME": "/x", "HOME": "/home/u"], allowed: false)
        #expect(result.userConfigFile == nil)
        #expect(result.userModulesDirectory == nil)
        #expect(result.globalConfigFile == "/etc/pkcs11/pkcs11.conf")
    }

    @Test func configDirectoryUsesOnlyThatDirectory() {
        let result = ConfigLocations.configDirectory("/srv/p11", moduleDirectory: "/opt/lib")
        #expect(result == ConfigLocations(globalConfigFile: "/srv/p11/pkcs11.conf",
                                          systemModulesDirectory: "/srv/p11/modules",
                                          moduleDirectory: "/opt/lib"))
    }
}

@Suite struct UserConfigAllowedTests {
    func allowed(_ environment: EnvironmentVariables = [:], uid: UInt32 = 1000, euid: UInt32 = 1000,
                 gid: UInt32 = 1000, egid: UInt32 = 1000, secure: Bool = false) -> Bool {
        userConfigAllowed(environment: environment, uid: uid, euid: euid, gid: gid, egid: egid, secureExecution: secure)
    }

    @Test func ordinaryProcessMayReadUserConfig() {
        #expect(allowed())
        #expect(allowed(["P11_KIT_NO_USER_CONFIG_X": "1"]), "only the exact variable counts")
    }

    @Test(arguments: ["1", "0", ""])
    func p11KitNoUserConfigInAnyValueForbids(value: String) {
        #expect(!allowed(["P11_KIT_NO_USER_CONFIG": value]))
    }

    @Test func rootForbids() {
        #expect(!allowed(uid: 0, euid: 0))
        #expect(!allowed(uid: 0, euid: 0, gid: 0, egid: 0))
    }

    @Test func setuidOrSetgidForbids() {
        #expect(!allowed(uid: 1000, euid: 0))
        #expect(!allowed(uid: 1000, euid: 1001))
        #expect(!allowed(gid: 1000, egid: 5))
        #expect(!allowed(secure: true), "AT_SECURE alone (file capabilities) is enough")
    }

    @Test func secureExecutionCoversEveryWayIdsCanDiffer() {
        #expect(!ProcessIdentity(uid: 5, euid: 5, gid: 6, egid: 6, secureExecution: false).isSecureExecution)
        #expect(ProcessIdentity(uid: 5, euid: 5, gid: 6, egid: 6, secureExecution: true).isSecureExecution)
        #expect(ProcessIdentity(uid: 5, euid: 0, gid: 6, egid: 6, secureExecution: false).isSecureExecution)
        #expect(ProcessIdentity(uid: 5, euid: 5, gid: 6, egid: 0, secureExecution: false).isSecureExecution)
    }

    @Test func currentProcessAnswersFromItsRealIds() {
        let identity = ProcessIdentity.current()
        #expect(identity.uid == getuid())
        #expect(identity.euid == geteuid())
        #expect(identity.gid == getgid())
        #expect(identity.egid == getegid())
        #expect(!identity.secureExecution, "the test runner is not setuid")
        #expect(userConfigAllowed(environment: [:]) == (getuid() != 0 && geteuid() != 0 && getgid() == getegid()))
        #expect(!userConfigAllowed(environment: ["P11_KIT_NO_USER_CONFIG": "1"]))
    }
}

@Suite struct CurrentProcessTests {
    @Test func environmentHoldsExactlyTheVariablesConfigurationReads() {
        setenv("P11PROXY_TEST_VALUE", "a=b", 1)
        setenv("P11_KIT_NO_USER_CONFIG_TEST", "1", 1)
        setenv("P11PROXY", "not a prefix match", 1)
        defer { for name in ["P11PROXY_TEST_VALUE", "P11_KIT_NO_USER_CONFIG_TEST", "P11PROXY"] { unsetenv(name) } }
        let ours = CurrentProcess.environment()
        let theirs = ProcessInfo.processInfo.environment.filter {
            $0.key.hasPrefix("P11PROXY_") || $0.key.hasPrefix("P11_KIT_") || $0.key == "HOME" || $0.key == "XDG_CONFIG_HOME"
        }
        #expect(Dictionary(uniqueKeysWithValues: ours.variables.map { ($0.name, $0.value) }) == theirs)
        #expect(ours["P11PROXY_TEST_VALUE"] == "a=b", "the value runs from the first '='")
        #expect(ours["P11_KIT_NO_USER_CONFIG_TEST"] == "1")
        #expect(ours["P11PROXY"] == nil && ours["PATH"] == nil)
    }

    @Test func programNameIsTheExecutablesBaseName() {
        let expected = URL(fileURLWithPath: CommandLine.arguments[0]).lastPathComponent
        #expect(CurrentProcess.programName() == expected)
        #expect(CurrentProcess.programNamesForProxy() == [expected, "p11-kit-proxy"])
    }
}
