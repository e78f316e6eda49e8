/// A float32 activation buffer, 64-byte aligned, freed when the last reference goes.
final class Buffer {
    let pointer: UnsafeMutablePointer<Float>
    let capacity: Int

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        let raw = UnsafeMutableRawPointer.allocate(byteCount: self.capacity * 4, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: self.capacity)
    }

    deinit { UnsafeMutableRawPointer(pointer).deallocate() }
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

    /// Returns a buffer for reuse.
    mutating func give(_ b: Buffer) { free.append(b) }
}
