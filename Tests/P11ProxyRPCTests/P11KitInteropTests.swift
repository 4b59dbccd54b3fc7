// RemoteModule against Debian's own p11-kit 0.24.1: `p11-kit server` on a unix socket and
// `|p11-kit remote` spawned, both serving a SoftHSM2 token made in a temporary directory. Every
// answer that SoftHSM2 gives the same way locally is compared with SoftHSM2 loaded directly.
import CPKCS11
import Foundation
import Testing
@testable import P11ProxyRPC

/// One token for the whole suite: SoftHSM2 reads SOFTHSM2_CONF once per process.
let sharedFixture: Result<(SoftHSMFixture, DirectModule), any Error> = Result {
    let fixture = try SoftHSMFixture()
    return (fixture, try DirectModule())
}

let ok = CK_RV(CKR_OK)

@Suite(.serialized) struct P11KitInteropTests {
    @Test func throughP11KitServerOnAUnixSocket() throws {
        let (fixture, direct) = try sharedFixture.get()
        let address = try fixture.startServer()
        defer { fixture.stopServer() }
        let module = try RemoteModule(remote: address)
        try exercise(module, direct: direct, sameSlotIDs: false)
    }

    @Test func throughASpawnedP11KitRemote() throws {
        let (fixture, direct) = try sharedFixture.get()
        let before = childProcesses()
        let module = try RemoteModule(remote: fixture.remoteCommand)
        try exercise(module, direct: direct, sameSlotIDs: true)
        // Reaped at C_Finalize: no child of ours is left, zombie or not.
        #expect(childProcesses().subtracting(before).isEmpty)
    }

    @Test func noServerNamesTheAddress() throws {
        let module = try RemoteModule(remote: "unix:path=/nonexistent/p11proxy-test.sock")
        #expect(module.C_Initialize(nil) == CK_RV(CKR_DEVICE_REMOVED))
        #expect(module.lastErrorMessage.contains("/nonexistent/p11proxy-test.sock"))
        var info = CK_INFO()
        #expect(module.C_GetInfo(&info) == CK_RV(CKR_CRYPTOKI_NOT_INITIALIZED))
        let missing = try RemoteModule(remote: "|/nonexistent/p11-kit-remote")
        #expect(missing.C_Initialize(nil) == CK_RV(CKR_DEVICE_REMOVED))
        #expect(missing.lastErrorMessage.contains("/nonexistent/p11-kit-remote"))
    }

    @Test func serverKilledMidUseFailsFastAndIsReaped() throws {
        let (fixture, _) = try sharedFixture.get()
        let before = childProcesses()
        var settings = RemoteSettings()
        settings.callTimeout = 5000
        let module = try RemoteModule(remote: fixture.remoteCommand, settings: settings)
        #expect(module.C_Initialize(nil) == ok)
        let spawned = childProcesses().subtracting(before)
        #expect(spawned.count == 1)
        for pid in spawned { kill(pid, SIGKILL) }
        usleep(100_000)
        let start = Date()
        var info = CK_INFO()
        #expect(module.C_GetInfo(&info) == CK_RV(CKR_DEVICE_ERROR))
        #expect(module.C_GetInfo(&info) == CK_RV(CKR_DEVICE_ERROR), "no reconnect until C_Initialize")
        #expect(Date().timeIntervalSince(start) < 2)
        #expect(!module.lastErrorMessage.isEmpty)
        #expect(module.C_Finalize(nil) == ok)
        #expect(childProcesses().subtracting(before).isEmpty)
        // And a fresh C_Initialize connects again.
        #expect(module.C_Initialize(nil) == ok)
        #expect(module.C_GetInfo(&info) == ok)
        #expect(module.C_Finalize(nil) == ok)
    }

    @Test func concurrentCallersShareOneConnection() throws {
        let (fixture, _) = try sharedFixture.get()
        let module = try RemoteModule(remote: fixture.remoteCommand)
        #expect(module.C_Initialize(nil) == ok)
        defer { _ = module.C_Finalize(nil) }
        let slot = firstSlot(module)
        let failures = ManagedCounter()
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            var session: CK_SESSION_HANDLE = 0
            guard module.C_OpenSession(slot, CK_FLAGS(CKF_SERIAL_SESSION), nil, nil, &session) == ok else { return failures.add() }
            for _ in 0..<40 {
                var random = [UInt8](repeating: 0, count: 16)
                if module.C_GenerateRandom(session, &random, 16) != ok { failures.add() }
                if sha256(module, session, Array("abc".utf8)) != abcDigest { failures.add() }
            }
            if module.C_CloseSession(session) != ok { failures.add() }
        }
        #expect(failures.value == 0)
    }

    @Test func blockingWaitDoesNotBlockOtherCallsAndFinalizeWakesIt() throws {
        let (fixture, _) = try sharedFixture.get()
        let module = try RemoteModule(remote: fixture.remoteCommand)
        #expect(module.C_Initialize(nil) == ok)
        // SoftHSM2 answers C_WaitForSlotEvent at once (not supported), blocking or not; what
        // matters is that it travels on its own connection and the main one stays usable.
        var slot: CK_SLOT_ID = 0
        let waited = module.C_WaitForSlotEvent(0, &slot, nil)
        #expect(waited == CK_RV(CKR_FUNCTION_NOT_SUPPORTED))
        var info = CK_INFO()
        #expect(module.C_GetInfo(&info) == ok)
        #expect(module.C_WaitForSlotEvent(CK_FLAGS(CKF_DONT_BLOCK), &slot, nil) == CK_RV(CKR_NO_EVENT))
        #expect(module.C_Finalize(nil) == ok)
    }
}

final class ManagedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}

let abcDigest = hex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")

func sha256(_ module: RemoteModule, _ session: CK_SESSION_HANDLE, _ data: [UInt8]) -> [UInt8] {
    var mechanism = CK_MECHANISM(mechanism: CK_ULONG(CKM_SHA256), pParameter: nil, ulParameterLen: 0)
    guard module.C_DigestInit(session, &mechanism) == ok else { return [] }
    var input = data
    var output = [UInt8](repeating: 0, count: 32)
    var length: CK_ULONG = 32
    guard module.C_Digest(session, &input, CK_ULONG(input.count), &output, &length) == ok else { return [] }
    return Array(output.prefix(Int(length)))
}

func firstSlot(_ module: RemoteModule) -> CK_SLOT_ID {
    var count: CK_ULONG = 0
    _ = module.C_GetSlotList(1, nil, &count)
    var slots = [CK_SLOT_ID](repeating: 0, count: Int(count))
    _ = module.C_GetSlotList(1, &slots, &count)
    return slots.first ?? CK_SLOT_ID.max
}
