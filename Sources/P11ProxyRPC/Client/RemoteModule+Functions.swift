// The PKCS#11 functions of a remote module: each checks its pointers as a module would, encodes
// its arguments in the call's signature order, and hands the reply's values to the caller's
// memory only after the whole reply decoded (RemoteModule.perform). Output buffers follow the
// local conventions: a NULL buffer asks for the length (CKR_OK), a short one gets
// CKR_BUFFER_TOO_SMALL and the length needed, nothing is ever written past a caller's length.
//
// Not sent at all: C_GetFunctionStatus / C_CancelFunction (legacy, CKR_FUNCTION_NOT_PARALLEL),
// the PKCS#11 3.0 message-based functions (their per-message parameters hold pointers that
// p11-kit's protocol copies as raw bytes; CKR_FUNCTION_NOT_SUPPORTED), and every PKCS#11 3.2
// function (p11-kit has no calls for them; CKR_FUNCTION_NOT_SUPPORTED).
import CPKCS11

extension RemoteModule {
    // MARK: - Shapes of calls

    typealias Encoder = (inout RPCRequest, UInt8) throws(RPCError) -> Void

    /// A call whose reply is empty.
    func plain(_ call: RPCCall, _ encode: Encoder) -> CK_RV {
        switch perform(call, encode: encode, decode: { (_: inout RPCReply) throws(RPCError) in }) {
        case .success: return CK_RV(CKR_OK)
        case .failure(let error): return record(error)
        }
    }

    /// A call whose reply is one CK_ULONG (a handle, a size).
    func ulongResult(_ call: RPCCall, _ output: UnsafeMutablePointer<CK_ULONG>?, _ encode: Encoder) -> CK_RV {
        guard let output else { return CK_RV(CKR_ARGUMENTS_BAD) }
        switch perform(call, encode: encode, decode: { (reply: inout RPCReply) throws(RPCError) in try reply.ulong() }) {
        case .success(let value):
            output.pointee = value
            return CK_RV(CKR_OK)
        case .failure(let error):
            return record(error)
        }
    }

    /// A call ending in "fy" whose reply is "ay": encrypt, sign, digest, random, wrap...
    func bytesResult(_ call: RPCCall, _ output: UnsafeMutablePointer<CK_BYTE>?,
                     _ length: UnsafeMutablePointer<CK_ULONG>?, _ encode: Encoder) -> CK_RV {
        guard let length else { return CK_RV(CKR_ARGUMENTS_BAD) }
        let capacity = length.pointee
        let result = perform(call, encode: { (request: inout RPCRequest, version: UInt8) throws(RPCError) in
            try encode(&request, version)
            request.byteBuffer(capacity: Self.wireCapacity(output != nil, capacity, version))
        }, decode: { (reply: inout RPCReply) throws(RPCError) in (try reply.byteArray(), reply) })
        switch result {
        case .failure(let error):
            return record(error)
        case .success((.lengthOnly(let needed), _)):
            length.pointee = CK_ULONG(needed)
            // The server's module had no room (or no buffer): with a buffer of ours that is
            // CKR_BUFFER_TOO_SMALL, unless nothing was needed (rpc-client.c proto_read_byte_array).
            return output == nil || needed == 0 ? CK_RV(CKR_OK) : CK_RV(CKR_BUFFER_TOO_SMALL)
        case .success((.bytes(let range), let reply)):
            length.pointee = CK_ULONG(range.count)
            guard let output else { return CK_RV(CKR_OK) }
            guard CK_ULONG(range.count) <= capacity else { return CK_RV(CKR_BUFFER_TOO_SMALL) }
            reply.reader.copy(range, to: UnsafeMutableRawPointer(output))
            return CK_RV(CKR_OK)
        }
    }

    /// The "fy" capacity for a caller's buffer. 0 asks the server for the length only, so a
    /// non-NULL buffer of length 0 (an update that outputs nothing yet) must not be sent as 0:
    /// from version 1 p11-kit sends 0xFFFFFFFF for it (rpc-server.c proto_read_byte_buffer);
    /// 0.24.1's server knows no such marker and would allocate 4 GiB, so it gets 1 (the
    /// operation then runs with a one-byte buffer, which an empty output fits).
    static func wireCapacity(_ hasBuffer: Bool, _ capacity: CK_ULONG, _ version: UInt8) -> UInt32 {
        guard hasBuffer else { return 0 }
        if capacity == 0 { return version >= RPCProtocolVersion.initToken2 ? 0xFFFF_FFFF : 1 }
        return UInt32(min(capacity, CK_ULONG(WireLimits.maximumArray - 1)))
    }

    /// A call ending in "fu" whose reply is "au": slot and mechanism lists.
    func ulongsResult(_ call: RPCCall, _ output: UnsafeMutablePointer<CK_ULONG>?,
                      _ count: UnsafeMutablePointer<CK_ULONG>?, _ encode: Encoder) -> CK_RV {
        guard let count else { return CK_RV(CKR_ARGUMENTS_BAD) }
        let capacity = count.pointee
        let result = perform(call, encode: { (request: inout RPCRequest, version: UInt8) throws(RPCError) in
            try encode(&request, version)
            request.ulongBuffer(capacity: output == nil ? 0 : UInt32(min(capacity, CK_ULONG(UInt32.max))))
        }, decode: { (reply: inout RPCReply) throws(RPCError) in try reply.ulongArray() })
        switch result {
        case .failure(let error):
            return record(error)
        case .success(.countOnly(let needed)):
            count.pointee = CK_ULONG(needed)
            return output == nil || needed == 0 ? CK_RV(CKR_OK) : CK_RV(CKR_BUFFER_TOO_SMALL)
        case .success(.values(let values)):
            count.pointee = CK_ULONG(values.count)
            guard let output else { return CK_RV(CKR_OK) }
            guard CK_ULONG(values.count) <= capacity else { return CK_RV(CKR_BUFFER_TOO_SMALL) }
            for (index, value) in values.enumerated() { output[index] = value }
            return CK_RV(CKR_OK)
        }
    }

    /// Input bytes ("ay") from a caller's pointer and length.
    static func bytes(_ pointer: UnsafeRawPointer?, _ count: CK_ULONG) -> (inout RPCRequest) throws(RPCError) -> Void {
        { (request: inout RPCRequest) throws(RPCError) in try request.byteArray(pointer, count: count) }
    }

    // MARK: - General and slot functions

    public func C_GetInfo(_ pInfo: UnsafeMutablePointer<CK_INFO>?) -> CK_RV {
        guard let pInfo else { return CK_RV(CKR_ARGUMENTS_BAD) }
        switch serverInfo() {
        case .success(let info): pInfo.pointee = info; return CK_RV(CKR_OK)
        case .failure(let error): return record(error)
        }
    }

    public func C_GetSlotList(_ tokenPresent: CK_BBOOL, _ pSlotList: UnsafeMutablePointer<CK_SLOT_ID>?,
                              _ pulCount: UnsafeMutablePointer<CK_ULONG>?) -> CK_RV {
        ulongsResult(.getSlotList, pSlotList, pulCount) { (request, _) throws(RPCError) in request.byte(tokenPresent) }
    }

    public func C_GetSlotInfo(_ slotID: CK_SLOT_ID, _ pInfo: UnsafeMutablePointer<CK_SLOT_INFO>?) -> CK_RV {
        guard let pInfo else { return CK_RV(CKR_ARGUMENTS_BAD) }
        switch perform(.getSlotInfo, encode: { (request, _) throws(RPCError) in request.ulong(slotID) },
                       decode: { (reply) throws(RPCError) in try reply.slotInfo() }) {
        case .success(let info): pInfo.pointee = info; return CK_RV(CKR_OK)
        case .failure(let error): return record(error)
        }
    }

    public func C_GetTokenInfo(_ slotID: CK_SLOT_ID, _ pInfo: UnsafeMutablePointer<CK_TOKEN_INFO>?) -> CK_RV {
        guard let pInfo else { return CK_RV(CKR_ARGUMENTS_BAD) }
        switch perform(.getTokenInfo, encode: { (request, _) throws(RPCError) in request.ulong(slotID) },
                       decode: { (reply) throws(RPCError) in try reply.tokenInfo() }) {
        case .success(let info): pInfo.pointee = info; return CK_RV(CKR_OK)
        case .failure(let error): return record(error)
        }
    }

    public func C_GetMechanismList(_ slotID: CK_SLOT_ID, _ pMechanismList: UnsafeMutablePointer<CK_MECHANISM_TYPE>?,
                                   _ pulCount: UnsafeMutablePointer<CK_ULONG>?) -> CK_RV {
        ulongsResult(.getMechanismList, pMechanismList, pulCount) { (request, _) throws(RPCError) in request.ulong(slotID) }
    }

    public func C_GetMechanismInfo(_ slotID: CK_SLOT_ID, _ type: CK_MECHANISM_TYPE,
                                   _ pInfo: UnsafeMutablePointer<CK_MECHANISM_INFO>?) -> CK_RV {
        guard let pInfo else { return CK_RV(CKR_ARGUMENTS_BAD) }
        switch perform(.getMechanismInfo, encode: { (request, _) throws(RPCError) in
            request.ulong(slotID)
            request.ulong(type)
        }, decode: { (reply) throws(RPCError) in try reply.mechanismInfo() }) {
        case .success(let info): pInfo.pointee = info; return CK_RV(CKR_OK)
        case .failure(let error): return record(error)
        }
    }

    /// The label is a 32-byte space-padded field, not a C string: p11-kit's 0.24.1 client reads
    /// it with strlen; we send exactly its 32 bytes ("z" then, "s" in C_InitToken2 from version 1).
    public func C_InitToken(_ slotID: CK_SLOT_ID, _ pPin: UnsafeMutablePointer<CK_UTF8CHAR>?, _ ulPinLen: CK_ULONG,
                            _ pLabel: UnsafeMutablePointer<CK_UTF8CHAR>?) -> CK_RV {
        guard let pLabel else { return CK_RV(CKR_ARGUMENTS_BAD) }
        let label = Array(UnsafeBufferPointer(start: pLabel, count: 32))
        return plain(.initToken) { (request, version) throws(RPCError) in
            // C_InitToken2 is the same call with the label as a fixed field; its id is only
            // known from version 1, where the plain call is still served too.
            request.ulong(slotID)
            try request.byteArray(pPin, count: ulPinLen)
            request.zeroString(label)
        }
    }

    public func C_WaitForSlotEvent(_ flags: CK_FLAGS, _ pSlot: UnsafeMutablePointer<CK_SLOT_ID>?,
                                   _ pReserved: UnsafeMutableRawPointer?) -> CK_RV {
        guard let pSlot, pReserved == nil else { return CK_RV(CKR_ARGUMENTS_BAD) }
        let result: Result<CK_SLOT_ID, RPCError>
        if flags & CK_FLAGS(CKF_DONT_BLOCK) != 0 {
            result = perform(.waitForSlotEvent, encode: { (request, _) throws(RPCError) in request.ulong(flags) },
                             decode: { (reply) throws(RPCError) in try reply.ulong() })
        } else {
            result = blockingWait(flags)
        }
        switch result {
        case .success(let slot): pSlot.pointee = slot; return CK_RV(CKR_OK)
        case .failure(let error): return record(error)
        }
    }

    // MARK: - Sessions and login

    /// Notify and pApplication stay here: callbacks cannot cross the wire (p11-kit sends neither).
    public func C_OpenSession(_ slotID: CK_SLOT_ID, _ flags: CK_FLAGS, _ pApplication: UnsafeMutableRawPointer?,
                              _ Notify: CK_NOTIFY?, _ phSession: UnsafeMutablePointer<CK_SESSION_HANDLE>?) -> CK_RV {
        ulongResult(.openSession, phSession) { (request, _) throws(RPCError) in
            request.ulong(slotID)
            request.ulong(flags)
        }
    }

    public func C_CloseSession(_ hSession: CK_SESSION_HANDLE) -> CK_RV {
        plain(.closeSession) { (request, _) throws(RPCError) in request.ulong(hSession) }
    }

    public func C_CloseAllSessions(_ slotID: CK_SLOT_ID) -> CK_RV {
        plain(.closeAllSessions) { (request, _) throws(RPCError) in request.ulong(slotID) }
    }

    public func C_GetSessionInfo(_ hSession: CK_SESSION_HANDLE, _ pInfo: UnsafeMutablePointer<CK_SESSION_INFO>?) -> CK_RV {
        guard let pInfo else { return CK_RV(CKR_ARGUMENTS_BAD) }
        switch perform(.getSessionInfo, encode: { (request, _) throws(RPCError) in request.ulong(hSession) },
                       decode: { (reply) throws(RPCError) in try reply.sessionInfo() }) {
        case .success(let info): pInfo.pointee = info; return CK_RV(CKR_OK)
        case .failure(let error): return record(error)
        }
    }

    public func C_InitPIN(_ hSession: CK_SESSION_HANDLE, _ pPin: UnsafeMutablePointer<CK_UTF8CHAR>?, _ ulPinLen: CK_ULONG) -> CK_RV {
        plain(.initPIN) { (request, _) throws(RPCError) in
            request.ulong(hSession)
            try request.byteArray(pPin, count: ulPinLen)
        }
    }

    public func C_SetPIN(_ hSession: CK_SESSION_HANDLE, _ pOldPin: UnsafeMutablePointer<CK_UTF8CHAR>?, _ ulOldLen: CK_ULONG,
                         _ pNewPin: UnsafeMutablePointer<CK_UTF8CHAR>?, _ ulNewLen: CK_ULONG) -> CK_RV {
        plain(.setPIN) { (request, _) throws(RPCError) in
            request.ulong(hSession)
            try request.byteArray(pOldPin, count: ulOldLen)
            try request.byteArray(pNewPin, count: ulNewLen)
        }
    }

    public func C_GetOperationState(_ hSession: CK_SESSION_HANDLE, _ pOperationState: UnsafeMutablePointer<CK_BYTE>?,
                                    _ pulOperationStateLen: UnsafeMutablePointer<CK_ULONG>?) -> CK_RV {
        bytesResult(.getOperationState, pOperationState, pulOperationStateLen) { (request, _) throws(RPCError) in
            request.ulong(hSession)
        }
    }

    public func C_SetOperationState(_ hSession: CK_SESSION_HANDLE, _ pOperationState: UnsafeMutablePointer<CK_BYTE>?,
                                    _ ulOperationStateLen: CK_ULONG, _ hEncryptionKey: CK_OBJECT_HANDLE,
                                    _ hAuthenticationKey: CK_OBJECT_HANDLE) -> CK_RV {
        plain(.setOperationState) { (request, _) throws(RPCError) in
            request.ulong(hSession)
            try request.byteArray(pOperationState, count: ulOperationStateLen)
            request.ulong(hEncryptionKey)
            request.ulong(hAuthenticationKey)
        }
    }

    public func C_Login(_ hSession: CK_SESSION_HANDLE, _ userType: CK_USER_TYPE,
                        _ pPin: UnsafeMutablePointer<CK_UTF8CHAR>?, _ ulPinLen: CK_ULONG) -> CK_RV {
        plain(.login) { (request, _) throws(RPCError) in
            request.ulong(hSession)
            request.ulong(userType)
            try request.byteArray(pPin, count: ulPinLen)
        }
    }

    public func C_Logout(_ hSession: CK_SESSION_HANDLE) -> CK_RV {
        plain(.logout) { (request, _) throws(RPCError) in request.ulong(hSession) }
    }

    /// PKCS#11 3.0; sent only to servers of version 1 and later (CKR_FUNCTION_NOT_SUPPORTED otherwise).
    public func C_LoginUser(_ hSession: CK_SESSION_HANDLE, _ userType: CK_USER_TYPE,
                            _ pPin: UnsafeMutablePointer<CK_UTF8CHAR>?, _ ulPinLen: CK_ULONG,
                            _ pUsername: UnsafeMutablePointer<CK_UTF8CHAR>?, _ ulUsernameLen: CK_ULONG) -> CK_RV {
        plain(.loginUser) { (request, _) throws(RPCError) in
            request.ulong(hSession)
            request.ulong(userType)
            try request.byteArray(pPin, count: ulPinLen)
            try request.byteArray(pUsername, count: ulUsernameLen)
        }
    }

    /// PKCS#11 3.0; version 1 and later.
    public func C_SessionCancel(_ hSession: CK_SESSION_HANDLE, _ flags: CK_FLAGS) -> CK_RV {
        plain(.sessionCancel) { (request, _) throws(RPCError) in
            request.ulong(hSession)
            request.ulong(flags)
        }
    }

    // MARK: - Objects

    public func C_CreateObject(_ hSession: CK_SESSION_HANDLE, _ pTemplate: UnsafeMutablePointer<CK_ATTRIBUTE>?,
                               _ ulCount: CK_ULONG, _ phObject: UnsafeMutablePointer<CK_OBJECT_HANDLE>?) -> CK_RV {
        ulongResult(.createObject, phObject) { (request, _) throws(RPCError) in
            request.ulong(hSession)
            try request.attributes(pTemplate, count: ulCount)
        }
    }

    public func C_CopyObject(_ hSession: CK_SESSION_HANDLE, _ hObject: CK_OBJECT_HANDLE,
                             _ pTemplate: UnsafeMutablePointer<CK_ATTRIBUTE>?, _ ulCount: CK_ULONG,
                             _ phNewObject: UnsafeMutablePointer<CK_OBJECT_HANDLE>?) -> CK_RV {
        ulongResult(.copyObject, phNewObject) { (request, _) throws(RPCError) in
            request.ulong(hSession)
            request.ulong(hObject)
            try request.attributes(pTemplate, count: ulCount)
        }
    }

    public func C_DestroyObject(_ hSession: CK_SESSION_HANDLE, _ hObject: CK_OBJECT_HANDLE) -> CK_RV {
        plain(.destroyObject) { (request, _) throws(RPCError) in
            request.ulong(hSession)
            request.ulong(hObject)
        }
    }

    public func C_GetObjectSize(_ hSession: CK_SESSION_HANDLE, _ hObject: CK_OBJECT_HANDLE,
                                _ pulSize: UnsafeMutablePointer<CK_ULONG>?) -> CK_RV {
        ulongResult(.getObjectSize, pulSize) { (request, _) throws(RPCError) in
            request.ulong(hSession)
            request.ulong(hObject)
        }
    }

    /// Nested templates (CKA_WRAP_TEMPLATE and kin) are not asked for: 0.24.1's server would
    /// dereference a NULL template while encoding a length-only answer. They come back
    /// CK_UNAVAILABLE_INFORMATION with CKR_ATTRIBUTE_TYPE_INVALID, as for a type a module lacks.
    public func C_GetAttributeValue(_ hSession: CK_SESSION_HANDLE, _ hObject: CK_OBJECT_HANDLE,
                                    _ pTemplate: UnsafeMutablePointer<CK_ATTRIBUTE>?, _ ulCount: CK_ULONG) -> CK_RV {
        guard let pTemplate, ulCount > 0 else { return ulCount == 0 ? CK_RV(CKR_OK) : CK_RV(CKR_ARGUMENTS_BAD) }
        guard WireLimits.fitsUInt32(ulCount) else { return CK_RV(CKR_ARGUMENTS_BAD) }
        let count = Int(ulCount)
        var skipped: [Bool] = []
        var indices: [Int] = []
        var types: [CK_ATTRIBUTE_TYPE] = []
        var hadBuffer: [Bool] = []
        for index in 0..<count {
            let attribute = pTemplate[index]
            let skip = AttributeValueKind(attribute.type) == .template
            skipped.append(skip)
            if skip { continue }
            indices.append(index)
            types.append(attribute.type)
            hadBuffer.append(attribute.pValue != nil && attribute.ulValueLen > 0)
        }
        var rv = CK_RV(CKR_OK)
        if !indices.isEmpty {
            let result = perform(.getAttributeValue, encode: { (request, _) throws(RPCError) in
                request.ulong(hSession)
                request.ulong(hObject)
                try request.attributeBuffer(pTemplate, count: count, skipping: skipped)
            }, decode: { (reply) throws(RPCError) in
                let values = try reply.attributeValues(types: types, hadBuffer: hadBuffer)
                let code = try reply.ulong()
                // Only these travel with an attribute array (rpc-server.c proto_write_attribute_array).
                guard code == CK_RV(CKR_OK) || code == CK_RV(CKR_ATTRIBUTE_SENSITIVE)
                        || code == CK_RV(CKR_ATTRIBUTE_TYPE_INVALID) || code == CK_RV(CKR_BUFFER_TOO_SMALL) else {
                    throw .malformed("attribute array with return value \(code)")
                }
                return (values, code, reply)
            })
            switch result {
            case .failure(let error):
                return record(error)
            case .success((let values, let code, let reply)):
                rv = code
                if !reply.apply(values, to: pTemplate, indices: indices) && rv == CK_RV(CKR_OK) {
                    rv = CK_RV(CKR_BUFFER_TOO_SMALL)
                }
            }
        }
        for index in 0..<count where skipped[index] {
            pTemplate[index].ulValueLen = unavailableInformation
            if rv == CK_RV(CKR_OK) { rv = CK_RV(CKR_ATTRIBUTE_TYPE_INVALID) }
        }
        return rv
    }

    public func C_SetAttributeValue(_ hSession: CK_SESSION_HANDLE, _ hObject: CK_OBJECT_HANDLE,
                                    _ pTemplate: UnsafeMutablePointer<CK_ATTRIBUTE>?, _ ulCount: CK_ULONG) -> CK_RV {
        plain(.setAttributeValue) { (request, _) throws(RPCError) in
            request.ulong(hSession)
            request.ulong(hObject)
            try request.attributes(pTemplate, count: ulCount)
        }
    }

    public func C_FindObjectsInit(_ hSession: CK_SESSION_HANDLE, _ pTemplate: UnsafeMutablePointer<CK_ATTRIBUTE>?,
                                  _ ulCount: CK_ULONG) -> CK_RV {
        plain(.findObjectsInit) { (request, _) throws(RPCError) in
            request.ulong(hSession)
            try request.attributes(pTemplate, count: ulCount)
        }
    }

    /// A reply with more handles than asked for is malformed, never written past phObject.
    public func C_FindObjects(_ hSession: CK_SESSION_HANDLE, _ phObject: UnsafeMutablePointer<CK_OBJECT_HANDLE>?,
                              _ ulMaxObjectCount: CK_ULONG, _ pulObjectCount: UnsafeMutablePointer<CK_ULONG>?) -> CK_RV {
        guard let phObject, let pulObjectCount, ulMaxObjectCount > 0 else { return CK_RV(CKR_ARGUMENTS_BAD) }
        let capacity = UInt32(min(ulMaxObjectCount, CK_ULONG(UInt32.max)))
        switch perform(.findObjects, encode: { (request, _) throws(RPCError) in
            request.ulong(hSession)
            request.ulongBuffer(capacity: capacity)
        }, decode: { (reply) throws(RPCError) -> [CK_ULONG] in
            guard case .values(let handles) = try reply.ulongArray() else { throw .malformed("C_FindObjects without handles") }
            guard handles.count <= Int(capacity) else { throw .malformed("\(handles.count) handles for \(capacity) asked") }
            return handles
        }) {
        case .failure(let error):
            return record(error)
        case .success(let handles):
            for (index, handle) in handles.enumerated() { phObject[index] = handle }
            pulObjectCount.pointee = CK_ULONG(handles.count)
            return CK_RV(CKR_OK)
        }
    }

    public func C_FindObjectsFinal(_ hSession: CK_SESSION_HANDLE) -> CK_RV {
        plain(.findObjectsFinal) { (request, _) throws(RPCError) in request.ulong(hSession) }
    }

    // MARK: - Cryptographic operations

    /// The *Init calls: "uMu" (session, mechanism, key); C_DigestInit has no key.
    func operationInit(_ call: RPCCall, _ hSession: CK_SESSION_HANDLE, _ pMechanism: UnsafeMutablePointer<CK_MECHANISM>?,
                       _ hKey: CK_OBJECT_HANDLE?) -> CK_RV {
        plain(call) { (request, version) throws(RPCError) in
            request.ulong(hSession)
            try request.mechanism(pMechanism.map { UnsafePointer($0) }, version: version)
            if let hKey { request.ulong(hKey) }
        }
    }

    /// "uayfy" -> "ay": one input, one output (C_Encrypt, C_SignEncryptUpdate...).
    func transform(_ call: RPCCall, _ hSession: CK_SESSION_HANDLE, _ input: UnsafeMutablePointer<CK_BYTE>?,
                   _ inputLength: CK_ULONG, _ output: UnsafeMutablePointer<CK_BYTE>?,
                   _ outputLength: UnsafeMutablePointer<CK_ULONG>?) -> CK_RV {
        bytesResult(call, output, outputLength) { (request, _) throws(RPCError) in
            request.ulong(hSession)
            try request.byteArray(input, count: inputLength)
        }
    }

    /// "uay" -> "": input only (C_DigestUpdate, C_SignUpdate, C_VerifyFinal, C_SeedRandom...).
    func consume(_ call: RPCCall, _ hSession: CK_SESSION_HANDLE, _ input: UnsafeMutablePointer<CK_BYTE>?,
                 _ inputLength: CK_ULONG) -> CK_RV {
        plain(call) { (request, _) throws(RPCError) in
            request.ulong(hSession)
            try request.byteArray(input, count: inputLength)
        }
    }

    /// "ufy" -> "ay": output only (the *Final calls, C_GenerateRandom).
    func produce(_ call: RPCCall, _ hSession: CK_SESSION_HANDLE, _ output: UnsafeMutablePointer<CK_BYTE>?,
                 _ outputLength: UnsafeMutablePointer<CK_ULONG>?) -> CK_RV {
        bytesResult(call, output, outputLength) { (request, _) throws(RPCError) in request.ulong(hSession) }
    }

    public func C_EncryptInit(_ hSession: CK_SESSION_HANDLE, _ pMechanism: UnsafeMutablePointer<CK_MECHANISM>?, _ hKey: CK_OBJECT_HANDLE) -> CK_RV {
        operationInit(.encryptInit, hSession, pMechanism, hKey)
    }
    public func C_Encrypt(_ hSession: CK_SESSION_HANDLE, _ pData: UnsafeMutablePointer<CK_BYTE>?, _ ulDataLen: CK_ULONG,
                          _ pEncryptedData: UnsafeMutablePointer<CK_BYTE>?, _ pulEncryptedDataLen: UnsafeMutablePointer<CK_ULONG>?) -> CK_RV {
        transform(.encrypt, hSession, pData, ulDataLen, pEncryptedData, pulEncryptedDataLen)
    }
    public func C_EncryptUpdate(_ hSession: CK_SESSION_HANDLE, _ pPart: UnsafeMutablePointer<CK_BYTE>?, _ ulPartLen: CK_ULONG,
                                _ pEncryptedPart: UnsafeMutablePointer<CK_BYTE>?, _ pulEncryptedPartLen: UnsafeMutablePointer<CK_ULONG>?) -> CK_RV {
        transform(.encryptUpdate, hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen)
    }
    public func C_EncryptFinal(_ hSession: CK_SESSION_HANDLE, _ pLastEncryptedPart: UnsafeMutablePointer<CK_BYTE>?,
                               _ pulLastEncryptedPartLen: UnsafeMutablePointer<CK_ULONG>?) -> CK_RV {
        produce(.encryptFinal, hSession, pLastEncryptedPart, pulLastEncryptedPartLen)
    }
    public func C_DecryptInit(_ hSession: CK_SESSION_HANDLE, _ pMechanism: UnsafeMutablePointer<CK_MECHANISM>?, _ hKey: CK_OBJECT_HANDLE) -> CK_RV {
        operationInit(.decryptInit, hSession, pMechanism, hKey)
    }
    public func C_Decrypt(_ hSession: CK_SESSION_HANDLE, _ pEncryptedData: UnsafeMutablePointer<CK_BYTE>?, _ ulEncryptedDataLen: CK_ULONG,
                          _ pData: UnsafeMutablePointer<CK_BYTE>?, _ pulDataLen: UnsafeMutablePointer<CK_ULONG>?) -> CK_RV {
        transform(.decrypt, hSession, pEncryptedData, ulEncryptedDataLen, pData, pulDataLen)
    }
    public func C_DecryptUpdate(_ hSession: CK_SESSION_HANDLE, _ pEncryptedPart: UnsafeMutablePointer<CK_BYTE>?, _ ulEncryptedPartLen: CK_ULONG,
                                _ pPart: UnsafeMutablePointer<CK_BYTE>?, _ pulPartLen: UnsafeMutablePointer<CK_ULONG>?) -> CK_RV {
        transform(.decryptUpdate, hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen)
    }
    public func C_DecryptFinal(_ hSession: CK_SESSION_HANDLE, _ pLastPart: UnsafeMutablePointer<CK_BYTE>?,
                               _ pulLastPartLen: UnsafeMutablePointer<CK_ULONG>?) -> CK_RV {
        produce(.decryptFinal, hSession, pLastPart, pulLastPartLen)
    }
    public func C_DigestInit(_ hSession: CK_SESSION_HANDLE, _ pMechanism: UnsafeMutablePointer<CK_MECHANISM>?) -> CK_RV {
        operationInit(.digestInit, hSession, pMechanism, nil)
    }
    public func C_Digest(_ hSession: CK_SESSION_HANDLE, _ pData: UnsafeMutablePointer<CK_BYTE>?, _ ulDataLen: CK_ULONG,
                         _ pDigest: UnsafeMutablePointer<CK_BYTE>?, _ pulDigestLen: UnsafeMutablePointer<CK_ULONG>?) -> CK_RV {
        transform(.digest, hSession, pData, ulDataLen, pDigest, pulDigestLen)
    }
    public func C_DigestUpdate(_ hSession: CK_SESSION_HANDLE, _ pPart: UnsafeMutablePointer<CK_BYTE>?, _ ulPartLen: CK_ULONG) -> CK_RV {
        consume(.digestUpdate, hSession, pPart, ulPartLen)
    }
    public func C_DigestKey(_ hSession: CK_SESSION_HANDLE, _ hKey: CK_OBJECT_HANDLE) -> CK_RV {
        plain(.digestKey) { (request, _) throws(RPCError) in
            request.ulong(hSession)
            request.ulong(hKey)
        }
    }
    public func C_DigestFinal(_ hSession: CK_SESSION_HANDLE, _ pDigest: UnsafeMutablePointer<CK_BYTE>?,
                              _ pulDigestLen: UnsafeMutablePointer<CK_ULONG>?) -> CK_RV {
        produce(.digestFinal, hSession, pDigest, pulDigestLen)
    }
    public func C_SignInit(_ hSession: CK_SESSION_HANDLE, _ pMechanism: UnsafeMutablePointer<CK_MECHANISM>?, _ hKey: CK_OBJECT_HANDLE) -> CK_RV {
        operationInit(.signInit, hSession, pMechanism, hKey)
    }
    public func C_Sign(_ hSession: CK_SESSION_HANDLE, _ pData: UnsafeMutablePointer<CK_BYTE>?, _ ulDataLen: CK_ULONG,
                       _ pSignature: UnsafeMutablePointer<CK_BYTE>?, _ pulSignatureLen: UnsafeMutablePointer<CK_ULONG>?) -> CK_RV {
        transform(.sign, hSession, pData, ulDataLen, pSignature, pulSignatureLen)
    }
    public func C_SignUpdate(_ hSession: CK_SESSION_HANDLE, _ pPart: UnsafeMutablePointer<CK_BYTE>?, _ ulPartLen: CK_ULONG) -> CK_RV {
        consume(.signUpdate, hSession, pPart, ulPartLen)
    }
    public func C_SignFinal(_ hSession: CK_SESSION_HANDLE, _ pSignature: UnsafeMutablePointer<CK_BYTE>?,
                            _ pulSignatureLen: UnsafeMutablePointer<CK_ULONG>?) -> CK_RV {
        produce(.signFinal, hSession, pSignature, pulSignatureLen)
    }
    public func C_SignRecoverInit(_ hSession: CK_SESSION_HANDLE, _ pMechanism: UnsafeMutablePointer<CK_MECHANISM>?, _ hKey: CK_OBJECT_HANDLE) -> CK_RV {
        operationInit(.signRecoverInit, hSession, pMechanism, hKey)
    }
    public func C_SignRecover(_ hSession: CK_SESSION_HANDLE, _ pData: UnsafeMutablePointer<CK_BYTE>?, _ ulDataLen: CK_ULONG,
                              _ pSignature: UnsafeMutablePointer<CK_BYTE>?, _ pulSignatureLen: UnsafeMutablePointer<CK_ULONG>?) -> CK_RV {
        transform(.signRecover, hSession, pData, ulDataLen, pSignature, pulSignatureLen)
    }
    public func C_VerifyInit(_ hSession: CK_SESSION_HANDLE, _ pMechanism: UnsafeMutablePointer<CK_MECHANISM>?, _ hKey: CK_OBJECT_HANDLE) -> CK_RV {
        operationInit(.verifyInit, hSession, pMechanism, hKey)
    }
    public func C_Verify(_ hSession: CK_SESSION_HANDLE, _ pData: UnsafeMutablePointer<CK_BYTE>?, _ ulDataLen: CK_ULONG,
                         _ pSignature: UnsafeMutablePointer<CK_BYTE>?, _ ulSignatureLen: CK_ULONG) -> CK_RV {
        plain(.verify) { (request, _) throws(RPCError) in
            request.ulong(hSession)
            try request.byteArray(pData, count: ulDataLen)
            try request.byteArray(pSignature, count: ulSignatureLen)
        }
    }
    public func C_VerifyUpdate(_ hSession: CK_SESSION_HANDLE, _ pPart: UnsafeMutablePointer<CK_BYTE>?, _ ulPartLen: CK_ULONG) -> CK_RV {
        consume(.verifyUpdate, hSession, pPart, ulPartLen)
    }
    public func C_VerifyFinal(_ hSession: CK_SESSION_HANDLE, _ pSignature: UnsafeMutablePointer<CK_BYTE>?, _ ulSignatureLen: CK_ULONG) -> CK_RV {
        consume(.verifyFinal, hSession, pSignature, ulSignatureLen)
    }
    public func C_VerifyRecoverInit(_ hSession: CK_SESSION_HANDLE, _ pMechanism: UnsafeMutablePointer<CK_MECHANISM>?, _ hKey: CK_OBJECT_HANDLE) -> CK_RV {
        operationInit(.verifyRecoverInit, hSession, pMechanism, hKey)
    }
    public func C_VerifyRecover(_ hSession: CK_SESSION_HANDLE, _ pSignature: UnsafeMutablePointer<CK_BYTE>?, _ ulSignatureLen: CK_ULONG,
                                _ pData: UnsafeMutablePointer<CK_BYTE>?, _ pulDataLen: UnsafeMutablePointer<CK_ULONG>?) -> CK_RV {
        transform(.verifyRecover, hSession, pSignature, ulSignatureLen, pData, pulDataLen)
    }
    public func C_DigestEncryptUpdate(_ hSession: CK_SESSION_HANDLE, _ pPart: UnsafeMutablePointer<CK_BYTE>?, _ ulPartLen: CK_ULONG,
                                      _ pEncryptedPart: UnsafeMutablePointer<CK_BYTE>?, _ pulEncryptedPartLen: UnsafeMutablePointer<CK_ULONG>?) -> CK_RV {
        transform(.digestEncryptUpdate, hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen)
    }
    public func C_DecryptDigestUpdate(_ hSession: CK_SESSION_HANDLE, _ pEncryptedPart: UnsafeMutablePointer<CK_BYTE>?, _ ulEncryptedPartLen: CK_ULONG,
                                      _ pPart: UnsafeMutablePointer<CK_BYTE>?, _ pulPartLen: UnsafeMutablePointer<CK_ULONG>?) -> CK_RV {
        transform(.decryptDigestUpdate, hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen)
    }
    public func C_SignEncryptUpdate(_ hSession: CK_SESSION_HANDLE, _ pPart: UnsafeMutablePointer<CK_BYTE>?, _ ulPartLen: CK_ULONG,
                                    _ pEncryptedPart: UnsafeMutablePointer<CK_BYTE>?, _ pulEncryptedPartLen: UnsafeMutablePointer<CK_ULONG>?) -> CK_RV {
        transform(.signEncryptUpdate, hSession, pPart, ulPartLen, pEncryptedPart, pulEncryptedPartLen)
    }
    public func C_DecryptVerifyUpdate(_ hSession: CK_SESSION_HANDLE, _ pEncryptedPart: UnsafeMutablePointer<CK_BYTE>?, _ ulEncryptedPartLen: CK_ULONG,
                                      _ pPart: UnsafeMutablePointer<CK_BYTE>?, _ pulPartLen: UnsafeMutablePointer<CK_ULONG>?) -> CK_RV {
        transform(.decryptVerifyUpdate, hSession, pEncryptedPart, ulEncryptedPartLen, pPart, pulPartLen)
    }

    // MARK: - Keys and random

    public func C_GenerateKey(_ hSession: CK_SESSION_HANDLE, _ pMechanism: UnsafeMutablePointer<CK_MECHANISM>?,
                              _ pTemplate: UnsafeMutablePointer<CK_ATTRIBUTE>?, _ ulCount: CK_ULONG,
                              _ phKey: UnsafeMutablePointer<CK_OBJECT_HANDLE>?) -> CK_RV {
        ulongResult(.generateKey, phKey) { (request, version) throws(RPCError) in
            request.ulong(hSession)
            try request.mechanism(pMechanism.map { UnsafePointer($0) }, version: version)
            try request.attributes(pTemplate, count: ulCount)
        }
    }

    public func C_GenerateKeyPair(_ hSession: CK_SESSION_HANDLE, _ pMechanism: UnsafeMutablePointer<CK_MECHANISM>?,
                                  _ pPublicKeyTemplate: UnsafeMutablePointer<CK_ATTRIBUTE>?, _ ulPublicKeyAttributeCount: CK_ULONG,
                                  _ pPrivateKeyTemplate: UnsafeMutablePointer<CK_ATTRIBUTE>?, _ ulPrivateKeyAttributeCount: CK_ULONG,
                                  _ phPublicKey: UnsafeMutablePointer<CK_OBJECT_HANDLE>?,
                                  _ phPrivateKey: UnsafeMutablePointer<CK_OBJECT_HANDLE>?) -> CK_RV {
        guard let phPublicKey, let phPrivateKey, pMechanism != nil else { return CK_RV(CKR_ARGUMENTS_BAD) }
        switch perform(.generateKeyPair, encode: { (request, version) throws(RPCError) in
            request.ulong(hSession)
            try request.mechanism(pMechanism.map { UnsafePointer($0) }, version: version)
            try request.attributes(pPublicKeyTemplate, count: ulPublicKeyAttributeCount)
            try request.attributes(pPrivateKeyTemplate, count: ulPrivateKeyAttributeCount)
        }, decode: { (reply) throws(RPCError) in (try reply.ulong(), try reply.ulong()) }) {
        case .success((let publicKey, let privateKey)):
            phPublicKey.pointee = publicKey
            phPrivateKey.pointee = privateKey
            return CK_RV(CKR_OK)
        case .failure(let error):
            return record(error)
        }
    }

    public func C_WrapKey(_ hSession: CK_SESSION_HANDLE, _ pMechanism: UnsafeMutablePointer<CK_MECHANISM>?,
                          _ hWrappingKey: CK_OBJECT_HANDLE, _ hKey: CK_OBJECT_HANDLE,
                          _ pWrappedKey: UnsafeMutablePointer<CK_BYTE>?, _ pulWrappedKeyLen: UnsafeMutablePointer<CK_ULONG>?) -> CK_RV {
        guard pMechanism != nil else { return CK_RV(CKR_ARGUMENTS_BAD) }
        return bytesResult(.wrapKey, pWrappedKey, pulWrappedKeyLen) { (request, version) throws(RPCError) in
            request.ulong(hSession)
            try request.mechanism(pMechanism.map { UnsafePointer($0) }, version: version)
            request.ulong(hWrappingKey)
            request.ulong(hKey)
        }
    }

    public func C_UnwrapKey(_ hSession: CK_SESSION_HANDLE, _ pMechanism: UnsafeMutablePointer<CK_MECHANISM>?,
                            _ hUnwrappingKey: CK_OBJECT_HANDLE, _ pWrappedKey: UnsafeMutablePointer<CK_BYTE>?,
                            _ ulWrappedKeyLen: CK_ULONG, _ pTemplate: UnsafeMutablePointer<CK_ATTRIBUTE>?,
                            _ ulAttributeCount: CK_ULONG, _ phKey: UnsafeMutablePointer<CK_OBJECT_HANDLE>?) -> CK_RV {
        guard pMechanism != nil else { return CK_RV(CKR_ARGUMENTS_BAD) }
        return ulongResult(.unwrapKey, phKey) { (request, version) throws(RPCError) in
            request.ulong(hSession)
            try request.mechanism(pMechanism.map { UnsafePointer($0) }, version: version)
            request.ulong(hUnwrappingKey)
            try request.byteArray(pWrappedKey, count: ulWrappedKeyLen)
            try request.attributes(pTemplate, count: ulAttributeCount)
        }
    }

    public func C_DeriveKey(_ hSession: CK_SESSION_HANDLE, _ pMechanism: UnsafeMutablePointer<CK_MECHANISM>?,
                            _ hBaseKey: CK_OBJECT_HANDLE, _ pTemplate: UnsafeMutablePointer<CK_ATTRIBUTE>?,
                            _ ulAttributeCount: CK_ULONG, _ phKey: UnsafeMutablePointer<CK_OBJECT_HANDLE>?) -> CK_RV {
        guard pMechanism != nil else { return CK_RV(CKR_ARGUMENTS_BAD) }
        return ulongResult(.deriveKey, phKey) { (request, version) throws(RPCError) in
            request.ulong(hSession)
            try request.mechanism(pMechanism.map { UnsafePointer($0) }, version: version)
            request.ulong(hBaseKey)
            try request.attributes(pTemplate, count: ulAttributeCount)
        }
    }

    public func C_SeedRandom(_ hSession: CK_SESSION_HANDLE, _ pSeed: UnsafeMutablePointer<CK_BYTE>?, _ ulSeedLen: CK_ULONG) -> CK_RV {
        consume(.seedRandom, hSession, pSeed, ulSeedLen)
    }

    /// A reply of another length than asked for is malformed (a module returns exactly ulRandomLen).
    public func C_GenerateRandom(_ hSession: CK_SESSION_HANDLE, _ RandomData: UnsafeMutablePointer<CK_BYTE>?,
                                 _ ulRandomLen: CK_ULONG) -> CK_RV {
        guard RandomData != nil || ulRandomLen == 0 else { return CK_RV(CKR_ARGUMENTS_BAD) }
        // No bytes asked: nothing to fetch, but the session must exist. Sent as a zero-length
        // buffer, 0.24.1's server would hand its module a NULL one (which SoftHSM2 refuses with
        // CKR_ARGUMENTS_BAD, what p11-kit's own client then answers); a local module answers OK.
        if ulRandomLen == 0 {
            var info = CK_SESSION_INFO()
            return C_GetSessionInfo(hSession, &info)
        }
        var length = ulRandomLen
        let rv = produce(.generateRandom, hSession, RandomData, &length)
        if rv == CK_RV(CKR_OK) && length != ulRandomLen {
            return record(RPCError(CK_RV(CKR_DEVICE_ERROR), "C_GenerateRandom: \(length) bytes for \(ulRandomLen) asked"))
        }
        return rv
    }

    // MARK: - Answered here

    /// Legacy functions (PKCS#11 2.40 section 5.16): what every module now answers.
    public func C_GetFunctionStatus(_ hSession: CK_SESSION_HANDLE) -> CK_RV { CK_RV(CKR_FUNCTION_NOT_PARALLEL) }
    public func C_CancelFunction(_ hSession: CK_SESSION_HANDLE) -> CK_RV { CK_RV(CKR_FUNCTION_NOT_PARALLEL) }

    /// The answer for each PKCS#11 3.0 message-based function (C_MessageEncryptInit ...
    /// C_MessageVerifyFinal) and each PKCS#11 3.2 function: p11-kit's protocol carries their
    /// per-message parameters as raw bytes with pointers in them (3.0), or has no call (3.2).
    public static let unsupportedFunctionResult = CK_RV(CKR_FUNCTION_NOT_SUPPORTED)
}
