// Helpers for the wire tests: bytes from hex text, and reply bodies built field by field the way
// p11-kit's server writes them (rpc-message.c), so each test states its bytes explicitly.
import CPKCS11
@testable import P11ProxyRPC

/// "00 00 00 04 'yfu'" style: hex bytes, and quoted ASCII runs.
func hex(_ text: String) -> [UInt8] {
    var bytes: [UInt8] = []
    var pending: [UInt8] = []
    var inQuote = false
    for byte in text.utf8 {
        if byte == UInt8(ascii: "'") { inQuote.toggle(); continue }
        if inQuote { bytes.append(byte); continue }
        guard let digit = Character(UnicodeScalar(byte)).hexDigitValue else { continue }
        pending.append(UInt8(digit))
        if pending.count == 2 { bytes.append(pending[0] << 4 | pending[1]); pending = [] }
    }
    precondition(pending.isEmpty, "odd number of hex digits")
    return bytes
}

/// A reply body for `call`: id and signature, then `fields` as given.
func replyBody(_ call: RPCCall, _ fields: [UInt8] = []) -> [UInt8] {
    var writer = WireWriter()
    writer.uint32(call.id)
    writer.byteArray(Array(call.response.bytes))
    return writer.bytes + fields
}

func u32(_ value: UInt32) -> [UInt8] { var writer = WireWriter(); writer.uint32(value); return writer.bytes }
func u64(_ value: UInt64) -> [UInt8] { var writer = WireWriter(); writer.uint64(value); return writer.bytes }
func array(_ bytes: [UInt8]) -> [UInt8] { u32(UInt32(bytes.count)) + bytes }

/// The code an encode or decode threw, nil if it succeeded.
func thrownCode(_ body: () throws -> Void) -> CK_RV? {
    do { try body(); return nil } catch let error as RPCError { return error.returnValue } catch { return CK_RV.max }
}

let deviceError = CK_RV(CKR_DEVICE_ERROR)
