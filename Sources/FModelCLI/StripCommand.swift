import ArgumentParser
import FModelCompress
import FModelCore
import FModelFormat

/// `fmodel strip MODEL -o OUT (--layers A,B,C | --after NODE)`: remove training-time layers or
/// cut the graph after a node.
struct StripCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "strip", abstract: "Remove named layers, or cut the graph after a node.")

    @Argument(help: "The model (.fmodel or any importable file).")
    var model: String

    @Option(name: .shortAndLong, help: "Where to write the .fmodel file.")
    var output: String

    @Option(help: "Comma-separated layer names to remove; their readers take their input.")
    var layers: String?

    @Option(help: "Make this node's value the only output and drop everything after it.")
    var after: String?

    @OptionGroup var options: ModelOptions

    func validate() throws {
        guard (layers == nil) != (after == nil) else { throw ValidationError("give exactly one of --layers and --after") }
    }

    func run() throws {
        let staged = try AtomicFileWriter(path: output)  // before the work: an output that cannot be written wastes none of it
        let graph = try options.load(model)
        let stripped = try after.map { try graph.cutting(after: $0) }
            ?? graph.stripping(layers: layers!.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) })
        try FModelWriter.write(stripped, into: staged)
        let shapes = try stripped.inferShapes()
        show("stripped \(model) -> \(output): \(graph.nodes.count - stripped.nodes.count) nodes removed, \(formatBytes(graph.parameterBytes - stripped.parameterBytes)) saved")
        for o in stripped.outputs { show("  output \(o) \(shapes[o]!)") }
    }
}
