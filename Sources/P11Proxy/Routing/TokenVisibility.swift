// Token filters (x-only-tokens, x-hide-tokens, P11PROXY_ONLY_TOKENS) in the module: which of a
// module's slots callers see. A slot the filter hides does not exist for them: it gets no proxy
// ID while hidden (so visible slots are numbered densely, module by module in load order), and
// one that had an ID when its token changed carries a hidden mark, which Router.slot reads, so
// every call that takes its ID answers CKR_SLOT_ID_INVALID. Visibility is decided again whenever
// the module's slots are listed (C_Initialize, C_GetSlotList), on every slot event, and when a
// session is opened; a slot that comes back gets its old ID back (SlotMap never reuses an ID).
// A process where no filter was ever set pays one load per call that takes a slot ID: no extra
// module call, no lock.
import CPKCS11
import P11ProxyConfig
import P11ProxyLoader
import Synchronization

enum TokenVisibility {
    /// A filtered module's filter and its CK_INFO (read once, after its C_Initialize).
    struct ModuleFilter {
        var filter: TokenFilter
        var library: TokenDescription.Library
    }

    // Who may touch it: written by ProxyRuntime.startModules (holding ProxyRuntime.lock) under
    // ProxyRuntime.stateLock, read under stateLock, which the fork handlers keep whole. Indexed by
    // ModuleTable index; nil (or past the end): no filter.
    nonisolated(unsafe) private static var filters: [ModuleFilter?] = []

    // Who may touch it: any thread, atomically; one byte per proxy slot ID (ID - 1), 1 = hidden.
    // Published (zero: every slot visible) when a filter is first set, so a process that never
    // filters reads a nil address and nothing else.
    nonisolated(unsafe) private static let marksStorage: UnsafeMutablePointer<Atomic<UInt8>> = {
        let memory = UnsafeMutableRawPointer.allocate(byteCount: SlotMap.capacity, alignment: 1)
        memory.initializeMemory(as: UInt8.self, repeating: 0, count: SlotMap.capacity)
        return memory.bindMemory(to: Atomic<UInt8>.self, capacity: SlotMap.capacity)
    }()
    private static let marks = PublishedTable<Atomic<UInt8>>()

    /// Whether a proxy slot ID is hidden now (one load; the bounds check covers spy mode, whose
    /// IDs are the module's own and never marked).
    @inline(__always)
    static func isHidden(_ proxySlot: CK_SLOT_ID) -> Bool {
        guard let marks = marks.base else { return false }
        guard proxySlot >= 1, proxySlot <= CK_SLOT_ID(SlotMap.capacity) else { return false }
        return marks[Int(proxySlot) - 1].load(ordering: .acquiring) != 0
    }

    private static func mark(_ proxySlot: CK_SLOT_ID, hidden: Bool) {
        guard proxySlot >= 1, proxySlot <= CK_SLOT_ID(SlotMap.capacity),
              let marks = marks.base else { return }
        marks[Int(proxySlot) - 1].store(hidden ? 1 : 0, ordering: .releasing)
    }

    /// Whether any filter was ever set in this process: until then nothing is hidden or checked.
    @inline(__always)
    private static var everFiltered: Bool {
        marks.base != nil
    }

    // MARK: Configuration (ProxyRuntime.startModules, under its lock)

    /// Forgets the previous configuration's filters and marks: every slot visible until the new
    /// one says otherwise. Only while no caller is initialised.
    static func reset() {
        ProxyRuntime.stateLock.withLock { filters = [] }
        guard let marks = marks.base else { return }
        for index in 0..<SlotMap.capacity { marks[index].store(0, ordering: .relaxed) }
    }

    /// Sets the module's filter (nil: none), after its C_Initialize and before its slots are listed.
    static func set(_ filter: TokenFilter?, module: ModuleIndex, caller: CallerNumber) {
        let entry = filter.map { filter in
            ModuleFilter(filter: filter, library: TokenInfoReading.library { ModuleCall.C_GetInfo(ModuleTable.entry(module), caller, $0) })
        }
        if entry != nil { marks.publish(marksStorage) }
        ProxyRuntime.stateLock.withLock {
            while filters.count <= module.value { filters.append(nil) }
            filters[module.value] = entry
        }
    }

    private static func filter(of module: ModuleIndex) -> ModuleFilter? {
        ProxyRuntime.stateLock.withLock { module.value < filters.count ? filters[module.value] : nil }
    }

    // MARK: Deciding (C_Initialize, C_GetSlotList, C_WaitForSlotEvent, C_OpenSession)

    /// The proxy ID callers see the module's slot under now, assigned on first sight as SlotMap
    /// does; nil when the filter hides the slot (or the map is full).
    static func proxySlot(module: ModuleIndex, realSlot: CK_SLOT_ID, caller: CallerNumber) -> CK_SLOT_ID? {
        let key = SlotKey(module: module, realSlot: realSlot)
        guard everFiltered, let entry = filter(of: module) else {
            let proxySlot = SlotMap.proxySlot(for: key)
            if let proxySlot { mark(proxySlot, hidden: false) }
            return proxySlot
        }
        guard shows(entry, module: module, realSlot: realSlot, caller: caller) else {
            if let known = SlotMap.knownProxySlot(for: key) { mark(known, hidden: true) }
            return nil
        }
        let proxySlot = SlotMap.proxySlot(for: key)
        if let proxySlot { mark(proxySlot, hidden: false) }
        return proxySlot
    }

    /// The proxy ID to report an event on the module's slot under, or nil when callers must not
    /// hear of it: the slot is hidden now and was hidden before. An event on a slot callers could
    /// see (its token was pulled, or replaced by one the filter hides) is reported under its old
    /// ID, which from then on answers CKR_SLOT_ID_INVALID, as a slot that went away does.
    static func eventSlot(module: ModuleIndex, realSlot: CK_SLOT_ID, caller: CallerNumber) -> CK_SLOT_ID? {
        let known = SlotMap.knownProxySlot(for: SlotKey(module: module, realSlot: realSlot))
        let wasVisible = known.map { !isHidden($0) } ?? false
        if let proxySlot = proxySlot(module: module, realSlot: realSlot, caller: caller) { return proxySlot }
        return wasVisible ? known : nil
    }

    /// One non-blocking C_WaitForSlotEvent of the module, passing over the events of slots its
    /// filter hides (so a visible event queued behind them is not reported as CKR_NO_EVENT): the
    /// module's answer, and the proxy ID of the event's slot (nil when the map is full).
    static func pollEvent(module: ModuleIndex, caller: CallerNumber, flags: CK_FLAGS) -> (CK_RV, CK_SLOT_ID?) {
        // Bounded, in case a module keeps answering CKR_OK for hidden slots.
        for _ in 0..<64 {
            var realSlot: CK_SLOT_ID = 0
            let rv = ModuleCall.C_WaitForSlotEvent(ModuleTable.entry(module), caller, flags, &realSlot, nil)
            guard rv == CKR_OK else { return (rv, nil) }
            if let proxySlot = eventSlot(module: module, realSlot: realSlot, caller: caller) { return (rv, proxySlot) }
            guard isFiltered(module) else { return (rv, nil) }
        }
        return (CK_RV(CKR_NO_EVENT), nil)
    }

    /// Whether the module has a filter (an event on a slot it hides is not an error).
    static func isFiltered(_ module: ModuleIndex) -> Bool {
        everFiltered && filter(of: module) != nil
    }

    /// C_OpenSession's check: the token in a filtered module's slot may have changed since the
    /// slot was last listed, and a session is the way to its objects. False (and the slot marked
    /// hidden) when the filter hides what is in the slot now. One load for unfiltered processes.
    static func stillShown(_ proxySlot: CK_SLOT_ID, module: ModuleIndex, realSlot: CK_SLOT_ID, caller: CallerNumber) -> Bool {
        guard everFiltered, let entry = filter(of: module) else { return true }
        guard shows(entry, module: module, realSlot: realSlot, caller: caller) else {
            mark(proxySlot, hidden: true)
            return false
        }
        return true
    }

    private static func shows(_ entry: ModuleFilter, module: ModuleIndex, realSlot: CK_SLOT_ID, caller: CallerNumber) -> Bool {
        let target = ModuleTable.entry(module)
        return TokenInfoReading.shows(
            entry.filter, library: entry.library, slot: realSlot,
            getSlotInfo: { ModuleCall.C_GetSlotInfo(target, caller, $0, $1) },
            getTokenInfo: { ModuleCall.C_GetTokenInfo(target, caller, $0, $1) })
    }
}

extension SlotMap {
    /// The proxy ID a module's slot already has, without assigning one (entries below `count`
    /// never change, so no lock is needed).
    static func knownProxySlot(for key: SlotKey) -> CK_SLOT_ID? {
        if SpyModule.index == key.module { return key.realSlot }
        guard let entries = entries.base else { return nil }
        let count = count.load(ordering: .acquiring)
        for index in 0..<count where entries[index] == key { return CK_SLOT_ID(index + 1) }
        return nil
    }
}
