import FModelCore

/// A kernel as float32 values the GEMM reads. A float32 tensor is used where it lies — in a
/// memory-mapped `.fmodel` that means no copy, and resident memory stays the weights plus the
/// activations; other encodings are dequantized once into memory of its own.
final class FloatWeights: @unchecked Sendable {
    let pointer: UnsafePointer<Float>
    let count: Int
    private let owner: TensorStorage

    /// Drops the file-backed pages of a kernel that a primitive has copied (see
    /// `TensorStorage.releaseResidentPages`).
    func releaseResidentPages() { owner.releaseResidentPages() }

    init(_ tensor: Tensor) {
        count = tensor.count
        let bytes = tensor.storage.bytes
        if tensor.dtype == .f32, let base = bytes.baseAddress, Int(bitPattern: base) % MemoryLayout<Float>.alignment == 0 {
            owner = tensor.storage
            pointer = base.assumingMemoryBound(to: Float.self)
        } else {
            owner = TensorStorage(values: tensor.floats())
            pointer = owner.bytes.baseAddress!.assumingMemoryBound(to: Float.self)
        }
    }
}
