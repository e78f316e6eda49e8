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
        // Not decoded with U+FFFD for bytes that are not UTF-8: that names another directory,
        // and the error said "No such file or directory" of one that exists.
        var base = ""
        if let raw = getenv("TMPDIR") {
            guard let text = String(validatingCString: raw) else {
                throw .io(path: String(cString: raw), reason: "TMPDIR is not UTF-8, which fmodel cannot name files in")
            }
            base = text
        }
        if base.isEmpty { base = "/tmp" }
        if !base.hasSuffix("/") { base += "/" }
        var path = ""
        for _ in 0..<100 {
            path = base + prefix + "-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
            if mkdir(path, 0o700) == 0 {
                // 0700 whatever the umask: 0222 made it 0500, and nothing could be written in it.
                chmod(path, 0o700)
                return path
            }
            guard errno == EEXIST else { break }
        }
        throw .io(path: path, reason: "cannot make a temporary directory in TMPDIR (\(base)): " + MappedFile.errnoText())
    }

    /// Writes `bytes` to a new file at `path` in such a directory (0600, closed on exec, not
    /// flushed: scratch, not output). A failure names `path` and the system's reason (a full
    /// disk, `ulimit -f`), and leaves no file.
    public static func writeFile(_ bytes: UnsafeRawBufferPointer, to path: String) throws(FormatError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .io(path: path, reason: MappedFile.errnoText()) }
        do { try writeAll(fd, bytes, path: path) } catch {
            close(fd)
            unlink(path)
            throw error
        }
        guard close(fd) == 0 else {
            unlink(path)
            throw .io(path: path, reason: "close: " + MappedFile.errnoText())
        }
    }
}

/// Writes all of `data` to `fd`, through short writes and interruptions; `path` names it in errors.
func writeAll(_ fd: Int32, _ data: UnsafeRawBufferPointer, path: String) throws(FormatError) {
    var offset = 0
    while offset < data.count {
        let n = write(fd, data.baseAddress! + offset, data.count - offset)
        if n < 0 {
            if errno == EINTR { continue }
            throw .io(path: path, reason: "write: " + MappedFile.errnoText())
        }
        offset += n
    }
}
