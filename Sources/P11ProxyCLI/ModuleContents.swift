// What an initialised module shows about itself: C_GetInfo, its slots and their tokens, read
// through its function list. The command's one file of raw PKCS#11 calls.
import CPKCS11
import P11ProxyConfig
import P11ProxyLoader
import P11ProxyNames

struct ModuleContents: Equatable {
    struct Slot: Equatable {
        /// The module's own slot ID.
        var id: CK_SLOT_ID
        var description: String
        var manufacturer: String
        var flags: [String]
        /// Nil when no token is present, or when C_GetTokenInfo failed (see `tokenError`).
        var token: Token?
        var tokenError: String?
        /// The module's token filter hides the slot: it has no proxy slot ID.
        var isHidden = false
    }

    struct Token: Equatable {
        var label: String
        var manufacturer: String
        var model: String
        var serialNumber: String
        var flags: [String]
    }

    /// The version in the function list: 3.x when the module offered a 3.0 interface.
    var interfaceVersion: String
    var cryptokiVersion = ""
    var libraryDescription = ""
    var libraryManufacturer = ""
    var libraryVersion = ""
    var slots: [Slot] = []
    /// A query that failed (C_GetInfo or C_GetSlotList), in the module's words: it still loads.
    var problems: [String] = []
    /// What the module reports about the slot list at C_Initialize (ModuleSlotList's messages).
    var slotListProblem: String?
    var slotListHadRepeats = false

    /// Reads everything after a successful C_Initialize; nothing here changes the module's state.
    /// `filter`: the module's token filter, which marks the slots it hides as the module decides.
    init(reading functions: CK_FUNCTION_LIST_3_2, filter: TokenFilter? = nil) {
        interfaceVersion = Self.version(functions.version)
        if let getInfo = functions.C_GetInfo {
            var info = CK_INFO()
            let rv = getInfo(&info)
            if rv == CKR_OK {
                cryptokiVersion = Self.version(info.cryptokiVersion)
                libraryDescription = Self.text(info.libraryDescription)
                libraryManufacturer = Self.text(info.manufacturerID)
                libraryVersion = Self.version(info.libraryVersion)
            } else {
                problems.append("C_GetInfo failed: \(PKCS11Name.returnValueText(rv))")
            }
        }
        guard let getSlotList = functions.C_GetSlotList else { return }
        // Read as the module reads it, so `list` numbers the slots the module hands out.
        let list = ModuleSlotList.read(tokenPresent: CK_BBOOL(CK_FALSE)) { getSlotList($0, $1, $2) }
        slotListProblem = list.problem
        slotListHadRepeats = list.hadRepeats
        if let problem = list.problem { problems.append("C_GetSlotList \(problem)") }
        if list.hadRepeats { problems.append("C_GetSlotList listed the same slot ID twice; duplicates ignored") }
        slots = list.ids.map { Self.slot($0, functions) }
        guard let filter else { return }
        let notSupported = CK_RV(CKR_FUNCTION_NOT_SUPPORTED)
        let library = TokenInfoReading.library { functions.C_GetInfo?($0) ?? notSupported }
        for index in slots.indices {
            slots[index].isHidden = !TokenInfoReading.shows(
                filter, library: library, slot: slots[index].id,
                getSlotInfo: { functions.C_GetSlotInfo?($0, $1) ?? notSupported },
                getTokenInfo: { functions.C_GetTokenInfo?($0, $1) ?? notSupported })
        }
    }

    private static func slot(_ id: CK_SLOT_ID, _ functions: CK_FUNCTION_LIST_3_2) -> Slot {
        var slot = Slot(id: id, description: "", manufacturer: "", flags: [])
        var info = CK_SLOT_INFO()
        guard let getSlotInfo = functions.C_GetSlotInfo else { return slot }
        let rv = getSlotInfo(id, &info)
        guard rv == CKR_OK else {
            slot.tokenError = "C_GetSlotInfo failed: \(PKCS11Name.returnValueText(rv))"
            return slot
        }
        slot.description = text(info.slotDescription)
        slot.manufacturer = text(info.manufacturerID)
        slot.flags = PKCS11Name.flags(info.flags, .slot)
        guard info.flags & CK_FLAGS(CKF_TOKEN_PRESENT) != 0, let getTokenInfo = functions.C_GetTokenInfo else { return slot }
        var tokenInfo = CK_TOKEN_INFO()
        let tokenRV = getTokenInfo(id, &tokenInfo)
        guard tokenRV == CKR_OK else {
            slot.tokenError = "C_GetTokenInfo failed: \(PKCS11Name.returnValueText(tokenRV))"
            return slot
        }
        slot.token = Token(label: text(tokenInfo.label), manufacturer: text(tokenInfo.manufacturerID),
                           model: text(tokenInfo.model), serialNumber: text(tokenInfo.serialNumber),
                           flags: PKCS11Name.flags(tokenInfo.flags, .token))
        return slot
    }

    static func version(_ version: CK_VERSION) -> String {
        "\(version.major).\(version.minor)"
    }

    /// A blank-padded, not NUL-terminated PKCS#11 text field, without its padding.
    static func text<Field>(_ field: Field) -> String {
        TokenInfoReading.text(field)
    }
}
