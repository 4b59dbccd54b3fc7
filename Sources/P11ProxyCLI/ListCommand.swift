// `p11proxy list`: the modules p11proxy would load, in its order, each with the files it came
// from, its library's description, slots and tokens; then every module it would skip, and why.
// The layout follows `p11-kit list-modules`.
import ArgumentParser
import CPKCS11
import P11ProxyConfig
import P11ProxyLoader

struct ListCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "List the modules p11proxy would load, in order, with their slots and tokens.",
        discussion: """
            Reads the configuration as the module does, loads and initialises each module it names \
            (C_Initialize, then C_Finalize), and prints them in p11proxy's load order (priority, then \
            name), each token with its pkcs11: URI as `p11tool --list-tokens` prints it. Slots are \
            numbered as p11proxy numbers them for a program whose first C_GetSlotList asks for \
            every slot. Modules that would not load follow under `skipped:` \
            with the module's own reason. Configuration warnings go to standard error.
            """)

    @OptionGroup var options: ConfigurationOptions

    func run() throws {
        let survey = ModuleSurvey(source: options.source, programNames: options.programNames,
                                  environment: ConfigurationSource.environment())
        for warning in survey.warnings { printError("p11proxy: \(warning.text)") }
        print(Self.render(survey), terminator: "")
    }

    static func render(_ survey: ModuleSurvey) -> String {
        var out = survey.source.summary.joined(separator: "\n") + "\n"
        if case .p11kit(let locations) = survey.source {
            out += "    user-config: \(survey.configuration.userConfigMode.rawValue)"
            if locations.userConfigFile == nil {
                out += " (no user files: root, setuid/setgid, P11_KIT_NO_USER_CONFIG, or no HOME)"
            }
            out += "\n"
        }
        out += "programs: \(survey.programNames.joined(separator: ", "))\n"
        if !survey.criticalFailures.isEmpty {
            out += "C_Initialize would fail: critical module(s) "
                + survey.criticalFailures.map { "'\($0)'" }.joined(separator: ", ") + " cannot start\n"
        }
        var proxySlot: CK_SLOT_ID = 1
        for module in survey.loaded {
            out += "\(module.config.name): \(module.path)\n"
            for file in module.config.files { out += "    file: \(file)\n" }
            let contents = module.contents
            out += field("priority", String(module.config.priority))
            out += field("critical", yesNo(module.config.isCritical))
            out += field("managed", yesNo(module.isManaged))
            out += field("log-calls", traceText(module.trace))
            if let reserved = module.config.initReserved { out += field("x-init-reserved", reserved) }
            if let version = module.remoteProtocolVersion {
                out += field("remote", "\(module.path) (p11-kit RPC protocol version \(version))")
            }
            for line in module.filter.map(TokenFilterSettings.describe) ?? [] { out += field("token-filter", line) }
            if module.initializedElsewhere { out += field("initialized", ModuleStartup.initializedElsewhereText) }
            out += field("interface-version", contents.interfaceVersion)
            out += field("library-description", contents.libraryDescription)
            out += field("library-manufacturer", contents.libraryManufacturer)
            out += field("library-version", contents.libraryVersion)
            for problem in contents.problems { out += field("error", problem) }
            for slot in contents.slots {
                // Spy mode shows the module's own slot IDs (SpyModule in the module).
                let shown = if case .spy = survey.source { slot.id } else { proxySlot }
                if slot.isHidden {
                    // The module gives a hidden slot no ID, so the numbers after it close up.
                    out += "    hidden slot: \(slot.description) (the token filter hides it; no slot ID)\n"
                } else {
                    out += "    slot \(shown): \(slot.description)\n"
                    proxySlot += 1
                }
                out += field("module-slot-id", String(slot.id), indent: 8)
                out += field("manufacturer", slot.manufacturer, indent: 8)
                out += field("flags", slot.flags.joined(separator: " "), indent: 8)
                if let error = slot.tokenError { out += field("error", error, indent: 8) }
                guard let token = slot.token else { continue }
                out += "        token: \(token.label)\n"
                // The token's pkcs11: URI exactly as `p11tool --list-tokens` prints it.
                out += field("uri", PKCS11URI(token: TokenDescription.Token(
                    label: token.label, manufacturer: token.manufacturer, model: token.model,
                    serial: token.serialNumber)).description, indent: 12)
                out += field("manufacturer", token.manufacturer, indent: 12)
                out += field("model", token.model, indent: 12)
                out += field("serial-number", token.serialNumber, indent: 12)
                out += field("flags", token.flags.joined(separator: " "), indent: 12)
            }
        }
        if !survey.skipped.isEmpty {
            out += "skipped:\n"
            for module in survey.skipped {
                out += "    \(module.name): \(module.reason)\n"
                out += field("file", module.place, indent: 8)
            }
        }
        return out
    }

    private static func field(_ name: String, _ value: String, indent: Int = 4) -> String {
        String(repeating: " ", count: indent) + name + ": " + value + "\n"
    }

    private static func yesNo(_ value: Bool) -> String { value ? "yes" : "no" }

    /// `yes (json to FILE, secrets shown)`, as the module would trace this module's calls.
    private static func traceText(_ trace: TraceSettings) -> String {
        guard trace.enabled else { return "no" }
        return "yes (\(trace.format == .json ? "json" : "text") to \(trace.path ?? "standard error")"
            + (trace.secrets ? ", secrets shown)" : ")")
    }
}
