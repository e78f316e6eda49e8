import FModelCore
import Foundation

/// A `[K, N]` kernel matrix as the GEMM reads it, used where it lies in a memory-mapped
/// `.fmodel` whenever its encoding allows, so that resident memory stays the weights plus the
/// activations.
enum GEMMWeights {
    /// float32 values (f16 and int4 are widened once into memory of their own).
    case f32(FloatWeights)
    /// int8 values with one float32 scale per column (`int8_per_channel`), multiplied in
    /// integer arithmetic against dynamically quantized activations.
    case int8(Int8Weights)

    var isInteger: Bool {
        if case .int8 = self { return true }
        return false
    }

    func releaseResidentPages() {
        switch self {
        case .f32(let w): w.releaseResidentPages()
        case .int8(let w): w.releaseResidentPages()
        }
    }

    init(_ tensor: Tensor) {
        if tensor.dtype == .int8PerChannel, let w = Int8Weights(tensor) {
            self = .int8(w)
        } else {
            self = .f32(FloatWeights(tensor))
        }
    }
}

/// An `int8_per_channel` kernel: the values in place, and the per-column scales.
final class Int8Weights: @unchecked Sendable {
    let pointer: UnsafePointer<Int8>
    let scales: [Float]
    private let owner: TensorStorage

    /// Drops the file-backed pages of a kernel that a primitive has copied.
    func releaseResidentPages() { owner.releaseResidentPages() }

    /// Columns per block of the matrix-vector layout.
    static let blockWidth = 256
    private var blocked: [(pointer: UnsafePointer<Int8>, width: Int)]?
    private var blockedStorage: UnsafeMutablePointer<Int8>?
    private let lock = NSLock()

    /// The kernel as 256-column blocks, each `inputs × width` contiguous, made on first use
    /// (the file's row-major kernel puts rows a page apart: every row a TLB miss, no prefetch).
    /// Made in the file's order, each row's pieces to their blocks, the mapped rows released
    /// about every megabyte: the copy and the file's pages are not both resident.
    func columnBlocks(inputs: Int) -> [(pointer: UnsafePointer<Int8>, width: Int)] {
        lock.lock()
        defer { lock.unlock() }
        if let blocked { return blocked }
        let units = scales.count
        let storage = MemoryExhaustion.allocate(bytes: inputs * units).assumingMemoryBound(to: Int8.self)
        let blocks = stride(from: 0, to: units, by: Self.blockWidth).map { c0 in
            (pointer: UnsafePointer(storage + inputs * c0), width: min(Self.blockWidth, units - c0))
        }
        let rowsPerRelease = max(1, (1 << 20) / max(units, 1))
        var released = 0
        for k in 0..<inputs {
            for (b, block) in blocks.enumerated() {
                UnsafeMutablePointer(mutating: block.pointer + k * block.width)
                    .update(from: pointer + k * units + b * Self.blockWidth, count: block.width)
            }
            if (k + 1) % rowsPerRelease == 0 {
                owner.releaseResidentPages(released..<((k + 1) * units))
                released = (k + 1) * units
            }
        }
        blocked = blocks
        blockedStorage = storage
        owner.releaseResidentPages()
        return blocks
    }

    deinit { free(blockedStorage) }

    init?(_ tensor: Tensor) {
        guard let base = tensor.storage.bytes.baseAddress, let scales = tensor.scales else { return nil }
        owner = tensor.storage
        pointer = base.assumingMemoryBound(to: Int8.self)
        let raw = scales.bytes
        self.scales = (0..<tensor.shape.last).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
    }
}
