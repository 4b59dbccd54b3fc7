// Servers that lie, stall or vanish: each fault is CKR_DEVICE_ERROR (or the fault's own code)
// within the call timeout, never a crash, a hang or a write past the caller's buffer, and the
// connection is closed behind it.
import CPKCS11
import Foundation
import Testing
@testable import P11ProxyRPC

@Suite struct HostilePeerTests {
    /// Initialises against `peer`, makes one C_GetInfo and returns its code and duration.
    func getInfo(_ peer: HostilePeer, timeout: Int32 = 400) -> (rv: CK_RV, seconds: Double, module: RemoteModule) {
        let module = peer.module(timeout: timeout)
        #expect(module.C_Initialize(nil) == ok)
        var info = CK_INFO()
        let start = Date()
        let rv = module.C_GetInfo(&info)
        return (rv, Date().timeIntervalSince(start), module)
    }

    @Test func truncatedFrameThenClose() {
        let peer = HostilePeer { _, code, _ in .sendAndClose(Array(frame(code, replyBody(.getInfo, [1, 2]) + [UInt8](repeating: 0, count: 80)).prefix(30))) }
        let result = getInfo(peer)
        #expect(result.rv == deviceError && result.seconds < 1)
        var info = CK_INFO()
        #expect(result.module.C_GetInfo(&info) == deviceError, "the connection stays closed")
        #expect(result.module.lastErrorMessage.contains("hostile peer"))
        #expect(result.module.C_Finalize(nil) == ok)
    }

    @Test func truncatedFrameThenSilenceTimesOut() {
        let peer = HostilePeer { _, code, _ in .send(Array(frame(code, replyBody(.getInfo)).prefix(14))) }
        let result = getInfo(peer, timeout: 300)
        #expect(result.rv == deviceError)
        #expect(result.seconds >= 0.25 && result.seconds < 3)
    }

    @Test func neverAnsweringTimesOut() {
        let peer = HostilePeer { _, _, _ in .silence }
        let result = getInfo(peer, timeout: 300)
        #expect(result.rv == deviceError)
        #expect(result.seconds >= 0.25 && result.seconds < 3)
        #expect(result.module.lastErrorMessage.contains("in time"))
        let start = Date()
        var info = CK_INFO()
        #expect(result.module.C_GetInfo(&info) == deviceError)
        #expect(Date().timeIntervalSince(start) < 0.1, "no second wait on a dead connection")
    }

    @Test func hugeLengthsAreRefusedBeforeAllocating() {
        let peer = HostilePeer { _, code, _ in .send(u32(code) + u32(0) + u32(0xFFFF_FFF0)) }
        #expect(getInfo(peer).rv == deviceError)
        let options = HostilePeer { _, code, _ in .send(u32(code) + u32(0x7FFF_FFFF) + u32(16)) }
        #expect(getInfo(options).rv == deviceError)
        let inner = HostilePeer { _, code, _ in .send(frame(code, replyBody(.getInfo, hex("0203 FFFFFF00")))) }
        #expect(getInfo(inner).rv == deviceError)
    }

    @Test func wrongFrameCodeCallIdOrSignature() {
        let code = HostilePeer { _, code, _ in .send(frame(code + 1, replyBody(.getInfo))) }
        #expect(getInfo(code).rv == deviceError)
        let id = HostilePeer { _, code, _ in .send(frame(code, replyBody(.getSlotList, hex("00 00000000")))) }
        #expect(getInfo(id).rv == deviceError)
        let signature = HostilePeer { _, code, _ in .send(frame(code, u32(3) + array(Array("vsusu".utf8)))) }
        #expect(getInfo(signature).rv == deviceError)
        let empty = HostilePeer { _, code, _ in .send(frame(code, [])) }
        #expect(getInfo(empty).rv == deviceError)
    }

    @Test func errorRepliesPassTheCodeAndKeepTheConnection() {
        let peer = HostilePeer { _, code, _ in .send(frame(code, hex("00000000 00000001 'u'") + u64(UInt64(CKR_TOKEN_NOT_PRESENT)))) }
        let result = getInfo(peer)
        #expect(result.rv == CK_RV(CKR_TOKEN_NOT_PRESENT))
        var info = CK_INFO()
        #expect(result.module.C_GetInfo(&info) == CK_RV(CKR_TOKEN_NOT_PRESENT))
    }

    @Test func attributeLengthThatLiesNeverReachesTheCallersBuffer() {
        let lie = hex("00000001 00000003 01 00000002 00000010") + [UInt8](repeating: 0x41, count: 16) + u64(0)
        let peer = HostilePeer { _, code, _ in .send(frame(code, replyBody(.getAttributeValue, lie))) }
        let module = peer.module()
        #expect(module.C_Initialize(nil) == ok)
        var buffer = [UInt8](repeating: 0xEE, count: 4)
        let rv = buffer.withUnsafeMutableBytes { raw in
            var template = [CK_ATTRIBUTE(type: CK_ULONG(CKA_LABEL), pValue: raw.baseAddress, ulValueLen: 2)]
            return module.C_GetAttributeValue(1, 2, &template, 1)
        }
        #expect(rv == deviceError)
        #expect(buffer == [0xEE, 0xEE, 0xEE, 0xEE])
    }

    @Test func moreOutputThanTheBufferIsNeverWritten() {
        let peer = HostilePeer { _, code, body in
            // C_Sign answered with 64 bytes whatever the capacity; C_FindObjects with 5 handles.
            if body.starts(with: u32(RPCCall.sign.id)) {
                return .send(frame(code, replyBody(.sign, hex("01") + array([UInt8](repeating: 0x41, count: 64)))))
            }
            return .send(frame(code, replyBody(.findObjects, hex("01 00000005") + u64(1) + u64(2) + u64(3) + u64(4) + u64(5))))
        }
        let module = peer.module()
        #expect(module.C_Initialize(nil) == ok)
        var data: [UInt8] = [1, 2, 3]
        var signature = [UInt8](repeating: 0xEE, count: 8)
        var length: CK_ULONG = 4
        #expect(module.C_Sign(1, &data, 3, &signature, &length) == CK_RV(CKR_BUFFER_TOO_SMALL))
        #expect(length == 64 && signature.allSatisfy { $0 == 0xEE })
        var handles: [CK_OBJECT_HANDLE] = [0, 0, 0, 0xEE]
        var found: CK_ULONG = 0
        #expect(module.C_FindObjects(1, &handles, 3, &found) == deviceError)
        #expect(handles == [0, 0, 0, 0xEE])
    }

    @Test func handshakeFaults() {
        let tooNew = HostilePeer(version: { _ in 7 }) { _, _, _ in .silence }
        let module = tooNew.module()
        #expect(module.C_Initialize(nil) == deviceError)
        #expect(module.negotiatedVersion == nil)
        // A server older than 0.24.1 hangs up on a version byte other than 0: connect again with 0.
        let old = HostilePeer(version: { $0 == 0 ? nil : 0 }) { _, code, _ in
            .send(frame(code, replyBody(.getInfo, hex("0228") + array([UInt8](repeating: 0x20, count: 32)) + u64(0)
                                           + array([UInt8](repeating: 0x20, count: 32)) + hex("0001"))))
        }
        let retried = old.module()
        #expect(retried.C_Initialize(nil) == ok)
        #expect(old.offered == [RPCProtocolVersion.newest, 0])
        #expect(retried.negotiatedVersion == 0)
        var info = CK_INFO()
        #expect(retried.C_GetInfo(&info) == ok && info.cryptokiVersion.minor == 0x28)
        #expect(retried.C_Finalize(nil) == ok)
    }

    @Test func callsAndFormatsFollowTheNegotiatedVersion() {
        for version: UInt8 in [0, 1, 2] {
            let peer = HostilePeer(version: { _ in version }) { _, code, body in
                let id = Array(body.prefix(4))
                if id == u32(RPCCall.loginUser.id) { return .send(frame(code, replyBody(.loginUser))) }
                return .send(frame(code, replyBody(.signInit)))
            }
            let module = peer.module()
            #expect(module.C_Initialize(nil) == ok)
            #expect(module.negotiatedVersion == version)
            var pin: [UInt8] = Array("1234".utf8)
            let loginUser = module.C_LoginUser(1, CK_ULONG(CKU_USER), &pin, 4, nil, 0)
            #expect(loginUser == (version == 0 ? CK_RV(CKR_FUNCTION_NOT_SUPPORTED) : ok))
            var mechanism = CK_MECHANISM(mechanism: CK_ULONG(CKM_SHA256_RSA_PKCS), pParameter: nil, ulParameterLen: 0)
            #expect(module.C_SignInit(1, &mechanism, 2) == ok)
            let signInit = peer.requests.last ?? []
            let mechanismBytes = Array(signInit.dropFirst(4 + 4 + 3 + 8).dropLast(8))
            #expect(mechanismBytes == (version == 0 ? hex("00000040 FFFFFFFF") : hex("00000040")))
            #expect(peer.requests.count == (version == 0 ? 1 : 2), "nothing sent for an unknown call")
            #expect(module.C_Finalize(nil) == ok)
        }
    }

    @Test func finalizeWakesABlockingWaitWhileOtherCallsGoOn() throws {
        let peer = HostilePeer { connection, code, body in
            if body.starts(with: u32(RPCCall.waitForSlotEvent.id)) { return .silence }
            return .send(frame(code, replyBody(.getSessionInfo, u64(1) + u64(2) + u64(3) + u64(0))))
        }
        let module = peer.module(timeout: 5000)
        #expect(module.C_Initialize(nil) == ok)
        let waiter = WaitResult()
        Thread.detachNewThread {
            var slot: CK_SLOT_ID = 0
            waiter.set(module.C_WaitForSlotEvent(0, &slot, nil))
        }
        usleep(200_000)
        var info = CK_SESSION_INFO()
        #expect(module.C_GetSessionInfo(1, &info) == ok, "the main connection is free while the wait blocks")
        #expect(waiter.value == nil)
        let start = Date()
        #expect(module.C_Finalize(nil) == ok)
        for _ in 0..<200 where waiter.value == nil { usleep(10_000) }
        #expect(waiter.value == CK_RV(CKR_CRYPTOKI_NOT_INITIALIZED))
        #expect(Date().timeIntervalSince(start) < 2)
    }

    @Test func aSecondThreadsRequestGoesOutWhileTheFirstWaitsForItsReply() {
        // The server answers the first request only once the second has arrived, then both in
        // order: a client that held its connection for a whole exchange would never send the
        // second, and the first would time out.
        let held = FirstCode()
        let reply: (UInt32, UInt64) -> [UInt8] = { code, slot in
            frame(code, replyBody(.getSessionInfo, u64(slot) + u64(2) + u64(3) + u64(0)))
        }
        let peer = HostilePeer { _, code, _ in
            guard let first = held.keepOrTake(code) else { return .silence }
            return .send(reply(first, 7) + reply(code, 8))
        }
        let module = peer.module(timeout: 3000)
        #expect(module.C_Initialize(nil) == ok)
        let firstResult = WaitResult()
        let firstSlot = WaitResult()
        Thread.detachNewThread {
            var info = CK_SESSION_INFO()
            let rv = module.C_GetSessionInfo(1, &info)
            firstSlot.set(info.slotID)
            firstResult.set(rv)
        }
        for _ in 0..<500 where peer.requests.isEmpty { usleep(2_000) }
        #expect(peer.requests.count == 1, "the first request reached the server")
        var info = CK_SESSION_INFO()
        let start = Date()
        #expect(module.C_GetSessionInfo(2, &info) == ok)
        #expect(info.slotID == 8, "each thread reads its own reply")
        #expect(Date().timeIntervalSince(start) < 1)
        for _ in 0..<300 where firstResult.value == nil { usleep(10_000) }
        #expect(firstResult.value == ok)
        #expect(firstSlot.value == 7)
        #expect(module.C_Finalize(nil) == ok)
    }

    @Test func aLostConnectionRefusesLaterBlockingWaitsWithoutConnecting() {
        // Every call fails at once until C_Finalize and C_Initialize, the blocking wait too: it
        // must not open a connection of its own (to a server perhaps restarted meanwhile).
        let peer = HostilePeer { _, code, _ in .sendAndClose(Array(frame(code, replyBody(.getInfo)).prefix(14))) }
        let module = peer.module(timeout: 2000)
        #expect(module.C_Initialize(nil) == ok)
        var info = CK_INFO()
        #expect(module.C_GetInfo(&info) == deviceError)
        var slot: CK_SLOT_ID = 0
        #expect(module.C_WaitForSlotEvent(0, &slot, nil) == deviceError)
        #expect(peer.connectionCount == 1, "no connection for the wait")
        #expect(module.C_Finalize(nil) == ok)
    }

    @Test func aLostWaitConnectionLosesTheModule() {
        // The wait's connection (the second) is closed under it: the module is lost as a whole,
        // as p11-kit's client with its one connection, so neither the next wait nor the next
        // call goes out, until C_Finalize and C_Initialize.
        let peer = HostilePeer { connection, code, _ in
            if connection == 1 { return .sendAndClose([]) }
            return .send(frame(code, replyBody(.getSessionInfo, u64(1) + u64(2) + u64(3) + u64(0))))
        }
        let module = peer.module(timeout: 2000)
        #expect(module.C_Initialize(nil) == ok)
        var info = CK_SESSION_INFO()
        #expect(module.C_GetSessionInfo(1, &info) == ok)
        var slot: CK_SLOT_ID = 0
        #expect(module.C_WaitForSlotEvent(0, &slot, nil) == deviceError)
        let sent = peer.requests.count
        #expect(module.C_WaitForSlotEvent(0, &slot, nil) == deviceError)
        #expect(module.C_GetSessionInfo(1, &info) == deviceError)
        #expect(peer.requests.count == sent && peer.connectionCount == 2, "nothing sent, no new connection")
        #expect(module.lastErrorMessage.contains("C_WaitForSlotEvent"))
        #expect(module.C_Finalize(nil) == ok)
        #expect(module.C_Initialize(nil) == ok)
        #expect(module.C_GetSessionInfo(1, &info) == ok, "back after C_Finalize and C_Initialize")
        #expect(module.C_Finalize(nil) == ok)
    }

    @Test func aWaitConnectionThatCannotOpenWhileTheServerIsGoneLosesTheModule() {
        // The server killed while the wait's connection is being set up (it hangs up at the
        // version byte), the main connection gone with it: lost as a whole, so the next wait does
        // not connect (to a server perhaps restarted meanwhile) and block there.
        let peer = HostilePeer(version: { connection in connection == 1 ? nil : 0 }) { _, _, _ in .sendAndClose([]) }
        let module = peer.module(timeout: 2000)
        #expect(module.C_Initialize(nil) == ok)
        var slot: CK_SLOT_ID = 0
        #expect(module.C_WaitForSlotEvent(0, &slot, nil) == deviceError)
        #expect(module.C_WaitForSlotEvent(0, &slot, nil) == deviceError)
        var info = CK_SESSION_INFO()
        #expect(module.C_GetSessionInfo(1, &info) == deviceError)
        #expect(peer.connectionCount == 2, "no connection after the failed one")
        #expect(module.C_Finalize(nil) == ok)
    }

    @Test func aWaitConnectionThatCannotOpenWhileTheServerAnswersKeepsTheModule() {
        // Only the new connection failed; the main one still answers: that wait fails, the module
        // stays, and the next wait tries again.
        let text = array([UInt8](repeating: 0x20, count: 32))
        let info = [2, 40] + text + u64(0) + text + [1, 0]
        let peer = HostilePeer(version: { connection in connection == 1 ? nil : 0 }) { _, code, body in
            if body.starts(with: u32(RPCCall.getInfo.id)) { return .send(frame(code, replyBody(.getInfo, info))) }
            if body.starts(with: u32(RPCCall.waitForSlotEvent.id)) { return .send(frame(code, replyBody(.waitForSlotEvent, u64(5)))) }
            return .send(frame(code, replyBody(.getSessionInfo, u64(1) + u64(2) + u64(3) + u64(0))))
        }
        let module = peer.module(timeout: 2000)
        #expect(module.C_Initialize(nil) == ok)
        var slot: CK_SLOT_ID = 0
        #expect(module.C_WaitForSlotEvent(0, &slot, nil) == deviceError)
        var sessionInfo = CK_SESSION_INFO()
        #expect(module.C_GetSessionInfo(1, &sessionInfo) == ok, "the module is not lost")
        #expect(module.C_WaitForSlotEvent(0, &slot, nil) == ok && slot == 5, "the next wait connects and waits")
        #expect(peer.connectionCount == 3)
        #expect(module.C_Finalize(nil) == ok)
    }
}

/// The first frame code it is given; later calls answer that code.
final class FirstCode: @unchecked Sendable {
    private let lock = NSLock()
    private var code: UInt32?
    func keepOrTake(_ new: UInt32) -> UInt32? {
        lock.lock(); defer { lock.unlock() }
        if let code { return code }
        code = new
        return nil
    }
}

final class WaitResult: @unchecked Sendable {
    private let lock = NSLock()
    private var result: CK_RV?
    func set(_ value: CK_RV) { lock.lock(); result = value; lock.unlock() }
    var value: CK_RV? { lock.lock(); defer { lock.unlock() }; return result }
}
