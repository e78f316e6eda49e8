import CKernels
import Foundation

/// Dynamic quantization of float activations to 8 bits for the int8 kernels, as TFLite's
/// dynamic-range kernels do: one scale per tensor, from its range on this call (0 always inside
/// it, so that zero padding is exact).
///
/// Unsigned with a zero point (for the GEMM, which subtracts it), or, for oneDNN's convolution,
/// which takes no zero point: unsigned from 0 when nothing is negative (after a ReLU), else
/// signed and symmetric.
struct ActivationQuantization {
    let scale: Float
    let zeroPoint: UInt8
    /// Signed symmetric (`int8`, zero point 0) rather than unsigned.
    let signed: Bool
    private let inverse: Float
    private let top: Float

    /// The range of `count` values at `x`, measured in parallel.
    init(_ x: UnsafePointer<Float>, count: Int, zeroPointAllowed: Bool = true) {
        var lo: Float = 0, hi: Float = 0
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * teamSize) { partial in
            partial.initialize(repeating: 0)
            let chunks = max(1, min(teamSize, count / (4 * rowGrain)))
            parallelFor(chunks, grain: 1) { range in
                for chunk in range {
                    let start = count * chunk / chunks
                    fm_min_max(x + start, count * (chunk + 1) / chunks - start, &partial[2 * chunk], &partial[2 * chunk + 1])
                }
            }
            for chunk in 0..<chunks { (lo, hi) = (min(lo, partial[2 * chunk]), max(hi, partial[2 * chunk + 1])) }
        }
        self.init(lo: lo, hi: hi, zeroPointAllowed: zeroPointAllowed)
    }

    /// For values known to lie in `lo...hi` (0 is added to the range).
    init(lo: Float, hi: Float, zeroPointAllowed: Bool) {
        var lo = min(lo, 0), hi = max(hi, 0)
        // A bad input (NaN, ±inf, or near the float limit) must not make the scale non-finite:
        // NaN counts as 0 and the range stops at ±1e30. Its outputs are meaningless, not a crash.
        let limit: Float = 1e30
        lo = lo.isNaN ? 0 : Swift.max(lo, -limit)
        hi = hi.isNaN ? 0 : Swift.min(hi, limit)
        signed = lo < 0 && !zeroPointAllowed
        top = signed ? 127 : quantizedTop
        let step = signed ? max(-lo, hi) / 127 : (hi - lo) / top
        scale = step.isNormal ? step : 1  // a range of zero (or of denormals): any scale will do
        inverse = 1 / scale
        zeroPoint = signed ? 0 : UInt8(clamping: Int((-lo * inverse).rounded(.toNearestOrEven)))
    }

    /// Quantizes into bytes, signed or unsigned as `signed` says.
    func quantize(_ x: UnsafePointer<Float>, count: Int, into q: UnsafeMutableRawPointer) {
        guard signed else { return quantize(x, count: count, into: q.assumingMemoryBound(to: UInt8.self)) }
        let out = q.assumingMemoryBound(to: Int8.self), inverse = inverse
        parallelFor(count, grain: 4 * rowGrain) { range in
            fm_quantize_s8(x + range.lowerBound, range.count, inverse, out + range.lowerBound)
        }
    }

    /// `q = clamp(round(x / scale) + zeroPoint)`.
    @inline(__always)
    func quantize(_ x: UnsafePointer<Float>, count: Int, into q: UnsafeMutablePointer<UInt8>) {
        let z = Float(zeroPoint), top = top, inverse = inverse
        parallelFor(count, grain: 4 * rowGrain) { range in
            fm_quantize_u8(x + range.lowerBound, range.count, inverse, z, top, q + range.lowerBound)
        }
    }

    /// Calls `body` with `scale · weightScale[c]` for each column: what turns an int32
    /// accumulator back into float.
    func columnScales<R>(_ weightScales: [Float], _ body: (UnsafePointer<Float>) -> R) -> R {
        withUnsafeTemporaryAllocation(of: Float.self, capacity: weightScales.count) { s in
            for c in 0..<weightScales.count { s[c] = scale * weightScales[c] }
            return body(UnsafePointer(s.baseAddress!))
        }
    }
}

/// The largest quantized activation. With VNNI (`vpdpbusd`) the u8·s8 products accumulate
/// exactly in int32, so the full 0…255 range is safe. Without it oneDNN multiplies pairs with
/// `vpmaddubsw`, whose int16 sum saturates past 2·127·255; 7 bits keep it exact.
let quantizedTop: Float = cpuHasVNNI ? 255 : 127

/// True when oneDNN multiplies u8·s8 pairs into int32 exactly (AVX512-VNNI or AVX-VNNI): asked
/// of oneDNN, whose kernels these are (it honours `ONEDNN_MAX_CPU_ISA`; `/proc/cpuinfo` did not
/// know of that cap, and was read through Foundation at each process's first int8 layer).
let cpuHasVNNI = fm_dnnl_has_vnni() != 0
