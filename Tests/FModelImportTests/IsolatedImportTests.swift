import FModelImport
import FModelTestSupport
import Foundation
import Testing

@Suite final class IsolatedImportTests {
    let dir = Fixtures.temporaryDirectory()

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    /// A stand-in worker: a shell script with this body.
    func worker(_ body: String) throws -> String {
        let script = dir + "/worker.sh"
        try Fixtures.script(body, at: script)
        return script
    }

    /// A worker that hangs (keeping its stderr open) is killed at the time limit.
    @Test func hungWorkerHitsTheTimeLimit() throws {
        var isolation = IsolatedImport(helper: try worker("exec sleep 30\n"))
        isolation.timeLimit = 1
        let start = Date()
        #expect {
            try isolation.load(path: Fixtures.path("tiny_residual.h5"), options: ImportOptions())
        } throws: { error in
            guard case ImportError.limitExceeded = error else { return false }
            return true
        }
        #expect(Date().timeIntervalSince(start) < 10)
    }

    /// A worker killed after the Swift runtime reported a failed allocation ran past its memory
    /// budget: the message names the file and the budget for its size (tiny_residual.h5:
    /// 256 MiB). (A stand-in cannot end by SIGXCPU or SIGABRT here: the test's threads block
    /// them, and a child inherits that; `CLITests` has the real worker loop in libhdf5.)
    @Test func workerPastItsMemoryBudget() throws {
        let script = try worker("echo 'Fatal error: failed to allocate 2139062143 bytes' >&2\nkill -KILL $$\n")
        let path = Fixtures.path("tiny_residual.h5")
        #expect(throws: ImportError.unknownFormat(path: path, reason:
            "the HDF5 library crashed reading this file (signal 9, past the import's 256 MiB of memory for a file of this size): it is corrupt")) {
            try IsolatedImport(helper: script).load(path: path, options: ImportOptions())
        }
    }

    /// What a worker leaves in its temporary directory when it crashes (a `.keras` file's
    /// weights, copied there for libhdf5) goes with the import's scratch directory, which the
    /// worker makes (`--scratch`) and takes for its `TMPDIR`. Before, crashes on hostile
    /// `.keras` files left `fmodel-keras3-…` directories in /tmp.
    @Test func whatACrashedWorkerLeavesIsRemoved() throws {
        let record = dir + "/tmpdir"
        let script = try worker("""
            while [ "$1" != --scratch ]; do shift; done
            mkdir "$2" && mkdir "$2/fmodel-keras3-x" && echo weights > "$2/fmodel-keras3-x/model.weights.h5"
            echo "$2" > \(record)
            kill -KILL $$

            """)
        #expect(throws: ImportError.self) { try IsolatedImport(helper: script).load(path: Fixtures.path("tiny_residual.h5"), options: ImportOptions()) }
        let temporary = try String(contentsOfFile: record, encoding: .utf8).trimmingCharacters(in: .newlines)
        #expect(temporary.hasPrefix(NSTemporaryDirectory() + "fmodel-import-"), "the worker's TMPDIR: \(temporary)")
        #expect(!FileManager.default.fileExists(atPath: temporary))
    }

    /// The budget follows the bytes a file holds: a terabyte of holes behind a real header gets
    /// the budget of its header, a file without holes that of its size.
    @Test func budgetFollowsTheBytesAFileHolds() throws {
        let fixture = Fixtures.path("tiny_residual.h5")
        let size = try #require(try FileManager.default.attributesOfItem(atPath: fixture)[.size] as? Int)
        #expect(IsolatedImport.Budget(file: fixture) == IsolatedImport.Budget(sourceBytes: size))
        let sparse = dir + "/sparse.h5"
        try Fixtures.sparseCopy(of: "tiny_residual.h5", keeping: 4096, size: 1 << 40, at: sparse)
        let budget = IsolatedImport.Budget(file: sparse)
        #expect(budget.cpuSeconds == 5 && budget.memoryBytes < 257 << 20, "\(budget)")
        #expect(IsolatedImport.Budget(sourceBytes: 1 << 40).cpuSeconds == 109_956, "what its size alone would allow")
    }

    /// A worker ended by a signal from outside (kill -9, the out-of-memory killer), with no
    /// failed allocation reported, is not said to have crashed on a corrupt file.
    @Test func workerEndedFromOutsideDoesNotBlameTheFile() throws {
        let script = try worker("kill -KILL $$\n")
        let path = Fixtures.path("tiny_residual.h5")
        #expect(throws: ImportError.worker(message: "\(path): the import worker was ended by signal 9 (Killed)")) {
            try IsolatedImport(helper: script).load(path: path, options: ImportOptions())
        }
    }

    /// A worker that fails passes on its message.
    @Test func failingWorkerMessageIsKept() throws {
        let script = try worker("echo 'error: x.h5: something specific' >&2\nexit 2\n")
        #expect(throws: ImportError.worker(message: "x.h5: something specific")) {
            try IsolatedImport(helper: script).load(path: Fixtures.path("tiny_residual.h5"), options: ImportOptions())
        }
    }
}
