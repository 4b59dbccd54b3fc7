// Reads the global and per-module configuration the way p11-kit's `_p11_conf_load_globals` and
// `_p11_conf_load_modules` (p11-kit/conf.c) do, and decides which modules load, in which order.

/// Reads configuration from the real file system. Never fails: problems are in `diagnostics`,
/// modules that cannot be used are in `skipped`, and everything else still loads.
public func readConfiguration(_ locations: ConfigLocations, programNames: [String]) -> ProxyConfiguration {
    readConfiguration(locations, programNames: programNames, fileSystem: LocalFileSystem())
}

/// Reads configuration through `fileSystem`; tests use this to inject faults.
public func readConfiguration(_ locations: ConfigLocations, programNames: [String],
                              fileSystem: some FileSystem) -> ProxyConfiguration {
    var reader = ConfigurationReader(locations: locations, programNames: programNames, fileSystem: fileSystem)
    return reader.read()
}

struct ConfigurationReader<Files: FileSystem> {
    let locations: ConfigLocations
    let programNames: [String]
    let fileSystem: Files
    private var diagnostics: [ConfigDiagnostic] = []

    init(locations: ConfigLocations, programNames: [String], fileSystem: Files) {
        self.locations = locations
        self.programNames = programNames
        self.fileSystem = fileSystem
    }

    mutating func read() -> ProxyConfiguration {
        let (global, mode) = readGlobals()
        validateGlobal(global)
        let modulesByName = readModuleDirectories(mode)
        let (modules, skipped) = chooseModules(modulesByName)
        return ProxyConfiguration(global: global, userConfigMode: mode, modules: modules,
                                  skipped: skipped, diagnostics: diagnostics)
    }

    // MARK: - Global configuration

    /// p11-kit's order: read the system file and its `user-config:`; unless that is `none`, read
    /// the user file, whose own `user-config:` may change the mode again (even to `none`, turning
    /// itself off); then combine as the mode says.
    private mutating func readGlobals() -> ([String: ConfigValue], UserConfigMode) {
        let system = locations.globalConfigFile.map { readGlobalFile($0) } ?? [:]
        var mode = userConfigMode(in: system, otherwise: .default)

        // Without user locations (not allowed, or no home) there is nothing to merge: p11-kit
        // likewise switches to CONF_USER_NONE for setuid programs.
        let hasUserLocations = locations.userConfigFile != nil || locations.userModulesDirectory != nil
        guard mode != .none, hasUserLocations else { return (system, .none) }

        let user = locations.userConfigFile.map { readGlobalFile($0) } ?? [:]
        mode = userConfigMode(in: user, otherwise: mode)
        let global: [String: ConfigValue]
        switch mode {
        case .none: global = system
        case .merge:
            // A loop, not merging(_:uniquingKeysWith:), which Embedded Swift lacks (it casts dynamically).
            var merged = system
            for (key, value) in user { merged[key] = value }
            global = merged
        case .only: global = user
        }
        return (global, mode)
    }

    private mutating func userConfigMode(in values: [String: ConfigValue],
                                         otherwise fallback: UserConfigMode) -> UserConfigMode {
        guard let value = values[ConfigKey.userConfig] else { return fallback }
        if let mode = UserConfigMode(configValue: value.value) { return mode }
        // p11-kit refuses to load any module here ("invalid mode for 'user-config'").
        diagnostics.append(ConfigDiagnostic(
            file: value.file, line: value.line,
            message: "user-config: '\(value.value)' is not none, merge, only or override; using \(fallback.rawValue)"))
        return fallback
    }

    private mutating func validateGlobal(_ global: [String: ConfigValue]) {
        for key in [ConfigKey.managed, ConfigKey.logCalls] {
            if let value = global[key], value.boolean == nil {
                diagnostics.append(invalidBoolean(value, key: key))
            }
        }
    }

    /// A pkcs11.conf: absent is fine; an unreadable one counts as empty; malformed lines are
    /// reported and the rest of the file is used (unlike p11-kit, which then loads nothing).
    private mutating func readGlobalFile(_ path: String) -> [String: ConfigValue] {
        switch readConfigFile(path) {
        case .absent:
            return [:]
        case .directory:
            diagnostics.append(ConfigDiagnostic(file: path, line: nil, message: "is a directory, not a config file; ignored"))
            return [:]
        case .unusable(let reason):
            diagnostics.append(ConfigDiagnostic(file: path, line: nil, message: "\(reason); ignored"))
            return [:]
        case .parsed(let parsed):
            return parsed.values
        }
    }

    // MARK: - Module configuration files

    private struct ModuleFile {
        enum Content {
            case unusable(String)
            case parsed(ParsedConfigFile)
        }
        var path: String
        var content: Content
    }

    /// User modules first (unless `none`), then system and package (unless `only`): the order in
    /// which `_p11_conf_load_modules` reads them, so for a name in several directories the
    /// earliest directory's keys win and later files only fill in keys it lacks.
    private mutating func readModuleDirectories(_ mode: UserConfigMode) -> [String: [ModuleFile]] {
        var directories: [String] = []
        if mode != .none, let user = locations.userModulesDirectory { directories.append(user) }
        if mode != .only {
            directories += [locations.systemModulesDirectory, locations.packageModulesDirectory].compactMap { $0 }
        }
        var seen = Set<String>()
        var modules: [String: [ModuleFile]] = [:]
        for directory in directories where seen.insert(directory).inserted {
            for (name, file) in readModuleDirectory(directory) {
                modules[name, default: []].append(file)
            }
        }
        return modules
    }

    private mutating func readModuleDirectory(_ directory: String) -> [(String, ModuleFile)] {
        let entries: [[UInt8]]
        do {
            entries = try fileSystem.directoryEntries(directory)
        } catch {
            // A missing directory is normal (p11-kit's CONF_IGNORE_MISSING); anything else is worth saying.
            if !error.isMissing {
                diagnostics.append(ConfigDiagnostic(
                    file: directory, line: nil, message: "module config directory cannot be listed: \(error)"))
            }
            return []
        }
        var files: [(String, ModuleFile)] = []
        // readdir order is arbitrary; sorting makes diagnostics come out the same on every run.
        for entry in entries.sorted(by: { $0.lexicographicallyPrecedes($1) }) {
            let path = joinPath(directory, String(decoding: entry, as: UTF8.self))
            switch ModuleConfigFileName.classify(entry) {
            case .notModuleConfig:
                continue
            case .invalid(let why):
                diagnostics.append(ConfigDiagnostic(file: path, line: nil, message: "\(why); not read"))
            case .module(let name):
                switch readConfigFile(path) {
                case .absent:
                    continue  // removed between readdir and stat
                case .directory:
                    // p11-kit passes over directories in module directories; so do we, but say so.
                    diagnostics.append(ConfigDiagnostic(file: path, line: nil, message: "is a directory, not a module config; ignored"))
                case .unusable(let reason):
                    diagnostics.append(ConfigDiagnostic(file: path, line: nil, message: reason))
                    files.append((name, ModuleFile(path: path, content: .unusable(reason))))
                case .parsed(let parsed):
                    files.append((name, ModuleFile(path: path, content: .parsed(parsed))))
                }
            }
        }
        return files
    }

    private enum ConfigFileRead {
        case absent
        case directory
        case unusable(String)
        case parsed(ParsedConfigFile)
    }

    /// Reads one config file without ever blocking or reading without bound: only regular files
    /// (stat follows symlinks, as p11-kit's does), only up to the parser's size limit.
    /// The parser's diagnostics are recorded here.
    private mutating func readConfigFile(_ path: String) -> ConfigFileRead {
        let limit = ConfigFileParser.maximumFileSize
        let status: FileStatus
        do {
            status = try fileSystem.status(path)
        } catch {
            if error.isMissing {
                // stat says "missing" for a symlink whose target is gone; p11-kit then gives up
                // on all configuration ("couldn't stat path"). Name it so it can be fixed.
                if let link = try? fileSystem.linkStatus(path), link.kind == .symbolicLink {
                    return .unusable("is a symbolic link to a file that does not exist")
                }
                return .absent
            }
            return .unusable("cannot be read: \(error)")
        }
        switch status.kind {
        case .directory:
            return .directory
        case .other:
            return .unusable("is not a regular file (a FIFO, socket or device); not read")
        case .regular, .symbolicLink:
            break
        }
        if status.size > limit {
            return .unusable("file is \(status.size) bytes, more than the \(limit)-byte limit; not read")
        }
        let bytes: [UInt8]
        do {
            bytes = try fileSystem.contents(path, maximumSize: limit)
        } catch {
            return .unusable("cannot be read: \(error)")
        }
        // The parser rejects a file that grew past the limit after stat.
        let parsed = ConfigFileParser.parse(bytes: bytes, file: path)
        diagnostics += parsed.diagnostics
        return .parsed(parsed)
    }

    // MARK: - Choosing modules

    private mutating func chooseModules(_ modulesByName: [String: [ModuleFile]]) -> ([ModuleConfig], [SkippedModule]) {
        var candidates: [ModuleConfig] = []
        var skipped: [SkippedModule] = []
        for name in modulesByName.keys.sorted(by: precedes) {
            switch merge(name: name, files: modulesByName[name]!) {
            case .skipped(let skip): skipped.append(skip)
            case .module(let module):
                if let skip = reasonToSkip(module) { skipped.append(skip) } else { candidates.append(module) }
            }
        }

        candidates.sort { first, second in
            first.priority != second.priority ? first.priority > second.priority : precedes(first.name, second.name)
        }

        // Two names for one library: p11-kit keeps a single module per library (dlopen returns the
        // same function list) under whichever config it met last in hash order. Loading it twice
        // would show every token twice, so the first in load order keeps it, deterministically.
        var modules: [ModuleConfig] = []
        var ownerOfPath: [String: String] = [:]
        for module in candidates {
            // A remote module has no library (ModuleStartup skips a second one at the same address).
            guard !module.isRemote, let path = module.modulePath else {
                modules.append(module)
                continue
            }
            if let owner = ownerOfPath[path] {
                let value = module.values[ConfigKey.module]!
                skipped.append(SkippedModule(
                    name: module.name, cause: .duplicateLibrary, file: value.file, line: value.line,
                    reason: "module: \(path) is the same library as module '\(owner)', which loads first",
                    isCritical: module.isCritical))
                continue
            }
            ownerOfPath[path] = module.name
            modules.append(module)
        }
        return (modules, skipped)
    }

    private enum Merged {
        case module(ModuleConfig)
        case skipped(SkippedModule)
    }

    /// Unlike p11-kit, where one unreadable or malformed file stops all loading, only this module
    /// is skipped. The whole module is skipped, not just the bad file: a user file that cannot be
    /// read may be the one that masks or restricts a system module.
    private mutating func merge(name: String, files: [ModuleFile]) -> Merged {
        var values: [String: ConfigValue] = [:]
        for file in files {
            if case .parsed(let parsed) = file.content {
                for (key, value) in parsed.values where values[key] == nil { values[key] = value }
            }
        }
        let critical = values[ConfigKey.critical]?.boolean ?? false

        for file in files {
            switch file.content {
            case .unusable(let reason):
                return .skipped(SkippedModule(
                    name: name, cause: .unreadableConfig, file: file.path, line: nil,
                    reason: "module config \(file.path) \(reason); the module is skipped because its configuration cannot be read whole",
                    isCritical: critical))
            case .parsed(let parsed) where parsed.isRejected:
                return .skipped(SkippedModule(
                    name: name, cause: .unreadableConfig, file: file.path, line: nil,
                    reason: "module config \(file.path) is too large to read; the module is skipped",
                    isCritical: critical))
            case .parsed(let parsed):
                if let line = parsed.malformedLines.first {
                    return .skipped(SkippedModule(
                        name: name, cause: .malformedConfig, file: file.path, line: line,
                        reason: "\(file.path):\(line) is not a 'key: value' line; the module is skipped because a partly read configuration could lose its critical: or disable-in:",
                        isCritical: critical))
                }
            }
        }

        let module = ModuleConfig(name: name, values: values, files: files.map { $0.path },
                                  moduleDirectory: locations.moduleDirectory)
        diagnostics += module.valueProblems()
        return .module(module)
    }

    /// The checks of p11-kit's `take_config_and_load_module_inlock`, in its order: enabled for
    /// this program, then `remote:`, then `module:`.
    private func reasonToSkip(_ module: ModuleConfig) -> SkippedModule? {
        func skip(_ cause: SkippedModule.Cause, _ reason: String, _ value: ConfigValue?) -> SkippedModule {
            SkippedModule(name: module.name, cause: cause, file: value?.file ?? module.files.first,
                          line: value?.line, reason: reason, isCritical: module.isCritical)
        }
        let enablement = module.enablement(programNames: programNames)
        if !enablement.enabled {
            return skip(.disabledForProgram, enablement.reason, enablement.value)
        }
        if let remote = module.values[ConfigKey.remote] {
            // A remote module is reached over p11-kit's RPC protocol; its `module:` is not used.
            guard !remote.value.isEmpty else { return skip(.remote, "remote: is blank, so there is no server to reach", remote) }
            return nil
        }
        guard let path = module.values[ConfigKey.module] else {
            return skip(.noModulePath, "no module: key, so there is no library to load", nil)
        }
        if path.value.isEmpty {
            return skip(.blankModulePath, "module: is blank, which pkcs11.conf(5) defines as \"do not load\"", path)
        }
        return nil
    }
}

/// Byte order of UTF-8, the order of C's strcmp that p11-kit sorts names with.
func precedes(_ first: String, _ second: String) -> Bool {
    first.utf8.lexicographicallyPrecedes(second.utf8)
}
