// C_Initialize's arguments, checked as PKCS#11 3.0 section 5.4 says, before any state changes.
import CPKCS11
import Glibc

struct InitializeOptions {
    /// From pReserved "config-dir=DIR": how p11-kit hands p11proxy its own `x-init-reserved`.
    var configDirectory: String?
    /// CKF_LIBRARY_CANT_CREATE_OS_THREADS: the application's threads may not create threads, so
    /// p11proxy must not create one on their behalf (its trace flusher; TraceOutput.stopThreads).
    var libraryCannotCreateThreads = false

    /// The longest pReserved string read; p11-kit's x-init-reserved values are short.
    static let maximumReservedLength = 4096

    /// - Mutex callbacks: all four or none (CKR_ARGUMENTS_BAD). With callbacks and without
    ///   CKF_OS_LOCKING_OK the spec lets a library that can use OS locking do so; p11proxy always
    ///   uses its own locks and initialises real modules with CKF_OS_LOCKING_OK, as p11-kit does.
    /// - pReserved must be NULL, except for p11-kit's x-init-reserved convention: a string of
    ///   `key=value` words whose keys p11proxy knows (only `config-dir`), or no words at all
    ///   (p11-kit passes "" for a blank `x-init-reserved:`, as Debian's p11-kit-trust.module
    ///   ships it); anything else is CKR_ARGUMENTS_BAD.
    static func parse(_ pInitArgs: UnsafeMutableRawPointer?) throws(ReturnValue) -> InitializeOptions {
        guard let pInitArgs else { return InitializeOptions() }
        let arguments = pInitArgs.assumingMemoryBound(to: CK_C_INITIALIZE_ARGS.self).pointee
        let callbacks = [arguments.CreateMutex != nil, arguments.DestroyMutex != nil,
                         arguments.LockMutex != nil, arguments.UnlockMutex != nil]
        guard callbacks.allSatisfy({ $0 }) || callbacks.allSatisfy({ !$0 }) else { throw .argumentsBad }
        var options = InitializeOptions()
        if let reserved = arguments.pReserved { options = try parseReserved(reserved.assumingMemoryBound(to: CChar.self)) }
        options.libraryCannotCreateThreads = arguments.flags & CK_FLAGS(CKF_LIBRARY_CANT_CREATE_OS_THREADS) != 0
        return options
    }

    static func parseReserved(_ reserved: UnsafePointer<CChar>) throws(ReturnValue) -> InitializeOptions {
        let length = strnlen(reserved, maximumReservedLength)
        guard length < maximumReservedLength else { throw .argumentsBad }
        let text = String(decoding: UnsafeRawBufferPointer(start: reserved, count: length), as: UTF8.self)
        var options = InitializeOptions()
        for word in text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "," }) {
            guard let equals = word.firstIndex(of: "=") else { throw .argumentsBad }
            let key = word[..<equals], value = word[word.index(after: equals)...]
            switch key {
            case "config-dir" where !value.isEmpty: options.configDirectory = String(value)
            default: throw .argumentsBad
            }
        }
        return options
    }
}
