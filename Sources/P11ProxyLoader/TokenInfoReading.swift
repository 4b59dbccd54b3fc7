// A module's CK_INFO, CK_SLOT_INFO and CK_TOKEN_INFO as the plain values a token filter
// matches (TokenDescription), read through whatever layer the caller uses: the module through
// ModuleCall, `p11proxy list` through the bare function list, so both decide alike.
import CPKCS11
import P11ProxyConfig

package enum TokenInfoReading {
    /// CK_INFO's library fields; blank when C_GetInfo fails (a URI naming them then matches nothing).
    package static func library(_ getInfo: (UnsafeMutablePointer<CK_INFO>) -> CK_RV) -> TokenDescription.Library {
        var info = CK_INFO()
        guard getInfo(&info) == CKR_OK else {
            return TokenDescription.Library(description: "", manufacturer: "", version: .init(major: 0, minor: 0))
        }
        return library(info)
    }

    package static func library(_ info: CK_INFO) -> TokenDescription.Library {
        TokenDescription.Library(description: text(info.libraryDescription), manufacturer: text(info.manufacturerID),
                                 version: .init(major: info.libraryVersion.major, minor: info.libraryVersion.minor))
    }

    /// The slot, and its token when one is present and readable; nil when C_GetSlotInfo fails
    /// (the slot cannot be judged, so a filter hides it).
    package static func slot(_ id: CK_SLOT_ID,
                             getSlotInfo: (CK_SLOT_ID, UnsafeMutablePointer<CK_SLOT_INFO>) -> CK_RV,
                             getTokenInfo: (CK_SLOT_ID, UnsafeMutablePointer<CK_TOKEN_INFO>) -> CK_RV)
        -> (slot: TokenDescription.Slot, token: TokenDescription.Token?)? {
        var slotInfo = CK_SLOT_INFO()
        guard getSlotInfo(id, &slotInfo) == CKR_OK else { return nil }
        let slot = TokenDescription.Slot(id: UInt(id), description: text(slotInfo.slotDescription),
                                         manufacturer: text(slotInfo.manufacturerID))
        guard slotInfo.flags & CK_FLAGS(CKF_TOKEN_PRESENT) != 0 else { return (slot, nil) }
        var tokenInfo = CK_TOKEN_INFO()
        // A token pulled between the two calls reads as an empty slot.
        guard getTokenInfo(id, &tokenInfo) == CKR_OK else { return (slot, nil) }
        return (slot, token(tokenInfo))
    }

    package static func token(_ info: CK_TOKEN_INFO) -> TokenDescription.Token {
        TokenDescription.Token(label: text(info.label), manufacturer: text(info.manufacturerID),
                               model: text(info.model), serial: text(info.serialNumber))
    }

    /// A blank-padded, not NUL-terminated PKCS#11 text field, without its padding (trailing NULs
    /// too: some modules pad with them).
    package static func text<Field>(_ field: Field) -> String {
        withUnsafeBytes(of: field) { bytes in
            var end = bytes.count
            while end > 0 && (bytes[end - 1] == 0x20 || bytes[end - 1] == 0) { end -= 1 }
            return String(decoding: bytes.prefix(end), as: UTF8.self)
        }
    }

    /// Whether `filter` shows the module's slot `id` (hidden when its slot information cannot be read).
    package static func shows(_ filter: TokenFilter, library: TokenDescription.Library, slot id: CK_SLOT_ID,
                              getSlotInfo: (CK_SLOT_ID, UnsafeMutablePointer<CK_SLOT_INFO>) -> CK_RV,
                              getTokenInfo: (CK_SLOT_ID, UnsafeMutablePointer<CK_TOKEN_INFO>) -> CK_RV) -> Bool {
        guard let read = slot(id, getSlotInfo: getSlotInfo, getTokenInfo: getTokenInfo) else { return false }
        return filter.shows(library: library, slot: read.slot, token: read.token)
    }
}
