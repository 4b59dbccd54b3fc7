// The request side of p11-kit's message buffer: big-endian primitives appended to a byte array,
// as p11_rpc_buffer_add_* in p11-kit/rpc-message.c write them. No signature knowledge here;
// RPCRequest (RPCMessage.swift) checks the order of arguments against the call table.
import CPKCS11

struct WireWriter {
    private(set) var bytes: [UInt8] = []

    init(reservingCapacity capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    mutating func byte(_ value: UInt8) { bytes.append(value) }

    mutating func uint32(_ value: UInt32) {
        bytes.append(UInt8(truncatingIfNeeded: value >> 24))
        bytes.append(UInt8(truncatingIfNeeded: value >> 16))
        bytes.append(UInt8(truncatingIfNeeded: value >> 8))
        bytes.append(UInt8(truncatingIfNeeded: value))
    }

    /// CK_ULONG goes over the wire as 64 bits whatever the host's width (rpc-message.c add_uint64).
    mutating func uint64(_ value: UInt64) {
        uint32(UInt32(truncatingIfNeeded: value >> 32))
        uint32(UInt32(truncatingIfNeeded: value))
    }

    /// The length-prefixed byte array; nil is p11-kit's NULL marker 0xFFFFFFFF. p11-kit refuses
    /// lengths >= 0x7FFFFFFF on both sides (add_byte_array / get_byte_array), so the caller
    /// must have checked `WireLimits.fitsByteArray` first.
    /// A NULL pointer is the NULL marker; a non-NULL one with count 0 is "present, empty".
    mutating func byteArray(_ pointer: UnsafeRawPointer?, count: Int) {
        guard let pointer else { return uint32(WireLimits.nullArray) }
        uint32(UInt32(count))
        bytes.append(contentsOf: UnsafeRawBufferPointer(start: pointer, count: count))
    }

    mutating func byteArray(_ data: [UInt8]) {
        uint32(UInt32(data.count))
        bytes.append(contentsOf: data)
    }

    mutating func nullByteArray() { uint32(WireLimits.nullArray) }
}

enum WireLimits {
    /// The byte-array length that means NULL (rpc-message.c p11_rpc_buffer_get_byte_array).
    static let nullArray: UInt32 = 0xFFFF_FFFF
    /// Lengths from here on are refused by both p11-kit sides (">= 0x7fffffff").
    static let maximumArray: UInt32 = 0x7FFF_FFFF

    static func fitsByteArray(_ count: CK_ULONG) -> Bool { UInt64(count) < UInt64(maximumArray) }
    /// Counts of u32-prefixed arrays (attributes, fu/fy capacities) must fit 32 bits.
    static func fitsUInt32(_ count: CK_ULONG) -> Bool { UInt64(count) <= UInt64(UInt32.max) }
}
