import FModelCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A whole file mapped read-only into memory (`mmap`), unmapped when the last reference goes.
public final class MappedFile: @unchecked Sendable {
    /// The file's bytes, mapped while this object lives: a caller that reads them after its
    /// last use of the object may find them unmapped (Swift ends a lifetime at its last use), so
    /// one that does not keep the object goes through `withBytes`.
    public let bytes: UnsafeRawBufferPointer
    /// The path it was opened with, for messages.
    public let path: String
    /// The mapping, for the SIGBUS handler (`Cleanup`).
    private let cleanup: Cleanup.Ticket?

    /// Maps `path` read-only; `name`, when given, names it in messages (a file not yet in place,
    /// at /proc/PID/fd/N, by the output it will be).
    /// - Throws: `FormatError.io` when the file cannot be opened, sized or mapped, or is not a
    ///   regular file (a FIFO is refused at once: it is opened without blocking).
    public init(path opened: String, name: String? = nil) throws(FormatError) {
        let path = name ?? opened
        self.path = path
        let fd = open(opened, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw .io(path: path, reason: Self.errnoText()) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .io(path: path, reason: Self.errnoText()) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { throw .io(path: path, reason: "not a regular file") }
        let size = Int(st.st_size)
        guard size > 0 else {
            (bytes, cleanup) = (UnsafeRawBufferPointer(start: nil, count: 0), nil)
            return
        }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw .io(path: path, reason: "mmap: " + Self.errnoText())
        }
        bytes = UnsafeRawBufferPointer(start: p, count: size)
        cleanup = Cleanup.remember(mapping: bytes, path: path)
    }

    deinit {
        cleanup?.forget()
        if let base = bytes.baseAddress { munmap(UnsafeMutableRawPointer(mutating: base), bytes.count) }
    }

    package static func errnoText() -> String { String(cString: strerror(errno)) }

    /// `body` over the bytes, the file mapped until it returns (the receiver of a call lives
    /// through it).
    public func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(bytes)
    }

    /// The text of the UTF-8 file at `path` (a config or labels file), read through a mapping,
    /// so that a FIFO or device is refused rather than waited on, and at most `maxBytes` long:
    /// a 3 GB config (sparse zeros) took 40 s and 6.3 GB of memory to be refused.
    /// - Throws: `FormatError.io` as `init(path:)` does, or when the bytes are not UTF-8;
    ///   `.limitExceeded` past `maxBytes`.
    public static func text(path: String, maxBytes: Int) throws(FormatError) -> String {
        let file = try MappedFile(path: path)
        guard file.bytes.count <= maxBytes else {
            throw .limitExceeded(path: path, what: "its size", value: file.bytes.count, limit: maxBytes)
        }
        guard let text = file.withBytes({ String(validating: $0, as: UTF8.self) }) else {
            throw .io(path: path, reason: "not UTF-8 text")
        }
        return text
    }

    /// The largest Keras model config read (`--config`): 64 MiB, as an `.fmodel`'s header. The
    /// full-size multi-task model's is 0.2 MB.
    public static let maxConfigBytes = 64 << 20
}

extension MappedFile: PageReleasing {
    /// `madvise(MADV_DONTNEED)` on the whole pages inside `range`: the mapping is read-only and
    /// private, so they are dropped, not lost, and fault back in from the file.
    public func releasePages(_ range: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, let start = range.baseAddress, range.count > 0,
              start >= base, start + range.count <= base + bytes.count else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let first = (Int(bitPattern: start) + page - 1) / page * page
        let last = (Int(bitPattern: start) + range.count) / page * page
        guard last > first, let p = UnsafeMutableRawPointer(bitPattern: first) else { return }
        madvise(p, last - first, MADV_DONTNEED)
    }
}
