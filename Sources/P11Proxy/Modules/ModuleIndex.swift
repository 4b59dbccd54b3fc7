// A loaded module's place in ModuleTable (and in every list kept by module: ProxyRuntime's
// records, the token filters, the trace targets), as a type of its own: it travels from the
// loader through routing to tracing beside caller numbers and slot IDs, which are integers too.
struct ModuleIndex: Equatable {
    let value: Int

    @inline(__always)
    init(_ value: Int) { self.value = value }
}
