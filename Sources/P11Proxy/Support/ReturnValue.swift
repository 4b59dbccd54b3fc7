// CK_RV as data, not a closed enum: a module's vendor codes pass through unchanged
// (like swift-system's Errno). Converted to CK_RV only at the exported boundary.
import CPKCS11

struct ReturnValue: RawRepresentable, Equatable, Hashable, Error, Sendable, CustomStringConvertible {
    var rawValue: CK_RV
    init(rawValue: CK_RV) { self.rawValue = rawValue }
    init(_ value: CK_RV) { self.rawValue = value }
    init(_ value: Int32) { self.rawValue = CK_RV(value) }

    static let ok = ReturnValue(CK_RV(CKR_OK))
    static let hostMemory = ReturnValue(CK_RV(CKR_HOST_MEMORY))
    static let slotIDInvalid = ReturnValue(CK_RV(CKR_SLOT_ID_INVALID))
    static let generalError = ReturnValue(CK_RV(CKR_GENERAL_ERROR))
    static let functionFailed = ReturnValue(CK_RV(CKR_FUNCTION_FAILED))
    static let argumentsBad = ReturnValue(CK_RV(CKR_ARGUMENTS_BAD))
    static let noEvent = ReturnValue(CK_RV(CKR_NO_EVENT))
    static let functionNotSupported = ReturnValue(CK_RV(CKR_FUNCTION_NOT_SUPPORTED))
    static let sessionHandleInvalid = ReturnValue(CK_RV(CKR_SESSION_HANDLE_INVALID))
    static let sessionClosed = ReturnValue(CK_RV(CKR_SESSION_CLOSED))
    static let sessionCount = ReturnValue(CK_RV(CKR_SESSION_COUNT))
    static let bufferTooSmall = ReturnValue(CK_RV(CKR_BUFFER_TOO_SMALL))
    static let cryptokiNotInitialized = ReturnValue(CK_RV(CKR_CRYPTOKI_NOT_INITIALIZED))
    static let cryptokiAlreadyInitialized = ReturnValue(CK_RV(CKR_CRYPTOKI_ALREADY_INITIALIZED))

    /// The name used in messages; the tracer has the full table.
    var description: String {
        switch self {
        case .ok: "CKR_OK"
        case .hostMemory: "CKR_HOST_MEMORY"
        case .slotIDInvalid: "CKR_SLOT_ID_INVALID"
        case .generalError: "CKR_GENERAL_ERROR"
        case .functionFailed: "CKR_FUNCTION_FAILED"
        case .argumentsBad: "CKR_ARGUMENTS_BAD"
        case .noEvent: "CKR_NO_EVENT"
        case .functionNotSupported: "CKR_FUNCTION_NOT_SUPPORTED"
        case .sessionHandleInvalid: "CKR_SESSION_HANDLE_INVALID"
        case .bufferTooSmall: "CKR_BUFFER_TOO_SMALL"
        case .cryptokiNotInitialized: "CKR_CRYPTOKI_NOT_INITIALIZED"
        case .cryptokiAlreadyInitialized: "CKR_CRYPTOKI_ALREADY_INITIALIZED"
        case ReturnValue(CK_RV(CKR_DEVICE_ERROR)): "CKR_DEVICE_ERROR"
        case ReturnValue(CK_RV(CKR_CANT_LOCK)): "CKR_CANT_LOCK"
        default: "CKR_0x" + String(rawValue, radix: 16, uppercase: true)
        }
    }
}
