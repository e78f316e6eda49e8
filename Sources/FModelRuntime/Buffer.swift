/// A float32 activation buffer, 64-byte aligned, freed when the last reference goes; or a
/// caller's memory read in place.
final class Buffer {
    let pointer: UnsafeMutablePointer<Float>
    let capacity: Int
    /// False for a caller's memory (a model input): never written — the one path that writes
    /// over a value's buffer, a residual's last reader, checks this — never pooled, never freed.
    let isOwned: Bool

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: self.capacity * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: self.capacity)
        isOwned = true
    }

    /// `capacity` floats at `pointer`, which must stay valid while the buffer is in use.
    init(borrowing pointer: UnsafePointer<Float>, capacity: Int) {
        self.pointer = UnsafeMutablePointer(mutating: pointer)
        self.capacity = capacity
        isOwned = false
    }

    deinit { if isOwned { UnsafeMutableRawPointer(pointer).deallocate() } }
}

/// Free buffers kept for reuse across nodes (and across runs) so that steady-state inference
/// allocates nothing.
struct BufferPool {
    private var free: [Buffer] = []

    /// The smallest free buffer holding `count` floats, or a new one.
    mutating func take(_ count: Int) -> Buffer {
        var best: Int?
        for (i, b) in free.enumerated() where b.capacity >= count {
            if best == nil || b.capacity < free[best!].capacity { best = i }
        }
        if let i = best { return free.remove(at: i) }
        return Buffer(capacity: count)
    }

    /// Floats held by the free buffers.
    var capacity: Int { free.reduce(0) { $0 + $1.capacity } }

    /// Returns a buffer for reuse (a borrowed one is dropped).
    mutating func give(_ b: Buffer) { if b.isOwned { free.append(b) } }
}
