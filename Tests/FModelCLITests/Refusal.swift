import FModelCLI
import Testing

/// Runs a command line that bad input or usage must stop: it exits 2, and its message names
/// each of `parts` (the file, the layer, the byte offset: what the user needs to mend it).
func expectRefused(_ arguments: [String], naming parts: String..., sourceLocation: SourceLocation = #_sourceLocation) {
    let outcome = FModelCommand.outcome(arguments: arguments)
    #expect(outcome.code == 2, "exit code \(outcome.code)", sourceLocation: sourceLocation)
    let message = outcome.message ?? ""
    #expect(!parts.isEmpty && parts.allSatisfy(message.contains), "the message \"\(message)\" does not name all of \(parts)",
            sourceLocation: sourceLocation)
}
