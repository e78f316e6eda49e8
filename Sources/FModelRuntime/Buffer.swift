#if canImport(Glibc)
import Glibc
#endif

/// A float32 buffer, 64-byte aligned: memory of its own, freed when the last reference goes; a
/// place in the activation arena (`ActivationMemory`); or a caller's memory read in place.
final class Buffer {
    let pointer: UnsafeMutablePointer<Float>
    let capacity: Int
    let origin: Origin

    enum Origin: Equatable {
        /// Allocated for this buffer, freed with it.
        case heap
        /// The `slot`-th buffer a run takes from its arena plan; the arena owns the memory.
        case arena(slot: Int)
        /// A caller's memory (a model input): never written — the one path that writes over a
        /// value's buffer, a residual's last reader, checks `isWritable` — never pooled, never
        /// freed.
        case borrowed
    }

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        let raw = MemoryExhaustion.allocate(bytes: self.capacity * 4)
        pointer = raw.bindMemory(to: Float.self, capacity: self.capacity)
        origin = .heap
    }

    /// `capacity` floats at `pointer`, which must stay valid while the buffer is in use.
    init(borrowing pointer: UnsafePointer<Float>, capacity: Int) {
        self.pointer = UnsafeMutablePointer(mutating: pointer)
        self.capacity = capacity
        origin = .borrowed
    }

    /// Slot `slot` of an arena, `capacity` floats at `pointer`, owned by the arena.
    init(arenaSlot slot: Int, pointer: UnsafeMutablePointer<Float>, capacity: Int) {
        self.pointer = pointer
        self.capacity = capacity
        origin = .arena(slot: slot)
    }

    var isWritable: Bool { origin != .borrowed }

    deinit { if origin == .heap { free(pointer) } }
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

    /// Returns a buffer for reuse (only one of its own memory is kept).
    mutating func give(_ b: Buffer) { if b.origin == .heap { free.append(b) } }
}
