// Shared test helpers: fixture paths found from this file's location, throwaway directory trees
// for cases that need binary bytes or symlinks, and file systems that inject faults.

import Foundation
import P11ProxyConfig

/// Where relative `module:` paths resolve in every test.
let testModuleDirectory = "/usr/lib/pkcs11"

enum Fixture {
    /// Tests/Fixtures/config, found from this source file so tests run from any working directory.
    static let root: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/config").path

    static func path(_ relative: String) -> String { root + "/" + relative }

    /// A fixture folder laid out as a P11PROXY_CONFIG_DIR (`pkcs11.conf` + `modules/`).
    static func configDirectory(_ name: String) -> ConfigLocations {
        .configDirectory(path(name), moduleDirectory: testModuleDirectory)
    }

    /// A fixture folder laid out as `system/`, `package/modules`, `xdg/pkcs11/`.
    static func p11kit(_ name: String, systemConfig: String = "system/pkcs11.conf",
                       userConfigAllowed: Bool = true) -> ConfigLocations {
        .p11kit(systemConfigFile: path("\(name)/\(systemConfig)"),
                systemModulesDirectory: path("\(name)/system/modules"),
                packageModulesDirectory: path("\(name)/package/modules"),
                moduleDirectory: testModuleDirectory,
                environment: ["XDG_CONFIG_HOME": path("\(name)/xdg"), "HOME": "/nonexistent-home"],
                userConfigAllowed: userConfigAllowed)
    }
}

/// A directory under the system temp dir, removed when the value goes away.
final class TemporaryTree {
    let root: String

    init() throws {
        root = NSTemporaryDirectory() + "p11proxy-config-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: root) }

    func path(_ relative: String) -> String { root + "/" + relative }

    func write(_ relative: String, _ text: String) throws {
        try write(relative, bytes: Array(text.utf8))
    }

    func write(_ relative: String, bytes: [UInt8]) throws {
        let full = path(relative)
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: full, contents: Data(bytes)) else {
            throw CocoaError(.fileWriteUnknown)
        }
    }

    func symlink(_ relative: String, to destination: String) throws {
        let full = path(relative)
        try FileManager.default.createDirectory(atPath: (full as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: full, withDestinationPath: destination)
    }

    func makeDirectory(_ relative: String) throws {
        try FileManager.default.createDirectory(atPath: path(relative), withIntermediateDirectories: true)
    }

    /// Reads `pkcs11.conf` + `modules/` in this tree, P11PROXY_CONFIG_DIR style.
    var configDirectory: ConfigLocations {
        .configDirectory(root, moduleDirectory: testModuleDirectory)
    }

    /// p11-kit style with `etc/pkcs11.conf`, `etc/modules`, `share/modules`, and `xdg/pkcs11/...`.
    func p11kit(userConfigAllowed: Bool = true) -> ConfigLocations {
        .p11kit(systemConfigFile: path("etc/pkcs11.conf"), systemModulesDirectory: path("etc/modules"),
                packageModulesDirectory: path("share/modules"), moduleDirectory: testModuleDirectory,
                environment: ["XDG_CONFIG_HOME": path("xdg")], userConfigAllowed: userConfigAllowed)
    }
}

/// The real file system, except that the listed paths fail with the given error when read or
/// listed (stat still succeeds, as it does for a file that exists but is not readable).
/// Tests run as root, where chmod 000 does not stop a read; this is how EACCES is reached.
struct FaultyFileSystem: FileSystem {
    var failures: [String: FileSystemError]
    let base = LocalFileSystem()

    func directoryEntries(_ path: String) throws(FileSystemError) -> [[UInt8]] {
        if let failure = failures[path] { throw failure }
        return try base.directoryEntries(path)
    }

    func status(_ path: String) throws(FileSystemError) -> FileStatus { try base.status(path) }
    func linkStatus(_ path: String) throws(FileSystemError) -> FileStatus { try base.linkStatus(path) }

    func contents(_ path: String, maximumSize: Int) throws(FileSystemError) -> [UInt8] {
        if let failure = failures[path] { throw failure }
        return try base.contents(path, maximumSize: maximumSize)
    }
}

/// Records which files were read, to prove that some never are.
final class RecordingFileSystem: FileSystem, @unchecked Sendable {
    // Only touched from the single test that owns the instance.
    private(set) var readPaths: [String] = []
    let base = LocalFileSystem()

    func directoryEntries(_ path: String) throws(FileSystemError) -> [[UInt8]] { try base.directoryEntries(path) }
    func status(_ path: String) throws(FileSystemError) -> FileStatus { try base.status(path) }
    func linkStatus(_ path: String) throws(FileSystemError) -> FileStatus { try base.linkStatus(path) }

    func contents(_ path: String, maximumSize: Int) throws(FileSystemError) -> [UInt8] {
        readPaths.append(path)
        return try base.contents(path, maximumSize: maximumSize)
    }
}

/// Reports a small file, then hands back more than the limit when read: a file that grew
/// between stat and read.
struct GrowingFileSystem: FileSystem {
    var growingPath: String
    let base = LocalFileSystem()

    func directoryEntries(_ path: String) throws(FileSystemError) -> [[UInt8]] { try base.directoryEntries(path) }
    func status(_ path: String) throws(FileSystemError) -> FileStatus { try base.status(path) }
    func linkStatus(_ path: String) throws(FileSystemError) -> FileStatus { try base.linkStatus(path) }

    func contents(_ path: String, maximumSize: Int) throws(FileSystemError) -> [UInt8] {
        if path == growingPath {
            return Array(repeating: UInt8(ascii: "#"), count: maximumSize + 1)
        }
        return try base.contents(path, maximumSize: maximumSize)
    }
}

extension ProxyConfiguration {
    var moduleNames: [String] { modules.map(\.name) }
    var skippedNames: [String] { skipped.map(\.name).sorted() }

    func module(_ name: String) -> ModuleConfig? { modules.first { $0.name == name } }
    func skip(_ name: String) -> SkippedModule? { skipped.first { $0.name == name } }

    func diagnostics(for file: String) -> [ConfigDiagnostic] { diagnostics.filter { $0.file == file } }
}
