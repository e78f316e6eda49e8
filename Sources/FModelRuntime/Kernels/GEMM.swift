import CDNNL
import CKernels
import Foundation

/// `C[m×n] = A[m×k] · B[k×n]`, row-major, through oneDNN's `dnnl_sgemm`: dense layers on more
/// than 16 rows whose kernel the cache keeps, and `bench --gemm`. Its first call compiles its
/// kernels (see `gemm`), so the GEMM path does not take it.
///
/// oneDNN rather than BLIS or OpenBLAS: it dispatches to its AVX-512 kernels on this CPU, while
/// Debian's OpenBLAS 0.3.21 follows `OPENBLAS_CORETYPE` (SSE3 when unset). Measured on 2 cores
/// (`Benchmarks/gemm_libraries.c`): 2048³ at 323 GFLOP/s against BLIS 166 and OpenBLAS 65.
@inline(__always)
func sgemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
    let status = dnnl_sgemm(CChar(UInt8(ascii: "N")), CChar(UInt8(ascii: "N")), Int64(m), Int64(n), Int64(k), 1,
                            a, Int64(k), b, Int64(n), 0, c, Int64(n))
    precondition(status == 0, "dnnl_sgemm failed (status \(status)) for \(m)×\(n)×\(k)")
}

/// `C[m×n] = A[m×k] · B[k×n]`, row-major, through `fm_gemm_f32` on the thread team: each
/// thread a contiguous share of the rows (in blocks of twelve, the kernel's register block) or,
/// below `columnSplitRows` rows, of the columns, so that each reads only its part of a kernel
/// that few rows cannot amortise. Made for the GEMM path — a `tiered` executor's first run, the
/// `gemm` engine — where nothing is to be compiled: `dnnl_sgemm` generates 3.3 MB of kernels in
/// 30-44 ms at its first call (`Benchmarks/gemm_path.c`), which a process that answers once
/// would pay before its first output. Over the full model's im2col
/// products at batch 1, kernels out of L2, it runs at 80% of `dnnl_sgemm`'s rate (244 against
/// 305 GFLOP/s, same benchmark); on the AVX2 Zen 3, packing the kernel as it goes, at 94-98%
/// (154 against 157, 128 against 136; 104 against 125 before it packed).
/// `library`: where oneDNN is compiled anyway (a tiered executor past its first run, the
/// native engine), products from `libraryRows` rows go to `dnnl_sgemm` instead (on the
/// Zen 3, multi-task model, `ab.sh` 0.939 and 0.987 at batch 32, 0.977 at batch 1).
func gemm(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>,
          library: Bool = false) {
    if takesLibrary(rows: m, library: library) { return sgemm(m: m, n: n, k: k, a: a, b: b, c: c) }
    if m < columnSplitRows {
        // On one thread below 64K multiply-adds a thread (the heads at batch 1: 32K in all),
        // where starting the team would cost more than it saves.
        columnShares(n, grain: max(1, 65536 / max(m * k * 32, 1))) { fm_gemm_f32(a, k, m, k, b, n, c, $0, $1) }
        return
    }
    parallelFor((m + 11) / 12, grain: 1) { range in
        let r0 = range.lowerBound * 12, r1 = min(m, range.upperBound * 12)
        fm_gemm_f32(a + r0 * k, k, r1 - r0, k, b, n, c + r0 * n, 0, n)
    }
}

/// Rows below which `gemm` splits the columns between the threads rather than the rows.
let columnSplitRows = 192

/// Rows from which `gemm(…, library: true)` calls `dnnl_sgemm`: the model's 64-row products
/// (Mixed_6a's strided 3×3 and Block17 at batch 1) ran 1.15-1.35× faster there than on the
/// threads' shares of the columns (`Benchmarks/gemm_path.c`, the Zen 3), fewer rows stream.
let libraryRows = 32

/// True when a product of `rows` rows goes to `dnnl_sgemm` (`gemm`'s `library`).
func takesLibrary(rows: Int, library: Bool) -> Bool { library && rows >= libraryRows }

/// Calls `product(c0, c1)` on each thread of the team for a contiguous share of `n` columns,
/// in blocks of 32 (the register block's width); inline when there are fewer than `grain`
/// blocks a thread.
func columnShares(_ n: Int, grain: Int, _ product: (Int, Int) -> Void) {
    parallelFor((n + 31) / 32, grain: grain) { blocks in product(blocks.lowerBound * 32, min(n, blocks.upperBound * 32)) }
}

/// `C[m×n] = (A[m×k] − aZero) · B[k×n]` in exact integer arithmetic, row-major, through oneDNN's
/// `dnnl_gemm_u8s8s32` (AVX-512 VNNI where the CPU has it).
@inline(__always)
func gemmU8S8(m: Int, n: Int, k: Int, a: UnsafePointer<UInt8>, aZero: UInt8, b: UnsafePointer<Int8>, c: UnsafeMutablePointer<Int32>) {
    var offset: Int32 = 0
    let status = dnnl_gemm_u8s8s32(CChar(UInt8(ascii: "N")), CChar(UInt8(ascii: "N")), CChar(UInt8(ascii: "F")),
                                   Int64(m), Int64(n), Int64(k), 1, a, Int64(k), aZero, b, Int64(n), 0, 0, c, Int64(n), &offset)
    precondition(status == 0, "dnnl_gemm_u8s8s32 failed (status \(status)) for \(m)×\(n)×\(k)")
}

/// Rows at or below which a product with a large kernel streams it (`streamedGEMM`).
let streamedRowLimit = 16

/// True when a float32 product over `rows` rows with a kernel of `weights` values is a read of
/// the kernel, done by `streamedGEMM`: few rows, a kernel of 256 KB or more. Convolutions and
/// dense layers alike (fc1 at batch 8: 4.16 ms through sgemm, 2.43 streamed).
func streamsKernel(rows: Int, weights: Int) -> Bool { rows <= streamedRowLimit && weights >= 1 << 16 }

/// `C[m×n] = A[m×k] · B[k×n]`, row-major, for few rows (`m ≤ streamedRowLimit`): a read of
/// `B`, once. Each thread streams a contiguous share of its rows (`fm_gemm_rows_f32`, the
/// product with its slice of `A`'s columns) and, after a barrier, adds its part of the partial
/// products; `partial` holds `(teamSize − 1)·m·n` floats. At batch 1 the last blocks' convs are
/// that (nine pixels; kernels of up to 2.75 MB that no cache keeps between runs), where
/// oneDNN's direct kernels read about 20% slower (`Benchmarks/streamed_gemm.c`).
func streamedGEMM(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>,
                  partial: UnsafeMutablePointer<Float>) {
    let count = m * n
    // As many shares as threads asked for: every thread of the team gets one or more, so
    // every one reaches the barrier.
    parallelFor(teamSize, grain: 1) { shares in
        for t in shares {
            let k0 = k * t / teamSize, k1 = k * (t + 1) / teamSize
            fm_gemm_rows_f32(a + k0, k, m, k1 - k0, b + k0 * n, n, t == 0 ? c : partial + (t - 1) * count)
        }
        GOMP_barrier()
        let i0 = count * shares.lowerBound / teamSize, i1 = count * shares.upperBound / teamSize
        for p in 0..<(teamSize - 1) {
            let part = partial + p * count
            for i in i0..<i1 { c[i] += part[i] }
        }
    }
}

/// True when a float32 dense product over 17 to 32 rows may read its kernel in place, in
/// column panels (`columnGEMM`), rather than through `dnnl_sgemm`, which packs the kernel on
/// every call: a kernel of 16 MB or more, which no cache keeps between runs, on an AVX-512 CPU
/// (an AVX2 one multiplies a packed copy: `multipliesPackedCopy`). A trial picks one of the
/// two (`DenseTrial`). A kernel that stays in the cache gains nothing from the panels (8192 ×
/// 256 at 32 rows: 0.76 against 0.50 ms), nor do 48 rows of a shallow one (512 × 8192: 2.02
/// against 1.77 ms) (`Benchmarks/dense_rows.c`, on the early sessions' AVX-512 machine).
func readsKernelInPanels(rows: Int, weights: Int) -> Bool {
    rows > streamedRowLimit && rows <= 32 && weights >= 1 << 22 && oneDNNIsAVX512
}

/// Which product a large dense layer on 17 to 32 rows multiplies through on an AVX-512 CPU
/// (`readsKernelInPanels`), by trial for each row count: the column panels or `dnnl_sgemm`.
/// The machine decides. fc1 (1792 × 8192, six cold copies, `Benchmarks/dense_rows.c`) at 32
/// rows: the panels 5.09 ms against `sgemm`'s 6.51 on the early sessions' AVX-512 machine
/// (at 24: 4.07 against 5.70), but 3.18 against 2.62 on the 31st session's Zen 5 (at 24: 2.62
/// against 2.16; at 17 2.38 against 2.33); in the multi-task model there at batch 32, fc1 3.34
/// → 2.88 ms with `sgemm` (`layer_ab.py`, 7 rounds).
/// Like `NativeConvolutions`, it is used under its executor's lock, one run at a time.
final class DenseTrial: @unchecked Sendable {
    enum Path: Equatable { case panels, library }

    private var verdicts: [Int: Path] = [:]

    /// For tests: the verdict trials return, not the clock's.
    var forcedVerdict: Path?

    /// The verdict for `rows` so far.
    func verdict(rows: Int) -> Path? { verdicts[rows] }

    /// Runs the product for `rows` through its verdict; the first time, times both
    /// (`fastestRuns`) and keeps the faster, which runs last, so that this run and the next
    /// give the same answer. `subject` names the layer in `FMODEL_DEBUG_CONV`'s line.
    func run(_ subject: @autoclosure () -> String, rows: Int, panels: () -> Void, library: () -> Void) {
        if let known = verdicts[rows] {
            known == .panels ? panels() : library()
            return
        }
        let times = withoutActuallyEscaping(panels) { panels in
            withoutActuallyEscaping(library) { library in fastestRuns([panels, library]) }
        }
        let (p, l) = (times[0], times[1])
        let verdict = forcedVerdict ?? (p <= l ? .panels : .library)
        if NativeConvolutions.debug {
            NativeConvolutions.say(String(format: "trial %@ rows %d: panels %.3f ms, sgemm %.3f ms: %@", subject(), rows,
                                          Double(p) / 1e6, Double(l) / 1e6, "\(verdict)"))
        }
        verdicts[rows] = verdict
        if verdict == .panels { panels() }  // the output is the winner's
    }
}

/// True when a float32 dense product over more than `streamedRowLimit` rows multiplies a copy
/// of its kernel packed once (`FloatWeights.packed`, `packedColumnGEMM`): a kernel of 16 MB or
/// more on an AVX2 CPU without AVX-512. There the file's row-major kernel, its rows 32 KB apart
/// for fc1, is read a page a row by `fm_gemm_columns_f32` and by `dnnl_sgemm`'s own packing
/// on every call; fc1 on the Zen 3 (`Benchmarks/dense_rows.c`, six cold copies): 17 rows
/// 4.93 ms against dnnl_sgemm's 9.69 and the column panels' 9.33, 32 rows 8.00 against 17.40
/// and 15.50, 64 rows 13.50 against 30.63 and 24.62. The copy is made at the first such run
/// and the mapped pages let go: resident memory holds one of the two.
func multipliesPackedCopy(rows: Int, weights: Int) -> Bool {
    rows > streamedRowLimit && weights >= 1 << 22 && !oneDNNIsAVX512 && fm_packed_available() != 0
}

/// `C[m×n] = A[m×k] · B[k×n]`, row-major, `packed` B as `fm_pack_kernel` lays it out, each
/// thread a contiguous share of the columns (`fm_gemm_packed_columns_f32`: panels of 512
/// columns through the depth a packed piece at a time).
func packedColumnGEMM(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, packed: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
    columnShares(n, grain: 1) { fm_gemm_packed_columns_f32(a, k, m, k, packed, n, c, $0, $1) }
}

/// `C[m×n] = A[m×k] · B[k×n]`, row-major, each thread a contiguous share of the columns
/// (`fm_gemm_columns_f32`: panels of 512 columns down the kernel's whole depth, so that every
/// piece of `B` read feeds all rows from the cache). No partial sums, no packing.
func columnGEMM(m: Int, n: Int, k: Int, a: UnsafePointer<Float>, b: UnsafePointer<Float>, c: UnsafeMutablePointer<Float>) {
    columnShares(n, grain: 1) { fm_gemm_columns_f32(a, k, m, k, b, n, c, $0, $1) }
}
