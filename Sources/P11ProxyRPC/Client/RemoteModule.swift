// One connection to a p11-kit RPC server, looking like a module: a method per PKCS#11 function
// with the C argument types, returning CK_RV, with a local module's buffer conventions. The
// per-function methods are in RemoteModule+Functions.swift; here are the connection's life
// (C_Initialize connects, handshakes and sends the protocol's C_Initialize; C_Finalize closes),
// the call path and the blocking C_WaitForSlotEvent.
//
// Threads: any number may call at once, and have requests in flight together on the main
// connection (RPCChannel sends them in turn and reads the replies in the same order: a p11-kit
// server answers one request at a time per connection, rpc-server.c p11_rpc_server_handle).
// `callLock` guards the connection's state, not the exchange. A blocking C_WaitForSlotEvent
// would keep the server from every later request for as long as it waits (p11-kit's own
// client does exactly that), so it gets a second connection of its own, opened on first use;
// CKF_DONT_BLOCK waits use the main one. The two connections are one module: when either is
// lost, so is the module, until C_Finalize and C_Initialize (p11-kit's client, with its one
// connection, loses everything at once too).
//
// Lock order: callLock, then waitLock, then stateLock; the waiting thread holds waitLock only.
import CPKCS11

public final class RemoteModule: @unchecked Sendable {
    public let settings: RemoteSettings
    /// The address in words, for messages and `p11proxy list`.
    public let peer: String
    private let connector: () throws(RPCError) -> RPCChannel

    /// Guards channel, version and nextCode; held while they are read or changed, and across
    /// C_Initialize and C_Finalize.
    private let callLock = RPCLock()
    private var channel: RPCChannel?
    private var version: UInt8 = 0
    private var nextCode: UInt32 = 0x10

    /// Guards waitChannel: one blocking wait at a time.
    private let waitLock = RPCLock()
    private var waitChannel: RPCChannel?

    /// Guards initialized, negotiated, finalizing, waiting, broken and lastError; held only briefly.
    private let stateLock = RPCLock()
    private var initialized = false
    /// `version` for the waiting thread, which may not take callLock.
    private var negotiated: UInt8 = 0
    private var finalizing = false
    private var waiting: RPCChannel?
    /// Why a connection (the main one or the wait's) was closed while initialised; later calls,
    /// waits included, report it. Here, not under callLock, so that the waiting thread reads and
    /// sets it too.
    private var broken: RPCError?
    private var lastError = ""

    /// A module for a `remote:` value ("unix:path=/abs" or "|command args").
    public convenience init(remote: String, settings: RemoteSettings = RemoteSettings()) throws(RPCError) {
        self.init(address: try RemoteAddress(parsing: remote), settings: settings)
    }

    public convenience init(address: RemoteAddress, settings: RemoteSettings = RemoteSettings()) {
        self.init(peer: address.description, settings: settings) { () throws(RPCError) -> RPCChannel in
            try RPCChannel.open(address)
        }
    }

    /// Any channel source: tests hand in one end of a socketpair and play the server.
    public init(peer: String, settings: RemoteSettings = RemoteSettings(),
                connector: @escaping () throws(RPCError) -> RPCChannel) {
        self.peer = peer
        self.settings = settings
        self.connector = connector
    }

    deinit {
        channel?.close()
        waitChannel?.close()
    }

    /// The protocol version the server answered, nil while not initialised.
    public var negotiatedVersion: UInt8? {
        stateLock.withLock { initialized ? negotiated : nil }
    }

    /// Why the last call failed in a way a caller may want to print (cannot connect, connection
    /// lost, malformed reply, timeout); empty if none did.
    public var lastErrorMessage: String { stateLock.withLock { lastError } }

    /// The server's CK_INFO (its module's, through `p11-kit remote`), for `p11proxy list`.
    public func serverInfo() -> Result<CK_INFO, RPCError> {
        perform(.getInfo, encode: { _, _ in }, decode: { (reply) throws(RPCError) in try reply.info() })
    }

    // MARK: - Life

    private static let handshake: [UInt8] = Array("PRIVATE-GNOME-KEYRING-PKCS11-PROTOCOL-V-1".utf8)

    public func C_Initialize(_ pInitArgs: UnsafeMutableRawPointer?) -> CK_RV {
        var reserved = settings.initReserved.map { Array($0.utf8) }
        if let pInitArgs {
            let arguments = pInitArgs.load(as: CK_C_INITIALIZE_ARGS.self)
            let callbacks = [arguments.CreateMutex != nil, arguments.DestroyMutex != nil,
                             arguments.LockMutex != nil, arguments.UnlockMutex != nil]
            if callbacks.contains(true) && callbacks.contains(false) { return CK_RV(CKR_ARGUMENTS_BAD) }
            // We lock with pthreads; application-supplied mutexes only (PKCS#11 2.40 section 5.4).
            if callbacks.contains(true) && arguments.flags & CK_FLAGS(CKF_OS_LOCKING_OK) == 0 { return CK_RV(CKR_CANT_LOCK) }
            // p11-kit passes a module's x-init-reserved as pReserved; so may our caller.
            if reserved == nil, let string = arguments.pReserved {
                reserved = Array(UnsafeBufferPointer(start: string.assumingMemoryBound(to: UInt8.self),
                                                     count: Int(strlenBytes(string))))
            }
        }
        callLock.lock()
        defer { callLock.unlock() }
        if stateLock.withLock({ initialized }) { return CK_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED) }
        do {
            let (opened, answered) = try connect(reserved: reserved)
            channel = opened
            version = answered
            stateLock.withLock { initialized = true; negotiated = answered; broken = nil; lastError = "" }
            return CK_RV(CKR_OK)
        } catch {
            return record(error)
        }
    }

    public func C_Finalize(_ pReserved: UnsafeMutableRawPointer?) -> CK_RV {
        guard pReserved == nil else { return CK_RV(CKR_ARGUMENTS_BAD) }
        // Wake a blocking C_WaitForSlotEvent first: it returns CKR_CRYPTOKI_NOT_INITIALIZED
        // (PKCS#11 2.40 section 5.4, C_Finalize).
        let isInitialized: Bool = stateLock.withLock {
            if initialized { finalizing = true; waiting?.interrupt() }
            return initialized
        }
        guard isInitialized else { return CK_RV(CKR_CRYPTOKI_NOT_INITIALIZED) }
        callLock.lock()
        if let channel {
            // Tell the server's module; whatever it answers, we close (p11-kit's C_Finalize is
            // always CKR_OK). A short bound: a dead server must not hold finalisation.
            let request = RPCRequest(.finalize)
            _ = try? channel.exchange(code: takeCode(), options: options, body: request.body,
                                      timeout: min(settings.connectTimeout, 5000), maximumBody: 64)
            channel.close()
        }
        channel = nil
        waitLock.withLock {
            waitChannel?.close()
            waitChannel = nil
        }
        stateLock.withLock { initialized = false; finalizing = false; broken = nil }
        callLock.unlock()
        return CK_RV(CKR_OK)
    }

    /// In a fork child, before anything else runs there: the parent's connections stay the
    /// parent's (the child closes its copies of their descriptors without a word to the server,
    /// and never waits for a spawned command, which is the parent's child), and the child starts
    /// uninitialised, so that its next C_Initialize connects afresh, as p11-kit's client does
    /// after fork. A parent thread may have held a lock at fork: they are made anew.
    public func forgetAfterFork() {
        callLock.reinitializeInForkChild()
        waitLock.reinitializeInForkChild()
        stateLock.reinitializeInForkChild()
        channel?.abandonInForkChild()
        waitChannel?.abandonInForkChild()
        channel = nil
        waitChannel = nil
        waiting = nil
        broken = nil
        initialized = false
        finalizing = false
    }

    /// Connects, exchanges version bytes and sends the protocol's C_Initialize.
    private func connect(reserved: [UInt8]?) throws(RPCError) -> (RPCChannel, UInt8) {
        var opened = try connector()
        var answered: UInt8
        do {
            answered = try opened.handshake(offering: settings.offeredVersion, timeout: settings.connectTimeout)
        } catch {
            // Servers older than 0.24.1 hang up on any version byte but 0; p11-kit's client then
            // connects again offering 0 (rpc-client.c rpc_C_Initialize).
            opened.close()
            guard settings.offeredVersion > 0 else { throw error }
            opened = try connector()
            answered = try opened.handshake(offering: 0, timeout: settings.connectTimeout)
        }
        do {
            try initializeProtocol(on: opened, code: takeCode(), reserved: reserved)
        } catch where error.returnValue == CK_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED) && !error.breaksConnection {
            // What p11-kit's client also accepts: the server's module was initialised already.
        } catch {
            opened.close()
            throw error.message.isEmpty ? RPCError(error.returnValue, "\(peer): C_Initialize failed", breaksConnection: false) : error
        }
        return (opened, answered)
    }

    private var options: [UInt8] { Array(settings.moduleName.utf8) }

    /// Frame codes start at 0x10 and increase (rpc-transport.c); the server echoes them.
    private func takeCode() -> UInt32 {
        let code = nextCode
        nextCode = nextCode == UInt32.max ? 0x10 : nextCode + 1
        return code
    }

    /// Returns the code and remembers the message (if any) for `lastErrorMessage`.
    func record(_ error: RPCError) -> CK_RV {
        if !error.message.isEmpty { stateLock.withLock { lastError = error.message } }
        return error.returnValue
    }

    // MARK: - Calls

    /// One request and its reply on the main connection. `encode` writes the arguments (and may
    /// refuse locally, sending nothing); `decode` reads the reply, which must then be used up
    /// exactly. A transport failure or a malformed reply closes the connection: every later
    /// call answers CKR_DEVICE_ERROR until C_Finalize and C_Initialize, as p11-kit's client does.
    func perform<Value>(_ call: RPCCall,
                        encode: (inout RPCRequest, UInt8) throws(RPCError) -> Void,
                        decode: (inout RPCReply) throws(RPCError) -> Value) -> Result<Value, RPCError> {
        // callLock covers the connection's state only; the exchange itself runs outside it, so
        // other threads' requests go out while this one waits for its reply (RPCChannel).
        let state: Result<(RPCChannel, UInt8, UInt32), RPCError> = callLock.withLock {
            let (ready, lost) = stateLock.withLock { (initialized && !finalizing, broken) }
            guard ready else { return .failure(.code(CK_RV(CKR_CRYPTOKI_NOT_INITIALIZED))) }
            if let lost {
                // The wait's connection may have been the one to find out.
                self.channel?.close()
                self.channel = nil
                return .failure(lost)
            }
            guard let channel = self.channel else {
                return .failure(RPCError(CK_RV(CKR_DEVICE_ERROR), "\(peer): not connected"))
            }
            // A server that does not know the call would drop the connection (rpc-server.c
            // p11_rpc_server_handle answers an unknown id by closing).
            guard self.version >= call.minimumVersion else { return .failure(.code(CK_RV(CKR_FUNCTION_NOT_SUPPORTED))) }
            return .success((channel, self.version, takeCode()))
        }
        let channel: RPCChannel, version: UInt8, code: UInt32
        switch state {
        case .success(let taken): (channel, version, code) = taken
        case .failure(let error): return .failure(error)
        }
        var request = RPCRequest(call)
        do {
            try encode(&request, version)
        } catch {
            return .failure(error)
        }
        do {
            let body = try channel.exchange(code: code, options: options, body: request.body,
                                            timeout: settings.callTimeout, maximumBody: settings.maximumReplyBytes)
            var reply = try RPCReply(body, for: call)
            let value = try decode(&reply)
            try reply.finish()
            return .success(value)
        } catch {
            guard error.breaksConnection else { return .failure(error) }
            channel.close()
            // A call caught by its own process's C_Finalize: the module is going, not broken.
            if stateLock.withLock({ finalizing }) { return .failure(.code(CK_RV(CKR_CRYPTOKI_NOT_INITIALIZED))) }
            let reason = RPCError(error.returnValue, "\(call.name): " + error.message)
            callLock.withLock {
                if self.channel === channel { self.channel = nil }
            }
            stateLock.withLock { if broken == nil { broken = reason } }
            return .failure(reason)
        }
    }

    /// C_WaitForSlotEvent without CKF_DONT_BLOCK: on its own connection, without a time limit,
    /// woken by C_Finalize. Once the module's connection is lost it fails at once, as every call
    /// does, rather than connect again (perhaps to a restarted server) and block there.
    func blockingWait(_ flags: CK_FLAGS) -> Result<CK_SLOT_ID, RPCError> {
        waitLock.lock()
        defer { waitLock.unlock() }
        let reserved = settings.initReserved.map { Array($0.utf8) }
        if waitChannel == nil {
            if let refusal = stateLock.withLock({ waitRefusal }) { return .failure(refusal) }
            do {
                // takeCode is callLock's; this connection numbers its own frames from 0x10.
                let opened = try connectForWaiting(reserved: reserved)
                waitChannel = opened
            } catch {
                return .failure(waitConnectionFailed(error))
            }
        }
        let channel = waitChannel!
        let refusal: RPCError? = stateLock.withLock {
            if let refusal = waitRefusal { return refusal }
            waiting = channel
            return nil
        }
        if let refusal { return .failure(refusal) }
        defer { stateLock.withLock { waiting = nil } }
        var request = RPCRequest(.waitForSlotEvent)
        request.ulong(flags)
        do {
            let body = try channel.exchange(code: 0x10, options: options, body: request.body, timeout: -1,
                                            maximumBody: settings.maximumReplyBytes)
            var reply = try RPCReply(body, for: .waitForSlotEvent)
            let slot = try reply.ulong()
            try reply.finish()
            return .success(slot)
        } catch {
            if stateLock.withLock({ finalizing }) { return .failure(.code(CK_RV(CKR_CRYPTOKI_NOT_INITIALIZED))) }
            if error.breaksConnection {
                channel.close()
                waitChannel = nil
                let reason = RPCError(error.returnValue, "C_WaitForSlotEvent: " + error.message)
                stateLock.withLock { if broken == nil { broken = reason } }
                return .failure(reason)
            }
            return .failure(error)
        }
    }

    /// The wait's connection could not be opened: a server gone (killed while the connection was
    /// being set up) takes the main connection with it, and then the module is lost, as when a
    /// wait's connection drops; a server still there (the main connection answers C_GetInfo)
    /// keeps the module, and only this wait fails. Asking is what tells the two apart: left
    /// unasked, the next wait would open a connection to whatever listens there by then.
    private func waitConnectionFailed(_ error: RPCError) -> RPCError {
        if stateLock.withLock({ finalizing }) { return .code(CK_RV(CKR_CRYPTOKI_NOT_INITIALIZED)) }
        if case .failure(let lost) = serverInfo(), lost.breaksConnection { return lost }
        return error
    }

    /// Why a blocking wait may not start; read under stateLock.
    private var waitRefusal: RPCError? {
        if !initialized || finalizing { return .code(CK_RV(CKR_CRYPTOKI_NOT_INITIALIZED)) }
        return broken
    }

    private func connectForWaiting(reserved: [UInt8]?) throws(RPCError) -> RPCChannel {
        let opened = try connector()
        let offer = stateLock.withLock { negotiated }
        do {
            _ = try opened.handshake(offering: offer, timeout: settings.connectTimeout)
            try initializeProtocol(on: opened, code: 0x10, reserved: reserved)
        } catch {
            opened.close()
            throw error
        }
        return opened
    }

    /// The protocol's C_Initialize: "ayyay" is the handshake string, whether a reserved string
    /// follows, and the string with its NUL (rpc-client.c rpc_C_Initialize; rpc-server.c hands
    /// the bytes to its module as pReserved).
    private func initializeProtocol(on channel: RPCChannel, code: UInt32, reserved: [UInt8]?) throws(RPCError) {
        var request = RPCRequest(.initialize)
        request.byteArray(Self.handshake)
        request.byte(reserved == nil ? 0 : 1)
        request.byteArray((reserved ?? []) + [0])
        let body = try channel.exchange(code: code, options: options, body: request.body,
                                        timeout: settings.connectTimeout, maximumBody: settings.maximumReplyBytes)
        var reply = try RPCReply(body, for: .initialize)
        try reply.finish()
    }
}

/// strlen over a raw pointer (the reserved string from CK_C_INITIALIZE_ARGS).
private func strlenBytes(_ pointer: UnsafeMutableRawPointer) -> Int {
    var length = 0
    while pointer.load(fromByteOffset: length, as: UInt8.self) != 0 { length += 1 }
    return length
}
