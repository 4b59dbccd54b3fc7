// `p11proxy check`: every problem the module would report, in the module's words, and an exit
// status that says whether every module would start.
import ArgumentParser
import P11ProxyLoader

struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Report every problem in p11proxy's configuration; fail if a module would not start.",
        discussion: """
            Reads the configuration as the module does and loads and initialises each module it \
            names. Prints, in the module's order and words, every line the module would print to \
            standard error (`FILE:LINE: ...`, without its `p11proxy: ` prefix), then `note:` lines \
            for modules the configuration leaves out on purpose (enable-in, disable-in, a blank \
            module:, p11proxy itself), about which the module says nothing, and a summary.

            Exit status: 0 when every module the configuration asks for would load and initialise \
            (warnings allowed, unless --strict); 1 when a module would be skipped, a critical \
            module would make C_Initialize fail, or a token filter URI does not parse; 64 for a \
            usage error.
            """)

    @OptionGroup var options: ConfigurationOptions

    @Flag(help: "Also fail (exit 1) on warnings: values that fall back to a default, duplicate keys, bad file names.")
    var strict = false

    func run() throws {
        let survey = ModuleSurvey(source: options.source, programNames: options.programNames,
                                  environment: ConfigurationSource.environment())
        print(Self.render(survey), terminator: "")
        if survey.hasProblems || (strict && !survey.warnings.isEmpty) { throw ExitCode(1) }
    }

    static func render(_ survey: ModuleSurvey) -> String {
        var out = ""
        for message in survey.messages { out += message.text + "\n" }
        for module in survey.skipped where module.message == nil {
            out += "note: \(module.place): module '\(module.name)' left out: \(module.reason)\n"
        }
        for module in survey.loaded where module.initializedElsewhere {
            out += "note: module '\(module.config.name)': initialized \(ModuleStartup.initializedElsewhereText)\n"
        }
        let problems = survey.skipped.filter(\.isProblem).count
        var summary = "check: \(survey.loaded.count) module(s) would load, \(problems) would be skipped"
        let leftOut = survey.skipped.count - problems
        if leftOut > 0 { summary += ", \(leftOut) left out on purpose" }
        if survey.badFilterURIs > 0 { summary += ", \(survey.badFilterURIs) token filter URI(s) that do not parse" }
        summary += ", \(survey.warnings.count) warning(s)"
        if !survey.criticalFailures.isEmpty {
            summary += "; C_Initialize would fail: critical module(s) "
                + survey.criticalFailures.map { "'\($0)'" }.joined(separator: ", ")
        }
        return out + summary + "\n"
    }
}
