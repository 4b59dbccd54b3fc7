// MapsLine: finding the file that holds an address in /proc/self/maps (how p11proxy knows itself).
import Testing
@testable import P11Proxy
import P11ProxyLoader

@Suite struct MapsLineTests {
    private func path(_ line: String, _ address: UInt) -> String? {
        let bytes = Array(line.utf8)
        return bytes.withUnsafeBufferPointer { MapsLine($0[...]).path(ifContaining: address) }
    }

    @Test func findsThePathOfTheMappingHoldingTheAddress() {
        let line = "7f1c2a400000-7f1c2a582000 r-xp 00181000 fe:00 16261204                   /usr/lib/x86_64-linux-gnu/pkcs11/libp11proxy.so"
        #expect(path(line, 0x7f1c_2a40_0000) == "/usr/lib/x86_64-linux-gnu/pkcs11/libp11proxy.so")
        #expect(path(line, 0x7f1c_2a58_1fff) == "/usr/lib/x86_64-linux-gnu/pkcs11/libp11proxy.so")
        #expect(path(line, 0x7f1c_2a58_2000) == nil, "end is exclusive")
        #expect(path(line, 0x7f1c_2a3f_ffff) == nil)
    }

    @Test func pathsWithSpacesAndAnonymousMappings() {
        #expect(path("1000-2000 r--p 00000000 08:01 42 /opt/my modules/lib p11.so", 0x1800) == "/opt/my modules/lib p11.so")
        #expect(path("1000-2000 rw-p 00000000 00:00 0 ", 0x1800) == nil)
        #expect(path("1000-2000 rw-p 00000000 00:00 0                          [heap]", 0x1800) == nil)
    }

    @Test func malformedLinesAreNotMatches() {
        for line in ["", "-", "zz-2000 r--p 0 0 0 /x", "1000 r--p 0 0 0 /x", "1000-", "1000-2000", "ffffffffffffffffff-1 r 0 0 0 /x"] {
            #expect(path(line, 0x1800) == nil, "\(line)")
        }
    }

    @Test func theRunningProcessFindsItsOwnFile() throws {
        // In the test runner the module's code is linked into the test bundle: the identity is
        // that file's, and /proc/self/exe or a mapped library of the runner must be it.
        let identity = try #require(ModuleLoader.ownIdentity)
        #expect(identity.inode != 0)
        // dladdr's answer (used when it names the file absolutely) and the maps scan agree.
        let marker = UInt(bitPattern: P11ProxyLibrary.marker.utf8Start)
        #expect(ModuleLoader.mappedFileIdentity(containing: marker) == identity)
    }
}
