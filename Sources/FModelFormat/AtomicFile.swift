#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CCleanup

/// Writes a file so that it appears whole or not at all: the bytes go to a file with no name in
/// the destination's directory (`O_TMPFILE`), which is flushed (`fsync`) and linked into place
/// only on success, so that nothing is left when the writer is dropped uncommitted or the
/// process ends in any way, SIGKILL included. Where the file system has no unnamed files, to a
/// hidden temporary file in the same directory instead, renamed into place on success, removed
/// when the writer is dropped uncommitted and (`Cleanup`) when a signal ends the process. A
/// symbolic link at `path` is kept and the file it points to written (`destination(of:)`).
public struct AtomicFileWriter: ~Copyable {
    private let path: String
    private let target: String
    private var fd: Int32
    private let staging: Staging
    /// Where the file being written can be opened, by this process or another, until `commit`:
    /// `/proc/PID/fd/N` for an unnamed file. The import worker writes into it (`init(into:)`),
    /// and the reader checks what it wrote there before it is committed.
    public let stagedPath: String

    private enum Staging {
        /// A file with no name, linked into place by `commit`.
        case unnamed
        /// A hidden file beside the destination, renamed into place by `commit`.
        case named(Cleanup.Ticket)
        /// Another writer's staged file (`init(into:)`), which that writer commits.
        case borrowed
    }

    /// Creates the file to write next to `path`'s destination: a file with no name where the
    /// file system allows, else a hidden one.
    public init(path: String) throws(FormatError) {
        try self.init(path: path, unnamed: true)
    }

    /// As `init(path:)`; a hidden file whatever the file system when not `unnamed` (tests).
    init(path: String, unnamed: Bool) throws(FormatError) {
        let target = try Self.destination(of: path)
        var file = unnamed ? Self.unnamedFile(beside: target) : nil
        if file == nil { file = try Self.hiddenFile(beside: target, path: path) }
        let (fd, staged, staging) = file!
        // 0600 whatever the umask: the import worker opens the staged file again to write it,
        // which a umask taking the owner's write (0222) refused ("Permission denied").
        fchmod(fd, 0o600)
        (self.path, self.target, self.fd, self.stagedPath, self.staging) = (path, target, fd, staged, staging)
    }

    /// A file with no name in `target`'s directory, or nil where the file system has none.
    private static func unnamedFile(beside target: String) -> (Int32, String, Staging)? {
        let directory = split(target).directory
        let fd = fm_open_unnamed(directory.isEmpty ? "." : directory)
        guard fd >= 0 else { return nil }
        // Linked into place through /proc (`linkat` of the descriptor itself needs a privilege):
        // without /proc, a named file.
        let staged = "/proc/\(getpid())/fd/\(fd)"
        guard access(staged, F_OK) == 0 else {
            close(fd)
            return nil
        }
        return (fd, staged, .unnamed)
    }

    /// A new hidden file beside `target`.
    private static func hiddenFile(beside target: String, path: String) throws(FormatError) -> (Int32, String, Staging) {
        var fd: Int32 = -1
        // Closed on exec: a process started meanwhile (the import worker) must not hold it.
        guard let name = atFreeName(beside: target, { fd = open($0, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600); return fd >= 0 }) else {
            throw .io(path: path, reason: "cannot create a temporary file: " + MappedFile.errnoText())
        }
        return (fd, name, .named(Cleanup.remember(file: name)))
    }

    /// The hidden name beside `target` at which `make` succeeded, trying random ones while it
    /// fails because the name is taken (EEXIST); nil, with `errno` set, when it fails otherwise
    /// or 100 names were taken.
    private static func atFreeName(beside target: String, _ make: (String) -> Bool) -> String? {
        for _ in 0..<100 {
            let name = hiddenSibling(of: target, suffix: "tmp-" + String(UInt32.random(in: 0...UInt32.max), radix: 36))
            if make(name) { return name }
            if errno != EEXIST { return nil }
        }
        return nil
    }

    /// Writes into the file another writer staged (its `stagedPath`, which may be in another
    /// process), from its start; `commit` flushes it, and that writer commits it. `path` names
    /// it in errors.
    public init(into stagedPath: String, path: String) throws(FormatError) {
        let fd = open(stagedPath, O_WRONLY | O_TRUNC | O_CLOEXEC)
        guard fd >= 0 else { throw .io(path: path, reason: "cannot open the file to write: " + MappedFile.errnoText()) }
        (self.path, self.target, self.fd, self.stagedPath, self.staging) = (path, stagedPath, fd, stagedPath, .borrowed)
    }

    /// Where an output written to `path` goes, so that it can be renamed into place there: `path`
    /// when it is a regular file or nothing yet, else the destination of the symbolic link(s)
    /// there (the link kept, as a copy to it would keep it). Anything else is refused, naming
    /// `path`: renaming over a directory fails, and over a device, a FIFO or a socket it would
    /// replace it (`-o /dev/null` as root replaced /dev/null with a regular file).
    public static func destination(of path: String) throws(FormatError) -> String {
        // Where the links lead as the system follows them: a link to a pipe through /proc
        // (/dev/stdout) reads "pipe:[N]", no path, which the walk below would take for a file
        // yet to be made.
        var followed = stat()
        if stat(path, &followed) == 0, case let kind = followed.st_mode & S_IFMT, kind != S_IFREG, kind != S_IFDIR {
            throw .io(path: path, reason: Self.notAFile)
        }
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
                throw .io(path: path, reason: Self.notAFile)
            }
        }
        throw .io(path: path, reason: "too many levels of symbolic links")
    }

    private static let notAFile = "not a regular file (a device, FIFO or socket): an output is written whole and renamed into place, which would replace it"

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

    /// Writes `bytes`, then commits: a whole file from one buffer.
    public consuming func commit(writing bytes: [UInt8]) throws(FormatError) {
        try write(bytes)
        try commit()
    }

    /// Flushes and closes the file and puts it in place: links or renames it over the
    /// destination (a borrowed file is left to its own writer).
    public consuming func commit() throws(FormatError) {
        let fd = self.fd
        self.fd = -1
        guard fsync(fd) == 0 else {
            close(fd)
            if case .named = staging { unlink(stagedPath) }
            throw .io(path: path, reason: "cannot flush: " + MappedFile.errnoText())
        }
        switch staging {
        case .borrowed:
            guard close(fd) == 0 else { throw .io(path: path, reason: "cannot flush: " + MappedFile.errnoText()) }
        case .named:
            guard close(fd) == 0 else {
                unlink(stagedPath)
                throw .io(path: path, reason: "cannot flush: " + MappedFile.errnoText())
            }
            chmod(stagedPath, Self.mode(replacing: target))
            guard rename(stagedPath, target) == 0 else {
                unlink(stagedPath)
                throw .io(path: path, reason: "cannot rename into place: " + MappedFile.errnoText())
            }
        case .unnamed:
            defer { close(fd) }
            fchmod(fd, Self.mode(replacing: target))
            try linkIntoPlace()
        }
    }

    /// Gives the unnamed file the destination's name: linked there when the name is free; else
    /// linked under a hidden name and renamed over it (a link cannot replace a file), the
    /// hidden name remembered for `Cleanup` for that moment.
    private func linkIntoPlace() throws(FormatError) {
        func link(as name: String) -> Bool { linkat(AT_FDCWD, stagedPath, AT_FDCWD, name, AT_SYMLINK_FOLLOW) == 0 }
        if link(as: target) { return }
        var cleanup: Cleanup.Ticket?
        defer { cleanup?.forget() }
        guard errno == EEXIST, let name = Self.atFreeName(beside: target, { name in
            // Remembered before it exists: no moment in which a signal would leave it.
            cleanup = Cleanup.remember(file: name)
            if link(as: name) { return true }
            let failure = errno
            cleanup?.forget()
            errno = failure
            return false
        }) else { throw .io(path: path, reason: "cannot link into place: " + MappedFile.errnoText()) }
        guard rename(name, target) == 0 else {
            unlink(name)
            throw .io(path: path, reason: "cannot rename into place: " + MappedFile.errnoText())
        }
    }

    deinit {
        // Not committed: the partial file goes (an unnamed one with its descriptor).
        if fd >= 0 {
            close(fd)
            if case .named = staging { unlink(stagedPath) }
        }
    }

    /// The file is made 0600; finished, it gets the permissions of the file it replaces, else
    /// the usual 0644 less the umask. (A model kept private, 0600, was made 0644 by writing it
    /// again, as `sed -i` and editors keep them.)
    private static func mode(replacing target: String) -> mode_t {
        var info = stat()
        if stat(target, &info) == 0, info.st_mode & S_IFMT == S_IFREG { return info.st_mode & 0o777 }
        return 0o644 & ~processUmask
    }

    /// The process's umask (read by setting it and setting it back).
    public static var processUmask: mode_t {
        let mask = umask(0)
        umask(mask)
        return mask
    }
}
