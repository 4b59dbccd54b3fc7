// ModuleSlotList: how the module and `p11proxy list` read a module's slots, driven by scripted
// C_GetSlotList answers (a module that grows, shrinks, repeats IDs, fails or lies about its count).
import CPKCS11
import Testing
@testable import P11ProxyLoader

/// A C_GetSlotList that answers from a script: each call takes the next slot list.
private final class ScriptedSlotList {
    var answers: [(rv: CK_RV, ids: [CK_SLOT_ID])]
    var calls = 0

    init(_ answers: [(rv: CK_RV, ids: [CK_SLOT_ID])]) { self.answers = answers }

    func call(_ present: CK_BBOOL, _ list: UnsafeMutablePointer<CK_SLOT_ID>?, _ count: UnsafeMutablePointer<CK_ULONG>) -> CK_RV {
        let answer = answers[min(calls, answers.count - 1)]
        calls += 1
        guard answer.rv == CKR_OK else { return answer.rv }
        guard let list else {
            count.pointee = CK_ULONG(answer.ids.count)
            return CK_RV(CKR_OK)
        }
        guard count.pointee >= CK_ULONG(answer.ids.count) else {
            count.pointee = CK_ULONG(answer.ids.count)
            return CK_RV(CKR_BUFFER_TOO_SMALL)
        }
        for (index, id) in answer.ids.enumerated() { list[index] = id }
        count.pointee = CK_ULONG(answer.ids.count)
        return CK_RV(CKR_OK)
    }

    func read() -> ModuleSlotList {
        ModuleSlotList.read(tokenPresent: CK_BBOOL(CK_FALSE)) { call($0, $1, $2) }
    }
}

private let ok = CK_RV(CKR_OK)

@Suite struct ModuleSlotListTests {
    @Test func plainListInTheModulesOrder() {
        let list = ScriptedSlotList([(ok, [9, 2, 5])]).read()
        #expect(list.ids == [9, 2, 5])
        #expect(list.problem == nil)
        #expect(!list.hadRepeats)
    }

    @Test func repeatedIDsKeptOnceAndReported() {
        let list = ScriptedSlotList([(ok, [4, 4, 1, 4])]).read()
        #expect(list.ids == [4, 1])
        #expect(list.hadRepeats)
    }

    @Test func growthBetweenTheTwoCallsIsAskedAgain() {
        // count says 1, the fetch then sees 3 (too small for the spare entry): asked again.
        let script = ScriptedSlotList([(ok, [1]), (ok, [1, 2, 3]), (ok, [1, 2, 3]), (ok, [1, 2, 3])])
        let list = script.read()
        #expect(list.ids == [1, 2, 3])
        #expect(script.calls == 4)
    }

    @Test func failureNamesTheReturnValue() {
        let list = ScriptedSlotList([(CK_RV(CKR_DEVICE_ERROR), [])]).read()
        #expect(list.ids.isEmpty)
        #expect(list.problem == "failed: CKR_DEVICE_ERROR")
        #expect(ModuleSlotList.problemMessage(module: "m", list.problem!)
            == "module 'm': C_GetSlotList failed: CKR_DEVICE_ERROR; its slots are not listed")
    }

    @Test func absurdCountRefused() {
        let list = ScriptedSlotList([(ok, [CK_SLOT_ID](repeating: 1, count: Int(ModuleSlotList.maximumCount) + 1))]).read()
        #expect(list.ids.isEmpty)
        #expect(list.problem == "claims \(ModuleSlotList.maximumCount + 1) slots")
    }

    @Test func countThatNeverSettles() {
        var answers: [(rv: CK_RV, ids: [CK_SLOT_ID])] = []
        for size in 1...8 { answers.append((ok, Array(1...CK_SLOT_ID(size * 2)))) }
        let list = ScriptedSlotList(answers).read()
        #expect(list.problem == "its slot count kept changing")
    }

    @Test func repeatsDroppedFirstOccurrencesKeptInOrder() {
        #expect(ModuleSlotList.withoutRepeats([5, 3, 9][...]) == [5, 3, 9])
        #expect(ModuleSlotList.withoutRepeats([5, 3, 5, 9, 3, 3][...]) == [5, 3, 9])
        #expect(ModuleSlotList.withoutRepeats([7, 7, 7][...]) == [7])
        #expect(ModuleSlotList.withoutRepeats([][...]) == [])
        #expect(ModuleSlotList.withoutRepeats([CK_SLOT_ID.max, 0, CK_SLOT_ID.max, 1, 0][...]) == [CK_SLOT_ID.max, 0, 1])
    }
}
