// swift-tools-version:6.1
// p11proxy: a PKCS#11 proxy module. `make` builds .build/release/libp11proxy.so with the
// linker flags a dlopen-able module needs (see Makefile); `swift build` alone is for development.
import PackageDescription

let p11kitInclude: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-I/usr/include/p11-kit-1"])]
// The module's globals are guarded by its own locks (each says who may touch it); dynamic
// exclusivity checks would put a runtime call on every access to them, hot path included.
let moduleSettings: [SwiftSetting] = [.unsafeFlags(["-Xcc", "-I/usr/include/p11-kit-1", "-enforce-exclusivity=unchecked"])]

let package = Package(
    name: "p11proxy",
    products: [
        .library(name: "p11proxy", type: .dynamic, targets: ["P11Proxy"]),
        .executable(name: "p11proxy-generate", targets: ["P11ProxyGenerate"]),
    ],
    targets: [
        .systemLibrary(name: "CPKCS11", path: "include"),
        // Pure Swift: reads .module / pkcs11.conf the way p11-kit does. No PKCS#11, no Foundation.
        .target(name: "P11ProxyConfig"),
        // The module itself: exported entry points, per-caller tables, router, loader.
        .target(
            name: "P11Proxy",
            dependencies: ["CPKCS11", "P11ProxyConfig"],
            swiftSettings: moduleSettings),
        // The code generator for the per-function code (see codegen/README.md).
        .target(name: "P11ProxyCodegen"),
        .executableTarget(name: "P11ProxyGenerate", dependencies: ["P11ProxyCodegen"]),
        .testTarget(name: "P11ProxyConfigTests", dependencies: ["P11ProxyConfig"]),
        .testTarget(name: "P11ProxyCodegenTests", dependencies: ["P11ProxyCodegen"]),
        .testTarget(
            name: "P11ProxyTests",
            dependencies: ["P11Proxy", "CPKCS11"],
            swiftSettings: p11kitInclude),
    ]
)
