/// An owner of borrowed bytes that can drop their pages from memory and bring them back on the
/// next read (a read-only file mapping).
public protocol PageReleasing: AnyObject {
    func releasePages(_ range: UnsafeRawBufferPointer)
}

/// Immutable bytes behind a tensor: either owned by this object or a slice of a region
/// (a memory-mapped file) that `owner` keeps alive. Never copied when shared.
public final class TensorStorage: @unchecked Sendable {
    /// The bytes. Valid for the lifetime of this object.
    public let bytes: UnsafeRawBufferPointer
    private let owner: AnyObject?
    private let ownsAllocation: Bool

    /// Wraps bytes that `owner` keeps alive (for example a memory-mapped file).
    public init(borrowing bytes: UnsafeRawBufferPointer, owner: AnyObject) {
        self.bytes = bytes
        self.owner = owner
        ownsAllocation = false
    }

    /// Copies an array of trivially-copyable values.
    public convenience init<T: BitwiseCopyable>(values: [T]) {
        let p = UnsafeMutableRawBufferPointer.allocate(byteCount: max(values.count * MemoryLayout<T>.stride, 1), alignment: 64)
        values.withUnsafeBytes { src in
            if let base = src.baseAddress, src.count > 0 { p.baseAddress!.copyMemory(from: base, byteCount: src.count) }
        }
        self.init(adopting: UnsafeRawBufferPointer(start: p.baseAddress, count: values.count * MemoryLayout<T>.stride))
    }

    /// Allocates `count` float32 values (64-byte aligned, zeroed) and lets `fill` write them:
    /// a reader fills the tensor's own memory, with no intermediate array.
    public convenience init<E: Error>(floatCount count: Int, fill: (UnsafeMutableBufferPointer<Float>) throws(E) -> Void) throws(E) {
        let p = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count * 4, 1), alignment: 64)
        let floats = p.bindMemory(to: Float.self)
        floats.initialize(repeating: 0)
        do {
            try fill(UnsafeMutableBufferPointer(rebasing: floats[0..<count]))
        } catch {
            p.deallocate()
            throw error
        }
        self.init(adopting: UnsafeRawBufferPointer(start: p.baseAddress, count: count * 4))
    }

    /// Takes ownership of an allocation made with `UnsafeMutableRawBufferPointer.allocate`.
    private init(adopting bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
        owner = nil
        ownsAllocation = true
    }

    /// Tells a file-backed owner that these bytes will not be read for a while: their whole
    /// pages leave resident memory, to be read again from the file if they are needed. For a
    /// runtime that has copied the values into a layout of its own. Owned bytes stay.
    public func releaseResidentPages() { releaseResidentPages(0..<bytes.count) }

    /// The same for the whole pages inside `range` (byte offsets into `bytes`): a copy made in
    /// the file's order can let go of what it has read as it goes.
    public func releaseResidentPages(_ range: Range<Int>) {
        guard range.lowerBound >= 0, range.upperBound <= bytes.count else { return }
        (owner as? PageReleasing)?.releasePages(UnsafeRawBufferPointer(rebasing: bytes[range]))
    }

    deinit {
        if ownsAllocation, let base = bytes.baseAddress {
            UnsafeMutableRawPointer(mutating: base).deallocate()
        }
    }
}
