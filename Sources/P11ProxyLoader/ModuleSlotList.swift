// A module's slot list as p11proxy takes it, for the module (C_Initialize, C_GetSlotList) and
// for `p11proxy list` alike, so both number the same slots: PKCS#11 3.0 section 5.5's two calls
// (count, then list), asked again when the count changes in between, repeated IDs dropped.
import CPKCS11
import P11ProxyNames

package struct ModuleSlotList {
    /// The module's slot IDs in its order, each once.
    package var ids: [CK_SLOT_ID] = []
    /// Why no slots could be read (the module still loads); nil when the module answered.
    package var problem: String?
    /// The module listed an ID more than once (only the first is kept).
    package var hadRepeats = false

    /// More slots than any module has; a larger count is taken as a broken answer.
    package static let maximumCount: CK_ULONG = 65536

    /// `getSlotList`: the module's C_GetSlotList (through whatever layer the caller uses).
    package static func read(tokenPresent: CK_BBOOL,
                             _ getSlotList: (CK_BBOOL, UnsafeMutablePointer<CK_SLOT_ID>?, UnsafeMutablePointer<CK_ULONG>) -> CK_RV)
        -> ModuleSlotList {
        var list = ModuleSlotList()
        // Hot-plug (or a broken module) can change the count between the two calls: ask again.
        for _ in 0..<4 {
            var count: CK_ULONG = 0
            var rv = getSlotList(tokenPresent, nil, &count)
            guard rv == CKR_OK else { return failed("failed: \(PKCS11Name.returnValueText(rv))") }
            guard count > 0 else { return list }
            guard count <= maximumCount else { return failed("claims \(count) slots") }
            // One spare entry: a module that grew by one answers CKR_OK with count + 1.
            var slots = [CK_SLOT_ID](repeating: 0, count: Int(count) + 1)
            var fetched = count + 1
            rv = slots.withUnsafeMutableBufferPointer { getSlotList(tokenPresent, $0.baseAddress, &fetched) }
            if rv == CKR_BUFFER_TOO_SMALL { continue }
            guard rv == CKR_OK else { return failed("failed: \(PKCS11Name.returnValueText(rv))") }
            guard fetched <= CK_ULONG(slots.count) else { continue }
            list.ids = withoutRepeats(slots.prefix(Int(fetched)))
            list.hadRepeats = list.ids.count != Int(fetched)
            return list
        }
        return failed("its slot count kept changing")
    }

    private static func failed(_ problem: String) -> ModuleSlotList {
        var list = ModuleSlotList()
        list.problem = problem
        return list
    }

    /// `ids` without repeated IDs, first occurrences in the module's order. Sorting a copy tells
    /// whether anything repeats at all, without a hashed Set on the start-up path.
    package static func withoutRepeats(_ ids: ArraySlice<CK_SLOT_ID>) -> [CK_SLOT_ID] {
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

    // MARK: The messages (Diagnostics.report prefixes "p11proxy: ")

    package static func problemMessage(module: String, _ problem: String) -> String {
        "module '\(module)': C_GetSlotList \(problem); its slots are not listed"
    }

    package static func repeatsMessage(module: String) -> String {
        "module '\(module)' listed the same slot ID twice; duplicates ignored"
    }
}
