// Syscalls.openForAppending, which opens trace files: open(O_CREAT | O_APPEND, 0600) done as
// mknod + open, because the shipped (Embedded Swift) build cannot call the variadic open(2).

import Foundation
import Glibc
import Testing
@testable import P11ProxyConfig

@Suite struct OpenForAppendingTests {
    private func append(_ text: String, to path: String) throws {
        let descriptor = try Syscalls.openForAppending(path)
        defer { close(descriptor) }
        let written = text.utf8CString.withUnsafeBufferPointer { write(descriptor, $0.baseAddress, text.utf8.count) }
        #expect(written == text.utf8.count)
    }

    private func mode(_ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return try #require(attributes[.posixPermissions] as? Int)
    }

    @Test func aMissingFileIsCreatedWithMode0600() throws {
        let tree = try TemporaryTree()
        let path = tree.path("new.trace")
        let previous = umask(0o022)
        defer { umask(previous) }
        try append("first\n", to: path)
        #expect(try mode(path) == 0o600)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "first\n")
    }

    @Test func anExistingFileIsAppendedToNeitherTruncatedNorChmodded() throws {
        let tree = try TemporaryTree()
        try tree.write("old.trace", "earlier\n")
        let path = tree.path("old.trace")
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        try append("later\n", to: path)
        try append("last\n", to: path)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "earlier\nlater\nlast\n")
        #expect(try mode(path) == 0o644)
    }

    @Test func aMissingDirectoryIsNoSuchFile() throws {
        let tree = try TemporaryTree()
        #expect(throws: FileSystemError.noSuchFile) { try Syscalls.openForAppending(tree.path("absent/x.trace")) }
    }

    @Test func aDanglingSymbolicLinkIsRefusedAndItsTargetNotCreated() throws {
        let tree = try TemporaryTree()
        let target = tree.path("target.trace")
        try FileManager.default.createSymbolicLink(atPath: tree.path("link.trace"), withDestinationPath: target)
        #expect(throws: FileSystemError.noSuchFile) { try Syscalls.openForAppending(tree.path("link.trace")) }
        #expect(!FileManager.default.fileExists(atPath: target))
    }

    @Test func aSymbolicLinkToAFileIsFollowed() throws {
        let tree = try TemporaryTree()
        try tree.write("real.trace", "a\n")
        try FileManager.default.createSymbolicLink(atPath: tree.path("link.trace"),
                                                   withDestinationPath: tree.path("real.trace"))
        try append("b\n", to: tree.path("link.trace"))
        #expect(try String(contentsOfFile: tree.path("real.trace"), encoding: .utf8) == "a\nb\n")
    }

    @Test func aDirectoryIsRefused() throws {
        let tree = try TemporaryTree()
        try tree.write("dir/file", "x")
        #expect(throws: FileSystemError.errno(EISDIR)) { try Syscalls.openForAppending(tree.path("dir")) }
    }

    @Test func aPathWithANulIsRefused() throws {
        #expect(throws: FileSystemError.invalidArgument) { try Syscalls.openForAppending("/tmp/a\u{0}b") }
    }
}
