import COpenBLAS

/// `C[m×n] = A[m×k] · B[k×n]` (+ C when `accumulate`), row-major, through `cblas_sgemm`.
@inline(__always)
func sgemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>, accumulate: Bool = false) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(m), Int32(n), Int32(k),
                1, a, Int32(k), b, Int32(n), accumulate ? 1 : 0, c, Int32(n))
}
