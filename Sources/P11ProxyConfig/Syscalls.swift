// The only file that talks to libc: thin wrappers, one per call, in the manner of swift-system's
// Internals/Syscalls.swift. Everything else in this target is plain Swift over Strings and bytes.
//
// The code compiles two ways: with the full Swift stdlib (tests, the `p11proxy` command, the
// fuzzer), where `import Glibc` is the toolchain's overlay, and as Embedded Swift (the shipped
// libp11proxy.so and its sanitizer builds), where `Glibc` is support/embedded-libc: glibc's own headers with no
// Swift overlay. The few things only the overlay provides (errno, open without O_CREAT) are here.

import Glibc

#if hasFeature(Embedded)
/// errno is a C macro over __errno_location(), which Swift cannot import; the overlay gives the
/// full build this same variable.
package var errno: Int32 {
    get { __errno_location().pointee }
    set { __errno_location().pointee = newValue }
}
#endif

extension FileSystemError {
    public static var noSuchFile: FileSystemError { .errno(ENOENT) }
    public static var notDirectory: FileSystemError { .errno(ENOTDIR) }
    public static var permissionDenied: FileSystemError { .errno(EACCES) }
    public static var operationNotPermitted: FileSystemError { .errno(EPERM) }
    public static var tooManySymbolicLinks: FileSystemError { .errno(ELOOP) }
    public static var invalidArgument: FileSystemError { .errno(EINVAL) }

    /// Fixed English texts rather than strerror(3), which is not thread-safe and follows the
    /// host application's locale.
    static func errnoDescription(_ code: Int32) -> String {
        switch code {
        case ENOENT: return "no such file or directory"
        case ENOTDIR: return "a path component is not a directory"
        case EACCES: return "permission denied"
        case EPERM: return "operation not permitted"
        case ELOOP: return "too many levels of symbolic links"
        case EISDIR: return "is a directory"
        case EIO: return "input/output error"
        case ENAMETOOLONG: return "file name too long"
        case EMFILE, ENFILE: return "too many open files"
        case ENOMEM: return "out of memory"
        case EINVAL: return "invalid argument"
        default: return "error \(code)"
        }
    }
}

package enum Syscalls {
    /// A path as the C string libc gets. A Swift string with an embedded NUL would be silently
    /// cut short by C, naming a different file, so such paths are refused.
    private static func withPath<R>(_ path: String,
                                    _ body: (UnsafePointer<CChar>) throws(FileSystemError) -> R)
        throws(FileSystemError) -> R {
        if path.utf8.contains(0) { throw .invalidArgument }
        var cString = Array(path.utf8CString)
        return try cString.withUnsafeMutableBufferPointer { (buffer) throws(FileSystemError) -> R in
            try body(UnsafePointer(buffer.baseAddress!))
        }
    }

    static func status(_ path: String, followingLinks: Bool) throws(FileSystemError) -> FileStatus {
        try withPath(path) { (cPath) throws(FileSystemError) -> FileStatus in
            var info = stat()
            // fstatat, because Swift resolves the name `stat` to the struct, not the function.
            let flags = followingLinks ? 0 : AT_SYMLINK_NOFOLLOW
            guard fstatat(AT_FDCWD, cPath, &info, flags) == 0 else { throw .errno(errno) }
            return fileStatus(info)
        }
    }

    private static func fileStatus(_ info: stat) -> FileStatus {
        let kind: FileStatus.Kind
        // mode_t(...): the overlay types the S_IF* constants as mode_t, the bare headers as Int32.
        switch info.st_mode & mode_t(S_IFMT) {
        case mode_t(S_IFREG): kind = .regular
        case mode_t(S_IFDIR): kind = .directory
        case mode_t(S_IFLNK): kind = .symbolicLink
        default: kind = .other
        }
        return FileStatus(kind: kind, size: Int(info.st_size))
    }

    static func directoryEntries(_ path: String) throws(FileSystemError) -> [[UInt8]] {
        try withPath(path) { (cPath) throws(FileSystemError) -> [[UInt8]] in
            guard let directory = opendir(cPath) else { throw .errno(errno) }
            defer { closedir(directory) }
            var names: [[UInt8]] = []
            while true {
                errno = 0
                guard let entry = readdir(directory) else {
                    if errno != 0 { throw .errno(errno) }
                    return names
                }
                var rawName = entry.pointee.d_name
                let name = withUnsafeBytes(of: &rawName) { Array($0.prefix(while: { $0 != 0 })) }
                if name == [0x2E] || name == [0x2E, 0x2E] { continue }
                names.append(name)
            }
        }
    }

    static func contents(_ path: String, maximumSize: Int) throws(FileSystemError) -> [UInt8] {
        try withPath(path) { (cPath) throws(FileSystemError) -> [UInt8] in
            // O_NONBLOCK: if the path became a FIFO after the caller's stat, open must not wait
            // for a writer. O_NOCTTY: a terminal device must not become our controlling terminal.
            let descriptor = openExisting(cPath, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
            guard descriptor >= 0 else { throw .errno(errno) }
            defer { close(descriptor) }
            var info = stat()
            guard fstat(descriptor, &info) == 0 else { throw .errno(errno) }
            guard fileStatus(info).kind == .regular else { throw .notRegularFile }

            var bytes: [UInt8] = []
            let limit = maximumSize + 1
            // Read into uninitialised stack space: a zero-filled heap chunk (64 KiB before) cost
            // 16 page faults of the module's start-up for files that are mostly under 1 KiB.
            let chunkSize = 16 * 1024
            try withUnsafeTemporaryAllocation(of: UInt8.self, capacity: chunkSize) { (chunk) throws(FileSystemError) in
                while bytes.count < limit {
                    let wanted = min(chunkSize, limit - bytes.count)
                    let got = read(descriptor, chunk.baseAddress, wanted)
                    if got < 0 {
                        if errno == EINTR { continue }
                        throw .errno(errno)
                    }
                    if got == 0 { break }
                    bytes.append(contentsOf: UnsafeBufferPointer(rebasing: chunk[0..<got]))
                }
            }
            return bytes
        }
    }

    /// open(2) without O_CREAT. glibc's open is variadic, which Embedded Swift cannot call;
    /// __open_2 (GLIBC_2.7, what _FORTIFY_SOURCE builds call) is its fixed-argument form.
    package static func openExisting(_ path: UnsafePointer<CChar>, _ flags: Int32) -> Int32 {
        #if hasFeature(Embedded)
        __open_2(path, flags)
        #else
        open(path, flags)
        #endif
    }

    /// What open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600) does, for a trace file,
    /// without the variadic open: the file is created by mknod(2) (S_IFREG: an empty regular
    /// file, mode 0600 less the umask, EEXIST if anything is there) and then opened. Two rounds,
    /// so a file another process creates in between is appended to, never truncated; a dangling
    /// symbolic link is refused (ENOENT) rather than followed to create its target.
    package static func openForAppending(_ path: String) throws(FileSystemError) -> Int32 {
        try withPath(path) { (cPath) throws(FileSystemError) -> Int32 in
            for _ in 0..<2 {
                let descriptor = openExisting(cPath, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY)
                if descriptor >= 0 { return descriptor }
                guard errno == ENOENT else { throw .errno(errno) }
                if mknod(cPath, mode_t(S_IFREG) | 0o600, 0) != 0 && errno != EEXIST { throw .errno(errno) }
            }
            throw .noSuchFile
        }
    }

    static func processIdentity() -> ProcessIdentity {
        ProcessIdentity(uid: getuid(), euid: geteuid(), gid: getgid(), egid: getegid(),
                        secureExecution: secureExecution())
    }

    /// getauxval(AT_SECURE), which p11-kit checks in `_p11_conf_load_globals`: the kernel sets it
    /// for setuid/setgid executables and for file capabilities, where uid == euid can still hold.
    /// Glibc's Swift module does not import <sys/auxv.h>, so the function is looked up by name.
    private static func secureExecution() -> Bool {
        typealias GetAuxiliaryValue = @convention(c) (UInt) -> UInt
        let atSecure: UInt = 23  // AT_SECURE in <elf.h>, part of the Linux ABI
        guard let symbol = dlsym(nil, "getauxval") else {
            return getuid() != geteuid() || getgid() != getegid()
        }
        return unsafeBitCast(symbol, to: GetAuxiliaryValue.self)(atSecure) != 0
    }

    /// The variables configuration reading uses (names starting with one of `prefixes`, or equal
    /// to one of `names`). Read once per call; callers hand the result on. Only those become
    /// Strings: a whole environment as a dictionary was 0.45M instructions of C_Initialize.
    static func environment(prefixes: [StaticString], names: [StaticString]) -> EnvironmentVariables {
        var result = EnvironmentVariables()
        var cursor: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = environ
        while let entry = cursor?.pointee {
            cursor! += 1
            guard let equals = strchr(entry, 0x3D) else { continue }
            let nameLength = equals - entry
            let wanted = prefixes.contains { startsWith(entry, nameLength, $0, exactly: false) }
                || names.contains { startsWith(entry, nameLength, $0, exactly: true) }
            guard wanted else { continue }
            let name = String(decoding: UnsafeRawBufferPointer(start: entry, count: nameLength), as: UTF8.self)
            // The first definition wins, as getenv(3) returns the first match.
            if result[name] == nil { result[name] = String(cString: equals + 1) }
        }
        return result
    }

    /// Whether the `length` bytes at `name` start with (or, `exactly`, are) `text`.
    private static func startsWith(_ name: UnsafePointer<CChar>, _ length: Int, _ text: StaticString, exactly: Bool) -> Bool {
        let count = text.utf8CodeUnitCount
        guard exactly ? length == count : length >= count else { return false }
        return memcmp(name, text.utf8Start, count) == 0
    }

    /// glibc's program_invocation_short_name: the base name of argv[0], which is what p11-kit's
    /// getprogname() returns on Linux and so what `enable-in`/`disable-in` are matched against.
    static func programName() -> String? {
        guard let symbol = dlsym(nil, "program_invocation_short_name") else { return nil }
        guard let name = symbol.assumingMemoryBound(to: UnsafePointer<CChar>?.self).pointee else { return nil }
        let text = String(cString: name)
        return text.isEmpty ? nil : text
    }
}
