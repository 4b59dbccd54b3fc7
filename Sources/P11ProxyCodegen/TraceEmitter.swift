// Writes the tracer's per-function wrappers from the arguments' roles in the
// description: IN lines are rendered before the module is called, OUT lines after, and the
// record is written in one piece once the call has returned. What each output buffer holds is
// taken before the call too: the OUT lines never read more than that, whatever length or count
// the module reports.
// A call that answers CKR_PENDING (an asynchronous session, PKCS#11 3.2 section 5.20) has not
// finished: its output buffers belong to the operation until C_AsyncComplete says otherwise, so
// no OUT line reads them.

enum TraceEmitter {
    static func traced(_ functions: [FunctionDescription]) -> String {
        var out = SwiftEmitter.header + "\n\nimport CPKCS11\nimport P11ProxyNames\n\nextension Traced {\n"
        for function in functions {
            out += wrapper(function)
        }
        out.removeLast()
        out += "}\n"
        return out
    }

    /// Roles that name another argument as their length or count; that argument is then shown
    /// as part of the buffer and not on a line of its own.
    static func lengthArguments(_ function: FunctionDescription) -> Set<String> {
        var names = Set<String>()
        for argument in function.arguments {
            switch argument.role {
            case .bytes, .bytesOut, .utf8, .attributes, .attributesOut, .messageParameter, .asyncBuffer:
                names.formUnion(argument.role.parameters)
            default: break
            }
        }
        return names
    }

    static func wrapper(_ function: FunctionDescription) -> String {
        let parameters = function.arguments.map { "_ \($0.name): \(SwiftEmitter.swiftType($0.cType))" }
        let signature = (["_ module: UnsafeMutablePointer<ModuleEntry>", "_ caller: CallerNumber",
                          "_ function: CK_\(function.name)"] + parameters).joined(separator: ", ")
        let lengths = lengthArguments(function)
        let byName = Dictionary(uniqueKeysWithValues: function.arguments.map { ($0.name, $0) })
        var inputs: [String] = []
        var outputs: [String] = []
        for argument in function.arguments {
            let name = argument.name, type = argument.cType
            let quoted = "\"\(name)\""
            switch argument.role {
            case .input where lengths.contains(name):
                continue
            case .input:
                inputs.append(scalarInput(function: function.name, name: name, type: type))
            case .inputOutput:
                if !lengths.contains(name) { inputs.append("record.ulongPointee(.in, \(quoted), \(name))") }
            case .output:
                outputs.append(scalarOutput(name: name, type: type))
            case .enumerated(let family):
                let namer = ["CKU": "PKCS11Name.userType", "CKM": "PKCS11Name.mechanism",
                             "CKS.validation": "PKCS11Name.sessionValidation"][family] ?? "{ _ -> StaticString? in nil }"
                inputs.append("record.named(.in, \(quoted), \(name), \(namer))")
            case .flags(let family):
                let names = ["CKF_SESSION": ".session", "CKF_WAIT": ".wait", "CKF_MESSAGE": ".message",
                             "CKF_INTERFACE": ".interface", "CKF_MECH": ".mechanism"]
                inputs.append("record.flags(.in, \(quoted), \(name), \(names[family]!))")
            case .bytes(let length, let secrecy):
                inputs.append("record.bytes(.in, \(quoted), \(name), \(length), .\(secrecy))")
            case .utf8(let length):
                inputs.append("record.text(.in, \(quoted), \(name), \(length))")
            case .messageParameter(let length):
                inputs.append("record.messageParameter(.in, \(quoted), \(name), \(length))")
                outputs.append("record.messageParameterOut(\(quoted), \(name), \(length), rv)")
            case .bytesOut(let length, let secrecy):
                if byName[length]?.cType == "CK_ULONG" {
                    inputs.append("record.ulong(.in, \"\(length)\", \(length))")
                    outputs.append("record.bytesOut(\(quoted), \(name), fixedLength: \(length), rv, .\(secrecy))")
                } else {
                    inputs.append("record.ulongPointee(.in, \"\(length)\", \(length))")
                    inputs.append("let \(name)Capacity = TraceRecord.capacity(of: \(name), \(length))")
                    outputs.append("record.bytesOut(\(quoted), \(name), \(length), capacity: \(name)Capacity, rv, .\(secrecy))")
                }
            case .attributes(let count):
                inputs.append("record.template(.in, \(quoted), \(name), \(count), \(objectHint(function.name, name)))")
            case .attributesOut(let count):
                inputs.append("record.templateTypes(\(quoted), \(name), \(count))")
                inputs.append("record.rememberTemplate(\(name), \(count))")
                outputs.append("record.templateOut(\(quoted), \(name), \(count), rv) "
                    + "{ Traced.objectTraits(function: module.pointee.functions.C_GetAttributeValue, hSession, hObject) }")
            case .mechanism:
                inputs.append("record.mechanism(.in, \(quoted), \(name))")
            case .handlesOut(let maximum, let count):
                let element = ["CK_SLOT_ID_PTR": ".slot", "CK_MECHANISM_TYPE_PTR": ".mechanism",
                               "CK_OBJECT_HANDLE_PTR": ".object"][type] ?? ".object"
                // The first parameter says what the buffer holds: a count (ulMaxObjectCount), or a
                // pointer to one that the module overwrites (pulCount).
                var capacity = maximum
                if byName[maximum]?.cType != "CK_ULONG" {
                    capacity = "\(name)Capacity"
                    inputs.append("let \(capacity) = TraceRecord.capacity(of: \(name), \(maximum))")
                }
                outputs.append("record.handleList(\(quoted), \(name), \(count), capacity: \(capacity), rv, \(element))")
            case .structOut:
                outputs.append("record.info(\(quoted), \(name), rv)")
            case .label32:
                inputs.append("record.paddedText(.in, \(quoted), \(name), 32)")
            case .cString:
                inputs.append("record.cString(.in, \(quoted), \(name))")
            case .asyncData:
                inputs.append("record.asyncData(.in, \(quoted), \(name))")
                outputs.append("record.asyncDataOut(\(quoted), \(name), rv)")
            case .asyncBuffer(let length):
                inputs.append("record.asyncBuffer(\(quoted), \(name), \(length))")
            }
        }
        let names = function.arguments.map(\.name).joined(separator: ", ")
        var out = "    @inline(never)\n    static func \(function.name)(\(signature)) -> CK_RV {\n"
        out += "        var record = TraceRecord(\"\(function.name)\", module: module, caller: caller)\n"
        for line in inputs { out += "        \(line)\n" }
        if function.name == "C_WaitForSlotEvent" {
            // It can block for as long as the caller likes: its IN half is written first.
            out += "        if flags & CK_FLAGS(CKF_DONT_BLOCK) == 0 { record.writeInputsNow() }\n"
        }
        out += "        record.callStarts()\n"
        out += "        let rv = function(\(names))\n"
        out += "        record.callEnded()\n"
        if !outputs.isEmpty {
            out += "        if rv != CKR_PENDING {\n"
            for line in outputs { out += "            \(line)\n" }
            out += "        }\n"
        }
        out += "        record.finish(rv)\n"
        out += "        return rv\n    }\n\n"
        return out
    }

    static func scalarInput(function: String, name: String, type: String) -> String {
        let quoted = "\"\(name)\""
        switch type {
        case "CK_SESSION_HANDLE": return "record.handle(.in, \(quoted), \(name), .session)"
        case "CK_SLOT_ID": return "record.handle(.in, \(quoted), \(name), .slot)"
        case "CK_OBJECT_HANDLE": return "record.handle(.in, \(quoted), \(name), .object)"
        case "CK_BBOOL": return "record.bool(.in, \(quoted), \(name))"
        case "CK_ULONG": return "record.ulong(.in, \(quoted), \(name))"
        case "CK_VERSION_PTR": return "record.version(.in, \(quoted), \(name))"
        case "CK_VOID_PTR" where function == "C_Initialize": return "record.initializeArguments(\(quoted), \(name))"
        default: return "record.pointer(.in, \(quoted), \(name))"
        }
    }

    static func scalarOutput(name: String, type: String) -> String {
        let quoted = "\"\(name)\""
        switch type {
        case "CK_SESSION_HANDLE_PTR": return "record.handlePointee(\(quoted), \(name), rv, .session)"
        case "CK_OBJECT_HANDLE_PTR": return "record.handlePointee(\(quoted), \(name), rv, .object)"
        case "CK_SLOT_ID_PTR": return "record.handlePointee(\(quoted), \(name), rv, .slot)"
        case "CK_ULONG_PTR", "CK_FLAGS_PTR": return "record.ulongPointee(.out, \(quoted), \(name), rv)"
        default: return "record.pointerPointee(\(quoted), \(name), rv)"
        }
    }

    /// What the objects a template describes are, when the function says so: their secret
    /// values are redacted even if the template itself carries no CKA_CLASS.
    static func objectHint(_ function: String, _ argument: String) -> String {
        switch (function, argument) {
        case ("C_GenerateKey", _), ("C_UnwrapKey", _), ("C_DeriveKey", _), ("C_EncapsulateKey", _),
             ("C_DecapsulateKey", _), ("C_UnwrapKeyAuthenticated", _): return ".key"
        case ("C_GenerateKeyPair", "pPrivateKeyTemplate"): return ".key"
        case ("C_GenerateKeyPair", "pPublicKeyTemplate"): return ".publicObject"
        default: return ".unknown"
        }
    }
}
