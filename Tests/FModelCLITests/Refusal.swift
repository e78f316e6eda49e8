@testable import FModelCLI
import Foundation
import Testing

/// Runs a command line that bad input or usage must stop: it exits 2, and its message names
/// each of `parts` (the file, the layer, the byte offset: what the user needs to mend it).
func expectRefused(_ arguments: [String], naming parts: String..., sourceLocation: SourceLocation = #_sourceLocation) {
    expectRefusal(FModelCommand.outcome(arguments: arguments), naming: parts, sourceLocation: sourceLocation)
}

/// A command line's outcome is a refusal: exit 2, its message naming each of `parts`.
func expectRefusal(_ outcome: FModelCommand.Outcome, naming parts: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(outcome.code == 2, "exit code \(outcome.code)", sourceLocation: sourceLocation)
    let message = outcome.message ?? ""
    #expect(!parts.isEmpty && parts.allSatisfy(message.contains), "the message \"\(message)\" does not name all of \(parts)",
            sourceLocation: sourceLocation)
}

/// Runs `body` on a thread of its own and waits up to `seconds` for it. If it is still running,
/// something is waiting on one of `fifos`: each is opened for writing and closed, which lets a
/// reader blocked on it go on to an end of file, and the test fails instead of hanging.
func promptly<T: Sendable>(within seconds: Double = 30, unblocking fifos: [String], _ body: @escaping @Sendable () -> T,
                           sourceLocation: SourceLocation = #_sourceLocation) -> T? {
    let box = PromptlyBox<T>(), done = DispatchSemaphore(value: 0)
    Thread.detachNewThread {
        box.value = body()
        done.signal()
    }
    guard done.wait(timeout: .now() + seconds) == .timedOut else { return box.value }
    Issue.record("still waiting after \(seconds) s: a FIFO was waited on", sourceLocation: sourceLocation)
    for fifo in fifos {
        let fd = open(fifo, O_WRONLY | O_NONBLOCK)
        if fd >= 0 { close(fd) }
    }
    done.wait()
    return nil
}

/// What `promptly`'s thread hands back.
private final class PromptlyBox<T>: @unchecked Sendable {
    var value: T?
}

/// Runs `executable` (with `environment` added) and waits for it: its exit code (nil after a
/// signal), its peak resident KiB from wait4, which counts no other child of the tests (but
/// starts from the tests' own peak: see `imagesAreResidentOnlyAsFarAsTheyAreRead`), and its
/// standard error (through a file, so that a child that writes much never waits on a full
/// pipe). Standard output goes to /dev/null.
func runMeasured(_ executable: String, _ arguments: [String], environment: [String] = []) -> (exitCode: Int32?, peakKiB: Int, standardError: String)? {
    let errorPath = FileManager.default.temporaryDirectory.appendingPathComponent("runMeasured-\(UUID().uuidString)").path
    defer { unlink(errorPath) }
    var status: Int32 = 0, usage = rusage()
    guard let pid = spawn(executable, arguments, environment: environment, standardError: errorPath),
          wait4(pid, &status, 0, &usage) == pid else { return nil }
    let standardError = (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
    return (status & 0x7F == 0 ? (status >> 8) & 0xFF : nil, usage.ru_maxrss, standardError)
}

/// Starts `executable` with `environment` (`NAME=value`s) added or replacing; its standard
/// output to the descriptor `standardOutput` or /dev/null, its standard error to the file
/// `standardError` or /dev/null; the signals fmodel handles at their default and unblocked,
/// whatever the test runner has (it ignores SIGXFSZ; under nohup it ignores SIGHUP). Returns its
/// process id.
func spawn(_ executable: String, _ arguments: [String], environment: [String] = [], standardOutput: Int32? = nil,
           standardError: String? = nil) -> pid_t? {
    var actions = posix_spawn_file_actions_t(), attributes = posix_spawnattr_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawnattr_init(&attributes)
    defer {
        posix_spawn_file_actions_destroy(&actions)
        posix_spawnattr_destroy(&attributes)
    }
    if let standardOutput { posix_spawn_file_actions_adddup2(&actions, standardOutput, 1) } else {
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    }
    posix_spawn_file_actions_addopen(&actions, 2, standardError ?? "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    var defaults = sigset_t(), none = sigset_t()
    sigemptyset(&defaults)
    sigemptyset(&none)
    for s in [SIGINT, SIGTERM, SIGHUP, SIGXFSZ, SIGPIPE] { sigaddset(&defaults, s) }
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    var envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) }
    let overridden = environment.map { String($0.prefix { $0 != "=" }) + "=" }
    var inherited = environ
    while let entry = inherited.pointee {
        if !overridden.contains(where: { strncmp(entry, $0, $0.utf8.count) == 0 }) { envp.append(strdup(entry)) }
        inherited += 1
    }
    envp.append(nil)
    defer { (argv + envp).forEach { free($0) } }
    var pid: pid_t = 0
    return posix_spawn(&pid, executable, &actions, &attributes, argv, envp) == 0 ? pid : nil
}

/// The `fmodel` executable the build put beside the Keras worker (and the test bundle).
func fmodelExecutable() -> String? {
    Helper.path.map { String($0.dropLast(Helper.name.count)) + "fmodel" }
}

/// Waits up to 30 s for `pid` to end; its wait status.
func waitForExit(_ pid: pid_t) -> Int32? {
    var status: Int32 = 0
    return waitUntil { waitpid(pid, &status, WNOHANG) == pid } ? status : nil
}

/// Polls `condition` every 10 ms for up to 30 s.
func waitUntil(_ condition: () -> Bool) -> Bool {
    for _ in 0..<3000 {
        if condition() { return true }
        Thread.sleep(forTimeInterval: 0.01)
    }
    return condition()
}
