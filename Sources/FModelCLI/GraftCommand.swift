import ArgumentParser
import FModelCompress
import FModelCore
import FModelFormat

/// `fmodel graft BASE --at NODE HEADS -o OUT`: put a head model on top of a base graph.
struct GraftCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "graft", abstract: "Attach a head model to the value at a node of a base model.")

    @Argument(help: "The base model (e.g. a stripped FaceNet).") var base: String
    @Option(help: "The node whose value the heads take.") var at: String
    @Argument(help: "The head model (one input, taking the value at --at).") var heads: String
    @Option(name: .shortAndLong, help: "Where to write the .fmodel file.") var output: String
    @OptionGroup var options: ModelOptions

    func run() throws {
        let staged = try AtomicFileWriter(path: output)  // before the work: an output that cannot be written wastes none of it
        let grafted = try options.load(base).grafting(ModelOptions.parse([]).load(heads), at: at)
        try FModelWriter.write(grafted, into: staged)
        let shapes = try grafted.inferShapes()
        show("grafted \(heads) onto \(base) at \(at) -> \(output)")
        for o in grafted.outputs { show("  output \(o) \(shapes[o]!)") }
    }
}
