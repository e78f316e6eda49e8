import CKernels
import Foundation

/// The rate of the GEMM the runtime calls, measured on this machine: the ceiling that
/// convolution and dense throughput are compared with.
public enum GEMMRate {
    /// Best-of-`repeats` GFLOP/s of an `n×n×n` float32 product (2n³ FLOPs per product).
    public static func measure(n: Int = 2048, repeats: Int = 5) -> Double {
        joinTeam()
        let a = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        let b = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        let c = UnsafeMutablePointer<Float>.allocate(capacity: n * n)
        defer { a.deallocate(); b.deallocate(); c.deallocate() }
        for i in 0..<(n * n) { (a[i], b[i]) = (Float(i % 7) * 0.1, Float(i % 5) * 0.1) }
        sgemm(m: n, n: n, k: n, a: a, b: b, c: c)
        var best = Double.infinity
        for _ in 0..<repeats {
            let t = DispatchTime.now().uptimeNanoseconds
            sgemm(m: n, n: n, k: n, a: a, b: b, c: c)
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9)
        }
        return 2 * Double(n) * Double(n) * Double(n) / best / 1e9
    }

    /// Best-of-`repeats` GFLOP/s of float32 multiply-adds on every thread of the team, in
    /// registers (`fm_fma_chains`, about 30 ms a run on the Zen 5): the machine's ceiling, which
    /// only fewer multiplications (Winograd) take a convolution past in nominal FLOPs. nil
    /// without AVX2 + FMA.
    public static func multiplyAddPeak(iterations: Int = 20_000_000, repeats: Int = 3) -> Double? {
        let lanes = Int(fm_fma_lanes())
        guard lanes > 0 else { return nil }
        joinTeam()
        let sums = UnsafeMutableBufferPointer<Float>.allocate(capacity: teamSize)
        defer { sums.deallocate() }
        var best = Double.infinity
        for _ in 0..<repeats {
            let t = DispatchTime.now().uptimeNanoseconds
            parallelFor(teamSize, grain: 1) { threads in
                for i in threads { sums[i] = fm_fma_chains(iterations) }
            }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - t) / 1e9)
        }
        precondition(sums.allSatisfy(\.isFinite), "multiply-add chains overflowed")
        return Double(teamSize * iterations * Int(FM_FMA_CHAINS) * lanes * 2) / best / 1e9
    }
}
