import ArgumentParser
import FModelCore
import FModelFormat
import FModelRuntime
import Foundation

/// `fmodel run MODEL --input [NAME=]FILE.npy … --out DIR`: run a model on arrays.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run", abstract: "Run a model on .npy inputs and write one .npy per output.")

    @Argument(help: "The model (.fmodel or any importable file).")
    var model: String

    @Option(name: .customLong("input"), help: "An input array: [NAME=]FILE.npy (NAME may be left out for a one-input model).")
    var inputs: [String] = []

    @Option(help: "Folder for the outputs, one float32 .npy per model output.")
    var out: String

    @OptionGroup var options: ModelOptions

    @OptionGroup var runtime: RuntimeOptions

    func run() throws {
        let executor = try runtime.executor(model, options)
        let (feeds, files) = try bind(executor.inputNames)
        let made = try Self.makeFolder(out)  // before the run: a bad --out wastes none of it
        do {
            let outputs: [String: FloatTensor]
            do {
                outputs = try executor.run(feeds)
            } catch let error as RuntimeError {
                // An input of the wrong shape: the error names the input; say which file it was.
                guard case .inputShape(let name, _, _) = error, let file = files[name] else { throw error }
                throw CLIError(description: "\(file): \(error)")
            }
            let written = zip(executor.graph.outputs, Self.fileNames(for: executor.graph.outputs)).map { name, fileName in
                let t = outputs[name]!
                return (path: (out as NSString).appendingPathComponent(fileName), array: NPYArray(shape: t.shape.dims, values: t.values))
            }
            try Self.write(written[...])
            for (name, file) in zip(executor.graph.outputs, written) { show("\(name) \(outputs[name]!.shape) -> \(file.path)") }
        } catch {
            for folder in made.reversed() { rmdir(folder) }  // the folders it made, left empty
            throw error
        }
    }

    /// Writes every array, each staged whole before any is put in place: a failure writing one
    /// (a full disk, a directory by its name) leaves the folder as it was. It left the outputs
    /// written before it beside those of an earlier run.
    static func write(_ files: ArraySlice<(path: String, array: NPYArray)>) throws {
        guard let (path, array) = files.first else { return }
        let writer = try AtomicFileWriter(path: path)
        try writer.write(NPY.encode(array))
        try write(files.dropFirst())
        try writer.commit()
    }

    /// Makes `path` and any missing parents, as `mkdir -p` does, and returns the folders it
    /// made; a file in the way is an error naming it (it was a dump of Foundation's error, after
    /// the run). Each folder it makes its owner may write and search whatever the umask, as
    /// `mkdir -p` makes the parents: a umask taking the owner's write (0222) made a folder no
    /// output could be written into.
    static func makeFolder(_ path: String) throws -> [String] {
        var folder = path.hasPrefix("/") ? "" : "."
        var made: [String] = []
        func refusal(_ reason: String) -> CLIError {
            for folder in made.reversed() { rmdir(folder) }
            return CLIError(description: "\(path): cannot make the folder: " + reason)
        }
        for part in path.split(separator: "/") {
            folder += "/" + part
            var info = stat()
            if stat(folder, &info) == 0 {
                guard info.st_mode & S_IFMT == S_IFDIR else { throw refusal("\(folder) is not a directory") }
            } else if mkdir(folder, 0o777) == 0 {
                chmod(folder, (0o777 & ~AtomicFileWriter.processUmask) | S_IWUSR | S_IXUSR)
                made.append(folder)
            } else if errno != EEXIST {
                throw refusal(String(cString: strerror(errno)))
            }
        }
        return made
    }

    /// Pairs each `--input` with a model input: the values, and the file each came from.
    func bind(_ names: [String]) throws -> (feeds: [String: FloatTensor], files: [String: String]) {
        guard !inputs.isEmpty else { throw CLIError(description: "give an --input for each of: \(names.joined(separator: ", "))") }
        var feeds: [String: FloatTensor] = [:], files: [String: String] = [:]
        for spec in inputs {
            var name: String
            var file = spec
            if let eq = spec.firstIndex(of: "="), !FileManager.default.fileExists(atPath: spec) {
                name = String(spec[..<eq])
                file = String(spec[spec.index(after: eq)...])
            } else {
                guard names.count == 1 else { throw CLIError(description: "the model has inputs \(names.joined(separator: ", ")): write --input NAME=FILE.npy") }
                name = names[0]
            }
            let array = try NPY.read(path: file)
            feeds[name] = FloatTensor(shape: Shape(array.shape), values: array.values)
            files[name] = file
        }
        return (feeds, files)
    }

    /// The output file name: characters outside `[A-Za-z0-9._-]` become `_`, and the name is cut
    /// to 200 characters (a file name has at most 255 bytes).
    static func fileName(for output: String) -> String {
        String(output.prefix(200).map { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) ? $0 : "_" }) + ".npy"
    }

    /// The outputs' file names, one each: a name that another output's already took (`a/b` and
    /// `a_b` both give `a_b.npy`; the second overwrote the first) gets `_2`, `_3`, … before
    /// `.npy`.
    static func fileNames(for outputs: [String]) -> [String] {
        var taken = Set<String>()
        return outputs.map { output in
            let base = String(fileName(for: output).dropLast(4))
            var name = base + ".npy", n = 1
            while !taken.insert(name).inserted {
                n += 1
                name = "\(base)_\(n).npy"
            }
            return name
        }
    }
}
