// What every fuzz target here shares (each is one swiftc run with Sources/P11ProxyConfig).

/// Stops the run with a message libFuzzer shows above its crash report.
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if !condition() { fatalError("invariant violated: \(message())") }
}
