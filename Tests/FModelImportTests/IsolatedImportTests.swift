import FModelImport
import FModelTestSupport
import Foundation
import Testing

@Suite struct IsolatedImportTests {
    /// A worker that hangs (keeping its stderr open) is killed at the time limit.
    @Test func hungWorkerHitsTheTimeLimit() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = dir + "/hang.sh"
        try "#!/bin/sh\nexec sleep 30\n".write(toFile: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script)
        var isolation = IsolatedImport(helper: script)
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

    /// A worker that fails passes on its message.
    @Test func failingWorkerMessageIsKept() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = dir + "/fail.sh"
        try "#!/bin/sh\necho 'error: x.h5: something specific' >&2\nexit 2\n".write(toFile: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script)
        #expect(throws: ImportError.worker(message: "x.h5: something specific")) {
            try IsolatedImport(helper: script).load(path: Fixtures.path("tiny_residual.h5"), options: ImportOptions())
        }
    }
}
