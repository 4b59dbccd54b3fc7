// ModuleStartup.walk, the one start-up of the module and the `p11proxy` command, driven through a
// host that writes down every step: the order of the steps and messages, what is silent, what
// is fatal for a critical module, and that a host that throws stops at the first such failure.

import CPKCS11
import Foundation
import P11ProxyConfig
import Testing
@testable import P11ProxyLoader

/// A host that holds a module for each of `held` (so nothing is dlopen'd), answers C_Initialize
/// from `answers` (CKR_OK otherwise) and writes down each step in `steps`. With `stops`, a
/// critical failure throws, as the module's does; without, it goes on, as the command's does.
struct RecordingHost: ModuleStartupHost {
    struct Stop: Error, Equatable {
        var name: String
        var rv: CK_RV
    }

    struct Held: OpenedModule {
        var source: ModuleSource
    }

    var held: [String] = []
    var itself: String?
    var answers: [String: CK_RV] = [:]
    var noRoom: String?
    var stops = false
    var steps: [String] = []

    func isP11Proxy(path: String, identity: FileIdentity) -> Bool { path == itself }

    func module(heldAs identity: ModuleStartup.ModuleIdentity) -> Held? {
        for path in held {
            guard let file = FileIdentity(path: path), identity == .library(file) else { continue }
            return Held(source: .library(path: path, identity: file))
        }
        return nil
    }

    mutating func add(_ source: ModuleSource, functions: CK_FUNCTION_LIST_3_2, config: ModuleConfig) -> Held {
        steps.append("add \(config.name)")
        return Held(source: source)
    }

    mutating func configure(_ module: Held, config: ModuleConfig, trace: TraceSettings) {
        steps.append("configure \(config.name)")
    }

    mutating func initialize(_ module: Held, config: ModuleConfig) -> CK_RV {
        steps.append("initialize \(config.name)")
        return answers[config.name] ?? CK_RV(CKR_OK)
    }

    mutating func started(_ module: Held, config: ModuleConfig, trace: TraceSettings, filter: TokenFilter?,
                          initializedElsewhere: Bool) {
        steps.append("started \(config.name)" + (initializedElsewhere ? " elsewhere" : ""))
    }

    mutating func skipped(_ skip: ModuleStartup.Skip) {
        steps.append("skipped \(skip.name): \(skip.reason)" + (skip.isProblem ? "" : " (silent)"))
    }

    mutating func say(_ kind: ModuleStartup.MessageKind, _ text: String) {
        steps.append("\(kind): \(text)")
    }

    mutating func failed(critical name: String, _ rv: CK_RV) throws(Stop) {
        steps.append("failed \(name)")
        if stops { throw Stop(name: name, rv: rv) }
    }
}

@Suite struct ModuleStartupWalkTests {
    // Three files that exist, with three identities, standing in for libraries the host holds.
    static let first = "/bin/sh", second = "/bin/ls", third = "/bin/cat"

    static func module(_ name: String, path: String?, critical: Bool = false, more: [String: String] = [:]) -> ModuleConfig {
        ModuleStartupTests.module(name, path: path, critical: critical, more: more)
    }

    static func walk(_ configuration: ProxyConfiguration, host: inout RecordingHost, isSpy: Bool = false,
                     environment: EnvironmentVariables = [:]) throws(RecordingHost.Stop) {
        try ModuleStartup.walk(configuration: configuration, isSpy: isSpy, environment: environment, host: &host)
    }

    @Test func everyStepInTheModulesOrder() throws {
        let configuration = ProxyConfiguration(
            modules: [
                Self.module("gone", path: "/nonexistent/libgone.so"),
                Self.module("me", path: Self.first),
                Self.module("a", path: Self.second),
                Self.module("again", path: Self.second, critical: true),
                Self.module("broken", path: Self.third),
            ],
            skipped: [
                SkippedModule(name: "off", cause: .disabledForProgram, file: "/conf/off.module", line: 2,
                              reason: "disable-in: x", isCritical: true),
                SkippedModule(name: "bad", cause: .malformedConfig, file: "/conf/bad.module", line: 3, reason: "why"),
            ],
            diagnostics: [ConfigDiagnostic(file: "/conf/pkcs11.conf", line: 1, message: "odd")])
        var host = RecordingHost(held: [Self.first, Self.second, Self.third], itself: Self.first,
                                 answers: ["broken": CK_RV(CKR_DEVICE_ERROR)])
        try Self.walk(configuration, host: &host)
        #expect(host.steps == [
            "warning: /conf/pkcs11.conf:1: odd",
            // On purpose, so silent, and not fatal although critical.
            "skipped off: disable-in: x (silent)",
            "skipped bad: why",
            "problem: /conf/bad.module:3: module 'bad' skipped: why",
            "skipped gone: /nonexistent/libgone.so: no such file",
            "problem: /conf/gone.module: module 'gone' skipped: /nonexistent/libgone.so: no such file",
            "skipped me: /bin/sh is p11proxy itself (silent)",
            "configure a",
            "initialize a",
            "started a",
            // Never fatal, critical or not: the library is there under the other name.
            "skipped again: /bin/ls is already loaded by another module file",
            "problem: /conf/again.module: module 'again' skipped: /bin/ls is already loaded by another module file",
            "configure broken",
            "initialize broken",
            "skipped broken: C_Initialize failed: CKR_DEVICE_ERROR",
            "problem: module 'broken' (/bin/cat): C_Initialize failed: CKR_DEVICE_ERROR; skipped",
        ])
    }

    @Test func aThrowingHostStopsAtTheFirstCriticalSkip() {
        let configuration = ProxyConfiguration(
            modules: [Self.module("gone", path: "/nonexistent/libgone.so", critical: true), Self.module("a", path: Self.second)],
            skipped: [SkippedModule(name: "bad", cause: .malformedConfig, file: "/conf/bad.module", line: 3, reason: "why")])
        var host = RecordingHost(held: [Self.second], stops: true)
        #expect(throws: RecordingHost.Stop(name: "gone", rv: CK_RV(CKR_GENERAL_ERROR))) {
            try Self.walk(configuration, host: &host)
        }
        #expect(host.steps.suffix(3) == [
            "problem: /conf/gone.module: module 'gone' skipped: /nonexistent/libgone.so: no such file",
            "critical: module 'gone' is critical; C_Initialize fails",
            "failed gone",
        ])
        #expect(!host.steps.contains("initialize a"))
    }

    @Test func aCriticalSkipInTheConfigurationComesBeforeAnyModule() {
        let configuration = ProxyConfiguration(
            modules: [Self.module("a", path: Self.second)],
            skipped: [SkippedModule(name: "bad", cause: .malformedConfig, file: "/conf/bad.module", line: 3, reason: "why",
                                    isCritical: true)])
        var going = RecordingHost(held: [Self.second])
        try? Self.walk(configuration, host: &going)
        #expect(going.steps == [
            "skipped bad: why",
            "problem: /conf/bad.module:3: module 'bad' skipped: why",
            "critical: module 'bad' is critical; C_Initialize fails",
            "failed bad",
            "configure a", "initialize a", "started a",
        ])
        var stopping = RecordingHost(held: [Self.second], stops: true)
        #expect(throws: RecordingHost.Stop(name: "bad", rv: CK_RV(CKR_GENERAL_ERROR))) {
            try Self.walk(configuration, host: &stopping)
        }
        #expect(stopping.steps.last == "failed bad")
    }

    @Test func aCriticalModuleWhoseInitializeFailsStopsWithItsAnswer() {
        let configuration = ProxyConfiguration(modules: [Self.module("hsm", path: Self.second, critical: true),
                                                         Self.module("b", path: Self.third)])
        var host = RecordingHost(held: [Self.second, Self.third], answers: ["hsm": CK_RV(CKR_DEVICE_ERROR)], stops: true)
        #expect(throws: RecordingHost.Stop(name: "hsm", rv: CK_RV(CKR_DEVICE_ERROR))) {
            try Self.walk(configuration, host: &host)
        }
        #expect(host.steps.suffix(2) == [
            "critical: module 'hsm' (/bin/ls): C_Initialize failed: CKR_DEVICE_ERROR; it is critical, so C_Initialize fails",
            "failed hsm",
        ])
    }

    @Test func alreadyInitializedStartsTheModuleAsInitializedElsewhere() throws {
        var host = RecordingHost(held: [Self.second], answers: ["a": CK_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED)])
        try Self.walk(ProxyConfiguration(modules: [Self.module("a", path: Self.second)]), host: &host)
        #expect(host.steps.last == "started a elsewhere")
    }

    @Test func aLibraryThatFailsToInitializeCanStillBeStartedByAnotherModuleFile() throws {
        // Only started modules count as loaded: the second file gets its own try.
        var host = RecordingHost(held: [Self.second], answers: ["a": CK_RV(CKR_DEVICE_ERROR)])
        try Self.walk(ProxyConfiguration(modules: [Self.module("a", path: Self.second), Self.module("b", path: Self.second)]),
                      host: &host)
        #expect(host.steps.suffix(3) == ["configure b", "initialize b", "started b"])
    }

    @Test func aFullHostSkipsANewModuleButTakesUpOneItHolds() {
        let configuration = ProxyConfiguration(modules: [Self.module("a", path: Self.second),
                                                         Self.module("new", path: Self.third, critical: true)])
        var host = RecordingHost(held: [Self.second], noRoom: "more than 1 modules", stops: true)
        #expect(throws: RecordingHost.Stop(name: "new", rv: CK_RV(CKR_GENERAL_ERROR))) {
            try Self.walk(configuration, host: &host)
        }
        #expect(host.steps == [
            "configure a", "initialize a", "started a",
            "skipped new: more than 1 modules",
            "problem: /conf/new.module: module 'new' skipped: more than 1 modules",
            "critical: module 'new' is critical; C_Initialize fails",
            "failed new",
        ])
    }

    @Test func aFileThatIsNoLibraryIsSkippedWithDlopensWords() throws {
        let path = NSTemporaryDirectory() + "p11proxy-walk-" + UUID().uuidString + ".so"
        try Data("not a library".utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        var host = RecordingHost()
        try Self.walk(ProxyConfiguration(modules: [Self.module("junk", path: path)]), host: &host)
        #expect(host.steps.count == 2)
        #expect(host.steps.first?.hasPrefix("skipped junk: \(path): cannot load: ") == true)
        #expect(!host.steps.contains { $0.hasPrefix("add") })
    }

    @Test func traceComplaintsComeBeforeTheFilterAndTheFilterBeforeInitialize() throws {
        let module = Self.module("a", path: Self.second, more: ["log-calls": "maybe", "x-only-tokens": "pkcs11:tokn=a"])
        var host = RecordingHost(held: [Self.second])
        try Self.walk(ProxyConfiguration(modules: [module]), host: &host)
        #expect(host.steps.count == 5)
        #expect(host.steps[0] == "warning: /conf/a.module:3: log-calls: 'maybe' is not yes or no; using no")
        #expect(host.steps[1] == "configure a")
        #expect(host.steps[2].hasPrefix("badTokenFilter: /conf/a.module:4: x-only-tokens: URI 1 'pkcs11:tokn=a'"))
        #expect(host.steps[3...] == ["initialize a", "started a"])
    }

    @Test func inSpyModeTheFilterNoteIsAWarning() throws {
        var host = RecordingHost(held: [Self.second])
        try Self.walk(ProxyConfiguration(modules: [Self.module("a", path: Self.second)]), host: &host, isSpy: true,
                      environment: ["P11PROXY_ONLY_TOKENS": "pkcs11:token=a"])
        #expect(host.steps.contains(
            "warning: P11PROXY_ONLY_TOKENS='pkcs11:token=a' is ignored in spy mode (P11PROXY_MODULE shows the module as it is)"))
    }
}
