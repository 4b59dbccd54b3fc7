// A p11-kit server played by the test on the other end of a socketpair: it answers the version
// byte and C_Initialize properly, then answers each later request with whatever bytes the test
// scripts (malformed frames, wrong ids, lies about lengths) or not at all.
import CPKCS11
import Foundation
@testable import P11ProxyRPC

final class HostilePeer: @unchecked Sendable {
    /// What to do with a request (its frame code and body): bytes to write, then whether to close.
    enum Answer {
        case send([UInt8])
        case sendAndClose([UInt8])
        case silence
    }

    private let lock = NSLock()
    private var received: [(connection: Int, body: [UInt8])] = []
    private var versionsOffered: [UInt8] = []
    private var descriptors: [Int32] = []
    private var connections = 0
    /// The version byte to answer with; nil hangs up instead (an old server).
    let versionAnswer: (Int) -> UInt8?
    let script: (Int, UInt32, [UInt8]) -> Answer

    init(version: @escaping (Int) -> UInt8? = { _ in 0 },
         script: @escaping (_ connection: Int, _ code: UInt32, _ body: [UInt8]) -> Answer) {
        versionAnswer = version
        self.script = script
    }

    deinit { for descriptor in descriptors { close(descriptor) } }

    /// The requests after C_Initialize, in order.
    var requests: [[UInt8]] { lock.lock(); defer { lock.unlock() }; return received.map(\.body) }
    var offered: [UInt8] { lock.lock(); defer { lock.unlock() }; return versionsOffered }
    /// How many connections the module opened.
    var connectionCount: Int { lock.lock(); defer { lock.unlock() }; return connections }

    func module(timeout: Int32 = 400) -> RemoteModule {
        var settings = RemoteSettings()
        settings.callTimeout = timeout
        settings.connectTimeout = timeout
        return RemoteModule(peer: "hostile peer", settings: settings) { () throws(RPCError) -> RPCChannel in
            guard let (ours, theirs) = RPCSyscalls.socketPair() else { throw RPCError(CK_RV(CKR_DEVICE_ERROR), "socketpair") }
            self.lock.lock()
            let index = self.connections
            self.connections += 1
            self.descriptors.append(theirs)
            self.lock.unlock()
            Thread.detachNewThread { self.serve(theirs, connection: index) }
            return RPCChannel(descriptor: ours, peer: "hostile peer")
        }
    }

    private func serve(_ descriptor: Int32, connection: Int) {
        guard let version = readExactly(descriptor, 1) else { return }
        lock.lock(); versionsOffered.append(version[0]); lock.unlock()
        guard let answer = versionAnswer(connection) else { _ = shutdown(descriptor, Int32(SHUT_RDWR)); return }
        writeAll(descriptor, [answer])
        var first = true
        while let (code, body) = readFrame(descriptor) {
            if first {
                first = false
                writeAll(descriptor, frame(code, replyBody(.initialize)))
                continue
            }
            lock.lock(); received.append((connection, body)); lock.unlock()
            switch script(connection, code, body) {
            case .send(let bytes): writeAll(descriptor, bytes)
            case .sendAndClose(let bytes): writeAll(descriptor, bytes); _ = shutdown(descriptor, Int32(SHUT_RDWR)); return
            case .silence: continue
            }
        }
    }

    private func readFrame(_ descriptor: Int32) -> (UInt32, [UInt8])? {
        guard let header = readExactly(descriptor, 12) else { return nil }
        let parsed = FrameHeader(header)
        guard readExactly(descriptor, Int(parsed.optionsLength)) != nil,
              let body = readExactly(descriptor, Int(parsed.bodyLength)) else { return nil }
        return (parsed.code, body)
    }

    private func readExactly(_ descriptor: Int32, _ count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let result = bytes.withUnsafeMutableBytes { read(descriptor, $0.baseAddress! + done, count - done) }
            if result <= 0 { return nil }
            done += result
        }
        return bytes
    }

    private func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) {
        var done = 0
        while done < bytes.count {
            let result = bytes.withUnsafeBytes { send(descriptor, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL)) }
            if result <= 0 { return }
            done += result
        }
    }
}

/// A whole reply frame.
func frame(_ code: UInt32, _ body: [UInt8]) -> [UInt8] {
    FrameHeader.frame(code: code, options: [], body: body)
}
