#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A new directory of this process's own in `$TMPDIR` (else /tmp), for the import's scratch
/// files: made with `mkdir` 0700 (its owner alone reads the model it holds), never with missing
/// parents (a `TMPDIR` that did not exist was made, and left). A `TMPDIR` that is not a
/// directory is an error that names it (it was a Foundation error dump before).
public enum TemporaryDirectory {
    /// Makes `$TMPDIR/PREFIX-<random>` and returns its path.
    public static func make(prefix: String) throws(FormatError) -> String {
        var base = getenv("TMPDIR").map { String(cString: $0) } ?? ""
        if base.isEmpty { base = "/tmp" }
        if !base.hasSuffix("/") { base += "/" }
        var path = ""
        for _ in 0..<100 {
            path = base + prefix + "-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
            if mkdir(path, 0o700) == 0 { return path }
            guard errno == EEXIST else { break }
        }
        throw .io(path: path, reason: "cannot make a temporary directory in TMPDIR (\(base)): " + MappedFile.errnoText())
    }
}
