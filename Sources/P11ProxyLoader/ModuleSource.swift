// Where a module's functions come from: the one place a kind of module plugs in. Above this,
// routing, callers and tracing see only a function list and cannot tell a loaded library from a
// remote module. A kind says how it is started (`load`: dlopen; `connect`: a p11-kit RPC
// connection, whose function list calls it), how it is stopped (its C_Finalize, through the
// list, for both), what makes two configured modules one (`identity`), and how a fork child
// treats it (`forgetAfterFork`). The module and the `p11proxy` command start modules through
// ModuleStartup.walk, which starts each kind here.
import CPKCS11
import P11ProxyConfig
import P11ProxyRPC

package enum ModuleSource {
    /// A shared library, dlopen'd once and never closed.
    case library(path: String, identity: FileIdentity)
    /// `remote:` over p11-kit's RPC protocol; the connection lives as long as the process.
    case remote(address: String, connection: RemoteModule)

    /// Loads the library (ModuleLoader.load); what it throws is the reason the module is skipped.
    package static func load(path: String, identity: FileIdentity) throws(LoadError) -> (ModuleSource, CK_FUNCTION_LIST_3_2) {
        do throws(LoadError) {
            return (.library(path: path, identity: identity), try ModuleLoader.load(path: path))
        } catch {
            throw LoadError(description: ModuleStartup.loadFailure(path: path, error))
        }
    }

    /// Connects to the server (ModuleLoader.connect); what it throws is the reason the module is
    /// skipped (it names the address).
    package static func connect(address: String, config: ModuleConfig) throws(LoadError) -> (ModuleSource, CK_FUNCTION_LIST_3_2) {
        let (connection, functions) = try ModuleLoader.connect(address: address, config: config)
        return (.remote(address: address, connection: connection), functions)
    }

    package var identity: ModuleStartup.ModuleIdentity {
        switch self {
        case .library(_, let identity): .library(identity)
        case .remote(let address, _): .remote(address)
        }
    }

    /// The library's path or the server's address, for messages.
    package var location: String {
        switch self {
        case .library(let path, _): path
        case .remote(let address, _): address
        }
    }

    /// Why the module's last call failed, when the module can say more than its return value
    /// (a remote one names the address and what went wrong); empty otherwise.
    package var lastFailure: String {
        switch self {
        case .library: ""
        case .remote(_, let connection): connection.lastErrorMessage
        }
    }

    /// The RPC protocol version a remote module's server answered; nil for a library.
    package var remoteProtocolVersion: UInt8? {
        switch self {
        case .library: nil
        case .remote(_, let connection): connection.negotiatedVersion
        }
    }

    /// In a fork child: a library's state is the module's own business (the child's first
    /// C_Initialize asks it again); a connection is the parent's, so the child lets go of its
    /// copy and connects afresh at its first C_Initialize.
    package func forgetAfterFork() {
        if case .remote(_, let connection) = self { connection.forgetAfterFork() }
    }
}
