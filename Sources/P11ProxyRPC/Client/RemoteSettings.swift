// What a `remote:` module's connection is configured with, all with defaults a .module file
// need not spell out.

public struct RemoteSettings: Sendable {
    /// Milliseconds one call may take, from sending the request to the end of the reply. p11-kit
    /// waits forever; we give up, close the connection and answer CKR_DEVICE_ERROR. Long enough
    /// for slow token operations (RSA 4096 key generation on a smart card). Negative: no limit.
    public var callTimeout: Int32 = 120_000
    /// Milliseconds for the version byte and the protocol's C_Initialize on a new connection.
    public var connectTimeout: Int32 = 30_000
    /// The largest reply body accepted; a header announcing more is refused before anything is
    /// allocated (p11-kit allocates whatever a header says).
    public var maximumReplyBytes: Int = 64 << 20
    /// `x-init-reserved`: handed to the server's module as C_Initialize's pReserved.
    public var initReserved: String?
    /// Sent in every frame's options; p11-kit sends the .module file's base name.
    public var moduleName: String = "p11proxy"
    /// The highest protocol version offered in the handshake.
    public var offeredVersion: UInt8 = RPCProtocolVersion.newest

    public init() {}
}
