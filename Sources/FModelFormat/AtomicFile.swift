#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a file so that it appears whole or not at all: the bytes go to a temporary file in
/// the same directory, which is flushed (`fsync`) and renamed over `path` only on success. The
/// temporary file is removed when the writer is dropped uncommitted, and (`Cleanup`) when a
/// signal ends the process. A symbolic link at `path` is kept and the file it points to written
/// (`destination(of:)`).
public struct AtomicFileWriter: ~Copyable {
    private let path: String
    private let target: String
    private let tempPath: String
    private var fd: Int32
    private let cleanup: Cleanup.Ticket

    /// Creates the temporary file next to `path`'s destination.
    public init(path: String) throws(FormatError) {
        let target = try Self.destination(of: path)
        var fd: Int32 = -1, name = ""
        for _ in 0..<100 where fd < 0 {
            name = Self.hiddenSibling(of: target, suffix: "tmp-" + String(UInt32.random(in: 0...UInt32.max), radix: 36))
            // Closed on exec: a process started meanwhile (the import worker) must not hold it.
            fd = open(name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            guard fd >= 0 || errno == EEXIST else { break }
        }
        guard fd >= 0 else { throw .io(path: path, reason: "cannot create a temporary file: " + MappedFile.errnoText()) }
        (self.path, self.target, self.fd, self.tempPath) = (path, target, fd, name)
        self.cleanup = Cleanup.remember(file: name)
    }

    /// Where an output written to `path` goes, so that it can be renamed into place there: `path`
    /// when it is a regular file or nothing yet, else the destination of the symbolic link(s)
    /// there (the link kept, as a copy to it would keep it). Anything else is refused, naming
    /// `path`: renaming over a directory fails, and over a device, a FIFO or a socket it would
    /// replace it (`-o /dev/null` as root replaced /dev/null with a regular file).
    public static func destination(of path: String) throws(FormatError) -> String {
        var current = path
        for _ in 0..<40 {
            var info = stat()
            guard lstat(current, &info) == 0 else {
                if errno == ENOENT { return current }
                throw .io(path: path, reason: MappedFile.errnoText())
            }
            switch info.st_mode & S_IFMT {
            case S_IFREG: return current
            case S_IFDIR: throw .io(path: path, reason: "is a directory")
            case S_IFLNK:
                var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX))
                let n = buffer.withUnsafeMutableBytes { readlink(current, $0.baseAddress!, $0.count) }
                guard n > 0 else { throw .io(path: path, reason: "cannot read the link: " + MappedFile.errnoText()) }
                // Not decoded with U+FFFD for bytes that are not UTF-8: the output went to that
                // other name, the link left dangling.
                guard let link = String(validating: buffer[..<n], as: UTF8.self) else {
                    throw .io(path: path, reason: "the symbolic link's target is not UTF-8, which fmodel cannot name files in")
                }
                current = link.hasPrefix("/") ? link : split(current).directory + link
            default:
                throw .io(path: path, reason: "not a regular file (a device, FIFO or socket): an output is written whole and renamed into place, which would replace it")
            }
        }
        throw .io(path: path, reason: "too many levels of symbolic links")
    }

    /// `.NAME.SUFFIX` in `path`'s directory, NAME being `path`'s file name, cut short (at a
    /// character) where the whole would pass the 255 bytes a file name may have: a temporary
    /// name for any name the destination may have. (A 247-byte output name failed with "File
    /// name too long" before.)
    public static func hiddenSibling(of path: String, suffix: String) -> String {
        var (directory, name) = split(path)
        while name.utf8.count > Int(NAME_MAX) - 2 - suffix.utf8.count { name.removeLast() }
        return directory + "." + name + "." + suffix
    }

    /// `path`'s directory (with its trailing `/`, or empty) and file name.
    private static func split(_ path: String) -> (directory: String, name: String) {
        guard let slash = path.lastIndex(of: "/") else { return ("", path) }
        return (String(path[...slash]), String(path[path.index(after: slash)...]))
    }

    /// Appends bytes.
    public func write(_ data: UnsafeRawBufferPointer) throws(FormatError) {
        try writeAll(fd, data, path: path)
    }

    /// Appends the bytes of an array.
    public func write(_ bytes: [UInt8]) throws(FormatError) {
        var failure: FormatError?
        bytes.withUnsafeBytes { b in
            do throws(FormatError) { try write(b) } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Appends `count` zero bytes.
    public func writeZeros(_ count: Int) throws(FormatError) {
        guard count > 0 else { return }
        try write([UInt8](repeating: 0, count: count))
    }

    /// Flushes, closes and renames the temporary file over the destination.
    public consuming func commit() throws(FormatError) {
        let fd = self.fd
        self.fd = -1
        guard fsync(fd) == 0, close(fd) == 0 else {
            unlink(tempPath)
            throw .io(path: path, reason: "cannot flush: " + MappedFile.errnoText())
        }
        fchmodPath(tempPath)
        guard rename(tempPath, target) == 0 else {
            unlink(tempPath)
            throw .io(path: path, reason: "cannot rename into place: " + MappedFile.errnoText())
        }
    }

    deinit {
        // Not committed: remove the partial file.
        if fd >= 0 {
            close(fd)
            unlink(tempPath)
        }
    }

    /// mkstemp creates 0600; give the finished file the usual 0644 less the umask.
    private func fchmodPath(_ p: String) {
        let mask = umask(0)
        umask(mask)
        chmod(p, 0o644 & ~mask)
    }
}
