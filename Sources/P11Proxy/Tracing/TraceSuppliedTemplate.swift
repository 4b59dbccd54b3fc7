// C_GetAttributeValue's template as the caller supplied it, read before the module runs: each
// value buffer and how many bytes it holds, and the same for the entries of a nested template
// (CKA_WRAP_TEMPLATE and the other attribute arrays). The OUT record reads values through these,
// never through what the module left in the template, so a module that reports more than a
// buffer holds (or rewrites pValue) cannot make the tracer read past the caller's memory.
import CPKCS11
import P11ProxyNames

/// One attribute's buffer as the caller supplied it.
struct SuppliedValue {
    let pointer: UnsafeMutableRawPointer?
    let capacity: CK_ULONG
    /// The entries of the nested template the caller supplied in this buffer, if it is one.
    let nested: SuppliedTemplate?
}

/// A view of entries kept in a TraceBuffer (the thread's scratch, so nothing is allocated per
/// call): four words each, pValue, ulValueLen, first nested entry, nested count. The top-level
/// entries come first, in template order; the nested ones after them.
struct SuppliedTemplate {
    private let store: UnsafeRawBufferPointer
    private let first: Int
    let count: Int

    /// The `count` top-level entries of what `remember` wrote into `store`.
    init(_ store: UnsafeRawBufferPointer, count: Int) {
        self.init(store: store, first: 0, count: count)
    }

    private init(store: UnsafeRawBufferPointer, first: Int, count: Int) {
        self.store = store
        self.first = first
        self.count = count
    }

    private static let wordSize = MemoryLayout<UInt>.size
    private static let entrySize = 4 * wordSize

    /// Out of range (which `remember` never leaves): a buffer that holds nothing.
    subscript(index: Int) -> SuppliedValue {
        let entry = (first + index) * Self.entrySize
        guard index >= 0, index < count, entry + Self.entrySize <= store.count else {
            return SuppliedValue(pointer: nil, capacity: 0, nested: nil)
        }
        let nestedCount = Int(Self.word(store, entry, 3))
        return SuppliedValue(pointer: UnsafeMutableRawPointer(bitPattern: Self.word(store, entry, 0)),
                             capacity: CK_ULONG(Self.word(store, entry, 1)),
                             nested: nestedCount > 0 ? SuppliedTemplate(store: store, first: Int(Self.word(store, entry, 2)),
                                                                        count: nestedCount) : nil)
    }

    private static func word(_ store: UnsafeRawBufferPointer, _ entry: Int, _ index: Int) -> UInt {
        store.loadUnaligned(fromByteOffset: entry + index * wordSize, as: UInt.self)
    }

    /// Writes the template's `count` entries into `store` (emptied first). Nested templates are
    /// kept up to TraceRecord.elementLimit entries in all; one beyond that is shown as bytes.
    static func remember(_ template: UnsafeMutablePointer<CK_ATTRIBUTE>, _ count: Int, into store: inout TraceBuffer) {
        store.removeAll()
        store.reserve(count * entrySize)
        var nestedTotal = 0
        for index in 0..<count {
            let attribute = template[index]
            let nested = nestedCount(attribute, room: TraceRecord.elementLimit - nestedTotal)
            append(attribute.pValue, attribute.ulValueLen, nestedFirst: count + nestedTotal, nested, to: &store)
            nestedTotal += nested
        }
        guard nestedTotal > 0 else { return }
        // The nested entries, from the pointers and counts just recorded (the template is the
        // caller's memory: it is not read a second time for them).
        for index in 0..<count {
            let entry = index * entrySize
            let nested = Int(word(store.bytes, entry, 3))
            guard nested > 0, let entries = UnsafePointer<CK_ATTRIBUTE>(bitPattern: word(store.bytes, entry, 0)) else { continue }
            for inner in 0..<nested {
                append(entries[inner].pValue, entries[inner].ulValueLen, nestedFirst: 0, 0, to: &store)
            }
        }
    }

    /// How many entries an attribute array the caller supplied holds (0 for any other attribute,
    /// and when they are more than `room`).
    private static func nestedCount(_ attribute: CK_ATTRIBUTE, room: Int) -> Int {
        let size = CK_ULONG(MemoryLayout<CK_ATTRIBUTE>.size)
        guard attribute.pValue != nil, attribute.ulValueLen != CK_ULONG.max, attribute.ulValueLen % size == 0,
              PKCS11Name.attributeKind(attribute.type) == .attributes else { return 0 }
        let entries = attribute.ulValueLen / size
        return entries <= CK_ULONG(room) ? Int(entries) : 0
    }

    private static func append(_ pointer: UnsafeMutableRawPointer?, _ capacity: CK_ULONG, nestedFirst: Int, _ nestedCount: Int,
                               to store: inout TraceBuffer) {
        var entry = (UInt(bitPattern: pointer), UInt(capacity), UInt(nestedFirst), UInt(nestedCount))
        withUnsafeBytes(of: &entry) { store.append($0) }
    }
}
