// Configuration that is damaged or odd on disk: malformed lines, bad file names, binary bytes,
// huge files and lines, directories, dangling symlinks, FIFOs and unreadable files. Each is
// reported with its file (and line), skips only the module it belongs to, and never hangs.

import Foundation
import Testing
import P11ProxyConfig

@Suite struct BrokenFilesTests {
    // MARK: malformed lines (fixture: bad-lines/)

    @Test func malformedModuleFilesAreSkippedAndTheOthersLoad() throws {
        let config = readConfiguration(Fixture.configDirectory("bad-lines"), programNames: ["test"])
        #expect(config.moduleNames == ["good"])
        let expected: [String: Int] = ["no-colon": 3, "section": 1, "empty-key": 2, "pem": 2]
        #expect(config.skippedNames == expected.keys.sorted())
        for (name, line) in expected {
            let skip = try #require(config.skip(name))
            #expect(skip.file == Fixture.path("bad-lines/modules/\(name).module"))
            #expect(skip.line == line, "\(name)")
            #expect(skip.cause == .malformedConfig)
            #expect(skip.reason.contains(":\(line) is not a 'key: value' line"), "\(skip.reason)")
            // The line is also a diagnostic, so it is logged even by a caller that ignores `skipped`.
            #expect(config.diagnostics.contains { $0.file == skip.file && $0.line == line })
        }
    }

    @Test func indentedCommentsTabsAndColonsInValuesAreFine() throws {
        let config = readConfiguration(Fixture.configDirectory("bad-lines"), programNames: ["test"])
        let good = try #require(config.module("good"))
        #expect(good.modulePath == "/usr/lib/pkcs11/libgood.so")
        #expect(good.values["module"]?.line == 3)
        #expect(good.string("remote-note") == "a value: with colons # and no comment")
        #expect(config.diagnostics(for: Fixture.path("bad-lines/modules/good.module")).isEmpty)
    }

    @Test func malformedLinesInPkcs11ConfAreReportedAndTheRestIsUsed() {
        let config = readConfiguration(Fixture.configDirectory("bad-lines"), programNames: ["test"])
        let conf = Fixture.path("bad-lines/pkcs11.conf")
        #expect(config.diagnostics(for: conf).map(\.line) == [2])
        #expect(config.globalString("log-calls") == "yes")
        #expect(config.globalString("x-log-format") == "text", "the line after the bad one is read too")
    }

    @Test func crlfFilesReadLikeLfFiles() throws {
        let tree = try TemporaryTree()
        try tree.write("modules/dos.module", "# written on Windows\r\nmodule: libdos.so\r\ncritical: yes\r\n")
        let config = readConfiguration(tree.configDirectory, programNames: ["test"])
        #expect(config.module("dos")?.modulePath == "/usr/lib/pkcs11/libdos.so")
        #expect(config.module("dos")?.isCritical == true)
        #expect(config.diagnostics == [])
    }

    // MARK: binary content, created here rather than committed

    @Test func nulByteSkipsTheModule() throws {
        let tree = try TemporaryTree()
        try tree.write("modules/nul.module", bytes: Array("module: libnul.so\ndisable-in: p11".utf8) + [0] + Array("-kit-proxy\n".utf8))
        try tree.write("modules/fine.module", "module: libfine.so\n")
        let config = readConfiguration(tree.configDirectory, programNames: ["test"])
        #expect(config.moduleNames == ["fine"])
        #expect(config.skip("nul")?.line == 2)
        #expect(config.diagnostics.first { $0.file == tree.path("modules/nul.module") }?.message.contains("NUL") == true)
    }

    @Test func invalidUTF8IsReadLenientlyAndReported() throws {
        let tree = try TemporaryTree()
        try tree.write("modules/latin1.module", bytes: Array("module: libok.so\nx-vendor: M".utf8) + [0xFC] + Array("ller\n".utf8))
        let config = readConfiguration(tree.configDirectory, programNames: ["test"])
        #expect(config.moduleNames == ["latin1"])
        #expect(config.module("latin1")?.string("x-vendor") == "M\u{FFFD}ller")
        #expect(config.diagnostics.map(\.line) == [2])
        #expect(config.diagnostics.first?.message.contains("UTF-8") == true)
    }

    @Test func overlongLineSkipsTheModule() throws {
        let tree = try TemporaryTree()
        let long = String(repeating: "a", count: ConfigFileParser.maximumLineLength + 1)
        try tree.write("modules/long.module", "module: liblong.so\nx-long: \(long)\n")
        try tree.write("pkcs11.conf", "x-long: \(long)\nlog-calls: yes\n")
        let config = readConfiguration(tree.configDirectory, programNames: ["test"])
        #expect(config.skip("long")?.line == 2)
        #expect(config.globalString("log-calls") == "yes")
        #expect(config.globalString("x-long") == nil)
        #expect(config.diagnostics(for: tree.path("pkcs11.conf")).map(\.line) == [1])
    }

    @Test func hugeFileIsNotEvenRead() throws {
        let tree = try TemporaryTree()
        let line = "# padding padding padding padding padding padding padding padding\n"
        let huge = "module: libhuge.so\n" + String(repeating: line, count: ConfigFileParser.maximumFileSize / line.utf8.count + 1)
        try tree.write("modules/huge.module", huge)
        try tree.write("modules/small.module", "module: libsmall.so\n")
        let files = RecordingFileSystem()
        let config = readConfiguration(tree.configDirectory, programNames: ["test"], fileSystem: files)
        #expect(config.moduleNames == ["small"])
        let skip = try #require(config.skip("huge"))
        #expect(skip.line == nil)
        #expect(skip.reason.contains("more than the \(ConfigFileParser.maximumFileSize)-byte limit"))
        #expect(skip.cause == .unreadableConfig)
        #expect(!files.readPaths.contains(tree.path("modules/huge.module")), "stat's size is enough to refuse it")
        #expect(files.readPaths.contains(tree.path("modules/small.module")))
    }

    @Test func fileThatGrowsAfterStatIsStillRefused() throws {
        let tree = try TemporaryTree()
        try tree.write("modules/grows.module", "module: libgrows.so\n")
        let config = readConfiguration(tree.configDirectory, programNames: ["test"],
                                       fileSystem: GrowingFileSystem(growingPath: tree.path("modules/grows.module")))
        #expect(config.moduleNames == [])
        #expect(config.skip("grows")?.reason.contains("too large") == true)
        #expect(config.diagnostics.first?.line == nil)
    }

    // MARK: file names (fixture: bad-names/)

    @Test func onlyValidModuleFileNamesAreRead() {
        let config = readConfiguration(Fixture.configDirectory("bad-names"), programNames: ["test"])
        #expect(config.moduleNames == ["good", "under_score.v2-x"])
        #expect(config.skipped == [])
        let reported = Set(config.diagnostics.map { String(fileName($0.file)) })
        #expect(reported == [".module", "-dash.module", "sp ace.module", ".hidden.module", "ÄÖ.module", "x.module"])
        #expect(config.diagnostics.allSatisfy { $0.line == nil })
        #expect(config.diagnostics.first { $0.file.hasSuffix("/.module") }?.message.contains("no module name") == true)
        #expect(config.diagnostics.first { $0.file.hasSuffix("/x.module") }?.message.contains("directory") == true)
    }

    // MARK: symbolic links and special files

    @Test func danglingSymlinkSkipsOnlyItsModule() throws {
        let tree = try TemporaryTree()
        try tree.symlink("modules/y.module", to: tree.path("nowhere/y.module"))
        try tree.symlink("pkcs11.conf", to: tree.path("nowhere.conf"))
        try tree.write("modules/z.module", "module: libz.so\n")
        let config = readConfiguration(tree.configDirectory, programNames: ["test"])
        #expect(config.moduleNames == ["z"])
        let skip = try #require(config.skip("y"))
        #expect(skip.file == tree.path("modules/y.module"))
        #expect(skip.reason.contains("does not exist"))
        #expect(skip.cause == .unreadableConfig)
        #expect(config.diagnostics.contains { $0.file == tree.path("modules/y.module") && $0.line == nil })
        // A dangling pkcs11.conf is named too (p11-kit gives up on all configuration there).
        #expect(config.diagnostics(for: tree.path("pkcs11.conf")).map(\.description)
                    == ["\(tree.path("pkcs11.conf")): is a symbolic link to a file that does not exist; ignored"])
    }

    @Test func symlinkToAFileIsFollowed() throws {
        let tree = try TemporaryTree()
        try tree.write("elsewhere/real.conf", "module: libreal.so\n")
        try tree.symlink("modules/linked.module", to: tree.path("elsewhere/real.conf"))
        let config = readConfiguration(tree.configDirectory, programNames: ["test"])
        #expect(config.module("linked")?.modulePath == "/usr/lib/pkcs11/libreal.so")
        #expect(config.diagnostics == [])
    }

    @Test func symlinkLoopIsReported() throws {
        let tree = try TemporaryTree()
        try tree.symlink("modules/loop.module", to: tree.path("modules/loop.module"))
        let config = readConfiguration(tree.configDirectory, programNames: ["test"])
        #expect(config.skip("loop")?.reason.contains("symbolic links") == true)
    }

    @Test(.timeLimit(.minutes(1)))
    func fifoIsNeverOpened() throws {
        let tree = try TemporaryTree()
        try tree.makeDirectory("modules")
        #expect(mkfifo(tree.path("modules/pipe.module"), 0o644) == 0)
        try tree.write("modules/ok.module", "module: libok.so\n")
        let config = readConfiguration(tree.configDirectory, programNames: ["test"])
        #expect(config.moduleNames == ["ok"])
        #expect(config.skip("pipe")?.reason.contains("not a regular file") == true)
        // Even asked directly, the real file system refuses without blocking on the FIFO.
        #expect(throws: FileSystemError.notRegularFile) {
            try LocalFileSystem().contents(tree.path("modules/pipe.module"), maximumSize: 100)
        }
    }

    @Test func directoryWhereAConfigFileShouldBe() throws {
        let tree = try TemporaryTree()
        try tree.makeDirectory("pkcs11.conf")
        try tree.write("modules/ok.module", "module: libok.so\n")
        let config = readConfiguration(tree.configDirectory, programNames: ["test"])
        #expect(config.moduleNames == ["ok"])
        #expect(config.diagnostics.map(\.file) == [tree.path("pkcs11.conf")])
    }

    @Test func modulesPathThatIsAFileIsTreatedAsMissing() throws {
        let tree = try TemporaryTree()
        try tree.write("modules", "not a directory\n")
        let config = readConfiguration(tree.configDirectory, programNames: ["test"])
        #expect(config.modules == [])
        #expect(config.diagnostics == [], "ENOTDIR is 'no config' to p11-kit")
    }

    // MARK: unreadable files (EACCES)

    @Test func unreadableModuleFileSkipsItsModule() throws {
        let tree = try TemporaryTree()
        try tree.write("modules/secret.module", "module: libsecret.so\n")
        try tree.write("modules/open.module", "module: libopen.so\n")
        let files = FaultyFileSystem(failures: [tree.path("modules/secret.module"): .permissionDenied])
        let config = readConfiguration(tree.configDirectory, programNames: ["test"], fileSystem: files)
        #expect(config.moduleNames == ["open"])
        #expect(config.skip("secret")?.reason.contains("permission denied") == true)
        #expect(config.skip("secret")?.cause == .unreadableConfig)
        #expect(config.diagnostics == [ConfigDiagnostic(file: tree.path("modules/secret.module"), line: nil,
                                                        message: "cannot be read: permission denied")])
    }

    @Test func unreadableUserFileStillMasksTheSystemModule() throws {
        // If the user's copy cannot be read we cannot know whether it disables the module.
        let tree = try TemporaryTree()
        try tree.write("etc/modules/token.module", "module: libtoken.so\n")
        try tree.write("xdg/pkcs11/modules/token.module", "module:\n")
        let files = FaultyFileSystem(failures: [tree.path("xdg/pkcs11/modules/token.module"): .permissionDenied])
        let config = readConfiguration(tree.p11kit(), programNames: ["test"], fileSystem: files)
        #expect(config.modules == [])
        #expect(config.skip("token")?.file == tree.path("xdg/pkcs11/modules/token.module"))
    }

    @Test func unlistableDirectoryIsReportedAndOthersLoad() throws {
        let tree = try TemporaryTree()
        try tree.write("etc/modules/sys.module", "module: libsys.so\n")
        try tree.write("xdg/pkcs11/modules/usr.module", "module: libusr.so\n")
        let files = FaultyFileSystem(failures: [tree.path("xdg/pkcs11/modules"): .permissionDenied])
        let config = readConfiguration(tree.p11kit(), programNames: ["test"], fileSystem: files)
        #expect(config.moduleNames == ["sys"])
        #expect(config.diagnostics == [ConfigDiagnostic(file: tree.path("xdg/pkcs11/modules"), line: nil,
                                                        message: "module config directory cannot be listed: permission denied")])
    }

    @Test func unreadablePkcs11ConfIsReportedAndTreatedAsEmpty() throws {
        let tree = try TemporaryTree()
        try tree.write("pkcs11.conf", "log-calls: yes\n")
        try tree.write("modules/ok.module", "module: libok.so\n")
        let files = FaultyFileSystem(failures: [tree.path("pkcs11.conf"): .permissionDenied])
        let config = readConfiguration(tree.configDirectory, programNames: ["test"], fileSystem: files)
        #expect(config.global.isEmpty)
        #expect(config.moduleNames == ["ok"])
        #expect(config.diagnostics.map(\.description) == ["\(tree.path("pkcs11.conf")): cannot be read: permission denied; ignored"])
    }

    @Test(.timeLimit(.minutes(1)))
    func megabyteOfBadLinesIsCountedButOnlyTwentyAreReported() throws {
        let tree = try TemporaryTree()
        let bad = "no colon here\n"
        let lines = (ConfigFileParser.maximumFileSize - 20) / bad.utf8.count
        try tree.write("modules/bad.module", "module: libbad.so\n" + String(repeating: bad, count: lines))
        let config = readConfiguration(tree.configDirectory, programNames: ["test"])
        let diagnostics = config.diagnostics(for: tree.path("modules/bad.module"))
        #expect(diagnostics.map(\.line) == Array(2...21) + [22])
        #expect(diagnostics.last?.message == "\(lines - 20) more problems from this line on are not shown")
        #expect(config.skip("bad")?.line == 2)
    }

    // As nobody, with real mode-000 files, through the built proxy: Tests/integration/test_broken_config.sh.
    @Test(.enabled(if: geteuid() != 0, "root reads mode-000 files anyway; FaultyFileSystem covers EACCES under root"))
    func realPermissionDenied() throws {
        let tree = try TemporaryTree()
        try tree.write("modules/secret.module", "module: libsecret.so\n")
        #expect(chmod(tree.path("modules/secret.module"), 0) == 0)
        let config = readConfiguration(tree.configDirectory, programNames: ["test"])
        #expect(config.skip("secret")?.reason.contains("permission denied") == true)
    }
}
