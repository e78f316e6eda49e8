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

    public var description: String {
        switch self {
        case .io(let p, let r): "\(p): \(r)"
        case .notThisFormat(let p, let e): "\(p): not \(e)"
        case .unsupportedVersion(let p, let v): "\(p): format version \(v) is not supported (this reader knows version 1)"
        case .truncated(let p, let o, let n): "\(p): truncated: needs \(n) bytes at byte offset \(o)"
        case .corrupt(let p, let o, let r): "\(p): corrupt at byte offset \(o): \(r)"
        case .checksumMismatch(let p, let t, let o): "\(p): tensor '\(t)' at byte offset \(o) fails its CRC-32C checksum"
        case .limitExceeded(let p, let w, let v, let l): "\(p): \(w) is \(v), over the limit of \(l)"
        }
    }
}
