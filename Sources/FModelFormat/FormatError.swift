/// Why a file could not be read or written. Each case names the file and, where it applies,
/// the byte offset or the tensor.
public enum FormatError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file could not be opened, read, mapped or written (`errno` text).
    case io(path: String, reason: String)
    /// The first bytes are not this format's magic.
    case notThisFormat(path: String, expected: String)
    /// A version this reader does not know.
    case unsupportedVersion(path: String, version: UInt32)
    /// The file ends before the structure it describes.
    case truncated(path: String, offset: Int, needed: Int)
    /// A field holds a value that cannot be right.
    case corrupt(path: String, offset: Int, reason: String)
    /// A tensor's bytes do not match their checksum.
    case checksumMismatch(path: String, tensor: String, offset: Int)
    /// A declared size is over the reader's limit.
    case limitExceeded(path: String, what: String, value: Int, limit: Int)

    public var description: String { "\(path): \(detail)" }

    /// The file it is about.
    public var path: String {
        switch self {
        case .io(let p, _), .notThisFormat(let p, _), .unsupportedVersion(let p, _), .truncated(let p, _, _),
             .corrupt(let p, _, _), .checksumMismatch(let p, _, _), .limitExceeded(let p, _, _, _): p
        }
    }

    /// What is wrong, without the path (for a message that names the file its own way).
    public var detail: String {
        switch self {
        case .io(_, let r): r
        case .notThisFormat(_, let e): "not \(e)"
        case .unsupportedVersion(_, let v): "format version \(v) is not supported (this reader knows version 1)"
        case .truncated(_, let o, let n): "truncated: needs \(n) bytes at byte offset \(o)"
        case .corrupt(_, let o, let r): "corrupt at byte offset \(o): \(r)"
        case .checksumMismatch(_, let t, let o): "tensor '\(t)' at byte offset \(o) fails its CRC-32C checksum"
        case .limitExceeded(_, let w, let v, let l): "\(w) is \(v), over the limit of \(l)"
        }
    }
}
