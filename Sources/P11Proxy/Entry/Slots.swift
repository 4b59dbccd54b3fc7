// C_GetSlotList merges every active module's slots in load order; C_WaitForSlotEvent watches
// them all. Neither holds a lock while a module runs.
import CPKCS11
import Glibc
import P11ProxyLoader

extension Entry {
    @inline(never)
    static func C_GetSlotList(_ tokenPresent: CK_BBOOL, _ pSlotList: CK_SLOT_ID_PTR?, _ pulCount: CK_ULONG_PTR?, _ caller: CallerNumber) -> CK_RV {
        guard CallerPool.isInitialized(caller) else { return CK_RV(CKR_CRYPTOKI_NOT_INITIALIZED) }
        guard let pulCount else { return CK_RV(CKR_ARGUMENTS_BAD) }
        var slots: [CK_SLOT_ID] = []
        for module in ActiveModules.current() {
            for realSlot in SlotQuery.realSlots(of: module, caller: caller, tokenPresent: tokenPresent) {
                if let proxySlot = TokenVisibility.proxySlot(module: module, realSlot: realSlot, caller: caller) {
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
    static func C_WaitForSlotEvent(_ flags: CK_FLAGS, _ pSlot: CK_SLOT_ID_PTR?, _ pReserved: CK_VOID_PTR?, _ caller: CallerNumber) -> CK_RV {
        guard CallerPool.isInitialized(caller) else { return CK_RV(CKR_CRYPTOKI_NOT_INITIALIZED) }
        guard let pSlot, pReserved == nil else { return CK_RV(CKR_ARGUMENTS_BAD) }
        let modules = ActiveModules.current().filter {
            ModuleTable.entry($0).pointee.functions.C_WaitForSlotEvent != nil
        }
        guard !modules.isEmpty else { return CK_RV(CKR_FUNCTION_NOT_SUPPORTED) }
        let dontBlock = flags & CK_FLAGS(CKF_DONT_BLOCK) != 0
        if !dontBlock, modules.count == 1 {
            return SlotQuery.waitBlocking(module: modules[0], caller: caller, flags: flags, pSlot: pSlot)
        }
        while true {
            var supported = false
            for module in modules {
                let (rv, event) = TokenVisibility.pollEvent(module: module, caller: caller, flags: flags | CK_FLAGS(CKF_DONT_BLOCK))
                if rv == CKR_OK, let proxySlot = event {
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
    /// A module's slot IDs (ModuleSlotList: retried when the count changes, repeats dropped).
    /// A module that fails is left out, with a message.
    static func realSlots(of module: ModuleIndex, caller: CallerNumber, tokenPresent: CK_BBOOL) -> [CK_SLOT_ID] {
        let slot = ModuleTable.entry(module)
        let list = ModuleSlotList.read(tokenPresent: tokenPresent) { present, ids, count in
            ModuleCall.C_GetSlotList(slot, caller, present, ids, count)
        }
        if let problem = list.problem { Diagnostics.report(ModuleSlotList.problemMessage(module: name(module), problem)) }
        if list.hadRepeats { Diagnostics.report(ModuleSlotList.repeatsMessage(module: name(module))) }
        return list.ids
    }

    static func waitBlocking(module: ModuleIndex, caller: CallerNumber, flags: CK_FLAGS, pSlot: UnsafeMutablePointer<CK_SLOT_ID>) -> CK_RV {
        while true {
            var realSlot: CK_SLOT_ID = 0
            let rv = ModuleCall.C_WaitForSlotEvent(ModuleTable.entry(module), caller, flags, &realSlot, nil)
            guard rv == CKR_OK else { return rv }
            if let proxySlot = TokenVisibility.eventSlot(module: module, realSlot: realSlot, caller: caller) {
                pSlot.pointee = proxySlot
                return CK_RV(CKR_OK)
            }
            // A slot the token filter hides: the caller hears nothing, and waits on.
            guard TokenVisibility.isFiltered(module) else { return CK_RV(CKR_GENERAL_ERROR) }
        }
    }

    private static func name(_ module: ModuleIndex) -> String {
        ProxyRuntime.record(module)?.name ?? "#\(module.value)"
    }
}
