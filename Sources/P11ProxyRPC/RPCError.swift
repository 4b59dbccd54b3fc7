// The one error the library throws (typed throws everywhere): the CK_RV a caller will see and a
// sentence saying why, so the proxy can both return the code and print the reason.
import CPKCS11

public struct RPCError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What the PKCS#11 caller gets.
    public var returnValue: CK_RV
    /// Why, in words that name the address or the malformed field.
    public var message: String

    /// True when the connection can no longer be trusted (transport failure, malformed or
    /// unexpected reply): the client closes it. False for a code the server sent in a
    /// well-formed reply, or one decided locally.
    public var breaksConnection: Bool

    public init(_ returnValue: CK_RV, _ message: String, breaksConnection: Bool = true) {
        self.returnValue = returnValue
        self.message = message
        self.breaksConnection = breaksConnection
    }

    public var description: String { message }

    /// A reply that does not decode as p11-kit's rpc-message.c defines it. p11-kit's client answers
    /// such replies with CKR_DEVICE_ERROR (rpc-client.c PARSE_ERROR); so do we.
    static func malformed(_ what: String) -> RPCError {
        RPCError(CK_RV(CKR_DEVICE_ERROR), "malformed reply: " + what)
    }

    /// A code the server sent, or one decided locally before anything was sent.
    static func code(_ value: CK_RV) -> RPCError { RPCError(value, "", breaksConnection: false) }
}
