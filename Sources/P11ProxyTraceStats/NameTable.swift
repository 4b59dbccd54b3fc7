// Byte strings (function, module and return-value names, caller and thread numbers) numbered
// in the order first seen, so counting a record looks its names up without making a String.

struct NameTable {
    private(set) var names: [[UInt8]] = []
    /// Open addressing: a name's number + 1, 0 for an empty slot; the count a power of two.
    private var slots = [Int32](repeating: 0, count: 64)
    private var hashes: [UInt64] = []

    var count: Int { names.count }

    /// The number of `bytes`, or nil when it is new and `limit` names are already known.
    mutating func number(of bytes: UnsafeRawBufferPointer, limit: Int = Int.max) -> Int? {
        let hash = Self.hash(bytes)
        let mask = slots.count - 1
        var slot = Int(truncatingIfNeeded: hash) & mask
        while slots[slot] != 0 {
            let candidate = Int(slots[slot]) - 1
            if hashes[candidate] == hash && Self.equal(names[candidate], bytes) { return candidate }
            slot = (slot + 1) & mask
        }
        guard names.count < limit else { return nil }
        let number = names.count
        names.append(Array(bytes))
        hashes.append(hash)
        slots[slot] = Int32(number + 1)
        if names.count * 2 > slots.count { grow() }
        return number
    }

    mutating func number(of text: String) -> Int {
        var text = text
        return text.withUTF8 { number(of: UnsafeRawBufferPointer($0))! }
    }

    func name(_ number: Int) -> String { String(decoding: names[number], as: UTF8.self) }

    private mutating func grow() {
        slots = [Int32](repeating: 0, count: slots.count * 2)
        let mask = slots.count - 1
        for (number, hash) in hashes.enumerated() {
            var slot = Int(truncatingIfNeeded: hash) & mask
            while slots[slot] != 0 { slot = (slot + 1) & mask }
            slots[slot] = Int32(number + 1)
        }
    }

    /// FNV-1a: names are short, and a fixed hash keeps runs (and the fuzzer) reproducible.
    @inline(__always)
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        return hash
    }

    @inline(__always)
    static func equal(_ name: [UInt8], _ bytes: UnsafeRawBufferPointer) -> Bool {
        guard name.count == bytes.count else { return false }
        return name.withUnsafeBytes { stored in
            for index in 0..<stored.count where stored[index] != bytes[index] { return false }
            return true
        }
    }
}
