// libFuzzer entry for the configuration reader (`make fuzz`, Tests/Fuzz/run.sh config): compiled
// together with Sources/P11ProxyConfig and FuzzSupport.swift by `swiftc -sanitize=fuzzer,address`.
// One input is a whole configuration tree held in memory, so file kinds that are awkward on disk (directories,
// dangling symlinks, unreadable, FIFOs, huge or growing files) cost nothing per run. Every
// invariant below traps, which libFuzzer reports as a crash together with the input.
//
// Input layout: the bytes up to the first "\n%%" are the system pkcs11.conf; each
// "\n%%KWNAME\n" then starts one more file, where K is its kind, W where it lives and NAME its
// directory entry (raw bytes, validated by the reader like any file name).
//   K: r regular, d directory, l dangling symlink, u unreadable (EACCES), f FIFO,
//      h stat says 2 MiB, g grows past the limit between stat and read, x first line
//      repeated past the 64 KiB line limit, anything else regular
//   W: s system modules, p package modules, u user modules, c user pkcs11.conf,
//      g system pkcs11.conf (replacing the leading section), anything else system modules

/// Where the tree lives; all absolute so diagnostics name full paths.
enum FuzzTree {
    static let systemConfig = "/fz/etc/pkcs11.conf"
    static let systemModules = "/fz/etc/modules"
    static let packageModules = "/fz/share/modules"
    static let userHome = "/fz/home"
    static let userConfig = "/fz/home/pkcs11/pkcs11.conf"
    static let userModules = "/fz/home/pkcs11/modules"

    static var locations: ConfigLocations {
        .p11kit(systemConfigFile: systemConfig, systemModulesDirectory: systemModules,
                packageModulesDirectory: packageModules, moduleDirectory: "/usr/lib/pkcs11",
                environment: ["XDG_CONFIG_HOME": userHome], userConfigAllowed: true)
    }
}

enum FuzzNode {
    case regular([UInt8])
    case directory
    case danglingLink
    case unreadable
    case fifo
    case reportsHuge
    case grows
}

/// An in-memory file system with the real one's contract (FileSystem.swift): stat follows
/// links, contents never returns more than maximumSize + 1 bytes.
struct FuzzFileSystem: FileSystem {
    var nodes: [String: FuzzNode] = [:]
    /// Directory path -> entry names in insertion order (duplicates kept: readdir never
    /// repeats a name, but the reader must not care).
    var listings: [String: [[UInt8]]] = [:]
    /// Lines of each regular file as the parser numbers them (a last line without '\n'
    /// counts), computed once: the checks ask for every diagnostic.
    var lineCounts: [String: Int] = [:]

    mutating func set(_ path: String, _ node: FuzzNode) {
        nodes[path] = node
        if case .regular(let bytes) = node {
            lineCounts[path] = Self.lineCount(bytes)
        } else {
            lineCounts[path] = nil
        }
    }

    static func lineCount(_ bytes: [UInt8]) -> Int {
        var newlines = 0
        for byte in bytes where byte == UInt8(ascii: "\n") { newlines += 1 }
        return newlines + (bytes.last.map { $0 != UInt8(ascii: "\n") ? 1 : 0 } ?? 0)
    }

    mutating func add(directory: String, entry: [UInt8], node: FuzzNode) {
        // A NUL or '/' cannot be part of a directory entry on Linux.
        let name = entry.filter { $0 != 0 && $0 != UInt8(ascii: "/") }
        guard !name.isEmpty, name != [0x2E], name != [0x2E, 0x2E] else { return }
        let path = joinPath(directory, String(decoding: name, as: UTF8.self))
        if nodes[path] == nil { listings[directory, default: []].append(name) }
        set(path, node)
    }

    func directoryEntries(_ path: String) throws(FileSystemError) -> [[UInt8]] {
        guard let entries = listings[path] else { throw .noSuchFile }
        return entries
    }

    func status(_ path: String) throws(FileSystemError) -> FileStatus {
        switch nodes[path] {
        case nil, .danglingLink: throw .noSuchFile
        case .regular(let bytes): return FileStatus(kind: .regular, size: bytes.count)
        case .directory: return FileStatus(kind: .directory, size: 4096)
        case .unreadable: return FileStatus(kind: .regular, size: 20)
        case .fifo: return FileStatus(kind: .other, size: 0)
        case .reportsHuge: return FileStatus(kind: .regular, size: 2 << 20)
        case .grows: return FileStatus(kind: .regular, size: 10)
        }
    }

    func linkStatus(_ path: String) throws(FileSystemError) -> FileStatus {
        if case .danglingLink = nodes[path] { return FileStatus(kind: .symbolicLink, size: 12) }
        return try status(path)
    }

    func contents(_ path: String, maximumSize: Int) throws(FileSystemError) -> [UInt8] {
        switch nodes[path] {
        case nil, .danglingLink: throw .noSuchFile
        case .regular(let bytes): return Array(bytes.prefix(maximumSize + 1))
        case .directory: throw .errno(21)  // EISDIR
        case .unreadable: throw .permissionDenied
        case .fifo: throw .notRegularFile
        case .reportsHuge, .grows: return [UInt8](repeating: UInt8(ascii: "#"), count: maximumSize + 1)
        }
    }

    func lineCount(_ path: String) -> Int? { lineCounts[path] }
}

extension FuzzFileSystem {
    /// Splits the input into files as described at the top of this file.
    init(input: [UInt8]) {
        var sections: [(header: [UInt8], body: ArraySlice<UInt8>)] = []
        var start = 0
        var header: [UInt8] = []
        var index = 0
        while index + 2 < input.count {
            if input[index] == UInt8(ascii: "\n"), input[index + 1] == UInt8(ascii: "%"), input[index + 2] == UInt8(ascii: "%") {
                sections.append((header, input[start..<index]))
                let headerStart = index + 3
                let headerEnd = input[headerStart...].firstIndex(of: UInt8(ascii: "\n")) ?? input.count
                header = Array(input[headerStart..<headerEnd])
                start = min(headerEnd + 1, input.count)
                index = start
                continue
            }
            index += 1
        }
        sections.append((header, input[start...]))

        add(file: FuzzTree.systemConfig, kind: UInt8(ascii: "r"), body: sections[0].body)
        for (header, body) in sections.dropFirst() {
            let kind = header.first ?? UInt8(ascii: "r")
            let place = header.count > 1 ? header[1] : UInt8(ascii: "s")
            let name = Array(header.dropFirst(2))
            switch place {
            case UInt8(ascii: "c"): add(file: FuzzTree.userConfig, kind: kind, body: body)
            case UInt8(ascii: "g"): add(file: FuzzTree.systemConfig, kind: kind, body: body)
            case UInt8(ascii: "u"): add(directory: FuzzTree.userModules, entry: name, node: Self.node(kind, body))
            case UInt8(ascii: "p"): add(directory: FuzzTree.packageModules, entry: name, node: Self.node(kind, body))
            default: add(directory: FuzzTree.systemModules, entry: name, node: Self.node(kind, body))
            }
        }
    }

    private mutating func add(file path: String, kind: UInt8, body: ArraySlice<UInt8>) {
        set(path, Self.node(kind, body))
    }

    static func node(_ kind: UInt8, _ body: ArraySlice<UInt8>) -> FuzzNode {
        switch kind {
        case UInt8(ascii: "d"): return .directory
        case UInt8(ascii: "l"): return .danglingLink
        case UInt8(ascii: "u"): return .unreadable
        case UInt8(ascii: "f"): return .fifo
        case UInt8(ascii: "h"): return .reportsHuge
        case UInt8(ascii: "g"): return .grows
        case UInt8(ascii: "x"):
            // The first line repeated past the line limit, then the rest: an overlong line in a
            // file the parser must still read to the end. (Many short lines need no help: the
            // reporting cap is reached with 21 bad lines.)
            let newline = body.firstIndex(of: UInt8(ascii: "\n")) ?? body.endIndex
            let unit = newline == body.startIndex ? [UInt8(ascii: "a")] : Array(body[..<newline])
            var bytes: [UInt8] = []
            bytes.reserveCapacity(ConfigFileParser.maximumLineLength + unit.count + body.count)
            while bytes.count <= ConfigFileParser.maximumLineLength { bytes += unit }
            bytes += body[newline...]
            return .regular(bytes)
        default: return .regular(Array(body))
        }
    }
}

/// The parser alone, on the raw input as one file: what ConfigFileParserFuzzTests checks, here
/// with coverage guidance.
func checkParser(_ bytes: [UInt8]) {
    let file = "/fz/whole.module"
    let parsed = ConfigFileParser.parse(bytes: bytes, file: file)
    require(parsed == ConfigFileParser.parse(bytes: bytes, file: file), "parse is not deterministic")
    let lineCount = FuzzFileSystem.lineCount(bytes)
    require(parsed.isRejected == (bytes.count > ConfigFileParser.maximumFileSize), "rejected iff too large")
    for diagnostic in parsed.diagnostics {
        require(diagnostic.file == file && !diagnostic.message.isEmpty, "\(diagnostic)")
        require(diagnostic.line.map { (1...lineCount).contains($0) } ?? parsed.isRejected,
                "line outside the input's \(lineCount) lines: \(diagnostic)")
    }
    require(parsed.malformedLines == parsed.malformedLines.sorted(), "malformed lines out of order")
    let reported = Set(parsed.diagnostics.compactMap(\.line))
    require(parsed.malformedLines.allSatisfy(reported.contains)
                || parsed.diagnostics.last?.message.contains("more problems") == true,
            "a malformed line is not reported")
    for (key, value) in parsed.values {
        require(!key.isEmpty && !key.utf8.contains(0) && !key.contains(":") && !key.contains("\n"), "bad key '\(key)'")
        require(!value.value.utf8.contains(0) && !value.value.contains("\n"), "bad value for '\(key)'")
        require(value.file == file && (1...lineCount).contains(value.line), "value line \(value.line) of \(lineCount)")
        require(!parsed.malformedLines.contains(value.line), "a value from a malformed line")
    }
}

/// The whole reader over the in-memory tree.
func checkReader(_ files: FuzzFileSystem) {
    let programs = ["fuzz", ProxyConfiguration.proxyProgramName]
    let config = readConfiguration(FuzzTree.locations, programNames: programs, fileSystem: files)
    require(config == readConfiguration(FuzzTree.locations, programNames: programs, fileSystem: files),
            "reading the same tree twice gave different results")

    let directories = [FuzzTree.systemModules, FuzzTree.packageModules, FuzzTree.userModules]
    func known(_ path: String) -> Bool {
        files.nodes[path] != nil || directories.contains(path)
    }
    for diagnostic in config.diagnostics {
        require(known(diagnostic.file), "diagnostic names a file not in the tree: \(diagnostic)")
        require(!diagnostic.message.isEmpty, "empty message for \(diagnostic.file)")
        if let line = diagnostic.line {
            let count = files.lineCount(diagnostic.file)
            require(count.map { (1...$0).contains(line) } == true,
                    "line \(line) outside \(diagnostic.file)'s \(count.map(String.init) ?? "no") lines: \(diagnostic)")
        }
    }
    func checkValue(_ value: ConfigValue, _ what: String) {
        let count = files.lineCount(value.file)
        require(count.map { (1...$0).contains(value.line) } == true, "\(what) from \(value.file):\(value.line), outside the file")
    }
    for (key, value) in config.global { checkValue(value, "global \(key)") }

    var previous: ModuleConfig?
    var paths = Set<String>()
    for module in config.modules {
        for (key, value) in module.values { checkValue(value, "\(module.name) \(key)") }
        if module.isRemote {
            require(module.remoteAddress?.isEmpty == false, "\(module.name) is remote with a blank address")
        } else {
            guard let path = module.modulePath else { return require(false, "\(module.name) loads without a library") }
            require(paths.insert(path).inserted, "\(path) loads twice")
        }
        require(!config.skipped.contains { $0.name == module.name }, "\(module.name) both loaded and skipped")
        require(module.files.allSatisfy { files.lineCount($0) != nil }, "\(module.name) loads from a file that is not regular")
        for file in module.files {
            // A module file that is not whole must never load its module (critical:/disable-in: may be lost).
            guard case .regular(let bytes) = files.nodes[file] else { continue }
            require(ConfigFileParser.parse(bytes: bytes, file: file).isComplete, "\(module.name) loads from malformed \(file)")
        }
        if let previous {
            require(previous.priority > module.priority
                        || (previous.priority == module.priority && precedes(previous.name, module.name)),
                    "load order: \(previous.name) before \(module.name)")
        }
        previous = module
    }
    for skip in config.skipped {
        if let line = skip.line {
            let count = skip.file.flatMap(files.lineCount)
            require(count.map { (1...$0).contains(line) } == true, "skip of \(skip.name) names line \(line) outside its file")
        }
        require(!skip.reason.isEmpty, "skip of \(skip.name) without a reason")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfigReader(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    let input = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    checkParser(input)
    checkReader(FuzzFileSystem(input: input))
    return 0
}
