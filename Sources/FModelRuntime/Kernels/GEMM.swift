import CBLIS
import Foundation

/// BLIS runs single-threaded unless told otherwise; use every core, once.
private let blisThreads: Void = bli_thread_set_num_threads(Int64(ProcessInfo.processInfo.activeProcessorCount))

/// `C[m×n] = A[m×k] · B[k×n]`, row-major, through BLIS's `bli_sgemm`.
///
/// BLIS rather than OpenBLAS: Debian's OpenBLAS 0.3.21 picks its SSE3 kernel on this CPU unless
/// `OPENBLAS_CORETYPE` is set, while BLIS 0.9 detects AVX-512 (2048³ sgemm on 2 cores: 60 GFLOP/s
/// against 151; a 289×128×896 FaceNet 1×1 conv: 30 against 72, one thread).
@inline(__always)
func sgemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
    _ = blisThreads
    var alpha: Float = 1, beta: Float = 0
    bli_sgemm(fm_blis_no_transpose(), fm_blis_no_transpose(), Int64(m), Int64(n), Int64(k), &alpha,
              UnsafeMutablePointer(mutating: a), Int64(k), 1, UnsafeMutablePointer(mutating: b), Int64(n), 1,
              &beta, c, Int64(n), 1)
}
