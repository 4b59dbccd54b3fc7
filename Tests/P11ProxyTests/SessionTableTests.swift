// SessionTable: handle uniqueness, ownership, stale handles, and retirement races.
import CPKCS11
import Testing
@testable import P11Proxy

@Suite(.serialized) struct SessionTableTests {
    @Test func handlesAreUniqueAndResolveToTheirOwnerOnly() throws {
        var handles = Set<CK_SESSION_HANDLE>()
        for index in 0..<500 {
            let handle = try #require(SessionTable.open(caller: CallerNumber(index % 3), module: ModuleIndex(7), proxySlot: 2, realHandle: CK_ULONG(index)))
            #expect(handles.insert(handle).inserted)
            #expect(handle >> 32 == 0, "handles fit 32 bits")
            let record = try #require(SessionTable.resolve(handle, caller: CallerNumber(index % 3)))
            #expect(record.realHandle == CK_ULONG(index))
            #expect(record.moduleIndex == ModuleIndex(7))
            #expect(record.proxySlot == 2)
            #expect(SessionTable.resolve(handle, caller: CallerNumber((index % 3) + 1)) == nil, "another caller's handle")
        }
        for handle in handles {
            for caller in 0..<3 {
                if let record = SessionTable.resolve(handle, caller: CallerNumber(caller)) { #expect(SessionTable.release(record)) }
            }
        }
    }

    @Test func indexZeroIsNeverHandedOutSoNoHandleIsZeroAndEveryIndexIsInTheTable() throws {
        var opened: [CK_SESSION_HANDLE] = []
        for index in 0..<300 {
            let handle = try #require(SessionTable.open(caller: CallerNumber(2), module: ModuleIndex(3), proxySlot: 4, realHandle: CK_ULONG(index)))
            #expect(handle & SessionTable.indexMask != 0, "index 0 stays dead")
            opened.append(handle)
        }
        // Every 20-bit index, with any generation, resolves or not without reading outside the table.
        for handle: CK_SESSION_HANDLE in [0, 1 << 20, SessionTable.indexMask, SessionTable.indexMask | 0xFFF << 20, 0xFFFF_FFFF] {
            #expect(SessionTable.resolve(handle, caller: CallerNumber(2)) == nil)
        }
        for handle in opened { SessionTable.release(try #require(SessionTable.resolve(handle, caller: CallerNumber(2)))) }
    }

    @Test func closedHandlesStayInvalidEvenWhenTheirEntryIsReused() throws {
        let first = try #require(SessionTable.open(caller: CallerNumber(1), module: ModuleIndex(1), proxySlot: 1, realHandle: 10))
        let record = try #require(SessionTable.resolve(first, caller: CallerNumber(1)))
        #expect(SessionTable.release(record))
        #expect(SessionTable.release(record) == false, "a second release of the same session loses")
        #expect(SessionTable.resolve(first, caller: CallerNumber(1)) == nil)
        var reopened: [CK_SESSION_HANDLE] = []
        for index in 0..<2000 {
            let handle = try #require(SessionTable.open(caller: CallerNumber(1), module: ModuleIndex(1), proxySlot: 1, realHandle: CK_ULONG(index)))
            #expect(handle != first)
            reopened.append(handle)
        }
        #expect(SessionTable.resolve(first, caller: CallerNumber(1)) == nil)
        for handle in reopened { SessionTable.release(try #require(SessionTable.resolve(handle, caller: CallerNumber(1)))) }
    }

    @Test func handlesNeverGivenOutDoNotResolve() {
        for handle: CK_SESSION_HANDLE in [0, 1, 0xFFFFF, 0xFFFF_FFFF, ~0, 1 << 40 | 1] {
            #expect(SessionTable.resolve(handle, caller: CallerNumber(0)) == nil)
        }
    }

    @Test func liveSessionsFiltersByCallerAndSlot() throws {
        let a = try #require(SessionTable.open(caller: CallerNumber(5), module: ModuleIndex(2), proxySlot: 9, realHandle: 1))
        let b = try #require(SessionTable.open(caller: CallerNumber(5), module: ModuleIndex(2), proxySlot: 8, realHandle: 2))
        let c = try #require(SessionTable.open(caller: CallerNumber(6), module: ModuleIndex(2), proxySlot: 9, realHandle: 3))
        let found = SessionTable.liveSessions { caller, _, slot in caller == CallerNumber(5) && slot == 9 }
        #expect(found.map(\.realHandle) == [1])
        for handle in [(a, 5), (b, 5), (c, 6)] {
            SessionTable.release(try #require(SessionTable.resolve(handle.0, caller: CallerNumber(handle.1))))
        }
        #expect(SessionTable.liveSessions { caller, _, _ in caller == CallerNumber(5) || caller == CallerNumber(6) }.isEmpty)
    }

    @Test func concurrentOpenAndCloseNeverHandsOutALiveHandleTwice() async throws {
        let collisions = await withTaskGroup(of: Int.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    var collisions = 0
                    for round in 0..<2000 {
                        guard let handle = SessionTable.open(caller: CallerNumber(20 + worker), module: ModuleIndex(3), proxySlot: 1,
                                                             realHandle: CK_ULONG(round)) else { continue }
                        guard let record = SessionTable.resolve(handle, caller: CallerNumber(20 + worker)),
                              record.realHandle == CK_ULONG(round) else {
                            collisions += 1
                            continue
                        }
                        if !SessionTable.release(record) { collisions += 1 }
                    }
                    return collisions
                }
            }
            return await group.reduce(0, +)
        }
        #expect(collisions == 0)
    }

    @Test func aThreadThatOpensAndClosesInALoopCyclesThroughABatchOfEntries() throws {
        // With the per-thread cache, a just-closed entry waits behind at least a batch of others,
        // so a stale handle needs batch x 4096 opens on that thread to alias again.
        var lastUse: [Int: Int] = [:]
        var shortestReuse = Int.max
        for round in 0..<200 {
            let handle = try #require(SessionTable.open(caller: CallerNumber(9), module: ModuleIndex(1), proxySlot: 1, realHandle: CK_ULONG(round)))
            let index = Int(handle & SessionTable.indexMask)
            if let last = lastUse[index] { shortestReuse = min(shortestReuse, round - last) }
            lastUse[index] = round
            SessionTable.release(try #require(SessionTable.resolve(handle, caller: CallerNumber(9))))
        }
        #expect(shortestReuse >= SessionIndexPool.batch)
    }

    @Test func sessionsOpenedOnOneThreadAndClosedOnAnotherAreAllFreedAndFound() async throws {
        let opened = try (0..<100).map { round in
            try #require(SessionTable.open(caller: CallerNumber(30), module: ModuleIndex(2), proxySlot: 3, realHandle: CK_ULONG(round)))
        }
        #expect(SessionTable.liveSessions { caller, _, _ in caller == CallerNumber(30) }.count == 100)
        let released = await Task.detached {
            opened.filter { handle in
                SessionTable.resolve(handle, caller: CallerNumber(30)).map { SessionTable.release($0) } ?? false
            }.count
        }.value
        #expect(released == 100)
        #expect(SessionTable.liveSessions { caller, _, _ in caller == CallerNumber(30) }.isEmpty)
        for handle in opened { #expect(SessionTable.resolve(handle, caller: CallerNumber(30)) == nil) }
    }

    @Test func freeIndexQueueIsFirstInFirstOut() {
        var queue = FreeIndexQueue()
        for index in 0..<3000 { queue.push(index) }
        for index in 0..<3000 { #expect(queue.pop() == index) }
        #expect(queue.pop() == nil)
    }
}
