import CKernels
import FModelCore
import Foundation

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

    private var packedCopy: Buffer?
    private let lock = NSLock()

    /// The `[k, n]` kernel laid out for `fm_gemm_packed_f32` (16-column strips, a piece of
    /// `fm_pack_depth()` rows at a time), made on first use: where the file's row-major rows
    /// are kilobytes apart, a strip of columns read from them touches a page a row. Made a piece
    /// at a time, the mapped rows released as it goes: the copy and the file's pages are not
    /// both resident.
    func packed(k: Int, n: Int) -> UnsafePointer<Float> {
        lock.withLock {
            if let packedCopy { return UnsafePointer(packedCopy.pointer) }
            let copy = Buffer(capacity: fm_packed_floats(k, n))
            let depth = fm_pack_depth()
            for k0 in stride(from: 0, to: k, by: depth) {
                let rows = min(depth, k - k0)
                fm_pack_kernel(pointer + k0 * n, rows, n, copy.pointer + fm_packed_floats(k0, n))
                owner.releaseResidentPages((k0 * n * 4)..<((k0 + rows) * n * 4))
            }
            packedCopy = copy
            return UnsafePointer(copy.pointer)
        }
    }

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
