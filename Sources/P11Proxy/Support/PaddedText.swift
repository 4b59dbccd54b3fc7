// PKCS#11 text fields (CK_INFO, CK_SLOT_INFO, ...) are fixed-size, blank-padded, not NUL-terminated.
enum PaddedText {
    static func write<Field>(_ text: String, into field: inout Field) {
        withUnsafeMutableBytes(of: &field) { bytes in
            bytes.initializeMemory(as: UInt8.self, repeating: 0x20)
            for (offset, byte) in text.utf8.prefix(bytes.count).enumerated() { bytes[offset] = byte }
        }
    }
}
