@testable import FModelCLI
import FModelFormat
import FModelTestSupport
import Foundation
import Testing

/// Signals: a command ended by one leaves nothing behind (no temporary file beside its output,
/// no scratch directory, no import worker still running); a write past the file size limit is
/// an error (exit 2) and a closed standard output loses the reports, neither the end of the
/// process; a model cut short under its mapping is an error, not a crash.
@Suite final class InterruptionTests {
    let dir = Fixtures.temporaryDirectory()

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    /// `fmodel import` of a Keras file with a config, ended by each signal while its worker runs.
    /// The worker is a stand-in (`FMODEL_HELPER`) that records its process id and arguments,
    /// writes part of its output (into the file fmodel staged for `-o`), then sleeps: what the
    /// real one looks like half-way through the 478 MB `.h5`. Before `Cleanup`, all three
    /// stayed behind (the sleeping worker for its full minute).
    @Test(arguments: [SIGINT, SIGTERM, SIGHUP])
    func interruptedImportLeavesNothingBehind(signal: Int32) throws {
        let output = dir + "/out\(signal)", records = dir + "/records\(signal)"
        let (pid, workerPID) = try importHalfWritten(output: output, records: records)
        defer { kill(workerPID, SIGKILL) }
        // No pause here: the worker is remembered from the moment it starts. (It was remembered
        // just after, and a signal in between left it running; this test slept 0.2 s.)
        kill(pid, signal)
        let status = try #require(waitForExit(pid), "fmodel did not end within 30 s of signal \(signal)")
        #expect(status & 0x7F == signal, "fmodel's wait status \(status): not ended by signal \(signal)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: output) == [], "left beside the output")
        let recorded = try String(contentsOfFile: records + "/arguments", encoding: .utf8).split(separator: " ").map(String.init)
        let scratch = try #require(recorded.firstIndex(of: "--scratch").map { recorded[$0 + 1] })
        #expect(!FileManager.default.fileExists(atPath: scratch), "the scratch directory \(scratch) is left")
        #expect(waitUntil { kill(workerPID, 0) != 0 }, "the worker \(workerPID) is still running")
    }

    /// fmodel killed by SIGKILL while its worker's output is half-written, and the worker after
    /// it: the file fmodel staged for it has no name (`AtomicFileWriter`), so nothing is left
    /// beside the output (`import`) or in TMPDIR (`inspect`, which reads the model the worker
    /// writes), whoever had written what. The stand-in worker, unlike the real one, removes
    /// nothing: it stands for the moment after the real one has finished and before fmodel has
    /// checked its file, when fmodel alone could remove it. Killed there, fmodel left that
    /// file: the hidden 152 MB one beside the output of an import of the 478 MB `.h5`, and for
    /// `inspect` of it the 158 MB `model.fmodel` in TMPDIR (8 of 8 and 4 of 4 `kill -9`s the
    /// moment the worker ended). Nor has fmodel made anything else there: the scratch directory
    /// is the worker's to make (the stand-in does not), and the config reaches the worker as a
    /// file with no name. fmodel made both, and killed before the real worker had started (3
    /// `kill -9`s of 40 at 1–20 ms into an import on 7eeaa91), left them.
    @Test(arguments: ["import", "inspect"])
    func killedImportLeavesNoOutput(command: String) throws {
        let output = dir + "/out-killed-" + command, records = dir + "/records-killed-" + command, temporary = dir + "/tmp-killed-" + command
        let (pid, workerPID) = try importHalfWritten(command, output: output, records: records, temporary: temporary)
        defer { kill(workerPID, SIGKILL) }
        kill(pid, SIGKILL)
        _ = try #require(waitForExit(pid), "fmodel did not end")
        kill(workerPID, SIGKILL)
        #expect(waitUntil { !running(workerPID) }, "the worker \(workerPID) is still running")
        #expect(try FileManager.default.contentsOfDirectory(atPath: output) == [], "left beside the output")
        #expect(try FileManager.default.subpathsOfDirectory(atPath: temporary) == [], "left in TMPDIR")
    }

    /// Whether a process that is not this one's child runs: ended once gone, or a zombie of
    /// whoever adopted it.
    private func running(_ p: pid_t) -> Bool {
        let stat = procText("/proc/\(p)/stat")
        guard let close = stat.lastIndex(of: ")"), let state = stat[close...].dropFirst(2).first else { return false }
        return state != "Z" && state != "X"
    }

    /// Starts `fmodel import` (into a new folder `output`) or `fmodel inspect` of a Keras file
    /// with a config, with a stand-in worker (`FMODEL_HELPER`) that records its pid and
    /// arguments in `records`, writes part of its output (into `--into`, the file fmodel
    /// staged; else `--output`) and sleeps; `temporary`, when given, is fmodel's TMPDIR.
    /// Returns once the worker has written: fmodel's pid and the worker's.
    private func importHalfWritten(_ command: String = "import", output: String, records: String,
                                   temporary: String? = nil) throws -> (fmodel: pid_t, worker: pid_t) {
        let fmodel = try #require(fmodelExecutable(), "no fmodel beside the test bundle")
        for folder in [output, records] + (temporary.map { [$0] } ?? []) {
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        }
        let worker = records + "/worker.sh"
        try Fixtures.script("""
            echo "$$ $*" > \(records)/arguments
            target=
            while [ $# -gt 0 ]; do
                case "$1" in --into) target="$2" ;; --output) [ -n "$target" ] || target="$2" ;; esac
                shift
            done
            printf partial > "$target" && touch \(records)/written
            exec sleep 60

            """, at: worker)
        let arguments = [command, Fixtures.path("multitask_nested_weights.h5"), "--config", Fixtures.path("multitask_nested.json")]
            + (command == "import" ? ["-o", output + "/model.fmodel"] : [])
        let pid = try #require(spawn(fmodel, arguments, environment: ["FMODEL_HELPER=" + worker] + (temporary.map { ["TMPDIR=" + $0] } ?? []),
                                     standardError: records + "/stderr"))
        // Until the worker has written, or fmodel has ended without it (the error then says why).
        var status: Int32 = 0, ended = false
        let written = waitUntil {
            ended = ended || waitpid(pid, &status, WNOHANG) == pid
            return ended || FileManager.default.fileExists(atPath: records + "/written")
        } && !ended
        let recorded = (try? String(contentsOfFile: records + "/arguments", encoding: .utf8))?.split(separator: " ").map(String.init) ?? []
        let workerPID = recorded.first.flatMap { pid_t($0) }
        if !written, let workerPID { kill(workerPID, SIGKILL) }
        try #require(written && workerPID != nil, "the stand-in worker did not write: \(recorded); fmodel: \((try? String(contentsOfFile: records + "/stderr", encoding: .utf8)) ?? "")")
        return (pid, workerPID!)
    }

    /// fmodel killed by SIGKILL, which it cannot clean up after, as soon as its real worker has
    /// started: the worker, told by SIGTERM (it was SIGKILL) or finding its parent gone when it
    /// asks to be told (its parent is no longer FMODEL_PARENT; only init counted before, and
    /// an orphan may go to a subreaper), removes fmodel's scratch directory. It was left in
    /// TMPDIR with its config. (`kill -9` of fmodel during a 478 MB import left the worker's 152
    /// MB temporary file beside the output, and during a `.keras` import the copied weights in
    /// TMPDIR; not timed here.) The worker takes a tenth of a second: it is killed long before
    /// it is done.
    @Test func killedImportLeavesNoScratch() throws {
        let fmodel = try #require(fmodelExecutable(), "no fmodel beside the test bundle")
        let output = dir + "/killed", temporary = dir + "/killed-tmp"
        for folder in [output, temporary] { try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true) }
        let pid = try #require(spawn(fmodel, ["import", Fixtures.path("multitask_nested_weights.h5"), "--config", Fixtures.path("multitask_nested.json"),
                                              "-o", output + "/model.fmodel"], environment: ["TMPDIR=" + temporary]))
        var worker: pid_t?
        for _ in 0..<30_000 where worker == nil {
            worker = procText("/proc/\(pid)/task/\(pid)/children").split(separator: " ").first.flatMap { pid_t($0) }
            if worker == nil { usleep(1000) }
        }
        let child = try #require(worker, "no worker started")
        kill(pid, SIGKILL)
        _ = try #require(waitForExit(pid), "fmodel did not end")
        #expect(waitUntil { !running(child) }, "the worker \(child) is still running")
        #expect(try FileManager.default.contentsOfDirectory(atPath: temporary) == [],
                "left in TMPDIR: \((try? FileManager.default.subpathsOfDirectory(atPath: temporary)) ?? [])")
        #expect(try FileManager.default.contentsOfDirectory(atPath: output) == [], "left beside the output")
    }

    /// Past the file size limit (`ulimit -f`), the kernel sends SIGXFSZ, which ended fmodel
    /// (exit 153 in a shell) with its temporary file left: fmodel and its worker ignore it, so
    /// the write fails, and the import with it, naming the output (the worker's error named the
    /// hidden file it writes, a full disk's too), and the temporary files are removed.
    @Test(arguments: ["tf2_keras_frozen.pb", "multitask_flat.h5"])
    func fileSizeLimitIsAnError(source: String) throws {
        let fmodel = try #require(fmodelExecutable(), "no fmodel beside the test bundle")
        let output = dir + "/limited-" + source
        try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
        let run = try #require(runMeasured("/bin/sh", ["-c", "ulimit -f 8 && exec \"$0\" \"$@\"", fmodel,
                                                       "import", Fixtures.path(source), "-o", output + "/model.fmodel"]))
        #expect(run.exitCode == 2, "exit code \(String(describing: run.exitCode)) (nil: ended by a signal)")
        #expect(run.standardError.contains(output + "/model.fmodel: write: File too large"), "\(run.standardError)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: output) == [])
    }

    /// The scratch files, a `.keras` file's weights (the worker's, in its scratch directory in
    /// TMPDIR; stored or inflated) and a weights-only `.h5`'s config (fmodel's, in memory), past the same limit (or
    /// on a full disk): the error names the file and gives the system's reason (it said only
    /// "cannot write a temporary copy of the weights to DIR"), and nothing is left in `TMPDIR`.
    @Test(arguments: [(["keras3_multitask.keras"], "cannot write a temporary copy of its model.weights.h5: $TMPDIR/", "/model.weights.h5: write: File too large"),
                      (["keras3_multitask_deflated.keras"], "cannot write a temporary copy of its model.weights.h5: $TMPDIR/", "/model.weights.h5: write: File too large"),
                      (["multitask_nested_weights.h5", "--config", Fixtures.path("multitask_nested.json")],
                       "cannot write the config for the import worker: memfd:fmodel-config: write: File too large", "")])
    func scratchFileSizeLimitIsAnError(arguments: [String], says: String, about: String) throws {
        let fmodel = try #require(fmodelExecutable(), "no fmodel beside the test bundle")
        let source = Fixtures.path(arguments[0])
        let output = dir + "/scratch-limited-" + arguments[0], temporary = output + "/tmp"
        try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        let run = try #require(runMeasured("/bin/sh", ["-c", "ulimit -f 8 && exec \"$0\" \"$@\"", fmodel, "import", source] + arguments.dropFirst()
                                                      + ["-o", output + "/model.fmodel"], environment: ["TMPDIR=" + temporary]))
        #expect(run.exitCode == 2, "exit code \(String(describing: run.exitCode)) (nil: ended by a signal)")
        let message = run.standardError
        #expect(message.hasPrefix("error: \(source): " + says.replacingOccurrences(of: "$TMPDIR", with: temporary)) && message.hasSuffix(about + "\n"),
                "\(message)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: output) == ["tmp"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: temporary) == [])
    }

    /// A closed standard output (`fmodel import … | head -1`) loses the reports, not the import:
    /// before, SIGPIPE ended the Keras worker as it printed the passes' reports, which fmodel
    /// took for libhdf5 crashing on a corrupt file (exit 2, no output), and ended fmodel itself
    /// after a `.pb` import (exit 141).
    @Test(arguments: ["tf2_keras_frozen.pb", "multitask_flat.h5"])
    func closedStandardOutputLosesOnlyTheReports(source: String) throws {
        let fmodel = try #require(fmodelExecutable(), "no fmodel beside the test bundle")
        var ends: [Int32] = [0, 0]
        try #require(pipe(&ends) == 0)
        close(ends[0])
        defer { close(ends[1]) }
        let out = dir + "/piped-" + source + ".fmodel", errors = dir + "/piped.stderr-" + source
        let pid = try #require(spawn(fmodel, ["import", "--optimize", Fixtures.path(source), "-o", out], standardOutput: ends[1], standardError: errors))
        let status = try #require(waitForExit(pid), "fmodel did not end within 30 s")
        #expect(status == 0, "wait status \(status): \((try? String(contentsOfFile: errors, encoding: .utf8)) ?? "")")
        #expect(throws: Never.self) { try FModelReader.read(path: out) }
    }

    /// A model file cut short while a command reads it from its mapping (another program wrote
    /// over it in place) is an error naming it, exit 2: it was a crash, "Bus error" (SIGBUS).
    /// `bench` reads the weights from the mapping on every iteration; the file is cut to its
    /// first page once fmodel has mapped it and run for 0.2 s of CPU time (loading the small
    /// fixture takes a few milliseconds). Cut as soon as the file showed in the mappings, it
    /// was sometimes cut between two opens of the load, and said "truncated" instead.
    @Test func modelCutShortWhileInUseIsAnError() throws {
        let fmodel = try #require(fmodelExecutable(), "no fmodel beside the test bundle")
        let model = dir + "/cut.fmodel", errors = dir + "/cut.stderr"
        #expect(FModelCommand.main(arguments: ["import", Fixtures.path("facenet_small.h5"), "-o", model]) == 0)
        let pid = try #require(spawn(fmodel, ["bench", model, "--iterations", "1000000"], standardError: errors))
        defer { kill(pid, SIGKILL) }
        let mapped = waitUntil { procText("/proc/\(pid)/maps").contains(model) }
        var early: Int32 = 0
        try #require(mapped, "fmodel did not map the model; wait status \(waitpid(pid, &early, WNOHANG) == pid ? "\(early)" : "running"): \((try? String(contentsOfFile: errors, encoding: .utf8)) ?? "")")
        try #require(waitUntil { cpuTicks(pid) >= 20 }, "fmodel did not run 0.2 s of CPU time within 30 s")
        try #require(truncate(model, 4096) == 0)
        let status = try #require(waitForExit(pid), "fmodel did not end within 30 s of the cut")
        let message = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        #expect(status == 2 << 8, "wait status \(status) (\(status & 0x7F): the signal that ended it)")
        #expect(message == "error: \(model): the file shrank while it was being read (another program wrote over it in place?)\n", "\(message)")
    }
}

/// User and system CPU time of `pid`, in clock ticks (`/proc/PID/stat`'s 14th and 15th fields);
/// 0 when it cannot be read.
private func cpuTicks(_ pid: pid_t) -> Int {
    let stat = procText("/proc/\(pid)/stat")
    guard let close = stat.lastIndex(of: ")") else { return 0 }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 13, let user = Int(fields[11]), let system = Int(fields[12]) else { return 0 }
    return user + system
}
