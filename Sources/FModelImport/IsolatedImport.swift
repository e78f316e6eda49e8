import FModelCore
import FModelFormat
import Foundation

/// Runs an importer whose C library may crash on a hostile file (libhdf5 does, on some
/// corruptions) in a child process: the child writes an `.fmodel` to a temporary file, which
/// this process then reads with the checked `.fmodel` reader. A child that crashes, hangs past
/// the time limit or fails becomes an `ImportError`, never a crash of the caller.
public struct IsolatedImport: Sendable {
    /// The worker executable, `fmodel-keras`.
    public var helper: String
    /// How long the worker may take before it is killed.
    public var timeLimit: TimeInterval = 600

    public init(helper: String) { self.helper = helper }

    /// Imports `path` in a worker and returns the graph it wrote.
    public func load(path: String, options: ImportOptions) throws -> Graph {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/model.fmodel"
        try work(path: path, options: options, output: file, extra: [], dir: dir)
        return try FModelReader.read(path: file)
    }

    /// Imports `path` straight into `output`: the worker writes the file (with the lossless
    /// passes when `optimize`) beside `output`, this process reads it with the checked reader,
    /// then renames it into place — one write, and no partial file if anything fails.
    /// - Returns: the graph, read from `output`.
    public func importFile(path: String, options: ImportOptions, optimize: Bool, to output: String) throws -> Graph {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let url = URL(fileURLWithPath: output)
        let staged = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).import-\(UUID().uuidString)").path
        defer { unlink(staged) }
        var extra: [String] = optimize ? ["--optimize"] : []
        if let p = options.preprocess { extra += ["--preprocess", p.rawValue] }
        try work(path: path, options: options, output: staged, extra: extra, dir: dir)
        let graph = try FModelReader.read(path: staged)
        guard rename(staged, output) == 0 else {
            throw FormatError.io(path: output, reason: String(cString: strerror(errno)))
        }
        return graph
    }

    private func temporaryDirectory() throws -> String {
        let dir = NSTemporaryDirectory() + "fmodel-import-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Runs the worker on `path`, writing `output`; `dir` holds the config it reads.
    private func work(path: String, options: ImportOptions, output: String, extra: [String], dir: String) throws {
        var arguments = [path, "--output", output] + extra
        if let config = options.configJSON {
            guard FileManager.default.createFile(atPath: dir + "/config.json", contents: Data(config.utf8)) else {
                throw ImportError.unknownFormat(path: path, reason: "cannot write the config for the import worker to \(dir)")
            }
            arguments += ["--config", dir + "/config.json"]
        }
        let (status, message) = try run(arguments, path: path)
        guard status == 0 else {
            throw status < 0
                ? ImportError.unknownFormat(path: path, reason: "the HDF5 library crashed reading this file (signal \(-status)): it is corrupt")
                : ImportError.worker(message: message.isEmpty ? "\(path): import failed" : message)
        }
    }

    /// Runs the worker; returns its exit status (negative: killed by that signal) and stderr.
    private func run(_ arguments: [String], path: String) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: helper)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.standardOutput  // the passes' reports
        let done = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in done.signal() }
        do { try process.run() } catch {
            throw ImportError.unknownFormat(path: path, reason: "cannot start the import worker \(helper): \(error)")
        }
        // Read stderr on its own thread: waiting for its end here would wait as long as a hung
        // worker lives, and the time limit below would never apply.
        let stderr = WorkerOutput()
        let read = DispatchSemaphore(value: 0)
        DispatchQueue.global().async {
            stderr.data = errors.fileHandleForReading.readDataToEndOfFile()
            read.signal()
        }
        if done.wait(timeout: .now() + timeLimit) == .timedOut {
            process.terminate()
            throw ImportError.limitExceeded(path: path, object: "/", reason: "import took longer than \(Int(timeLimit)) s")
        }
        read.wait()
        let message = String(decoding: stderr.data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let status = process.terminationReason == .uncaughtSignal ? -process.terminationStatus : process.terminationStatus
        return (status, message.hasPrefix("error: ") ? String(message.dropFirst(7)) : message)
    }
}

/// The worker's standard error, filled by the reading thread before it signals.
private final class WorkerOutput: @unchecked Sendable {
    var data = Data()
}
