// The real thing for the RPC tests: a SoftHSM2 token in a temporary directory, Debian's
// `p11-kit server` serving it on a unix socket, `p11-kit remote` as a spawned command, and
// SoftHSM2 loaded directly in this process to compare answers with.
import CPKCS11
import Foundation
@testable import P11ProxyRPC

let softHSMPath = "/usr/lib/softhsm/libsofthsm2.so"

final class SoftHSMFixture: @unchecked Sendable {
    let directory: String
    let socketPath: String
    private var server: Process?

    /// One token, label "t", user and SO PIN 1234; SOFTHSM2_CONF set for this process and what
    /// it starts (the spawned `p11-kit remote` inherits it).
    init() throws {
        directory = NSTemporaryDirectory() + "p11proxy-rpc-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        socketPath = directory + "/pkcs11.sock"
        try FileManager.default.createDirectory(atPath: directory + "/tokens", withIntermediateDirectories: true)
        let config = "directories.tokendir = \(directory)/tokens\nobjectstore.backend = file\nlog.level = ERROR\n"
        try config.write(toFile: directory + "/softhsm2.conf", atomically: true, encoding: .utf8)
        setenv("SOFTHSM2_CONF", directory + "/softhsm2.conf", 1)
        try Self.run("/usr/bin/softhsm2-util", ["--init-token", "--free", "--label", "t", "--pin", "1234", "--so-pin", "1234"])
    }

    static func run(_ path: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw FixtureError("\(path) exited \(process.terminationStatus)") }
    }

    /// `p11-kit server -f --provider softhsm -n SOCKET pkcs11:`, waited for until the socket exists.
    func startServer() throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/p11-kit")
        process.arguments = ["server", "-f", "--provider", softHSMPath, "-n", socketPath, "pkcs11:"]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        server = process
        for _ in 0..<500 where !FileManager.default.fileExists(atPath: socketPath) { usleep(10_000) }
        guard FileManager.default.fileExists(atPath: socketPath) else { throw FixtureError("p11-kit server did not listen") }
        return "unix:path=" + socketPath
    }

    var remoteCommand: String { "|p11-kit remote " + softHSMPath }

    /// Stops the server; the token directory stays for the other tests of this process.
    func stopServer() {
        if let server, server.isRunning { server.terminate(); server.waitUntilExit() }
        server = nil
        try? FileManager.default.removeItem(atPath: socketPath)
    }
}

struct FixtureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// SoftHSM2 in this process, for answers to compare with.
final class DirectModule: @unchecked Sendable {
    let functions: UnsafeMutablePointer<CK_FUNCTION_LIST>

    init() throws {
        guard let handle = dlopen(softHSMPath, RTLD_NOW | RTLD_LOCAL),
              let symbol = dlsym(handle, "C_GetFunctionList") else { throw FixtureError("cannot load SoftHSM2") }
        let getList = unsafeBitCast(symbol, to: CK_C_GetFunctionList.self)
        var list: UnsafeMutablePointer<CK_FUNCTION_LIST>?
        guard getList(&list) == CK_RV(CKR_OK), let list else { throw FixtureError("C_GetFunctionList failed") }
        functions = list
        let rv = functions.pointee.C_Initialize(nil)
        guard rv == CK_RV(CKR_OK) || rv == CK_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED) else { throw FixtureError("C_Initialize \(rv)") }
    }

    func slots() -> [CK_SLOT_ID] {
        var count: CK_ULONG = 0
        _ = functions.pointee.C_GetSlotList(1, nil, &count)
        var slots = [CK_SLOT_ID](repeating: 0, count: Int(count))
        _ = functions.pointee.C_GetSlotList(1, &slots, &count)
        return Array(slots.prefix(Int(count)))
    }

    func mechanisms(_ slot: CK_SLOT_ID) -> [CK_MECHANISM_TYPE] {
        var count: CK_ULONG = 0
        _ = functions.pointee.C_GetMechanismList(slot, nil, &count)
        var list = [CK_MECHANISM_TYPE](repeating: 0, count: Int(count))
        _ = functions.pointee.C_GetMechanismList(slot, &list, &count)
        return Array(list.prefix(Int(count)))
    }
}

/// The bytes of a fixed-size C text field.
func text<T>(_ field: T) -> String {
    withUnsafeBytes(of: field) { String(decoding: $0, as: UTF8.self) }
}

/// The pids of this process's children, from /proc (to see that spawned servers are reaped).
func childProcesses() -> Set<Int32> {
    var children = Set<Int32>()
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []
    for task in tasks {
        let list = (try? String(contentsOfFile: "/proc/self/task/\(task)/children", encoding: .utf8)) ?? ""
        for pid in list.split(separator: " ").compactMap({ Int32($0) }) { children.insert(pid) }
    }
    return children
}
