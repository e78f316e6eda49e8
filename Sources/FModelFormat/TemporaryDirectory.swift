#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CCleanup

/// A new directory of this process's own in `$TMPDIR` (else /tmp), for the import's scratch
/// files: made with `mkdir` 0700 (its owner alone reads the weights it holds), never with
/// missing parents (a `TMPDIR` that did not exist was made, and left). A `TMPDIR` that is not
/// a directory is an error that names it (it was a Foundation error dump before). And files
/// with no name in memory, for what another process reads (`memoryFile`).
public enum TemporaryDirectory {
    /// Makes `$TMPDIR/PREFIX-<random>` and returns its path.
    public static func make(prefix: String) throws(FormatError) -> String {
        var path = ""
        for _ in 0..<100 {
            path = try name(prefix: prefix)
            do { try create(path); return path } catch where errno == EEXIST {}
        }
        throw .io(path: path, reason: "cannot make a temporary directory: 100 names were taken")
    }

    /// A new name `$TMPDIR/PREFIX-<random>`, not made: for a directory another process makes
    /// (`create`).
    public static func name(prefix: String) throws(FormatError) -> String {
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
        return base + prefix + "-" + String(UInt64.random(in: 0...UInt64.max), radix: 36)
    }

    /// Makes the directory `path` (a `name`), 0700 whatever the umask (0222 made it 0500, and
    /// nothing could be written in it); its parent must exist. A failure names the parent (the
    /// `TMPDIR`), `errno` kept.
    public static func create(_ path: String) throws(FormatError) {
        guard mkdir(path, 0o700) == 0 else {
            let failure = errno
            let reason = "cannot make a temporary directory in TMPDIR (\(path[...(path.lastIndex(of: "/") ?? path.startIndex)])): " + MappedFile.errnoText()
            errno = failure
            throw .io(path: path, reason: reason)
        }
        chmod(path, 0o700)
    }

    /// Writes a new file at `path` in such a directory (0600, closed on exec, not flushed:
    /// scratch, not output) from the pieces `produce` hands to the `write` it is given, in
    /// order. A failure to write names `path` and the system's reason (a full disk, `ulimit
    /// -f`); it, or `produce`'s own error, leaves no file.
    public static func writeFile(to path: String, _ produce: (_ write: (UnsafeRawBufferPointer) throws(FormatError) -> Void) throws -> Void) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw FormatError.io(path: path, reason: MappedFile.errnoText()) }
        do { try produce { bytes throws(FormatError) in try writeAll(fd, bytes, path: path) } } catch {
            close(fd)
            unlink(path)
            throw error
        }
        guard close(fd) == 0 else {
            unlink(path)
            throw FormatError.io(path: path, reason: "close: " + MappedFile.errnoText())
        }
    }
}

extension TemporaryDirectory {
    /// A new file with no name, in memory (`memfd_create`), holding `bytes` and read from its
    /// start: gone with its last descriptor, however the process ends. Returns the descriptor
    /// (closed on exec); a failure (`ulimit -f`, no memory files) names the file as
    /// `memfd:NAME`.
    public static func memoryFile(holding bytes: UnsafeRawBufferPointer, name: String) throws(FormatError) -> Int32 {
        let path = "memfd:" + name
        let fd = fm_memory_file(name)
        guard fd >= 0 else { throw .io(path: path, reason: "memfd_create: " + MappedFile.errnoText()) }
        do { try writeAll(fd, bytes, path: path) } catch {
            close(fd)
            throw error
        }
        guard lseek(fd, 0, SEEK_SET) == 0 else {
            defer { close(fd) }
            throw .io(path: path, reason: "lseek: " + MappedFile.errnoText())
        }
        return fd
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
