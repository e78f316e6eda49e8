@testable import FModelCLI
import FModelTestSupport
import Foundation
import Testing

/// Standard output and error that fail, or that the process was started without: the exit code
/// still tells what happened, and no file fmodel opens takes a standard descriptor's number.
/// Each case runs `fmodel` under `/bin/sh -c 'exec fmodel … REDIRECTION'`, as a user would.
@Suite final class StandardStreamTests {
    let dir = Fixtures.temporaryDirectory()

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    /// `fmodel` with `arguments`, its standard streams as `redirection` (a shell's) leaves them.
    func shell(_ redirection: String, _ arguments: [String]) throws -> (executable: String, arguments: [String]) {
        let fmodel = try #require(fmodelExecutable(), "no fmodel beside the test bundle")
        return ("/bin/sh", ["-c", "exec \"$0\" \"$@\" " + redirection, fmodel] + arguments)
    }

    /// An error said on a standard error that cannot take it (a full disk, a closed descriptor,
    /// a pipe nobody reads: `2>&1` onto standard output, a pipe whose reader has gone) still
    /// ends the command with exit code 2. Foundation's `FileHandle.write` ended it with SIGILL
    /// (exit 132 in a shell) in all three.
    @Test(arguments: ["2>/dev/full", "2>&-", "2>&1"])
    func errorOnAFailingStandardErrorExitsWithTwo(redirection: String) throws {
        var ends: [Int32] = [0, 0]
        try #require(pipe(&ends) == 0)
        close(ends[0])
        defer { close(ends[1]) }
        let command = try shell(redirection, ["inspect", dir + "/missing.fmodel"])
        let pid = try #require(spawn(command.executable, command.arguments, standardOutput: ends[1]))
        let status = try #require(waitForExit(pid), "fmodel did not end within 30 s")
        #expect(status == 2 << 8, "wait status \(status) (\(status & 0x7F): the signal that ended it)")
    }

    /// A report that could not be written (standard output on a full disk or closed) fails the
    /// command, exit 2, saying why: it was exit 0 with the report lost, which a CI step reading
    /// `inspect --json` or `verify --json` would have taken for success. A pipe's reader that
    /// stops early (`| head`) is not a failure (`closedStandardOutputLosesOnlyTheReports`).
    @Test(arguments: [(">/dev/full", "No space left on device"), (">&-", "Bad file descriptor")])
    func lostReportIsAnError(redirection: String, reason: String) throws {
        let model = dir + "/model.fmodel"
        #expect(FModelCommand.main(arguments: ["import", Fixtures.path("facenet_small.h5"), "-o", model]) == 0)
        let command = try shell(redirection, ["inspect", "--json", model])
        let run = try #require(runMeasured(command.executable, command.arguments))
        #expect(run.exitCode == 2, "exit code \(String(describing: run.exitCode)) (nil: ended by a signal)")
        #expect(run.standardError == "error: standard output: \(reason)\n", "\(run.standardError)")
    }

    /// Started without descriptors 0–2 (`<&- >&- 2>&-`), fmodel holds each with a placeholder
    /// (/dev/null) before it opens anything: the files it opened took those numbers (its
    /// temporary output was descriptor 1), so that a line it printed meanwhile would have gone
    /// into the file. `bench` is caught running, after it has mapped its model.
    @Test func standardDescriptorsStartedClosedAreHeld() throws {
        let model = dir + "/held.fmodel"
        #expect(FModelCommand.main(arguments: ["import", Fixtures.path("facenet_small.h5"), "-o", model]) == 0)
        let command = try shell("<&- >&- 2>&-", ["bench", model, "--iterations", "1000000"])
        let pid = try #require(spawn(command.executable, command.arguments))
        defer {
            kill(pid, SIGKILL)
            _ = waitForExit(pid)
        }
        let mapped = waitUntil { procText("/proc/\(pid)/maps").contains(model) }
        try #require(mapped, "fmodel did not map the model")
        for fd in 0...2 {
            let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(fd)")
            #expect(target == "/dev/null", "descriptor \(fd): \(target ?? "closed")")
        }
    }
}
