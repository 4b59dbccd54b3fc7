// Where a module's functions come from: the one place a kind of module plugs in. Above this,
// routing, callers and tracing see only a ModuleEntry's function list and cannot tell a loaded
// library from a remote module. A kind says how it is started (ModuleLoader.load: dlopen;
// ModuleLoader.connect: a p11-kit RPC connection, whose function list calls it), how it is
// stopped (its C_Finalize, through the list, for both), what makes two configured modules one
// (`identity`), and how a fork child treats it (`forgetAfterFork`).
import P11ProxyLoader
import P11ProxyRPC

enum ModuleSource {
    /// A shared library, dlopen'd once and never closed.
    case library(path: String, identity: FileIdentity)
    /// `remote:` over p11-kit's RPC protocol; the connection lives as long as the process.
    case remote(address: String, connection: RemoteModule)

    var identity: ModuleStartup.ModuleIdentity {
        switch self {
        case .library(_, let identity): .library(identity)
        case .remote(let address, _): .remote(address)
        }
    }

    /// The library's path or the server's address, for messages.
    var location: String {
        switch self {
        case .library(let path, _): path
        case .remote(let address, _): address
        }
    }

    /// Why the module's last call failed, when the module can say more than its return value
    /// (a remote one names the address and what went wrong); empty otherwise.
    var lastFailure: String {
        switch self {
        case .library: ""
        case .remote(_, let connection): connection.lastErrorMessage
        }
    }

    /// In a fork child: a library's state is the module's own business (the child's first
    /// C_Initialize asks it again); a connection is the parent's, so the child lets go of its
    /// copy and connects afresh at its first C_Initialize.
    func forgetAfterFork() {
        if case .remote(_, let connection) = self { connection.forgetAfterFork() }
    }
}
