#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Writes a file so that it appears whole or not at all: the bytes go to a temporary file in
/// the same directory, which is flushed (`fsync`) and renamed over `path` only on success. The
/// temporary file is removed when the writer is dropped uncommitted, and (`Cleanup`) when a
/// signal ends the process.
public struct AtomicFileWriter: ~Copyable {
    private let path: String
    private let tempPath: String
    private var fd: Int32
    private let cleanup: Cleanup.Ticket

    /// Creates the temporary file next to `path`.
    public init(path: String) throws(FormatError) {
        self.path = path
        let dir = path.lastIndex(of: "/").map { String(path[...$0]) } ?? ""
        let base = path.split(separator: "/").last.map(String.init) ?? path
        var template = Array("\(dir).\(base).tmp-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw .io(path: path, reason: "cannot create a temporary file: " + MappedFile.errnoText()) }
        self.fd = fd
        self.tempPath = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        self.cleanup = Cleanup.remember(file: tempPath)
    }

    /// Appends bytes.
    public func write(_ data: UnsafeRawBufferPointer) throws(FormatError) {
        var offset = 0
        while offset < data.count {
            let n = Glibc.write(fd, data.baseAddress! + offset, data.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw .io(path: path, reason: "write: " + MappedFile.errnoText())
            }
            offset += n
        }
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
        guard rename(tempPath, path) == 0 else {
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
