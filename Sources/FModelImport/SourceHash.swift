import FModelFormat
import Foundation

/// The SHA-256 of an import's source file, computed on another thread while the importer reads
/// the same file on this one, so that the two cores share an import instead of hashing after
/// it (the hash was 13% of a FaceNet `.pb` import's samples under `perf`).
final class SourceHash: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    /// Set by `cancel`, read by the hashing thread before each read.
    private var cancelled = false
    private var result: Result<String, FormatError>?

    /// Starts hashing `path`.
    init(path: String) {
        DispatchQueue.global(qos: .userInitiated).async { [self] in
            let outcome = Result { () throws(FormatError) -> String in
                try ModelLoader.sha256(path: path, continuing: { [self] in lock.withLock { !cancelled } })
            }
            result = outcome  // read only after `done` is signalled
            done.signal()
        }
    }

    /// The hex digest, once the whole file is read.
    /// - Throws: `FormatError.io` when the file could not be read.
    func value() throws(FormatError) -> String {
        done.wait()
        done.signal()
        return try result!.get()
    }

    /// Stops the hashing at its next read (an import that failed does not need it).
    func cancel() { lock.withLock { cancelled = true } }
}
