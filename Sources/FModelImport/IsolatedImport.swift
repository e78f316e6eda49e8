import FModelCore
import FModelFormat
import Foundation

/// Runs an importer whose C library may crash on a hostile file (libhdf5 does, on some
/// corruptions) in a child process: the child writes an `.fmodel` to a temporary file, which
/// this process then reads with the checked `.fmodel` reader. A child that crashes, runs past
/// its `Budget` or the time limit, or fails becomes an `ImportError`, never a crash of the
/// caller.
public struct IsolatedImport: Sendable {
    /// The worker executable, `fmodel-keras`.
    public var helper: String
    /// How long the worker may take before it is killed (a worker blocked, not computing; one
    /// that computes is held by its CPU budget first).
    public var timeLimit: TimeInterval = 600

    public init(helper: String) { self.helper = helper }

    /// Imports `path` in a worker and returns the graph it wrote, into a file with no name
    /// where the file system allows (an `AtomicFileWriter` beside the scratch directory, never
    /// committed): it goes with this process however it ends.
    public func load(path: String, options: ImportOptions) throws -> Graph {
        let scratch = try Scratch()
        let model = try AtomicFileWriter(path: scratch.model)
        return try work(path: path, options: options, into: model, naming: scratch.model, extra: [], scratch: scratch)
    }

    /// Imports `path` straight into `output`: the worker writes the file (with the lossless
    /// passes when `optimize`) into the one this process staged for `output`
    /// (`AtomicFileWriter`: with no name where the file system allows, so that nothing is left
    /// however this process ends, SIGKILL included), this process reads it with the checked
    /// reader, then puts it in place — one write, and no partial file if anything fails.
    /// - Returns: the graph, read from `output`.
    public func importFile(path: String, options: ImportOptions, optimize: Bool, to output: String) throws -> Graph {
        let scratch = try Scratch()
        let writer = try AtomicFileWriter(path: output)
        var extra = optimize ? ["--optimize"] : []
        if let p = options.preprocess { extra += ["--preprocess", p.rawValue] }
        let graph = try work(path: path, options: options, into: writer, naming: output, extra: extra, scratch: scratch)
        try writer.commit()
        return graph
    }

    /// Runs the worker on `path`, writing into `staged` (`output` names it), and reads what it
    /// wrote with the checked reader. The worker removes `scratch` once it has written: this
    /// process killed by SIGKILL after the worker had ended left it, with the worker's file when
    /// that had a name.
    private func work(path: String, options: ImportOptions, into staged: borrowing AtomicFileWriter, naming output: String,
                      extra: [String], scratch: borrowing Scratch) throws -> Graph {
        try work(path: path, options: options, output: output, extra: ["--into", staged.stagedPath] + extra, scratch: scratch)
        return try FModelReader.read(MappedFile(path: staged.stagedPath, name: output))
    }

    /// Runs the worker on `path`, writing `output`, with `scratch` its temporary directory, which
    /// it makes. The config goes to it as its standard input, a file with no name in memory.
    private func work(path: String, options: ImportOptions, output: String, extra: [String], scratch: borrowing Scratch) throws {
        var arguments = [path, "--output", output, "--scratch", scratch.path] + extra
        var input: FileHandle?
        if let config = options.configJSON {
            input = try Self.memoryFile(holding: config, for: path)
            arguments += ["--config", "/dev/stdin"]
        }
        let budget = Budget(file: path)
        let (status, message) = try run(arguments + budget.arguments, path: path, input: input)
        switch status {
        case 0: return
        case -SIGXCPU:
            throw ImportError.limitExceeded(path: path, object: "/", reason:
                "the HDF5 library was still reading after the import's \(budget.cpuSeconds) s of CPU time for a file of this size: it is corrupt (libhdf5 loops on some corruptions)")
        case ..<0 where message.contains("failed to allocate"):
            throw ImportError.unknownFormat(path: path, reason:
                "the HDF5 library crashed reading this file (signal \(-status), past the import's \(budget.memoryBytes >> 20) MiB of memory for a file of this size): it is corrupt")
        case ..<0 where [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP].contains(-status):
            throw ImportError.unknownFormat(path: path, reason: "the HDF5 library crashed reading this file (signal \(-status)): it is corrupt")
        case ..<0:
            // Not a crash: a signal from outside (kill, the out-of-memory killer), which says
            // nothing of the file.
            throw ImportError.worker(message: "\(path): the import worker was ended by signal \(-status) (\(String(cString: strsignal(-status))))")
        default:
            throw ImportError.worker(message: message.isEmpty ? "\(path): import failed" : message)
        }
    }

    /// `text` in a file with no name in memory, read from its start: nothing to leave behind
    /// however this process ends. (It was `config.json` in the scratch directory this process
    /// made, which `kill -9` before the worker had started left in TMPDIR.)
    static func memoryFile(holding text: String, for path: String) throws -> FileHandle {
        do {
            let fd = try Array(text.utf8).withUnsafeBytes { b throws(FormatError) in try TemporaryDirectory.memoryFile(holding: b, name: "fmodel-config") }
            return FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        } catch {
            throw ImportError.unknownFormat(path: path, reason: "cannot write the config for the import worker: \(error)")
        }
    }

    /// Runs the worker, with `input` (else this process's) as its standard input; returns its
    /// exit status (negative: killed by that signal) and stderr.
    private func run(_ arguments: [String], path: String, input: FileHandle?) throws -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: helper)
        process.arguments = arguments
        // A crash is reported by its signal: the Swift runtime's backtrace would only delay it.
        // FMODEL_PARENT: this process, which the worker ends with (`fm_end_with_parent`).
        process.environment = ProcessInfo.processInfo.environment.merging(
            ["SWIFT_BACKTRACE": "enable=no", "FMODEL_PARENT": "\(getpid())"]) { $1 }
        if let input { process.standardInput = input }
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.standardOutput  // the passes' reports
        let done = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in done.signal() }
        // The reason in the system's words (Foundation's own error is a dump of its userInfo).
        let runnable = access(helper, X_OK) == 0 ? nil : String(cString: strerror(errno))
        // Ended and waited for if a signal ends this process: it may be writing the output.
        let cleanup: Cleanup.Ticket
        do { cleanup = try Cleanup.remember(childStartedBy: { try process.run(); return process.processIdentifier }) } catch {
            // Foundation's error in the system's words too, not its dump (EBADF: a descriptor
            // inherited at or past `ulimit -n`, which it fails to close for the worker).
            let posix = (error as NSError).domain == NSPOSIXErrorDomain ? String(cString: strerror(Int32((error as NSError).code))) : nil
            throw ImportError.unknownFormat(path: path, reason: "cannot start the import worker \(helper): \(runnable ?? posix ?? "\(error)")")
        }
        defer { cleanup.forget() }
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

/// A directory of one import's own in the system's temporary directory, for the worker's
/// temporary files (a `.keras` file's weights, copied for libhdf5): named here, made by the
/// worker (its `TMPDIR`) once it will end with this process, which removes it when it ends.
/// This process made it before, and `kill -9` before the worker had started left it in TMPDIR
/// (3 of 40 kills 1–20 ms into an import). Removed with what it holds when dropped, even when
/// the worker crashed (libhdf5 does, on some hostile files), and by `Cleanup` when a signal
/// ends this process.
private struct Scratch: ~Copyable {
    let path: String
    /// The name of the `.fmodel` the worker writes for `load`, beside the directory: its
    /// messages name it, and the file is staged there (`AtomicFileWriter`), never put in place.
    let model: String
    private let cleanup: Cleanup.Ticket

    init() throws {
        path = try TemporaryDirectory.name(prefix: "fmodel-import")
        model = path + ".fmodel"
        cleanup = Cleanup.remember(directory: path)
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// The worker's standard error, filled by the reading thread before it signals.
private final class WorkerOutput: @unchecked Sendable {
    var data = Data()
}

extension IsolatedImport {
    /// What the worker may use on one file. libhdf5 trusts the file: on some corruptions it
    /// loops for ever (a global heap object of size zero), on others it allocates what a
    /// length field says (a variable-length string of 2 GB). The worker sets these limits on
    /// itself (`apply`), so such a file ends in an error, not in a hang or gigabytes of memory.
    public struct Budget: Sendable, Equatable {
        /// CPU seconds (`RLIMIT_CPU`; past it the worker gets `SIGXCPU`).
        public var cpuSeconds: Int
        /// Bytes of heap and other private writable memory (`RLIMIT_DATA`; past it an
        /// allocation fails).
        public var memoryBytes: Int

        public init(cpuSeconds: Int, memoryBytes: Int) {
            (self.cpuSeconds, self.memoryBytes) = (cpuSeconds, memoryBytes)
        }

        /// 5 s and 256 MiB, plus 1 s for every 10 MB and 4 bytes for every byte of the source:
        /// the 478 MB multi-task `.h5` takes 1.6 s of CPU and imports within 300 MiB, the
        /// fixtures within 0.3 s and 48 MiB (debug builds). A file of 4 GB weights in float16
        /// would need twice its size as float32.
        public init(sourceBytes: Int) {
            self.init(cpuSeconds: 5 + sourceBytes / 10_000_000, memoryBytes: (256 << 20) + 4 * sourceBytes)
        }

        /// The budget for the file at `path` (or a Keras 3 model directory's files), by the bytes
        /// it holds: its size, or less when it has holes. A sparse file of 2^40 bytes whose first
        /// 4 KB were a real `.h5`'s had a budget of 109,956 s of CPU (30 hours), and libhdf5
        /// looped over its holes (a 1 GiB one used all its 112 s).
        public init(file path: String) {
            self.init(sourceBytes: ModelLoader.sourceFiles(path: path).reduce(0) { bytes, file in
                var info = stat()
                return stat(file, &info) == 0 ? bytes + min(Int(info.st_size), Int(info.st_blocks) * 512) : bytes
            })
        }

        /// The worker's options that carry the budget.
        public var arguments: [String] { ["--cpu-seconds", "\(cpuSeconds)", "--memory-bytes", "\(memoryBytes)"] }

        /// Limits this process (the worker, before it opens the file) to the budget, and to no
        /// core file when it is ended for going past it.
        public func apply() {
            func limit(_ resource: __rlimit_resource, _ soft: Int, _ hard: Int) {
                var value = rlimit(rlim_cur: rlim_t(soft), rlim_max: rlim_t(hard))
                setrlimit(__rlimit_resource_t(resource.rawValue), &value)
            }
            limit(RLIMIT_CORE, 0, 0)
            // The hard limit a little above: SIGXCPU (reported as such), not SIGKILL. A worker
            // started from a Dispatch thread inherits its blocked signals: SIGXCPU must not be.
            limit(RLIMIT_CPU, cpuSeconds, cpuSeconds + 5)
            signal(SIGXCPU, SIG_DFL)
            var set = sigset_t()
            sigemptyset(&set)
            sigaddset(&set, SIGXCPU)
            sigprocmask(SIG_UNBLOCK, &set, nil)
            limit(RLIMIT_DATA, memoryBytes, memoryBytes)
        }
    }
}
