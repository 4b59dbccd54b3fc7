// The decisions and words the module and the `p11proxy` command share: which configuration is
// read, what happens to a module's library before dlopen, the skip and failure messages, and how
// a p11proxy build is recognised in a file's bytes.

import Foundation
import P11ProxyConfig
import Testing
@testable import P11ProxyLoader

@Suite struct ConfigurationSourceTests {
    @Test func spyModeWinsOverEveryConfigDirectory() {
        let source = ConfigurationSource.select(
            configDirectory: "/from-reserved",
            environment: ["P11PROXY_MODULE": "/opt/lib/libsofthsm2.so", "P11PROXY_CONFIG_DIR": "/from-env"])
        #expect(source == .spy(module: "/opt/lib/libsofthsm2.so"))
    }

    @Test func environmentDirectoryWinsOverReservedDirectory() {
        let source = ConfigurationSource.select(configDirectory: "/from-reserved",
                                                environment: ["P11PROXY_CONFIG_DIR": "/from-env"])
        #expect(source == .directory("/from-env", origin: "P11PROXY_CONFIG_DIR"))
    }

    @Test func emptyVariablesAreIgnored() {
        let source = ConfigurationSource.select(configDirectory: "/from-reserved",
                                                environment: ["P11PROXY_MODULE": "", "P11PROXY_CONFIG_DIR": ""])
        #expect(source == .directory("/from-reserved", origin: "config-dir"))
    }

    @Test func withoutAnyChoiceP11KitsFilesAreRead() {
        guard case .p11kit(let locations) = ConfigurationSource.select(configDirectory: nil, environment: [:]) else {
            Issue.record("expected p11-kit's locations")
            return
        }
        #expect(locations.globalConfigFile?.hasSuffix("/pkcs11/pkcs11.conf") == true)
        #expect(locations.userConfigFile == nil, "no HOME or XDG_CONFIG_HOME: no user files")
    }

    @Test func spyModeIsOneCriticalModuleNamedAfterItsFile() {
        let configuration = ConfigurationSource.spy(module: "/usr/lib/softhsm/libsofthsm2.so").read(programNames: ["x"])
        #expect(configuration.modules.map(\.name) == ["libsofthsm2"])
        #expect(configuration.modules.first?.isCritical == true)
        #expect(configuration.modules.first?.modulePath == "/usr/lib/softhsm/libsofthsm2.so")
    }
}

@Suite struct ModuleStartupTests {
    /// `/conf/NAME.module`: `module:` on line 1, `critical:` on line 2, `more` from line 3 in key order.
    static func module(_ name: String, path: String?, critical: Bool = false, more: [String: String] = [:]) -> ModuleConfig {
        let file = "/conf/\(name).module"
        var values: [String: ConfigValue] = [:]
        if let path { values["module"] = ConfigValue(value: path, file: file, line: 1) }
        if critical { values["critical"] = ConfigValue(value: "yes", file: file, line: 2) }
        for (index, (key, value)) in more.sorted(by: { $0.key < $1.key }).enumerated() {
            values[key] = ConfigValue(value: value, file: file, line: index + 3)
        }
        return ModuleConfig(name: name, values: values, files: [file], moduleDirectory: "/usr/lib/pkcs11")
    }

    let existing = "/bin/sh"

    @Test func aMissingLibraryIsUnusable() {
        let check = ModuleStartup.checkLibrary(Self.module("gone", path: "/nonexistent/libgone.so"),
                                               alreadyStarted: [], isP11Proxy: { _, _ in false })
        #expect(check == .unusable(reason: "/nonexistent/libgone.so: no such file"))
    }

    @Test func noModulePathIsUnusable() {
        let check = ModuleStartup.checkLibrary(Self.module("none", path: nil), alreadyStarted: [], isP11Proxy: { _, _ in false })
        #expect(check == .unusable(reason: "no module: path"))
    }

    @Test func p11proxyItselfIsRecognisedBeforeAnythingElse() {
        let identity = FileIdentity(path: existing)!
        let check = ModuleStartup.checkLibrary(Self.module("me", path: existing), alreadyStarted: [.library(identity)],
                                               isP11Proxy: { path, seen in path == existing && seen == identity })
        #expect(check == .itself(reason: "\(existing) is p11proxy itself"))
    }

    @Test func aLibraryLoadedUnderAnotherNameIsNotLoadedTwice() {
        let identity = FileIdentity(path: existing)!
        let check = ModuleStartup.checkLibrary(Self.module("again", path: existing), alreadyStarted: [.library(identity)],
                                               isP11Proxy: { _, _ in false })
        #expect(check == .alreadyLoaded(reason: "\(existing) is already loaded by another module file"))
    }

    @Test func anExistingLibraryIsLoaded() {
        let check = ModuleStartup.checkLibrary(Self.module("sh", path: existing), alreadyStarted: [],
                                               isP11Proxy: { _, _ in false })
        #expect(check == .load(path: existing, identity: FileIdentity(path: existing)!))
    }

    @Test func messagesNameThePlaceTheModuleAndTheReason() {
        let skipped = SkippedModule(name: "bad", cause: .malformedConfig, file: "/conf/bad.module", line: 3,
                                    reason: "why", isCritical: true)
        #expect(ModuleStartup.skippedMessage(skipped) == "/conf/bad.module:3: module 'bad' skipped: why")
        #expect(ModuleStartup.place(of: SkippedModule(name: "x", cause: .remote, file: nil, line: nil, reason: ""))
                == "configuration")
        #expect(ModuleStartup.criticalMessage(name: "bad") == "module 'bad' is critical; C_Initialize fails")
        #expect(ModuleStartup.initializeFailedMessage(name: "m", path: "/l.so", error: "CKR_DEVICE_ERROR", critical: false)
                == "module 'm' (/l.so): C_Initialize failed: CKR_DEVICE_ERROR; skipped")
        #expect(ModuleStartup.initializeFailedMessage(name: "m", path: "/l.so", error: "CKR_DEVICE_ERROR", critical: true)
                == "module 'm' (/l.so): C_Initialize failed: CKR_DEVICE_ERROR; it is critical, so C_Initialize fails")
    }

    @Test func onlyAnUnintendedSkipOfACriticalModuleFailsInitialize() {
        func skipped(_ cause: SkippedModule.Cause, critical: Bool) -> SkippedModule {
            SkippedModule(name: "m", cause: cause, file: nil, line: nil, reason: "", isCritical: critical)
        }
        #expect(ModuleStartup.failsInitialize(skipped(.malformedConfig, critical: true)))
        #expect(!ModuleStartup.failsInitialize(skipped(.malformedConfig, critical: false)))
        #expect(!ModuleStartup.failsInitialize(skipped(.disabledForProgram, critical: true)))
        #expect(!ModuleStartup.failsInitialize(skipped(.blankModulePath, critical: true)))
    }

    @Test func alreadyInitializedCountsAsSuccess() {
        #expect(ModuleStartup.initializeSucceeded(0))      // CKR_OK
        #expect(ModuleStartup.initializeSucceeded(0x191))  // CKR_CRYPTOKI_ALREADY_INITIALIZED
        #expect(!ModuleStartup.initializeSucceeded(0x30))  // CKR_DEVICE_ERROR
    }
}

@Suite struct P11ProxyLibraryTests {
    static func file(_ bytes: [UInt8]) throws -> String {
        let path = NSTemporaryDirectory() + "p11proxy-library-" + UUID().uuidString
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    /// The marker's bytes as written here: if they drifted from P11ProxyLibrary.marker, the tests
    /// below would stop finding it.
    static let marker = Array("p11proxy: who am I".utf8)

    @Test func aMarkerAcrossTheReadBoundaryIsFound() throws {
        // The file is read in 1 MiB chunks; the marker straddles the first boundary.
        let bytes = [UInt8](repeating: 0x41, count: (1 << 20) - 7) + Self.marker + [0, 1, 2]
        let path = try Self.file(bytes)
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(P11ProxyLibrary.isBuild(path: path))
    }

    @Test func aFileWithoutTheWholeMarkerIsNotP11Proxy() throws {
        let path = try Self.file([UInt8](repeating: 0x41, count: 3000) + Self.marker.dropLast())
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(!P11ProxyLibrary.isBuild(path: path))
        #expect(!P11ProxyLibrary.isBuild(path: "/nonexistent/libp11proxy.so"))
    }
}
