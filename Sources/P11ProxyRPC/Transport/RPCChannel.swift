// One byte stream to a p11-kit RPC server: a unix socket, or a socketpair whose other end is a
// spawned command's stdin and stdout. It sends frames and reads the replies with a deadline
// (poll), and nothing else: the client above it owns the protocol. A test builds one straight
// from a descriptor and plays a hostile server on the other end.
import CPKCS11
import Glibc

public final class RPCChannel: @unchecked Sendable {
    /// Immutable while the channel lives; closed once by `close`.
    public let descriptor: Int32
    /// The spawned command, 0 for a socket. Reaped by `close`.
    let child: pid_t
    /// Names the peer in messages ("unix:path=/run/x", "|p11-kit remote ...").
    let peer: String
    /// Set by `close`; only the thread holding the client's call lock closes a channel.
    private var isClosed = false

    public init(descriptor: Int32, child: pid_t = 0, peer: String) {
        self.descriptor = descriptor
        self.child = child
        self.peer = peer
    }

    deinit { close() }

    /// Connects or spawns. A server that is not there is CKR_DEVICE_REMOVED, as p11-kit's
    /// rpc_unix_connect answers a failed connect().
    public static func open(_ address: RemoteAddress) throws(RPCError) -> RPCChannel {
        switch address {
        case .unixSocket(let path):
            let (descriptor, error) = RPCSyscalls.connectUnix(path)
            guard descriptor >= 0 else {
                throw RPCError(CK_RV(CKR_DEVICE_REMOVED),
                               "cannot connect to \(address): \(RPCSyscalls.describe(error))")
            }
            return RPCChannel(descriptor: descriptor, peer: address.description)
        case .command(let arguments):
            guard let (ours, theirs) = RPCSyscalls.socketPair() else {
                throw RPCError(CK_RV(CKR_DEVICE_ERROR), "cannot create a socket pair for \(address)")
            }
            let (pid, error) = RPCSyscalls.spawn(arguments, stdio: theirs)
            RPCSyscalls.closeDescriptor(theirs)
            guard pid > 0 else {
                RPCSyscalls.closeDescriptor(ours)
                throw RPCError(CK_RV(CKR_DEVICE_REMOVED), "cannot run \(address): \(RPCSyscalls.describe(error))")
            }
            return RPCChannel(descriptor: ours, child: pid, peer: address.description)
        }
    }

    /// Wakes a thread blocked on this channel (its read fails at once); safe from any thread
    /// while the channel is open.
    public func interrupt() { RPCSyscalls.shutdownBoth(descriptor) }

    /// In a fork child: closes this process's copy of the descriptor and nothing else. The
    /// connection (and a spawned command, which is the parent's child) stays the parent's.
    public func abandonInForkChild() {
        guard !isClosed else { return }
        isClosed = true
        RPCSyscalls.closeDescriptor(descriptor)
    }

    /// Closes the descriptor and reaps the command. Idempotent.
    public func close() {
        guard !isClosed else { return }
        isClosed = true
        RPCSyscalls.closeDescriptor(descriptor)
        if child > 0 { RPCSyscalls.reap(child, graceMilliseconds: 3000) }
    }

    /// The version byte exchange (rpc-transport.c rpc_transport_authenticate): we send the
    /// highest version we speak, the server answers min(ours, its own).
    func handshake(offering version: UInt8, timeout: Int32) throws(RPCError) -> UInt8 {
        let deadline = Deadline(milliseconds: timeout)
        try sendAll([version], deadline)
        let answer = try receiveExactly(1, deadline, what: "the version byte")[0]
        guard answer <= version else { throw .malformed("server answered version \(answer) to \(version)") }
        return answer
    }

    /// Sends one request frame and reads the reply's body. `maximumBody` bounds what a reply
    /// header may announce before anything is allocated for it.
    func exchange(code: UInt32, options: [UInt8], body: [UInt8], timeout: Int32,
                  maximumBody: Int) throws(RPCError) -> [UInt8] {
        let deadline = Deadline(milliseconds: timeout)
        try sendAll(FrameHeader.frame(code: code, options: options, body: body), deadline)
        let header = FrameHeader(try receiveExactly(FrameHeader.size, deadline, what: "a reply"))
        try header.checkReply(to: code, maximumOptions: 4096, maximumBody: maximumBody)
        _ = try receiveExactly(Int(header.optionsLength), deadline, what: "the reply's options")
        return try receiveExactly(Int(header.bodyLength), deadline, what: "the reply's body")
    }

    struct Deadline {
        /// nil: no bound (a blocking C_WaitForSlotEvent).
        let end: Int64?
        init(milliseconds: Int32) {
            end = milliseconds < 0 ? nil : RPCSyscalls.monotonicMilliseconds() + Int64(milliseconds)
        }
        var remaining: Int32 {
            guard let end else { return -1 }
            return Int32(clamping: max(0, end - RPCSyscalls.monotonicMilliseconds()))
        }
        var hasPassed: Bool { end.map { RPCSyscalls.monotonicMilliseconds() >= $0 } ?? false }
    }

    private func lost(_ why: String) -> RPCError {
        RPCError(CK_RV(CKR_DEVICE_ERROR), "connection to \(peer) lost: " + why)
    }

    private func timedOut(_ what: String) -> RPCError {
        RPCError(CK_RV(CKR_DEVICE_ERROR), "no \(what) from \(peer) in time")
    }

    func sendAll(_ bytes: [UInt8], _ deadline: Deadline) throws(RPCError) {
        var sent = 0
        while sent < bytes.count {
            let (ready, error) = RPCSyscalls.wait(descriptor, forWriting: true, milliseconds: deadline.remaining)
            guard ready else { throw error == 0 ? timedOut("room to write") : lost(RPCSyscalls.describe(error)) }
            let count = bytes.withUnsafeBytes { RPCSyscalls.sendSome(descriptor, $0.baseAddress! + sent, bytes.count - sent) }
            if count > 0 {
                sent += count
            } else if count < 0, RPCSyscalls.lastError != EAGAIN, RPCSyscalls.lastError != EINTR {
                throw lost(RPCSyscalls.describe(RPCSyscalls.lastError))
            }
        }
    }

    func receiveExactly(_ count: Int, _ deadline: Deadline, what: String) throws(RPCError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var received = 0
        while received < count {
            let (ready, error) = RPCSyscalls.wait(descriptor, forWriting: false, milliseconds: deadline.remaining)
            guard ready else { throw error == 0 ? timedOut(what) : lost(RPCSyscalls.describe(error)) }
            let result = bytes.withUnsafeMutableBytes {
                RPCSyscalls.receiveSome(descriptor, $0.baseAddress! + received, count - received)
            }
            if result > 0 {
                received += result
            } else if result == 0 {
                throw lost("closed by the server while waiting for \(what)")
            } else if RPCSyscalls.lastError != EAGAIN && RPCSyscalls.lastError != EINTR {
                throw lost(RPCSyscalls.describe(RPCSyscalls.lastError))
            }
        }
        return bytes
    }
}
