// How one module's calls are traced, as the bits ModuleEntry.traceMode holds and every call
// reads: empty when log-calls is off for the module.

package struct TraceMode: OptionSet, Equatable, Sendable {
    package var rawValue: UInt8
    package init(rawValue: UInt8) { self.rawValue = rawValue }

    /// log-calls is on.
    package static let enabled = TraceMode(rawValue: 1)
    /// JSON lines instead of p11-kit's text layout.
    package static let json = TraceMode(rawValue: 2)
    /// PINs and key material shown (x-log-secrets).
    package static let secrets = TraceMode(rawValue: 4)
}
