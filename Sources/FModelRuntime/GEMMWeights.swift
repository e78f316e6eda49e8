import FModelCore

/// A `[K, N]` kernel matrix as the GEMM reads it, used where it lies in a memory-mapped
/// `.fmodel` whenever its encoding allows, so that resident memory stays the weights plus the
/// activations.
enum GEMMWeights {
    /// float32 values (f16 and int4 are widened once into memory of their own).
    case f32(FloatWeights)
    /// int8 values with one float32 scale per column (`int8_per_channel`), multiplied in
    /// integer arithmetic against dynamically quantized activations.
    case int8(Int8Weights)

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

    init?(_ tensor: Tensor) {
        guard let base = tensor.storage.bytes.baseAddress, let scales = tensor.scales else { return nil }
        owner = tensor.storage
        pointer = base.assumingMemoryBound(to: Int8.self)
        let raw = scales.bytes
        self.scales = (0..<tensor.shape.last).map { raw.loadUnaligned(fromByteOffset: $0 * 4, as: Float.self) }
    }
}
