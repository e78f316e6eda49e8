import ArgumentParser
import Foundation
import FModelCompress
import FModelCore
import FModelFormat
import FModelImport

/// The hidden worker behind isolated imports: imports SRC in this process and writes an
/// `.fmodel`. The parent reads that file with the checked reader; if this process crashes on a
/// hostile file, only the worker dies.
struct ImportWorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: IsolatedImport.workerCommand, abstract: "Internal: import in an isolated process.", shouldDisplay: false)

    @Argument var source: String
    @Option var output: String
    @Option var config: String?
    @Flag var optimize = false
    @Option var preprocess: Preprocess?

    func run() throws {
        let text = try config.map { try String(contentsOfFile: $0, encoding: .utf8) }
        var graph = try ModelLoader.load(path: source, options: ImportOptions(configJSON: text, preprocess: preprocess))
        if optimize {
            for report in GraphPass.runLossless(&graph) { print("  " + report.description) }
        }
        try FModelWriter.write(graph, to: output)
    }
}

/// Where the `fmodel` executable is: this process when it is `fmodel`, else `FMODEL_HELPER`,
/// else an `fmodel` beside this process's executable (as in a SwiftPM build folder).
enum Helper {
    static var path: String? {
        let env = ProcessInfo.processInfo.environment
        if let p = env["FMODEL_HELPER"] { return p }
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        if (me as NSString).lastPathComponent == "fmodel" { return me }
        let sibling = ((me as NSString).deletingLastPathComponent as NSString).appendingPathComponent("fmodel")
        return FileManager.default.isExecutableFile(atPath: sibling) ? sibling : nil
    }
}
