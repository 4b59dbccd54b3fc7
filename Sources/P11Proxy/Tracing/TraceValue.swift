// How single values look in a trace, in text (p11-kit's spellings) and in JSON.
import CPKCS11
import P11ProxyNames

enum TraceValue {
    static func handle(_ out: inout TraceBuffer, json: Bool, _ value: CK_ULONG, _ kind: HandleKind) {
        if kind == .mechanism { return named(&out, json: json, value, PKCS11Name.mechanism) }
        if json { return TraceText.appendDecimal(value, to: &out) }
        switch kind {
        case .session: TraceText.append("S", to: &out)
        case .slot: TraceText.append("SL", to: &out)
        case .object, .mechanism: TraceText.append("H", to: &out)
        }
        TraceText.appendDecimal(value, to: &out)
    }

    static func ulong(_ out: inout TraceBuffer, json: Bool, _ value: CK_ULONG) {
        if value == CK_ULONG.max {
            return json ? TraceText.append("\"CK_UNAVAILABLE_INFORMATION\"", to: &out)
                        : TraceText.append("CK_UNAVAILABLE_INFORMATION", to: &out)
        }
        TraceText.appendDecimal(value, to: &out)
    }

    static func bool(_ out: inout TraceBuffer, json: Bool, _ value: CK_BBOOL) {
        switch value {
        case 0: TraceText.append(json ? "false" : "CK_FALSE", to: &out)
        case 1: TraceText.append(json ? "true" : "CK_TRUE", to: &out)
        default: TraceText.appendDecimal(UInt(value), to: &out)
        }
    }

    /// A named constant; values without a name (vendor-defined) in hex.
    static func named(_ out: inout TraceBuffer, json: Bool, _ value: CK_ULONG, _ namer: (CK_ULONG) -> StaticString?) {
        if let name = namer(value) {
            if json {
                out.append(UInt8(ascii: "\""))
                out.append(name)
                out.append(UInt8(ascii: "\""))
            } else {
                out.append(name)
            }
        } else if json {
            out.append(UInt8(ascii: "\""))
            TraceText.appendHex(value, to: &out)
            out.append(UInt8(ascii: "\""))
        } else {
            TraceText.appendHex(value, to: &out)
        }
    }

    /// Text: `6 = CKF_RW_SESSION | CKF_SERIAL_SESSION`; JSON: `{"value":6,"names":[...]}`.
    static func flags(_ out: inout TraceBuffer, json: Bool, _ value: CK_FLAGS, _ family: FlagFamily) {
        var first = true
        if json {
            TraceText.append("{\"value\":", to: &out)
            TraceText.appendDecimal(value, to: &out)
            TraceText.append(",\"names\":[", to: &out)
            let unknown = PKCS11Name.flagNames(value, family) { name in
                if !first { out.append(UInt8(ascii: ",")) }
                first = false
                out.append(UInt8(ascii: "\""))
                out.append(name)
                out.append(UInt8(ascii: "\""))
            }
            if unknown != 0 {
                if !first { out.append(UInt8(ascii: ",")) }
                out.append(UInt8(ascii: "\""))
                TraceText.appendHex(unknown, to: &out)
                out.append(UInt8(ascii: "\""))
            }
            TraceText.append("]}", to: &out)
            return
        }
        TraceText.appendDecimal(value, to: &out)
        let unknown = PKCS11Name.flagNames(value, family) { name in
            TraceText.append(first ? " = " : " | ", to: &out)
            first = false
            out.append(name)
        }
        if unknown != 0 {
            TraceText.append(first ? " = " : " | ", to: &out)
            TraceText.appendHex(unknown, to: &out)
        }
    }

    static func pointer(_ out: inout TraceBuffer, json: Bool, _ value: UnsafeRawPointer?) {
        guard let value else { return TraceText.append(json ? "null" : "NULL", to: &out) }
        if json { out.append(UInt8(ascii: "\"")) }
        TraceText.appendHex(UInt(bitPattern: value), to: &out)
        if json { out.append(UInt8(ascii: "\"")) }
    }

    static func version(_ out: inout TraceBuffer, json: Bool, _ value: CK_VERSION) {
        if json { out.append(UInt8(ascii: "\"")) }
        TraceText.appendDecimal(UInt(value.major), to: &out)
        out.append(UInt8(ascii: "."))
        TraceText.appendPadded(Int(value.minor), width: value.minor < 10 ? 1 : 2, to: &out)
        if json { out.append(UInt8(ascii: "\"")) }
    }

    /// Text: `(4) 31323334`, `(4) <redacted>`, `(4) NULL`; JSON: `{"len":4,"hex":"31323334"}`,
    /// `{"len":4,"redacted":true}`, `{"len":4,"hex":null}`. Long buffers are cut at
    /// TraceRecord.byteLimit bytes, marked `...` / `"truncated":true`. An output whose length the
    /// module reported beyond `capacity` (what the caller's buffer holds) shows only the buffer's
    /// bytes, and says so (`overreported`).
    static func bytes(_ out: inout TraceBuffer, json: Bool, _ value: UnsafeRawPointer?, _ length: CK_ULONG, redact: Bool,
                      capacity: CK_ULONG = CK_ULONG.max) {
        if json {
            TraceText.append("{\"len\":", to: &out)
            ulong(&out, json: true, length)
        } else {
            out.append(UInt8(ascii: "("))
            ulong(&out, json: false, length)
            TraceText.append(") ", to: &out)
        }
        guard let value, length != CK_ULONG.max else {
            return TraceText.append(json ? ",\"hex\":null}" : "NULL", to: &out)
        }
        let readable = min(length, capacity)
        if redact {
            TraceText.append(json ? ",\"redacted\":true" : "<redacted>", to: &out)
        } else {
            let shown = Int(min(readable, CK_ULONG(TraceRecord.byteLimit)))
            if json { TraceText.append(",\"hex\":\"", to: &out) }
            TraceText.appendHexBytes(UnsafeRawBufferPointer(start: value, count: shown), to: &out)
            if json { out.append(UInt8(ascii: "\"")) }
            if CK_ULONG(shown) < readable { TraceText.append(json ? ",\"truncated\":true" : "...", to: &out) }
        }
        if length > capacity { overreported(&out, json: json, length, capacity, unit: "bytes") }
        if json { out.append(UInt8(ascii: "}")) }
    }

    /// A buffer the tracer must not read (an asynchronous operation's: PKCS#11 3.2 section 5.20),
    /// shown by its length: text `(16) <not read>`, JSON `{"len":16,"read":false}`; NULL as for bytes.
    static func unread(_ out: inout TraceBuffer, json: Bool, _ value: UnsafeRawPointer?, _ length: CK_ULONG) {
        guard value != nil else { return bytes(&out, json: json, nil, length, redact: false) }
        if json {
            TraceText.append("{\"len\":", to: &out)
            ulong(&out, json: true, length)
            TraceText.append(",\"read\":false}", to: &out)
        } else {
            out.append(UInt8(ascii: "("))
            ulong(&out, json: false, length)
            TraceText.append(") <not read>", to: &out)
        }
    }

    /// A module that says it wrote more than the caller's buffer holds (a misbehaving
    /// module must not make p11proxy read past the caller's memory): text
    /// ` [module reported 1016 bytes, buffer holds 16]`, JSON `,"capacity":16,"overreported":true`.
    static func overreported(_ out: inout TraceBuffer, json: Bool, _ reported: CK_ULONG, _ capacity: CK_ULONG,
                             unit: StaticString) {
        if json {
            TraceText.append(",\"capacity\":", to: &out)
            TraceText.appendDecimal(capacity, to: &out)
            TraceText.append(",\"overreported\":true", to: &out)
        } else {
            TraceText.append(" [module reported ", to: &out)
            TraceText.appendDecimal(reported, to: &out)
            out.append(UInt8(ascii: " "))
            TraceText.append(unit, to: &out)
            TraceText.append(", buffer holds ", to: &out)
            TraceText.appendDecimal(capacity, to: &out)
            out.append(UInt8(ascii: "]"))
        }
    }

    static func string(_ out: inout TraceBuffer, json: Bool, _ bytes: UnsafeRawBufferPointer) {
        if json { TraceText.appendJSONString(bytes, to: &out) } else { TraceText.appendQuoted(bytes, to: &out) }
    }

    /// Text: `(2) [ SL1, SL2 ]`, `(2) NULL` for a size query; JSON: `{"count":2,"items":[1,2]}`.
    /// Never more elements than `capacity` (what the caller's buffer holds), whatever the count.
    static func handleList(_ out: inout TraceBuffer, json: Bool, _ value: UnsafeMutablePointer<CK_ULONG>?,
                           _ count: CK_ULONG, _ kind: HandleKind, capacity: CK_ULONG = CK_ULONG.max) {
        if json {
            TraceText.append("{\"count\":", to: &out)
            TraceText.appendDecimal(count, to: &out)
        } else {
            out.append(UInt8(ascii: "("))
            TraceText.appendDecimal(count, to: &out)
            TraceText.append(") ", to: &out)
        }
        guard let value else { return TraceText.append(json ? ",\"items\":null}" : "NULL", to: &out) }
        let readable = min(count, capacity)
        let shown = Int(min(readable, CK_ULONG(TraceRecord.elementLimit)))
        TraceText.append(json ? ",\"items\":[" : "[ ", to: &out)
        for index in 0..<shown {
            if index > 0 { TraceText.append(json ? "," : ", ", to: &out) }
            handle(&out, json: json, value[index], kind)
        }
        if !json && CK_ULONG(shown) < readable { TraceText.append(", ...", to: &out) }
        TraceText.append(json ? "]" : " ]", to: &out)
        if count > capacity {
            let unit: StaticString = switch kind {
            case .slot: "slots"
            case .session: "sessions"
            case .object: "objects"
            case .mechanism: "mechanisms"
            }
            overreported(&out, json: json, count, capacity, unit: unit)
        }
        if json { out.append(UInt8(ascii: "}")) }
    }
}

/// A structure member by member: text in p11-kit's multi-line `{ ... }` form, JSON as an object.
struct TraceObject {
    private var first = true
    let json: Bool

    init(_ out: inout TraceBuffer, json: Bool) {
        self.json = json
        out.append(UInt8(ascii: "{"))
    }

    mutating func member(_ out: inout TraceBuffer, _ name: StaticString) {
        if json {
            if !first { out.append(UInt8(ascii: ",")) }
            TraceText.appendJSONString(name, to: &out)
            out.append(UInt8(ascii: ":"))
        } else {
            TraceText.append("\n\t", to: &out)
            TraceText.append(name, to: &out)
            TraceText.append(": ", to: &out)
        }
        first = false
    }

    func close(_ out: inout TraceBuffer) {
        TraceText.append(json ? "}" : "\n      }", to: &out)
    }
}
