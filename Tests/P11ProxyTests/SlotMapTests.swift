// SlotMap: proxy slot IDs are stable, distinct and never reused.
import CPKCS11
import Testing
@testable import P11Proxy

@Suite struct SlotMapTests {
    @Test func idsAreStableAndDistinctAcrossModules() throws {
        let a = try #require(SlotMap.proxySlot(for: SlotKey(module: 100, realSlot: 1)))
        let b = try #require(SlotMap.proxySlot(for: SlotKey(module: 101, realSlot: 1)))
        #expect(a != b)
        #expect(SlotMap.proxySlot(for: SlotKey(module: 100, realSlot: 1)) == a)
        #expect(SlotMap.key(for: a) == SlotKey(module: 100, realSlot: 1))
        #expect(SlotMap.key(for: b) == SlotKey(module: 101, realSlot: 1))
        #expect(SlotMap.key(for: 0) == nil)
        #expect(SlotMap.key(for: CK_SLOT_ID(SlotMap.capacity + 1)) == nil)
    }
}

@Suite struct SlotIDsTests {
    @Test func repeatsDroppedFirstOccurrencesKeptInOrder() {
        #expect(SlotIDs.withoutRepeats([5, 3, 9][...]) == [5, 3, 9])
        #expect(SlotIDs.withoutRepeats([5, 3, 5, 9, 3, 3][...]) == [5, 3, 9])
        #expect(SlotIDs.withoutRepeats([7, 7, 7][...]) == [7])
        #expect(SlotIDs.withoutRepeats([][...]) == [])
        #expect(SlotIDs.withoutRepeats([CK_SLOT_ID.max, 0, CK_SLOT_ID.max, 1, 0][...]) == [CK_SLOT_ID.max, 0, 1])
    }
}
