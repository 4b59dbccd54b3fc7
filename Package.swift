// swift-tools-version:6.1
// p11proxy: a PKCS#11 proxy module. `make` builds build/lib/libp11proxy.so as Embedded Swift
// with swiftc and clang (see Makefile), not through this manifest. Here the same sources build
// with the full Swift stdlib: the unit tests and the `p11proxy` command.
import PackageDescription

let p11kitInclude: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-I/usr/include/p11-kit-1"])]
// The module's globals are guarded by its own locks (each says who may touch it); dynamic
// exclusivity checks would put a runtime call on every access to them, hot path included.
let moduleSettings: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-I/usr/include/p11-kit-1", "-enforce-exclusivity=unchecked"])]

let package = Package(
    name: "p11proxy",
    products: [
        // No library product: the module is built by the Makefile as Embedded Swift; a SwiftPM
        // libp11proxy.so (full runtime, every symbol exported) would only be a wrong one to load.
        .executable(name: "p11proxy-generate", targets: ["P11ProxyGenerate"]),
        // The `p11proxy` command (list, check, trace); the Makefile installs it as `p11proxy`.
        .executable(name: "p11proxy-cli", targets: ["P11ProxyCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
    ],
    targets: [
        .systemLibrary(name: "CPKCS11", path: "include"),
        // Pure Swift: reads .module / pkcs11.conf the way p11-kit does. No PKCS#11, no Foundation.
        .target(name: "P11ProxyConfig"),
        // The names of PKCS#11 constants (generated from codegen/pkcs11-constants.txt).
        .target(name: "P11ProxyNames", dependencies: ["CPKCS11"], swiftSettings: p11kitInclude),
        // What the module and the `p11proxy` command both do to start the real modules: choose the
        // configuration, walk it (ModuleStartup.walk), dlopen a library or connect to a server, and
        // say why a module is skipped.
        .target(
            name: "P11ProxyLoader",
            dependencies: ["CPKCS11", "P11ProxyConfig", "P11ProxyNames", "P11ProxyRPC"],
            swiftSettings: p11kitInclude),
        // Reads text and JSON traces in bounded memory and counts calls, errors and durations per
        // function (`p11proxy stats`, `trace --summary`); pure Swift, driven by its tests and a fuzzer.
        .target(name: "P11ProxyTraceStats"),
        // p11-kit's RPC protocol as a client: a remote module (`remote:` in a .module file) as a
        // connection with one method per PKCS#11 function. Wire format in Wire/, no socket needed.
        .target(
            name: "P11ProxyRPC",
            dependencies: ["CPKCS11"],
            swiftSettings: p11kitInclude),
        // The module itself: exported entry points, per-caller tables, router, loader.
        .target(
            name: "P11Proxy",
            dependencies: ["CPKCS11", "P11ProxyConfig", "P11ProxyNames", "P11ProxyRPC", "P11ProxyLoader"],
            swiftSettings: moduleSettings),
        // The `p11proxy` command: reads the configuration and loads modules as the module does.
        .executableTarget(
            name: "P11ProxyCLI",
            dependencies: ["CPKCS11", "P11ProxyConfig", "P11ProxyNames", "P11ProxyLoader", "P11ProxyTraceStats",
                           .product(name: "ArgumentParser", package: "swift-argument-parser")],
            swiftSettings: p11kitInclude),
        // The code generator for the per-function code (see codegen/README.md).
        .target(name: "P11ProxyCodegen"),
        .executableTarget(name: "P11ProxyGenerate", dependencies: ["P11ProxyCodegen"]),
        .testTarget(name: "P11ProxyConfigTests", dependencies: ["P11ProxyConfig"]),
        .testTarget(name: "P11ProxyCodegenTests", dependencies: ["P11ProxyCodegen"]),
        .testTarget(name: "P11ProxyTraceStatsTests", dependencies: ["P11ProxyTraceStats"]),
        .testTarget(name: "P11ProxyLoaderTests", dependencies: ["P11ProxyLoader", "P11ProxyConfig", "CPKCS11"],
                    swiftSettings: p11kitInclude),
        .testTarget(name: "P11ProxyRPCTests", dependencies: ["P11ProxyRPC", "CPKCS11"], swiftSettings: p11kitInclude),
        .testTarget(name: "P11ProxyCLITests", dependencies: ["P11ProxyCLI"], swiftSettings: p11kitInclude),
        .testTarget(
            name: "P11ProxyTests",
            dependencies: ["P11Proxy", "CPKCS11"],
            swiftSettings: p11kitInclude),
    ]
)
