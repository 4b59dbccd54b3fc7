// A caller's number: which of the pool's function tables (CallerPool) a call came in through,
// as a type of its own: it travels from the generated entry points through routing and the
// session table to the modules and the tracer, beside module indices and slot IDs.
struct CallerNumber: Equatable {
    let value: Int

    @inline(__always)
    init(_ value: Int) { self.value = value }
}
