import FModelCore
import FModelFormat
import Foundation

/// Runs an importer whose C library may crash on a hostile file (libhdf5 does, on some
/// corruptions) in a child process: the child writes an `.fmodel` to a temporary file, which
/// this process then reads with the checked `.fmodel` reader. A child that crashes, hangs past
/// the time limit or fails becomes an `ImportError`, never a crash of the caller.
public struct IsolatedImport: Sendable {
    /// The `fmodel` executable that serves as the worker (`fmodel _import-worker`).
    public var helper: String
    /// How long the worker may take before it is killed.
    public var timeLimit: TimeInterval = 600

    public init(helper: String) { self.helper = helper }

    /// The hidden subcommand the worker runs.
    public static let workerCommand = "_import-worker"

    /// Imports `path` in a worker and returns the graph it wrote.
    public func load(path: String, options: ImportOptions) throws -> Graph {
        let dir = NSTemporaryDirectory() + "fmodel-import-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var arguments = [Self.workerCommand, path, "--output", dir + "/model.fmodel"]
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
        return try FModelReader.read(path: dir + "/model.fmodel")
    }

    /// Runs the worker; returns its exit status (negative: killed by that signal) and stderr.
    private func run(_ arguments: [String], path: String) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: helper)
        process.arguments = arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
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
