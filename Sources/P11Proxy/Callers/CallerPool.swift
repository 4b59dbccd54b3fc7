// Managed callers: every C_GetFunctionList / C_GetInterface / C_GetInterfaceList
// hands out a caller of its own, with its own function tables and its own initialise count.
// The tables' entry points come from the generated pool (CallerTables.generated.swift).
//
// Beyond the pool: a caller that has called C_Finalize may be recycled for a new caller
// (oldest finalisation first); when every caller is handed out and none has finalised,
// C_GetFunctionList answers CKR_HOST_MEMORY with a message.
import CPKCS11
import Synchronization

enum CallerTables {}

enum CallerState: UInt8 {
    /// Never handed out.
    case free = 0
    /// Handed out; not initialised (or finalised and then taken again).
    case handedOut = 1
    case initialized = 2
    /// Finalised; may be recycled when the pool runs out.
    case finalized = 3
}

/// The storage one caller's tables live in; allocated on first use and never freed, because a
/// caller may keep using its pointers after C_Finalize.
struct CallerTablesStorage {
    var list32: UnsafeMutablePointer<CK_FUNCTION_LIST_3_2>
    var list30: UnsafeMutablePointer<CK_FUNCTION_LIST_3_2>
    var list240: UnsafeMutablePointer<CK_FUNCTION_LIST_3_2>
    /// "PKCS 11" 3.2, 3.0 and 2.40, in InterfaceQuery's order (the newest first).
    var interfaces: UnsafeMutablePointer<CK_INTERFACE>
}

enum CallerPool {
    static var size: Int { CallerTables.poolSize }

    // Who may touch them: `states` is read anywhere; changed by a compare-and-exchange from
    // `free` (hand-out), under `lock` (recycle) or under ProxyRuntime's lock (initialise/finalise).
    // `storage[caller]`: see tables(for:). `finalizeOrder` only under `lock`.
    nonisolated(unsafe) private static let statesStorage: UnsafeMutablePointer<Atomic<UInt8>> = {
        let states = UnsafeMutablePointer<Atomic<UInt8>>.allocate(capacity: CallerTables.poolSize)
        for index in 0..<CallerTables.poolSize { (states + index).initialize(to: Atomic(0)) }
        return states
    }()
    /// `statesStorage`, for the hot path (PublishedTable).
    private static let states = PublishedTable<Atomic<UInt8>>()

    @inline(never)
    static func publishStates() -> UnsafeMutablePointer<Atomic<UInt8>> { states.publish(statesStorage) }

    static let lock = ProcessLock()
    /// A plain buffer: an [CallerTablesStorage?] made the runtime instantiate its storage class
    /// from a mangled name (~36k instructions of the first C_GetFunctionList).
    nonisolated(unsafe) static let storage: UnsafeMutablePointer<CallerTablesStorage?> = {
        let storage = UnsafeMutablePointer<CallerTablesStorage?>.allocate(capacity: CallerTables.poolSize)
        storage.initialize(repeating: nil, count: CallerTables.poolSize)
        return storage
    }()
    nonisolated(unsafe) static var finalizeOrder: [CallerNumber] = []

    /// "PKCS 11", NUL-terminated, shared by every CK_INTERFACE we hand out.
    nonisolated(unsafe) static let interfaceName: UnsafeMutablePointer<CK_CHAR> = {
        let bytes = Array("PKCS 11".utf8) + [0]
        let name = UnsafeMutablePointer<CK_CHAR>.allocate(capacity: bytes.count)
        name.initialize(from: bytes, count: bytes.count)
        return name
    }()

    @inline(__always)
    static func state(_ caller: CallerNumber) -> CallerState {
        guard let states = states.base else { return .free }
        return CallerState(rawValue: states[caller.value].load(ordering: .acquiring)) ?? .free
    }

    @inline(__always)
    static func isInitialized(_ caller: CallerNumber) -> Bool {
        guard let states = states.base else { return false }
        return states[caller.value].load(ordering: .acquiring) == CallerState.initialized.rawValue
    }

    static func setState(_ caller: CallerNumber, _ state: CallerState) {
        publishStates()[caller.value].store(state.rawValue, ordering: .sequentiallyConsistent)
        if state == .finalized {
            lock.withLock {
                finalizeOrder.removeAll { $0 == caller }
                finalizeOrder.append(caller)
            }
        }
    }

    /// A new caller's tables, or nil when the pool is exhausted. A never-used caller is claimed
    /// with a compare-and-exchange on its state, so new callers on many threads take no lock
    /// while the pool lasts; recycling a finalised caller (oldest first) takes `lock`.
    static func acquire() -> CallerTablesStorage? {
        // The session table's hot path reads its address without a nil test (SessionTable).
        guard SessionTable.publishEntries() != nil else { return nil }
        let states = publishStates()
        for number in 0..<size where states[number].load(ordering: .relaxed) == CallerState.free.rawValue {
            if states[number].compareExchange(expected: CallerState.free.rawValue, desired: CallerState.handedOut.rawValue,
                                              ordering: .sequentiallyConsistent).exchanged {
                return tables(for: CallerNumber(number))
            }
        }
        let acquired: CallerTablesStorage? = lock.withLock {
            guard let index = finalizeOrder.firstIndex(where: { state($0) == .finalized }) else { return nil }
            let caller = finalizeOrder.remove(at: index)
            states[caller.value].store(CallerState.handedOut.rawValue, ordering: .sequentiallyConsistent)
            return tables(for: caller)
        }
        if acquired == nil {
            Diagnostics.report("all \(size) caller function lists are in use and none has called C_Finalize; "
                + "C_GetFunctionList returns CKR_HOST_MEMORY")
        }
        return acquired
    }

    /// The caller's tables, built the first time: by the thread that claimed it from `free` (no
    /// other thread can reach a caller's storage before it is handed out), or under `lock`. The
    /// three lists share the caller's entry points (a 2.40 or 3.0 caller reads only its prefix)
    /// but for C_GetInfo, which answers with the version of the list it was called through.
    private static func tables(for caller: CallerNumber) -> CallerTablesStorage {
        if let existing = storage[caller.value] { return existing }
        func list(_ version: CK_VERSION) -> UnsafeMutablePointer<CK_FUNCTION_LIST_3_2> {
            let list = UnsafeMutablePointer<CK_FUNCTION_LIST_3_2>.allocate(capacity: 1)
            list.initialize(to: CK_FUNCTION_LIST_3_2())
            CallerTables.fill(list, caller: caller)
            list.pointee.version = version
            return list
        }
        let list32 = list(InterfaceVersion.v3_2.version)
        let list30 = list(InterfaceVersion.v3_0.version)
        let list240 = list(InterfaceVersion.v2_40.version)
        CallerTables.fillOlderInterfaces(list30, list240, caller: caller)
        let interfaces = UnsafeMutablePointer<CK_INTERFACE>.allocate(capacity: Int(InterfaceQuery.count))
        // Our interfaces carry no flags (not CKF_INTERFACE_FORK_SAFE: a fork child must call
        // C_Initialize again).
        interfaces.initialize(to: CK_INTERFACE(pInterfaceName: interfaceName, pFunctionList: UnsafeMutableRawPointer(list32), flags: 0))
        (interfaces + 1).initialize(to: CK_INTERFACE(pInterfaceName: interfaceName, pFunctionList: UnsafeMutableRawPointer(list30), flags: 0))
        (interfaces + 2).initialize(to: CK_INTERFACE(pInterfaceName: interfaceName, pFunctionList: UnsafeMutableRawPointer(list240), flags: 0))
        let made = CallerTablesStorage(list32: list32, list30: list30, list240: list240, interfaces: interfaces)
        storage[caller.value] = made
        return made
    }

    /// The tables of a caller already handed out (for C_GetFunctionList called through its list).
    /// No lock: they were stored before the list that calls here was handed out, and never change.
    static func existingTables(for caller: CallerNumber) -> CallerTablesStorage? {
        storage[caller.value]
    }

    /// In the fork child: no caller is initialised; each must call C_Initialize again.
    static func forkChild() {
        lock.reinitializeInChild()
        for number in 0..<size where state(CallerNumber(number)) == .initialized {
            statesStorage[number].store(CallerState.handedOut.rawValue, ordering: .relaxed)
        }
    }
}
