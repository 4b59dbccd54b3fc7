// The only file of this target that talks to libc, one thin wrapper per call (as swift-system's
// Internals/Syscalls.swift). Everything is non-variadic so it builds as Embedded Swift, where
// `Glibc` is glibc's bare headers (support/embedded-libc): descriptors are created close-on-exec
// (SOCK_CLOEXEC) rather than marked with fcntl, and commands start with posix_spawn.
import CP11ProxyLibc
import CPKCS11
import Glibc

enum RPCSyscalls {
    static var lastError: Int32 { __errno_location().pointee }

    /// Fixed English texts rather than strerror(3), which is not thread-safe.
    static func describe(_ code: Int32) -> String {
        switch code {
        case ENOENT: return "no such file or directory"
        case ECONNREFUSED: return "connection refused"
        case EACCES: return "permission denied"
        case ENOTSOCK: return "not a socket"
        case ECONNRESET: return "connection reset"
        case EPIPE: return "broken pipe"
        case ENAMETOOLONG: return "name too long"
        case EMFILE, ENFILE: return "too many open files"
        case ENOMEM: return "out of memory"
        case ENOEXEC: return "not executable"
        default: return "error \(code)"
        }
    }

    static func monotonicMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// A connected unix stream socket, close-on-exec, or the errno of what failed.
    static func connectUnix(_ path: String) -> (descriptor: Int32, error: Int32) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { return (-1, ENAMETOOLONG) }
        withUnsafeMutableBytes(of: &address.sun_path) { field in
            for (index, byte) in bytes.enumerated() { field[index] = byte }
        }
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return (-1, lastError) }
        let result = withUnsafePointer(to: &address) { pointer in
            #if hasFeature(Embedded)
            // The bare headers are read with _GNU_SOURCE: connect takes glibc's transparent union.
            connect(descriptor, __CONST_SOCKADDR_ARG(__sockaddr_un__: pointer), socklen_t(MemoryLayout<sockaddr_un>.size))
            #else
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
            #endif
        }
        guard result == 0 else {
            let code = lastError
            close(descriptor)
            return (-1, code)
        }
        return (descriptor, 0)
    }

    /// Two connected unix stream sockets, both close-on-exec.
    static func socketPair() -> (Int32, Int32)? {
        var descriptors: [Int32] = [-1, -1]
        let result = descriptors.withUnsafeMutableBufferPointer {
            socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, $0.baseAddress!)
        }
        return result == 0 ? (descriptors[0], descriptors[1]) : nil
    }

    /// Runs `arguments` (PATH searched, no shell) with `descriptor` as its stdin and stdout, stderr
    /// inherited, nothing else open (close-from 3), default SIGPIPE/SIGTERM and an empty signal
    /// mask. Returns the pid, or the errno.
    static func spawn(_ arguments: [String], stdio descriptor: Int32) -> (pid: pid_t, error: Int32) {
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawnattr_init(&attributes)
        defer {
            posix_spawn_file_actions_destroy(&actions)
            posix_spawnattr_destroy(&attributes)
        }
        // dup2 clears close-on-exec on the copies; closefrom(3) drops every other descriptor the
        // host application left inheritable (p11-kit's child walks them with fdwalk instead).
        posix_spawn_file_actions_adddup2(&actions, descriptor, STDIN_FILENO)
        posix_spawn_file_actions_adddup2(&actions, descriptor, STDOUT_FILENO)
        posix_spawn_file_actions_addclosefrom_np(&actions, 3)
        var empty = sigset_t()
        sigemptyset(&empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        sigaddset(&defaults, SIGTERM)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var cArguments: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        cArguments.append(nil)
        defer { for argument in cArguments { free(argument) } }
        var pid: pid_t = 0
        let result = cArguments.withUnsafeBufferPointer { argv in
            posix_spawnp(&pid, argv[0]!, &actions, &attributes, argv.baseAddress!, environ)
        }
        return result == 0 ? (pid, 0) : (0, result)
    }

    /// Reaps a child: waits up to `graceMilliseconds` for it to exit on its own (it sees EOF on
    /// its stdin), then SIGTERM, then SIGKILL, as p11-kit's rpc_exec_wait_or_terminate (3 s, then
    /// SIGTERM) but never blocking without bound.
    static func reap(_ pid: pid_t, graceMilliseconds: Int64) {
        var status: Int32 = 0
        let start = monotonicMilliseconds()
        var signalled: Int32 = 0
        while true {
            let result = waitpid(pid, &status, WNOHANG)
            if result == pid || (result < 0 && lastError != EINTR) { return }
            let waited = monotonicMilliseconds() - start
            if signalled == 0 && waited >= graceMilliseconds {
                kill(pid, SIGTERM)
                signalled = SIGTERM
            } else if signalled == SIGTERM && waited >= graceMilliseconds + 2000 {
                kill(pid, SIGKILL)
                signalled = SIGKILL
            }
            usleep(10_000)
        }
    }

    /// Waits until `descriptor` is readable (or writable); false on timeout. A negative
    /// `milliseconds` waits without bound.
    static func wait(_ descriptor: Int32, forWriting: Bool, milliseconds: Int32) -> (ready: Bool, error: Int32) {
        var entry = pollfd(fd: descriptor, events: Int16(forWriting ? POLLOUT : POLLIN), revents: 0)
        while true {
            let result = poll(&entry, 1, milliseconds)
            if result > 0 { return (true, 0) }
            if result == 0 { return (false, 0) }
            if lastError != EINTR { return (false, lastError) }
        }
    }

    /// send(2) without SIGPIPE: a server that went away must not kill the host application.
    static func sendSome(_ descriptor: Int32, _ pointer: UnsafeRawPointer, _ count: Int) -> Int {
        send(descriptor, pointer, count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
    }

    /// recv(2) that waits (up to the descriptor's SO_RCVTIMEO, then EAGAIN).
    static func receiveWaiting(_ descriptor: Int32, _ pointer: UnsafeMutableRawPointer, _ count: Int) -> Int {
        recv(descriptor, pointer, count, 0)
    }

    /// SO_RCVTIMEO; 0 waits without bound.
    static func setReceiveTimeout(_ descriptor: Int32, milliseconds: Int32) -> Bool {
        var value = timeval(tv_sec: Int(milliseconds / 1000), tv_usec: Int(milliseconds % 1000) * 1000)
        return setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size)) == 0
    }

    static func shutdownBoth(_ descriptor: Int32) { _ = shutdown(descriptor, Int32(SHUT_RDWR)) }

    static func closeDescriptor(_ descriptor: Int32) { _ = close(descriptor) }
}
