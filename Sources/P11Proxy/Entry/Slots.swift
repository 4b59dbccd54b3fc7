// C_GetSlotList merges every active module's slots in load order; C_WaitForSlotEvent watches
// them all. Neither holds a lock while a module runs.
import CPKCS11
import Glibc

extension Entry {
    @inline(never)
    static func C_GetSlotList(_ tokenPresent: CK_BBOOL, _ pSlotList: CK_SLOT_ID_PTR?, _ pulCount: CK_ULONG_PTR?, _ caller: Int) -> CK_RV {
        guard CallerPool.isInitialized(caller) else { return CK_RV(CKR_CRYPTOKI_NOT_INITIALIZED) }
        guard let pulCount else { return CK_RV(CKR_ARGUMENTS_BAD) }
        var slots: [CK_SLOT_ID] = []
        for module in ProxyRuntime.activeModules() {
            for realSlot in SlotQuery.realSlots(of: module, caller: caller, tokenPresent: tokenPresent) {
                if let proxySlot = SlotMap.proxySlot(for: SlotKey(module: module, realSlot: realSlot)) {
                    slots.append(proxySlot)
                }
            }
        }
        // PKCS#11 3.0 section 5.5: NULL list asks for the count; a short buffer gets
        // CKR_BUFFER_TOO_SMALL and the count needed.
        guard let pSlotList else {
            pulCount.pointee = CK_ULONG(slots.count)
            return CK_RV(CKR_OK)
        }
        guard pulCount.pointee >= CK_ULONG(slots.count) else {
            pulCount.pointee = CK_ULONG(slots.count)
            return CK_RV(CKR_BUFFER_TOO_SMALL)
        }
        for (offset, slot) in slots.enumerated() { pSlotList[offset] = slot }
        pulCount.pointee = CK_ULONG(slots.count)
        return CK_RV(CKR_OK)
    }

    /// With CKF_DONT_BLOCK: asks each module without blocking. Blocking with one module: that
    /// module's own blocking call. Blocking with several: polls them every 100 ms until an event,
    /// or until the caller finalises (CKR_CRYPTOKI_NOT_INITIALIZED, as the spec asks), since one
    /// blocking call cannot wait on several modules and p11proxy starts no threads.
    @inline(never)
    static func C_WaitForSlotEvent(_ flags: CK_FLAGS, _ pSlot: CK_SLOT_ID_PTR?, _ pReserved: CK_VOID_PTR?, _ caller: Int) -> CK_RV {
        guard CallerPool.isInitialized(caller) else { return CK_RV(CKR_CRYPTOKI_NOT_INITIALIZED) }
        guard let pSlot, pReserved == nil else { return CK_RV(CKR_ARGUMENTS_BAD) }
        let modules = ProxyRuntime.activeModules().filter {
            ModuleTable.slot($0).pointee.functions.C_WaitForSlotEvent != nil
        }
        guard !modules.isEmpty else { return CK_RV(CKR_FUNCTION_NOT_SUPPORTED) }
        let dontBlock = flags & CK_FLAGS(CKF_DONT_BLOCK) != 0
        if !dontBlock, modules.count == 1 {
            return SlotQuery.waitBlocking(module: modules[0], caller: caller, flags: flags, pSlot: pSlot)
        }
        while true {
            var supported = false
            for module in modules {
                var realSlot: CK_SLOT_ID = 0
                let rv = ModuleCall.C_WaitForSlotEvent(ModuleTable.slot(module), caller, flags | CK_FLAGS(CKF_DONT_BLOCK), &realSlot, nil)
                if rv == CKR_OK, let proxySlot = SlotMap.proxySlot(for: SlotKey(module: module, realSlot: realSlot)) {
                    pSlot.pointee = proxySlot
                    return CK_RV(CKR_OK)
                }
                if rv != CKR_FUNCTION_NOT_SUPPORTED { supported = true }
            }
            guard supported else { return CK_RV(CKR_FUNCTION_NOT_SUPPORTED) }
            if dontBlock { return CK_RV(CKR_NO_EVENT) }
            var pause = timespec(tv_sec: 0, tv_nsec: 100_000_000)
            nanosleep(&pause, nil)
            guard CallerPool.isInitialized(caller) else { return CK_RV(CKR_CRYPTOKI_NOT_INITIALIZED) }
        }
    }
}

enum SlotQuery {
    /// A module's slot IDs. A module that fails is left out (reported once); one whose count
    /// changes between the size query and the fetch (hot-plug, or a broken module) is asked
    /// again a few times; duplicate IDs are dropped.
    static func realSlots(of module: Int, caller: Int, tokenPresent: CK_BBOOL) -> [CK_SLOT_ID] {
        let slot = ModuleTable.slot(module)
        func getSlotList(_ present: CK_BBOOL, _ list: UnsafeMutablePointer<CK_SLOT_ID>?, _ count: UnsafeMutablePointer<CK_ULONG>) -> CK_RV {
            ModuleCall.C_GetSlotList(slot, caller, present, list, count)
        }
        for _ in 0..<4 {
            var count: CK_ULONG = 0
            var rv = getSlotList(tokenPresent, nil, &count)
            guard rv == CKR_OK else { return failed(module, rv) }
            guard count > 0 else { return [] }
            guard count <= 65536 else { return failed(module, CK_RV(CKR_GENERAL_ERROR), "claims \(count) slots") }
            var slots = [CK_SLOT_ID](repeating: 0, count: Int(count) + 1)
            var fetched = count + 1
            rv = slots.withUnsafeMutableBufferPointer { getSlotList(tokenPresent, $0.baseAddress, &fetched) }
            if rv == CKR_BUFFER_TOO_SMALL { continue }
            guard rv == CKR_OK else { return failed(module, rv) }
            guard fetched <= CK_ULONG(slots.count) else { continue }
            let unique = SlotIDs.withoutRepeats(slots.prefix(Int(fetched)))
            if unique.count != Int(fetched) {
                Diagnostics.report("module '\(name(module))' listed the same slot ID twice; duplicates ignored")
            }
            return unique
        }
        return failed(module, CK_RV(CKR_GENERAL_ERROR), "its slot count kept changing")
    }

    static func waitBlocking(module: Int, caller: Int, flags: CK_FLAGS, pSlot: UnsafeMutablePointer<CK_SLOT_ID>) -> CK_RV {
        var realSlot: CK_SLOT_ID = 0
        let rv = ModuleCall.C_WaitForSlotEvent(ModuleTable.slot(module), caller, flags, &realSlot, nil)
        guard rv == CKR_OK else { return rv }
        guard let proxySlot = SlotMap.proxySlot(for: SlotKey(module: module, realSlot: realSlot)) else {
            return CK_RV(CKR_GENERAL_ERROR)
        }
        pSlot.pointee = proxySlot
        return CK_RV(CKR_OK)
    }

    private static func failed(_ module: Int, _ rv: CK_RV, _ detail: String? = nil) -> [CK_SLOT_ID] {
        Diagnostics.report("module '\(name(module))': C_GetSlotList \(detail ?? "failed: \(ReturnValue(rv))"); its slots are not listed")
        return []
    }

    private static func name(_ module: Int) -> String {
        ProxyRuntime.record(module)?.name ?? "#\(module)"
    }
}

enum SlotIDs {
    /// `ids` without repeated IDs, first occurrences in the module's order. Sorting a copy tells
    /// whether anything repeats at all (a Set<CK_SLOT_ID> cost ~85k instructions of runtime type
    /// instantiation in the first C_GetSlotList, issue 5).
    static func withoutRepeats(_ ids: ArraySlice<CK_SLOT_ID>) -> [CK_SLOT_ID] {
        let sorted = ids.sorted()
        guard zip(sorted, sorted.dropFirst()).contains(where: { $0 == $1 }) else { return Array(ids) }
        // Each distinct ID is marked at the first index it has in `sorted`.
        var taken = [Bool](repeating: false, count: sorted.count)
        var unique: [CK_SLOT_ID] = []
        for id in ids {
            var low = 0, high = sorted.count
            while low < high {
                let middle = (low + high) / 2
                if sorted[middle] < id { low = middle + 1 } else { high = middle }
            }
            if !taken[low] {
                taken[low] = true
                unique.append(id)
            }
        }
        return unique
    }
}
