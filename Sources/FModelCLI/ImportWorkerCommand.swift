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

/// Where the `fmodel` executable is: `FMODEL_HELPER` when set, else this process when it is
/// `fmodel`, else an `fmodel` beside this process's executable (as in a SwiftPM build folder).
enum Helper {
    /// From POSIX calls, not `ProcessInfo`, `FileManager` and `NSString`: every command that
    /// loads a model asks, and that Foundation code (0.4 MB of pages, measured with `bench
    /// --json`) would be paged in on the way to an `.fmodel`'s first output.
    static var path: String? {
        if let p = getenv("FMODEL_HELPER") { return String(cString: p) }
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX))
        let n = buffer.withUnsafeMutableBytes { readlink("/proc/self/exe", $0.baseAddress!, $0.count) }
        let me = n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : CommandLine.arguments[0]
        var parts = me.split(separator: "/", omittingEmptySubsequences: false)
        if parts.last == "fmodel" { return me }
        parts[parts.count - 1] = "fmodel"
        let sibling = parts.joined(separator: "/")
        return access(sibling, X_OK) == 0 ? sibling : nil
    }
}
