// ModuleEntry's dispatch table: calls reach the functions loaded into the slot; a traced module
// dispatches through the empty table (so the slow path, which traces); a missing function
// answers CKR_FUNCTION_NOT_SUPPORTED.
import CPKCS11
import Testing
@testable import P11Proxy

@Suite(.serialized) struct ModuleTableTests {
    @Test func callsReachTheLoadedFunctionsAndTracingSwitchesTheTable() {
        _ = ModuleTable.publishEntries()
        let slot = ModuleTable.entry(ModuleIndex(ModuleTable.capacity - 1))
        var functions = CK_FUNCTION_LIST_3_2()
        functions.C_GetSessionInfo = { _, _ in CK_RV(0x8000_1234) }
        slot.load(functions)
        #expect(slot.pointee.dispatch == UnsafeRawPointer(slot).assumingMemoryBound(to: CK_FUNCTION_LIST_3_2.self))
        #expect(ModuleCall.C_GetSessionInfo(slot, CallerNumber(0), 1, nil) == 0x8000_1234)
        #expect(ModuleCall.C_CloseSession(slot, CallerNumber(0), 1) == CKR_FUNCTION_NOT_SUPPORTED)

        slot.setTraceMode(.enabled)
        #expect(slot.pointee.dispatch == UnsafePointer(ModuleTable.noFunctions))
        #expect(slot.pointee.dispatch.pointee.C_GetSessionInfo == nil)
        slot.setTraceMode([])
        #expect(ModuleCall.C_GetSessionInfo(slot, CallerNumber(0), 1, nil) == 0x8000_1234)
        slot.load(CK_FUNCTION_LIST_3_2())
    }
}
