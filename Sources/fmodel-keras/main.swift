import ArgumentParser
import CHDF5
import FModelCompress
import FModelCore
import FModelFormat
import FModelImport
import FModelKeras
import Foundation

/// `fmodel-keras SRC --output OUT`: imports a Keras `.h5` or `.keras` file in this process and
/// writes an `.fmodel`. `fmodel` runs it for every Keras file (`IsolatedImport`) and reads what it
/// wrote with the checked reader: libhdf5 is linked here only, so a crash in it on a hostile file
/// ends this process, not `fmodel`, and `fmodel` itself starts without loading the library and
/// the two dozen it brings.
struct KerasWorker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fmodel-keras", abstract: "Import a Keras .h5 or .keras file into an .fmodel (the worker `fmodel import` runs).")

    @Argument(help: "The Keras file.")
    var source: String
    @Option(help: "The .fmodel to write.")
    var output: String
    @Option(help: "The file fmodel staged for the output (/proc/PID/fd/N), to write into in place of --output, which then names it in messages; fmodel puts it in place.")
    var into: String?
    @Option(help: "Keras model config (JSON) for a weights-only .h5.")
    var config: String?
    @Option(help: "A directory to make for this import's temporary files (its TMPDIR), removed at its end; fmodel names one.")
    var scratch: String?
    @Flag(help: "Run the lossless graph passes before writing.")
    var optimize = false
    @Option(help: "Input normalisation to record: prewhiten, scale01 or none.")
    var preprocess: Preprocess?
    @Option(help: "CPU seconds this import may take (fmodel passes its budget for the file).")
    var cpuSeconds: Int?
    @Option(help: "Bytes of memory this import may allocate.")
    var memoryBytes: Int?

    func validate() throws {
        guard (cpuSeconds == nil) == (memoryBytes == nil) else {
            throw ValidationError("--cpu-seconds and --memory-bytes go together: the budget is both")
        }
    }

    func run() throws {
        // The scratch directory (removed at the end, or by a signal, empty: what the importers
        // write in it they remove) and a file fmodel staged for the output with a name (a file
        // system without unnamed files): removed by this process too when a signal ends it.
        // (Forgotten at the end, not at their last use.)
        var made: Cleanup.Ticket?, staged: Cleanup.Ticket?
        defer {
            made?.removeNow()
            staged?.forget()
        }
        if let into, !into.hasPrefix("/proc/") { staged = Cleanup.remember(file: into) }
        if let cpuSeconds, let memoryBytes {
            // Started by fmodel: limited to its budget for the file, and ending with it.
            IsolatedImport.Budget(cpuSeconds: cpuSeconds, memoryBytes: memoryBytes).apply()
            // fmodel gone already (FMODEL_PARENT is its pid): nothing is imported for nobody.
            let parent = getenv("FMODEL_PARENT").flatMap { pid_t(String(cString: $0)) } ?? 0
            guard fm_end_with_parent(parent) == 0 else { Cleanup.exit(2) }
        }
        if let scratch {
            // Made here, once this process ends with fmodel (which removes it when this one
            // crashes): fmodel killed by SIGKILL before this process had started left the
            // directory it had made. Remembered before it exists.
            let ticket = Cleanup.remember(directory: scratch)
            do { try TemporaryDirectory.create(scratch) } catch {
                ticket.forget()  // not this process's to remove
                throw error
            }
            made = ticket
            setenv("TMPDIR", scratch, 1)
        }
        let text = try config.map { path throws(FormatError) in try MappedFile.text(path: path, maxBytes: MappedFile.maxConfigBytes) }
        var graph = try ModelLoader.load(path: source, options: ImportOptions(configJSON: text, preprocess: preprocess, hdf5: KerasFiles()))
        if optimize {
            for report in GraphPass.runLossless(&graph) { StandardStream.output.write(("  " + report.description).terminalSafe + "\n") }
        }
        if let into {
            try FModelWriter.write(graph, into: into, naming: output)
        } else {
            try FModelWriter.write(graph, to: output)
        }
    }
}

extension Preprocess: ExpressibleByArgument {}

// Ended by fmodel (SIGTERM) or with it (Ctrl-C reaches both), the worker removes its temporary
// file first; a closed standard output loses its reports, not its output (Cleanup).
Cleanup.install()
// Its 2 threads beside the main one among them: past `ulimit -u`, Dispatch would wait for them
// for ever (fmodel's threads and the worker's share the limit).
if let message = ProcessLimits.refusal(program: "the import worker", threads: 2) {
    StandardStream.error.write(message + "\n")
    exit(2)
}
// Exit codes as fmodel's: 0 done, 2 bad input or usage (the error on stderr, which the parent
// passes on).
do {
    var worker = try KerasWorker.parseAsRoot(Array(CommandLine.arguments.dropFirst()))
    try worker.run()
} catch where KerasWorker.exitCode(for: error) == .success {
    KerasWorker.exit(withError: error)  // --help
} catch {
    // Bad input and usage errors alike (not ArgumentParser's 64).
    let domain = error is ImportError || error is FormatError || error is GraphError
    let message = domain ? "error: \(error)" : KerasWorker.fullMessage(for: error)
    if !message.isEmpty { StandardStream.error.write(message + "\n") }
    exit(2)
}
