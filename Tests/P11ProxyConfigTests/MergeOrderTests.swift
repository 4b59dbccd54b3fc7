// Same-named module files in the user, system and package directories merge key by key, the
// earliest directory winning (fixture: merge-order/), as p11-kit's `_p11_conf_merge_defaults` does.

import Testing
import P11ProxyConfig

@Suite struct MergeOrderTests {
    let root = Fixture.path("merge-order")

    @Test func earliestDirectoryWinsKeyByKey() throws {
        let config = readConfiguration(Fixture.p11kit("merge-order"), programNames: ["test"])
        #expect(config.diagnostics == [])
        #expect(config.userConfigMode == .merge, "no pkcs11.conf: p11-kit's default")

        let alpha = try #require(config.module("alpha"))
        let user = "\(root)/xdg/pkcs11/modules/alpha.module"
        let system = "\(root)/system/modules/alpha.module"
        let package = "\(root)/package/modules/alpha.module"
        #expect(alpha.files == [user, system, package])
        // From the user file: it sets these two.
        #expect(alpha.values["module"] == ConfigValue(value: "user-alpha.so", file: user, line: 2))
        #expect(alpha.modulePath == "/usr/lib/pkcs11/user-alpha.so")
        #expect(alpha.priority == 7)
        // From the system file: the user file lacks them; the package file's `critical: no` loses.
        #expect(alpha.values["critical"] == ConfigValue(value: "yes", file: system, line: 2))
        #expect(alpha.isCritical)
        #expect(alpha.values["x-system-only"] == ConfigValue(value: "from-system", file: system, line: 4))
        // From the package file: nobody earlier set them.
        #expect(alpha.values["managed"] == ConfigValue(value: "no", file: package, line: 3))
        #expect(!alpha.isManaged)
        #expect(alpha.values["x-package-only"]?.file == package)
    }

    @Test func modulesOnlyInLaterDirectoriesStillLoad() {
        let config = readConfiguration(Fixture.p11kit("merge-order"), programNames: ["test"])
        // alpha has priority 7; beta and gamma tie at 0 and go by name.
        #expect(config.moduleNames == ["alpha", "beta", "gamma"])
        #expect(config.module("beta")?.modulePath == "/opt/beta/libbeta.so")
        #expect(config.module("gamma")?.modulePath == "/usr/lib/pkcs11/libgamma.so")
    }

    @Test func withoutUserConfigTheSystemFileWins() throws {
        let config = readConfiguration(Fixture.p11kit("merge-order", userConfigAllowed: false), programNames: ["test"])
        let alpha = try #require(config.module("alpha"))
        #expect(alpha.modulePath == "/usr/lib/pkcs11/system-alpha.so")
        #expect(alpha.priority == 1, "system's priority beats package's 3")
        #expect(alpha.files.count == 2)
        #expect(config.userConfigMode == .none)
    }
}
