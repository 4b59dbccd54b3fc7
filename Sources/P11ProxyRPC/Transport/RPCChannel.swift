// One byte stream to a p11-kit RPC server: a unix socket, or a socketpair whose other end is a
// spawned command's stdin and stdout. It sends frames and reads the replies with a deadline,
// and nothing else: the client above it owns the protocol. A test builds one straight
// from a descriptor and plays a hostile server on the other end.
import CPKCS11
import Glibc

public final class RPCChannel: @unchecked Sendable {
    /// Open for the channel's whole life, closed by deinit: `close` only shuts the connection
    /// down, so a thread still inside a call never reads a descriptor number reused meanwhile.
    public let descriptor: Int32
    /// The spawned command, 0 for a socket. Reaped by `close` (or deinit).
    let child: pid_t
    /// Names the peer in messages ("unix:path=/run/x", "|p11-kit remote ...").
    let peer: String

    // Several threads may have requests in flight, as p11-kit's own client allows
    // (rpc-transport.c unlocks its socket while reading a reply): a request is sent whole under
    // `sendLock` and gets the next ticket; a p11-kit server answers a connection's requests
    // one at a time, in order, so the replies are read in ticket order, each by its own thread.
    // A second thread's request then waits in the socket while the server works on the first,
    // instead of behind a lock in the client.
    private let sendLock = RPCLock()
    /// Tickets handed out; under `sendLock`.
    private var issued: UInt64 = 0
    /// Guards `serving` and `failure`; signalled when either changes.
    private let turns = RPCCondition()
    /// The ticket whose reply is read next.
    private var serving: UInt64 = 0
    /// Why the connection is unusable, once it is; every call in flight and to come fails with it.
    private var failure: RPCError?
    // Who may touch them: the thread whose turn it is (or the handshake, before any ticket).
    private var inbox = Inbox()
    /// SO_RCVTIMEO as last set, in milliseconds; 0: none (wait without bound), -2: not set yet.
    private var receiveTimeout: Int32 = -2
    /// Guards the two below: `close` may run on several threads at once.
    private let closeLock = RPCLock()
    private var childReaped = false
    private var descriptorClosed = false

    public init(descriptor: Int32, child: pid_t = 0, peer: String) {
        self.descriptor = descriptor
        self.child = child
        self.peer = peer
        childReaped = child <= 0
    }

    deinit {
        // No other reference exists: no locks needed.
        if !childReaped { RPCSyscalls.reap(child, graceMilliseconds: 3000) }
        if !descriptorClosed { RPCSyscalls.closeDescriptor(descriptor) }
        inbox.bytes.deallocate()
    }

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

    /// Wakes a thread blocked on this channel (its read fails at once); safe from any thread.
    public func interrupt() { RPCSyscalls.shutdownBoth(descriptor) }

    /// In a fork child: closes this process's copy of the descriptor and nothing else. The
    /// connection (and a spawned command, which is the parent's child) stays the parent's.
    public func abandonInForkChild() {
        guard !descriptorClosed else { return }
        descriptorClosed = true
        childReaped = true
        RPCSyscalls.closeDescriptor(descriptor)
    }

    /// Ends the connection: calls in flight and to come fail, the server sees it closed, and a
    /// spawned command is reaped. Idempotent, from any thread.
    public func close() {
        fail(RPCError(CK_RV(CKR_DEVICE_ERROR), "connection to \(peer) closed"))
        closeLock.withLock {
            guard !childReaped else { return }
            childReaped = true
            RPCSyscalls.reap(child, graceMilliseconds: 3000)
        }
    }

    /// Marks the connection unusable (the first reason stays), wakes every thread waiting for
    /// its turn, and shuts the socket down so that one blocked in send or recv wakes too.
    private func fail(_ error: RPCError) {
        let first: Bool = turns.withLock {
            guard failure == nil else { return false }
            failure = error
            turns.broadcast()
            return true
        }
        if first { RPCSyscalls.shutdownBoth(descriptor) }
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

    /// Sends one request frame and reads the reply's body; any number of threads at once.
    /// `maximumBody` bounds what a reply header may announce before anything is allocated for
    /// it. Any failure here leaves the connection unusable (the stream's place is lost).
    func exchange(code: UInt32, options: [UInt8], body: [UInt8], timeout: Int32,
                  maximumBody: Int) throws(RPCError) -> [UInt8] {
        let deadline = Deadline(milliseconds: timeout)
        let ticket = try send(FrameHeader.frame(code: code, options: options, body: body), deadline)
        try awaitTurn(ticket, deadline)
        do throws(RPCError) {
            let header = FrameHeader(try receiveExactly(FrameHeader.size, deadline, what: "a reply"))
            try header.checkReply(to: code, maximumOptions: 4096, maximumBody: maximumBody)
            _ = try receiveExactly(Int(header.optionsLength), deadline, what: "the reply's options")
            let reply = try receiveExactly(Int(header.bodyLength), deadline, what: "the reply's body")
            turns.withLock {
                serving += 1
                turns.broadcast()
            }
            return reply
        } catch {
            fail(error)
            throw error
        }
    }

    /// Sends the frame whole and returns its ticket.
    private func send(_ frame: [UInt8], _ deadline: Deadline) throws(RPCError) -> UInt64 {
        sendLock.lock()
        defer { sendLock.unlock() }
        if let failure = turns.withLock({ failure }) { throw failure }
        do throws(RPCError) {
            // The header in a write of its own, then the rest, as p11-kit's client writes a
            // frame: the server reads the header first, and on a virtual machine whose idle
            // CPUs sleep (haltpoll), a server woken by the header while the rest is on its way
            // answered sooner: 27 us a C_GetSessionInfo against 38 us for the frame in one
            // write, client and server on different CPUs; on one CPU, within 1 us either way.
            try sendAll(frame, upTo: FrameHeader.size, deadline)
            try sendAll(frame, from: FrameHeader.size, deadline)
        } catch {
            fail(error)
            throw error
        }
        issued += 1
        return issued - 1
    }

    /// Until every earlier request's reply has been read. A reply that never comes fails the
    /// connection for every waiter at the deadline.
    private func awaitTurn(_ ticket: UInt64, _ deadline: Deadline) throws(RPCError) {
        let stopped: RPCError? = turns.withLock {
            while serving != ticket && failure == nil {
                if !turns.wait(until: deadline.end) { return timedOut("reply to an earlier request") }
            }
            return failure
        }
        guard let stopped else { return }
        fail(stopped)
        throw stopped
    }

    struct Deadline {
        /// nil: no bound (a blocking C_WaitForSlotEvent).
        let end: Int64?
        init(milliseconds: Int32) {
            end = milliseconds < 0 ? nil : RPCSyscalls.monotonicMilliseconds() + Int64(milliseconds)
            total = milliseconds < 0 ? 0 : max(milliseconds, 1)
        }
        var remaining: Int32 {
            guard let end else { return -1 }
            return Int32(clamping: max(0, end - RPCSyscalls.monotonicMilliseconds()))
        }
        var hasPassed: Bool { end.map { RPCSyscalls.monotonicMilliseconds() >= $0 } ?? false }
        /// The whole allowance in milliseconds, 0 for none (SO_RCVTIMEO's "no timeout").
        let total: Int32
    }

    private func lost(_ why: String) -> RPCError {
        RPCError(CK_RV(CKR_DEVICE_ERROR), "connection to \(peer) lost: " + why)
    }

    private func timedOut(_ what: String) -> RPCError {
        RPCError(CK_RV(CKR_DEVICE_ERROR), "no \(what) from \(peer) in time")
    }

    /// Sends at once, and waits for room only when the socket's buffer is full: a request
    /// frame almost always fits, and a poll(2) before each send was one system call in six of a
    /// call's cost.
    func sendAll(_ bytes: [UInt8], from start: Int = 0, upTo end: Int? = nil, _ deadline: Deadline) throws(RPCError) {
        let end = min(end ?? bytes.count, bytes.count)
        var sent = start
        while sent < end {
            let count = bytes.withUnsafeBytes { RPCSyscalls.sendSome(descriptor, $0.baseAddress! + sent, end - sent) }
            if count > 0 {
                sent += count
                continue
            }
            let error = RPCSyscalls.lastError
            guard count < 0, error == EAGAIN || error == EINTR else { throw lost(RPCSyscalls.describe(error)) }
            let (ready, waitError) = RPCSyscalls.wait(descriptor, forWriting: true, milliseconds: deadline.remaining)
            guard ready else { throw waitError == 0 ? timedOut("room to write") : lost(RPCSyscalls.describe(waitError)) }
        }
    }

    /// `count` bytes of the stream, from what an earlier receive already brought in first.
    func receiveExactly(_ count: Int, _ deadline: Deadline, what: String) throws(RPCError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var received = 0
        while received < count {
            if inbox.start == inbox.end { try fillInbox(deadline, what: what) }
            let take = min(count - received, inbox.end - inbox.start)
            bytes.withUnsafeMutableBytes {
                ($0.baseAddress! + received).copyMemory(from: inbox.bytes + inbox.start, byteCount: take)
            }
            inbox.start += take
            received += take
        }
        return bytes
    }

    /// One blocking recv(2) of whatever has arrived, up to the inbox's size: a reply's header
    /// and body usually come in one. The wait is bounded by SO_RCVTIMEO (set to the call's
    /// timeout, again only when that changes) rather than a poll(2) before every read; the
    /// deadline is checked after each wake, so a server that trickles bytes still times out.
    private func fillInbox(_ deadline: Deadline, what: String) throws(RPCError) {
        let timeout = deadline.total
        if timeout != receiveTimeout {
            guard RPCSyscalls.setReceiveTimeout(descriptor, milliseconds: timeout) else {
                throw lost("cannot set a receive timeout: \(RPCSyscalls.describe(RPCSyscalls.lastError))")
            }
            receiveTimeout = timeout
        }
        while true {
            let result = RPCSyscalls.receiveWaiting(descriptor, inbox.bytes, Inbox.size)
            if result > 0 {
                inbox.start = 0
                inbox.end = result
                return
            }
            if result == 0 { throw lost("closed by the server while waiting for \(what)") }
            let error = RPCSyscalls.lastError
            guard error == EAGAIN || error == EINTR else { throw lost(RPCSyscalls.describe(error)) }
            if deadline.hasPassed { throw timedOut(what) }
        }
    }
}

/// Received bytes not yet read, `start..<end` of `bytes`.
struct Inbox {
    static let size = 16 * 1024
    let bytes = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 8)
    var start = 0
    var end = 0
}
