import ArgumentParser
import FModelCompress
import FModelCore
import FModelFormat
import FModelImport
import FModelRuntime
import FModelVerify
import Foundation

/// The `fmodel` command: import, inspect and run face-attribute models.
public struct FModelCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "fmodel",
        abstract: "Take a trained face-attribute model out of Python: import, inspect and run it.",
        version: FModelVersion.current,
        subcommands: [
            ImportCommand.self, InspectCommand.self, RunCommand.self, BenchCommand.self,
            StripCommand.self, GraftCommand.self, PruneCommand.self, QuantizeCommand.self, ShrinkCommand.self,
            VerifyCommand.self, PredictCommand.self, PreprocessCommand.self,
        ])

    public init() {}

    /// What a command line came to: its exit code (0 success, 1 a check failed, 2 bad input or
    /// usage) and the message it ends with, if any: help or the version on standard output
    /// (code 0), otherwise the error on standard error.
    public struct Outcome: Sendable {
        public let code: Int32
        public let message: String?
    }

    /// `main` on this process's arguments, unless /proc is not mounted, the process's limits are
    /// below what it needs (`ProcessLimits`) or an argument is not UTF-8: Swift's `CommandLine.arguments` puts U+FFFD
    /// for such bytes, so a model so named was "No such file or directory" and an output so
    /// named was written under another name (`-o $'out\xfe.fmodel'` wrote
    /// `out\xef\xbf\xbd.fmodel`). Each is refused, exit 2, before anything runs.
    public static func mainOnProcessArguments() -> Int32 {
        if let message = ProcessLimits.refusal(program: "fmodel", threads: threadsNeeded, openFiles: openFilesNeeded, openMPTeam: { (runtimeThreads, openMPBinding) }) {
            printError(message)
            return 2
        }
        for i in 1..<Int(CommandLine.argc) {
            guard let raw = CommandLine.unsafeArgv[i], String(validatingCString: raw) == nil else { continue }
            printError("error: argument \(i) (\(CommandLine.arguments[i])) is not UTF-8, which fmodel cannot name files in: rename the file")
            return 2
        }
        return main(arguments: Array(CommandLine.arguments.dropFirst()))
    }

    /// Files fmodel may need open at once: a Keras import needed 18 (its worker started through
    /// Foundation's Process and run loop; other commands 6–8), and with fewer the libraries
    /// crashed (SIGILL: Dispatch's event loop, Foundation's run loop) instead of failing.
    static let openFilesNeeded = 64

    /// Threads fmodel starts beside its main thread, at most, checked before it starts any: a
    /// process of `bench` or `import` had up to 4 and 5 in all (a Keras import's worker 3, which
    /// it checks itself). Past `ulimit -u` Dispatch hung and OpenMP ended the process with
    /// exit code 1.
    static let threadsNeeded = 4

    /// Parses `arguments` (without the program name), runs the command and returns the exit
    /// code, having written its final message where it goes.
    public static func main(arguments: [String]) -> Int32 {
        _ = StandardStream.output.takeFailure()  // another command's, in the same process (tests)
        _ = memoryExhaustionIsAnError
        let outcome = outcome(arguments: arguments)
        if let message = outcome.message {
            if outcome.code == 0 { show(message) } else { printError(message) }
        }
        // A report lost to a full disk or a closed descriptor is a failure (it was exit 0); one
        // a pipe's reader stopped reading (`| head`) is not: the reader had what it wanted.
        if outcome.code == 0, let failure = StandardStream.output.takeFailure(), failure != EPIPE {
            printError("error: standard output: " + String(cString: strerror(failure)))
            return 2
        }
        return outcome.code
    }

    /// A runtime allocation that cannot be had is said like any error, after the cleanup a
    /// signal does, with exit code 2 (it was Swift's trap and a stack trace). Set once, before
    /// the first command runs.
    private static let memoryExhaustionIsAnError: Void = {
        MemoryExhaustion.handler = { message in
            printError("error: " + message)
            Cleanup.exit(2)
        }
    }()

    /// Runs the command as `main` does, but hands back its final message instead of writing it.
    public static func outcome(arguments: [String]) -> Outcome {
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
            return Outcome(code: 0, message: nil)
        } catch let failed as CheckFailed {
            return Outcome(code: 1, message: failed.message)
        } catch {
            if exitCode(for: error) == .success { return Outcome(code: 0, message: fullMessage(for: error)) }
            return Outcome(code: 2, message: describe(error))
        }
    }

    /// The message for an error: our domain errors speak for themselves, cut short when a
    /// hostile file's text they quote makes them long.
    static func describe(_ error: any Error) -> String {
        switch error {
        case is ImportError, is FormatError, is GraphError, is CLIError, is StripError, is PruneError, is GraftError,
             is VerifyError, is DatasetError, is ImageError, is RuntimeError:
            "error: " + clipped("\(error)")
        default: fullMessage(for: error)
        }
    }

    /// `text`, cut in the middle when longer than `limit` characters. A name or string in a hostile
    /// file can be a megabyte (a Keras config's class name of 100,000 characters was printed
    /// whole); the start (the file, what failed) and the end (why) stay.
    static func clipped(_ text: String, limit: Int = 1200) -> String {
        guard text.count > limit else { return text }
        let (head, tail) = (limit * 3 / 4, limit / 4)
        return "\(text.prefix(head)) … (\(text.count - head - tail) characters left out) … \(text.suffix(tail))"
    }
}

/// A check that ran and failed (exit code 1), as opposed to bad input (exit code 2).
public struct CheckFailed: Error {
    public let message: String
}

/// Bad usage the parser cannot see.
struct CLIError: Error, CustomStringConvertible {
    let description: String
}

/// `body`'s result; a `GraphError` or `VerifyError` it throws names `path`, where the graph
/// came from (the errors of a well-formed file, such as a run's shapes or a model without face
/// heads, know no file: with a reference and a candidate, "the model has no age … outputs" did
/// not say which).
func naming<T>(_ path: String, _ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch where error is GraphError || error is VerifyError {
        throw CLIError(description: "\(path): \(error)")
    }
}

/// Prints a line of a command's output. Everything the CLI writes goes through this or
/// `printError`, which escape control characters (`terminalSafe`): both show names and text
/// from the model file (a hostile class name cleared the terminal).
func show(_ text: String) {
    StandardStream.output.write(text.terminalSafe + "\n")
}

/// A `--json` report's text: keys sorted, and NaN and infinities written as the strings "nan",
/// "inf" and "-inf", as `verify`'s report writes them (JSON has no such numbers, and the
/// encoder's error for one was all `predict --json` said of a model whose outputs were NaN).
func jsonText<T: Encodable>(_ value: T, pretty: Bool) throws -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
    encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    return String(decoding: try encoder.encode(value), as: UTF8.self)
}

/// Writes a line to standard error, its control characters escaped as `show` does.
func printError(_ s: String) {
    StandardStream.error.write(s.terminalSafe + "\n")
}

/// Options every command that takes a MODEL accepts, so that any importable file can be used
/// directly wherever an `.fmodel` can.
struct ModelOptions: ParsableArguments {
    @Option(help: "Keras model config (model.to_json()) for a weights-only .h5.")
    var config: String?

    @Option(help: "Input normalisation to record: prewhiten, scale01 or none.")
    var preprocess: Preprocess?

    @Option(help: "TensorFlow graphs: the input tensors, NAME[:SHAPE],… (e.g. input:?x160x160x3); the graph above them is cut away.")
    var inputs: String?

    @Option(help: "TensorFlow graphs: the output nodes, NAME,… (default: the nodes no one reads).")
    var outputs: String?

    @Option(name: .customLong("set"), help: "TensorFlow graphs: fix a placeholder, NAME=VALUE (e.g. phase_train=false).")
    var sets: [String] = []

    /// Loads `path` with these options.
    func load(_ path: String) throws -> Graph {
        try naming(path) { try ModelLoader.load(path: path, options: importOptions()) }
    }

    /// The import options these flags say.
    func importOptions() throws -> ImportOptions {
        var options = ImportOptions(preprocess: preprocess)
        options.isolation = Helper.path.map { IsolatedImport(helper: $0) }
        options.graphCut = GraphCut(inputs: inputs.map(Self.list) ?? [], outputs: outputs.map(Self.list) ?? [], sets: sets)
        options.onNote = { printError("note: " + $0) }
        if let config {
            do { options.configJSON = try MappedFile.text(path: config, maxBytes: MappedFile.maxConfigBytes) } catch {
                throw CLIError(description: "\(config): cannot read the config file (\(error.detail))")
            }
        }
        return options
    }
}

extension ModelOptions {
    static func list(_ s: String) -> [String] { s.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
}

extension Preprocess: ExpressibleByArgument {}

/// How the runtime computes: the flags of every command that runs a model.
struct RuntimeOptions: ParsableArguments {
    @Option(help: "What float32 convolutions multiply in: f32 (faithful to TensorFlow) or bf16 (AVX512-BF16; check with verify).")
    var precision: ComputePrecision = .f32

    /// An executor of the model at `path` (loaded by `options`).
    func executor(_ path: String, _ options: ModelOptions) throws -> Executor {
        try naming(path) { try Executor(graph: options.load(path), precision: precision.checked()) }
    }
}

extension ComputePrecision: ExpressibleByArgument {
    /// What this precision runs as here (`effective`), with a note when that is float32 for a
    /// bf16 asked for on a CPU without AVX-512.
    func checked() -> ComputePrecision {
        if effective != self {
            printError("note: this CPU has no AVX-512, so oneDNN has no bf16 convolutions here: running float32")
        }
        return effective
    }
}
