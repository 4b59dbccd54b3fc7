// SlotMap: proxy slot IDs are stable, distinct and never reused.
import CPKCS11
import Testing
@testable import P11Proxy

@Suite struct SlotMapTests {
    @Test func idsAreStableAndDistinctAcrossModules() throws {
        let a = try #require(SlotMap.proxySlot(for: SlotKey(module: ModuleIndex(100), realSlot: 1)))
        let b = try #require(SlotMap.proxySlot(for: SlotKey(module: ModuleIndex(101), realSlot: 1)))
        #expect(a != b)
        #expect(SlotMap.proxySlot(for: SlotKey(module: ModuleIndex(100), realSlot: 1)) == a)
        #expect(SlotMap.key(for: a) == SlotKey(module: ModuleIndex(100), realSlot: 1))
        #expect(SlotMap.key(for: b) == SlotKey(module: ModuleIndex(101), realSlot: 1))
        #expect(SlotMap.key(for: 0) == nil)
        #expect(SlotMap.key(for: CK_SLOT_ID(SlotMap.capacity + 1)) == nil)
    }
}
