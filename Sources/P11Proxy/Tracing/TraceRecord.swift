// One traced call, built as it happens: IN fields before the module runs, OUT fields after,
// then written whole (TraceOutput) with the header that only the end of the call can fill.
//
// Text follows p11-kit's log-calls layout (`C_X` line, `  IN:` / ` OUT:` lines, `C_X = CKR_..`),
// with the proxy's identity of the call on the first line:
//   C_Sign [softhsm2 caller=1 tid=4242 2026-11-22T01:56:34.123456Z 12.345us]
// JSON is one object per line with the same content (schema in README.md).
import CPKCS11
import P11ProxyLoader
import P11ProxyNames
import Glibc
import Synchronization

enum TraceDirection { case `in`, out }
enum HandleKind { case session, slot, object, mechanism }
enum Secrecy { case plain, secret, pin }
/// What a template describes when the function says so (C_GenerateKey makes a key).
enum ObjectHint { case unknown, key, publicObject }

/// What the tracer needs to know about an object to decide what to redact.
struct ObjectTraits {
    /// Secret or private key; nil when unknown.
    var isKey: Bool?
    var isSensitive: Bool?
}

struct TraceRecord {
    let function: StaticString
    let module: ModuleIndex
    let caller: CallerNumber
    let json: Bool
    let secrets: Bool
    /// This thread's buffers, borrowed for the record's life (nil: a record nested inside
    /// another on the same thread, with buffers of its own).
    let scratch: Unmanaged<TraceScratch>?
    var inputs: TraceBuffer
    var outputs: TraceBuffer
    var inputCount = 0
    var outputCount = 0
    var start = TraceInstant(wallSeconds: 0, wallNanoseconds: 0, monotonicNanoseconds: 0)
    var end: UInt64 = 0
    /// A PIN or key bytes were written out in full (x-log-secrets): the record is written and
    /// every buffer that held it wiped before the call returns.
    var holdsSecret = false
    /// C_GetAttributeValue's template as the caller supplied it (SuppliedTemplate), kept from
    /// before the module runs until the OUT part is built: the thread's scratch store, borrowed.
    var supplied: TraceBuffer?
    /// The key type a key-pair mechanism makes (CKM_ML_DSA_KEY_PAIR_GEN...), for the templates
    /// after it that do not name theirs (CKA_PARAMETER_SET's names depend on it).
    var keyTypeHint: CK_KEY_TYPE?

    /// Beyond this many bytes a buffer is shown truncated (its length is always shown).
    static let byteLimit = 1024
    /// Beyond this many elements a list or template is not walked.
    static let elementLimit = 1024

    init(_ function: StaticString, module: UnsafeMutablePointer<ModuleEntry>, caller: CallerNumber) {
        let mode = TraceMode(rawValue: module.pointee.traceMode.load(ordering: .relaxed))
        self.function = function
        self.module = ModuleTable.index(of: module)
        self.caller = caller
        json = mode.contains(.json)
        secrets = mode.contains(.secrets)
        let current = TraceScratch.current()
        if current.inUse {
            scratch = nil
            inputs = TraceBuffer(capacity: 256)
            outputs = TraceBuffer(capacity: 256)
        } else {
            current.inUse = true
            scratch = Unmanaged.passUnretained(current)
            inputs = current.inputs
            outputs = current.outputs
            inputs.removeAll()
            outputs.removeAll()
        }
    }

    // MARK: Record framing

    mutating func callStarts() { start = TraceInstant.now(cache: threadScratch) }
    mutating func callEnded() { end = TraceInstant.monotonicNow() }

    /// C_WaitForSlotEvent may block indefinitely: its IN half goes out first, as its own line(s).
    mutating func writeInputsNow() {
        let snapshot = self
        let start = TraceInstant.now(cache: threadScratch)
        TraceOutput.emit(module: module, thread: scratch, urgent: true, secrets: snapshot.holdsSecret, now: start.monotonicNanoseconds) { name, out in
            var early = snapshot
            early.start = start
            early.end = early.start.monotonicNanoseconds
            early.appendHeader(moduleName: name, to: &out, waiting: true)
            out.append(contentsOf: early.inputs)
            if early.json { TraceText.append("}}\n", to: &out) }
        }
    }

    mutating func finish(_ rv: CK_RV) {
        let record = self
        // A record with secrets is not left in the thread's pending buffer for the flusher: written now,
        // and the buffer wiped (TraceScratch.writePending), so no copy outlives the call.
        TraceOutput.emit(module: module, thread: scratch, urgent: rv != CKR_OK || holdsSecret, secrets: holdsSecret, now: end) { name, out in
            record.appendHeader(moduleName: name, to: &out, waiting: false)
            out.append(contentsOf: record.inputs)
            if record.json { TraceText.append("},\"out\":{", to: &out) }
            out.append(contentsOf: record.outputs)
            record.appendFooter(rv, to: &out)
        }
        // The only other copies p11proxy made of PINs and key bytes for this record.
        inputs.removeAll(wipe: holdsSecret)
        outputs.removeAll(wipe: holdsSecret)
        if let scratch {
            // The buffers may have grown (moved): hand the current ones back.
            let owner = scratch.takeUnretainedValue()
            owner.inputs = inputs
            owner.outputs = outputs
            if let supplied { owner.supplied = supplied }
            owner.inUse = false
        } else {
            inputs.deallocate()
            outputs.deallocate()
            supplied?.deallocate()
        }
    }

    /// This thread's scratch (thread id, timestamp cache), also for a nested record.
    var threadScratch: TraceScratch { scratch?.takeUnretainedValue() ?? TraceScratch.current() }

    func appendHeader(moduleName: UnsafeRawBufferPointer, to out: inout TraceBuffer, waiting: Bool) {
        let threadScratch = threadScratch
        let duration = end >= start.monotonicNanoseconds ? end - start.monotonicNanoseconds : 0
        if json {
            TraceText.append("{\"time\":\"", to: &out)
            start.appendISO8601(to: &out, cache: threadScratch)
            TraceText.append("\",\"thread\":", to: &out)
            TraceText.appendSigned(threadScratch.threadID, to: &out)
            TraceText.append(",\"module\":", to: &out)
            TraceText.appendJSONString(moduleName, to: &out)
            TraceText.append(",\"caller\":", to: &out)
            TraceText.appendSigned(caller.value + 1, to: &out)
            TraceText.append(",\"function\":", to: &out)
            TraceText.appendJSONString(function, to: &out)
            if waiting {
                TraceText.append(",\"phase\":\"waiting\"", to: &out)
            } else {
                TraceText.append(",\"duration_us\":", to: &out)
                TraceText.appendMicroseconds(nanoseconds: duration, to: &out)
            }
            TraceText.append(",\"in\":{", to: &out)
        } else {
            TraceText.append(function, to: &out)
            TraceText.append(" [", to: &out)
            out.append(moduleName)
            TraceText.append(" caller=", to: &out)
            TraceText.appendSigned(caller.value + 1, to: &out)
            TraceText.append(" tid=", to: &out)
            TraceText.appendSigned(threadScratch.threadID, to: &out)
            out.append(UInt8(ascii: " "))
            start.appendISO8601(to: &out, cache: threadScratch)
            if waiting {
                TraceText.append(" waiting]\n", to: &out)
            } else {
                out.append(UInt8(ascii: " "))
                TraceText.appendMicroseconds(nanoseconds: duration, to: &out)
                TraceText.append("us]\n", to: &out)
            }
        }
    }

    func appendFooter(_ rv: CK_RV, to out: inout TraceBuffer) {
        if json {
            TraceText.append("},\"rv\":", to: &out)
            TraceValue.named(&out, json: true, rv, PKCS11Name.returnValue)
            TraceText.append(",\"rv_value\":", to: &out)
            TraceText.appendDecimal(rv, to: &out)
            TraceText.append("}\n", to: &out)
        } else {
            TraceText.append(function, to: &out)
            TraceText.append(" = ", to: &out)
            TraceValue.named(&out, json: false, rv, PKCS11Name.returnValue)
            out.append(UInt8(ascii: "\n"))
        }
    }

    // MARK: Fields

    /// Writes one `name = value` (text) or `"name":value` (JSON) into the IN or OUT part.
    @inline(__always)
    mutating func field(_ direction: TraceDirection, _ name: StaticString, _ value: (inout TraceBuffer, Bool) -> Void) {
        switch direction {
        case .in: Self.field(&inputs, &inputCount, json: json, prefix: "  IN: ", name, value)
        case .out: Self.field(&outputs, &outputCount, json: json, prefix: " OUT: ", name, value)
        }
    }

    private static func field(_ out: inout TraceBuffer, _ count: inout Int, json: Bool, prefix: StaticString,
                              _ name: StaticString, _ value: (inout TraceBuffer, Bool) -> Void) {
        if json {
            if count > 0 { out.append(UInt8(ascii: ",")) }
            TraceText.appendJSONString(name, to: &out)
            out.append(UInt8(ascii: ":"))
            value(&out, true)
        } else {
            TraceText.append(prefix, to: &out)
            TraceText.append(name, to: &out)
            TraceText.append(" = ", to: &out)
            value(&out, false)
            out.append(UInt8(ascii: "\n"))
        }
        count += 1
    }

    mutating func handle(_ direction: TraceDirection, _ name: StaticString, _ value: CK_ULONG, _ kind: HandleKind) {
        field(direction, name) { out, json in TraceValue.handle(&out, json: json, value, kind) }
    }

    mutating func ulong(_ direction: TraceDirection, _ name: StaticString, _ value: CK_ULONG) {
        field(direction, name) { out, json in TraceValue.ulong(&out, json: json, value) }
    }

    mutating func bool(_ direction: TraceDirection, _ name: StaticString, _ value: CK_BBOOL) {
        field(direction, name) { out, json in TraceValue.bool(&out, json: json, value) }
    }

    mutating func named(_ direction: TraceDirection, _ name: StaticString, _ value: CK_ULONG, _ namer: (CK_ULONG) -> StaticString?) {
        field(direction, name) { out, json in TraceValue.named(&out, json: json, value, namer) }
    }

    mutating func flags(_ direction: TraceDirection, _ name: StaticString, _ value: CK_FLAGS, _ family: FlagFamily) {
        field(direction, name) { out, json in TraceValue.flags(&out, json: json, value, family) }
    }

    mutating func pointer(_ direction: TraceDirection, _ name: StaticString, _ value: UnsafeRawPointer?) {
        field(direction, name) { out, json in TraceValue.pointer(&out, json: json, value) }
    }

    mutating func pointer<T>(_ direction: TraceDirection, _ name: StaticString, _ value: UnsafeMutablePointer<T>?) {
        pointer(direction, name, UnsafeRawPointer(value))
    }

    mutating func pointer(_ direction: TraceDirection, _ name: StaticString, _ value: CK_NOTIFY?) {
        pointer(direction, name, value.map { unsafeBitCast($0, to: UnsafeRawPointer.self) })
    }

    mutating func pointerPointee<T>(_ name: StaticString, _ value: UnsafeMutablePointer<T>?, _ rv: CK_RV) {
        guard rv == CKR_OK else { return }
        pointer(.out, name, UnsafeRawPointer(value))
    }

    mutating func ulongPointee(_ direction: TraceDirection, _ name: StaticString, _ value: UnsafeMutablePointer<CK_ULONG>?, _ rv: CK_RV = CK_RV(CKR_OK)) {
        guard rv == CKR_OK else { return }
        field(direction, name) { out, json in
            if let value { TraceValue.ulong(&out, json: json, value.pointee) } else { TraceValue.pointer(&out, json: json, nil) }
        }
    }

    mutating func handlePointee(_ name: StaticString, _ value: UnsafeMutablePointer<CK_ULONG>?, _ rv: CK_RV, _ kind: HandleKind) {
        guard rv == CKR_OK else { return }
        field(.out, name) { out, json in
            if let value { TraceValue.handle(&out, json: json, value.pointee, kind) } else { TraceValue.pointer(&out, json: json, nil) }
        }
    }

    mutating func version(_ direction: TraceDirection, _ name: StaticString, _ value: UnsafeMutablePointer<CK_VERSION>?) {
        field(direction, name) { out, json in
            if let value { TraceValue.version(&out, json: json, value.pointee) } else { TraceValue.pointer(&out, json: json, nil) }
        }
    }

    // MARK: Buffers

    mutating func bytes(_ direction: TraceDirection, _ name: StaticString, _ value: UnsafeMutablePointer<CK_BYTE>?,
                        _ length: CK_ULONG, _ secrecy: Secrecy) {
        bytes(direction, name, UnsafeRawPointer(value), length, secrecy)
    }

    mutating func bytes(_ direction: TraceDirection, _ name: StaticString, _ value: UnsafeMutableRawPointer?,
                        _ length: CK_ULONG, _ secrecy: Secrecy) {
        bytes(direction, name, UnsafeRawPointer(value), length, secrecy)
    }

    mutating func bytes(_ direction: TraceDirection, _ name: StaticString, _ value: UnsafeRawPointer?,
                        _ length: CK_ULONG, _ secrecy: Secrecy) {
        let redact = secrecy != .plain && !secrets
        if secrecy != .plain && secrets { holdsSecret = true }
        field(direction, name) { out, json in TraceValue.bytes(&out, json: json, value, length, redact: redact) }
    }

    /// What an output buffer holds, by its length pointer as the caller set it before the call
    /// (0 for a NULL buffer): the OUT part shows no more than that, whatever the module reports.
    @inline(__always)
    static func capacity<T>(of buffer: UnsafeMutablePointer<T>?, _ length: UnsafeMutablePointer<CK_ULONG>?) -> CK_ULONG {
        guard buffer != nil, let length else { return 0 }
        return length.pointee
    }

    /// An output buffer with a length pointer: the data on CKR_OK (no more than `capacity`, what
    /// the buffer holds), the length asked for or needed on a size query or CKR_BUFFER_TOO_SMALL.
    mutating func bytesOut(_ name: StaticString, _ value: UnsafeMutablePointer<CK_BYTE>?,
                           _ length: UnsafeMutablePointer<CK_ULONG>?, capacity: CK_ULONG, _ rv: CK_RV, _ secrecy: Secrecy) {
        guard rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL, let length else { return }
        let shown = rv == CKR_OK ? UnsafeRawPointer(value) : nil
        let redact = secrecy != .plain && !secrets
        if secrecy != .plain && secrets && shown != nil { holdsSecret = true }
        let count = length.pointee
        field(.out, name) { out, json in TraceValue.bytes(&out, json: json, shown, count, redact: redact, capacity: capacity) }
    }

    mutating func bytesOut(_ name: StaticString, _ value: UnsafeMutablePointer<CK_BYTE>?,
                           fixedLength: CK_ULONG, _ rv: CK_RV, _ secrecy: Secrecy) {
        guard rv == CKR_OK else { return }
        let redact = secrecy != .plain && !secrets
        if secrecy != .plain && secrets { holdsSecret = true }
        field(.out, name) { out, json in TraceValue.bytes(&out, json: json, UnsafeRawPointer(value), fixedLength, redact: redact) }
    }

    mutating func paddedText(_ direction: TraceDirection, _ name: StaticString, _ value: UnsafeMutablePointer<CK_BYTE>?, _ width: Int) {
        field(direction, name) { out, json in
            guard let value else { return TraceValue.pointer(&out, json: json, nil) }
            var length = width
            while length > 0 && (value[length - 1] == 0x20 || value[length - 1] == 0) { length -= 1 }
            TraceValue.string(&out, json: json, UnsafeRawBufferPointer(start: value, count: length))
        }
    }

    mutating func text(_ direction: TraceDirection, _ name: StaticString, _ value: UnsafeMutablePointer<CK_BYTE>?, _ length: CK_ULONG) {
        field(direction, name) { out, json in
            guard let value, length != CK_ULONG.max else { return TraceValue.bytes(&out, json: json, nil, length, redact: false) }
            TraceValue.string(&out, json: json, UnsafeRawBufferPointer(start: value, count: Int(min(length, CK_ULONG(TraceRecord.byteLimit)))))
        }
    }

    /// A 3.0 message call's parameter (C_EncryptMessage etc.): its structure depends on the
    /// mechanism given to the Init call, so it is recognised by its size (GCM and CCM message
    /// parameters); anything else is shown as bytes.
    mutating func messageParameter(_ direction: TraceDirection, _ name: StaticString, _ value: UnsafeMutableRawPointer?, _ length: CK_ULONG) {
        field(direction, name) { out, json in TraceMechanism.messageParameter(&out, json: json, value, length, output: false) }
    }

    mutating func messageParameterOut(_ name: StaticString, _ value: UnsafeMutableRawPointer?, _ length: CK_ULONG, _ rv: CK_RV) {
        guard rv == CKR_OK, TraceMechanism.hasOutputs(value, length) else { return }
        field(.out, name) { out, json in TraceMechanism.messageParameter(&out, json: json, value, length, output: true) }
    }

    mutating func cString(_ direction: TraceDirection, _ name: StaticString, _ value: UnsafeMutablePointer<CK_BYTE>?) {
        field(direction, name) { out, json in
            guard let value else { return TraceValue.pointer(&out, json: json, nil) }
            let length = strnlen(UnsafeRawPointer(value).assumingMemoryBound(to: CChar.self), 256)
            TraceValue.string(&out, json: json, UnsafeRawBufferPointer(start: value, count: length))
        }
    }

    // MARK: Asynchronous operations (PKCS#11 3.2 section 5.20)

    /// C_AsyncJoin's buffer: the module fills it after the call returns, so it is not read.
    mutating func asyncBuffer(_ name: StaticString, _ value: UnsafeMutablePointer<CK_BYTE>?, _ length: CK_ULONG) {
        field(.in, name) { out, json in TraceValue.unread(&out, json: json, UnsafeRawPointer(value), length) }
    }

    /// C_AsyncComplete's CK_ASYNC_DATA before the call: the version the caller asks for.
    mutating func asyncData(_ direction: TraceDirection, _ name: StaticString, _ value: UnsafeMutablePointer<CK_ASYNC_DATA>?) {
        field(direction, name) { out, json in
            guard let value else { return TraceValue.pointer(&out, json: json, nil) }
            var object = TraceObject(&out, json: json)
            object.member(&out, "ulVersion")
            TraceValue.ulong(&out, json: json, value.pointee.ulVersion)
            object.close(&out)
        }
    }

    /// The finished operation's result: its handles and the length of its data. The data itself
    /// (pValue) is not read: it may be a decryption's plaintext, and the operation's buffers are
    /// the caller's business.
    mutating func asyncDataOut(_ name: StaticString, _ value: UnsafeMutablePointer<CK_ASYNC_DATA>?, _ rv: CK_RV) {
        guard rv == CKR_OK, let value else { return }
        let result = value.pointee
        field(.out, name) { out, json in
            var object = TraceObject(&out, json: json)
            object.member(&out, "ulVersion")
            TraceValue.ulong(&out, json: json, result.ulVersion)
            object.member(&out, "pValue")
            TraceValue.unread(&out, json: json, UnsafeRawPointer(result.pValue), result.ulValue)
            object.member(&out, "hObject")
            TraceValue.handle(&out, json: json, result.hObject, .object)
            object.member(&out, "hAdditionalObject")
            TraceValue.handle(&out, json: json, result.hAdditionalObject, .object)
            object.close(&out)
        }
    }

    // MARK: Lists and structures

    /// `capacity`: how many elements the caller's buffer holds (ulMaxObjectCount, or *pulCount
    /// before the call); no more are shown, whatever count the module reports.
    mutating func handleList(_ name: StaticString, _ value: UnsafeMutablePointer<CK_ULONG>?,
                             _ count: UnsafeMutablePointer<CK_ULONG>?, capacity: CK_ULONG, _ rv: CK_RV, _ kind: HandleKind) {
        guard rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL, let count else { return }
        let shown = rv == CKR_OK ? value : nil
        let total = count.pointee
        field(.out, name) { out, json in TraceValue.handleList(&out, json: json, shown, total, kind, capacity: capacity) }
    }

    mutating func mechanism(_ direction: TraceDirection, _ name: StaticString, _ value: UnsafeMutablePointer<CK_MECHANISM>?) {
        keyTypeHint = value.flatMap { TraceMechanism.keyType(generatedBy: $0.pointee.mechanism) }
        field(direction, name) { out, json in
            guard let value else { return TraceValue.pointer(&out, json: json, nil) }
            TraceMechanism.append(&out, json: json, value.pointee)
        }
    }

    mutating func initializeArguments(_ name: StaticString, _ value: UnsafeMutableRawPointer?) {
        field(.in, name) { out, json in
            guard let value else { return TraceValue.pointer(&out, json: json, nil) }
            TraceStructs.initializeArguments(&out, json: json, value.assumingMemoryBound(to: CK_C_INITIALIZE_ARGS.self).pointee)
        }
    }

    mutating func info<T>(_ name: StaticString, _ value: UnsafeMutablePointer<T>?, _ rv: CK_RV) {
        guard rv == CKR_OK, let value else { return }
        field(.out, name) { out, json in TraceStructs.append(&out, json: json, value) }
    }

    // MARK: Templates

    mutating func template(_ direction: TraceDirection, _ name: StaticString, _ value: UnsafeMutablePointer<CK_ATTRIBUTE>?,
                           _ count: CK_ULONG, _ hint: ObjectHint) {
        let secrets = secrets, keyType = keyTypeHint
        // Values are shown whole with x-log-secrets; CKA_VALUE of a key may be among them.
        if secrets && value != nil && count > 0 { holdsSecret = true }
        field(direction, name) { out, json in
            TraceTemplate.append(&out, json: json, value, count, showValues: true, secrets: secrets, keyType: keyType) {
                TraceTemplate.traits(of: value, count, hint: hint)
            }
        }
    }

    mutating func templateTypes(_ name: StaticString, _ value: UnsafeMutablePointer<CK_ATTRIBUTE>?, _ count: CK_ULONG) {
        field(.in, name) { out, json in
            TraceTemplate.append(&out, json: json, value, count, showValues: false, secrets: true) { ObjectTraits() }
        }
    }

    /// Before C_GetAttributeValue runs: each value buffer of the template and what it holds, so
    /// `templateOut` reads no further whatever lengths the module reports (SuppliedTemplate).
    mutating func rememberTemplate(_ value: UnsafeMutablePointer<CK_ATTRIBUTE>?, _ count: CK_ULONG) {
        guard let value, count > 0, count <= CK_ULONG(Self.elementLimit) else { return }
        var store = scratch?.takeUnretainedValue().supplied ?? TraceBuffer(capacity: 256)
        SuppliedTemplate.remember(value, Int(count), into: &store)
        supplied = store
    }

    /// C_GetAttributeValue's results. Per PKCS#11 3.0 section 5.7 the per-attribute lengths are
    /// meaningful for CKR_ATTRIBUTE_SENSITIVE, CKR_ATTRIBUTE_TYPE_INVALID and CKR_BUFFER_TOO_SMALL too.
    /// Values are read from the buffers `rememberTemplate` kept, no further than they hold.
    mutating func templateOut(_ name: StaticString, _ value: UnsafeMutablePointer<CK_ATTRIBUTE>?, _ count: CK_ULONG,
                              _ rv: CK_RV, lookup: () -> ObjectTraits) {
        guard rv == CKR_OK || rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID
                || rv == CKR_BUFFER_TOO_SMALL else { return }
        let secrets = secrets
        if secrets && value != nil && count > 0 { holdsSecret = true }
        let given = supplied.map { SuppliedTemplate($0.bytes, count: Int(count)) }
        field(.out, name) { out, json in
            TraceTemplate.append(&out, json: json, value, count, showValues: true, secrets: secrets, supplied: given) {
                let fromTemplate = TraceTemplate.traits(of: value, count, hint: .unknown, supplied: given)
                guard fromTemplate.isKey == nil || fromTemplate.isSensitive == nil else { return fromTemplate }
                let looked = lookup()
                return ObjectTraits(isKey: fromTemplate.isKey ?? looked.isKey,
                                    isSensitive: fromTemplate.isSensitive ?? looked.isSensitive)
            }
        }
    }
}

/// The tracer's per-function wrappers (Traced.generated.swift) and what they share.
enum Traced {
    /// Asks the module what an object is (class, CKA_SENSITIVE), only when it decides what to
    /// show: a CKA_VALUE (or a vendor attribute) returned without its object's CKA_CLASS in the
    /// same template, with x-log-secrets off. One extra C_GetAttributeValue, not traced itself.
    static func objectTraits(function: CK_C_GetAttributeValue?, _ session: CK_SESSION_HANDLE,
                             _ object: CK_OBJECT_HANDLE) -> ObjectTraits {
        guard let function else { return ObjectTraits() }
        var objectClass: CK_ULONG = 0
        var sensitive: CK_BBOOL = 0
        return withUnsafeMutablePointer(to: &objectClass) { classPointer in
            withUnsafeMutablePointer(to: &sensitive) { sensitivePointer in
                // A tuple on the stack, not an array: no allocation on the traced path, and no
                // first-use metadata instantiation, which took 12 KiB of stack (inside an OpenSSL
                // ASYNC job's 32 KiB; Tests/C/test_async_jobs.c measures it).
                var template = (
                    CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(CKA_CLASS), pValue: UnsafeMutableRawPointer(classPointer),
                                 ulValueLen: CK_ULONG(MemoryLayout<CK_ULONG>.size)),
                    CK_ATTRIBUTE(type: CK_ATTRIBUTE_TYPE(CKA_SENSITIVE), pValue: UnsafeMutableRawPointer(sensitivePointer),
                                 ulValueLen: 1)
                )
                _ = withUnsafeMutableBytes(of: &template) {
                    function(session, object, $0.baseAddress?.assumingMemoryBound(to: CK_ATTRIBUTE.self), 2)
                }
                var traits = ObjectTraits()
                if template.0.ulValueLen == CK_ULONG(MemoryLayout<CK_ULONG>.size) {
                    traits.isKey = TraceTemplate.isKeyClass(classPointer.pointee)
                }
                if template.1.ulValueLen == 1 { traits.isSensitive = sensitivePointer.pointee != 0 }
                return traits
            }
        }
    }
}
