import CCleanup

/// Standard output and standard error as fmodel writes them. A failed write (a full disk behind
/// `2>/dev/full`, a pipe whose reader has gone, a descriptor the process was started without)
/// is remembered, for `takeFailure()`, instead of ending the process: Foundation's
/// `FileHandle.write` trapped on one, so `fmodel prune … 2>/dev/full` ended with SIGILL where
/// it should have said its error and exited with 2. Unbuffered: each `write` is whole on the
/// descriptor before it returns.
public enum StandardStream: Int32, Sendable {
    case output = 1
    case error = 2

    /// Writes `text`'s UTF-8 bytes as they are (callers escape what they must: `terminalSafe`).
    public func write(_ text: String) {
        var text = text
        text.withUTF8 { fm_standard_write(rawValue, $0.baseAddress, $0.count) }
    }

    /// The errno of the first write that failed since the last call, if one did; forgotten once
    /// taken.
    public func takeFailure() -> Int32? {
        let failure = fm_standard_failure(rawValue)
        return failure == 0 ? nil : failure
    }
}
