import CKernels
import FModelCore

/// What follows a GEMM, applied row by row while the row is still in cache:
/// `y = activation(scale · (acc + bias) + residual)`.
///
/// The executor folds a conv or dense node's bias and activation here, and, when they are its
/// only consumers, the `scale`, residual `add` and activation that close an Inception-ResNet
/// block, so that none of them makes another pass over memory.
struct Epilogue {
    /// Per output channel; used in place where the model file holds it as float32.
    var bias: FloatWeights?
    var scale: Float = 1
    var activation: Activation = .linear
    /// True when a residual input is added (the executor passes its buffer).
    var addsResidual = false

    /// The `FM_EPI_*` code and slope of a ReLU-like activation, which `fm_epilogue` applies in
    /// its pass; nil for the others.
    var fusedCode: (Int32, Float)? {
        switch activation {
        case .linear: (Int32(FM_EPI_LINEAR), 0)
        case .relu: (Int32(FM_EPI_RELU), 0)
        case .relu6: (Int32(FM_EPI_RELU6), 0)
        case .leakyRelu(let a): (Int32(FM_EPI_LEAKY), a)
        default: nil
        }
    }

    /// Applies the epilogue to `rows` rows of `channels` floats, `stride` apart. With `dequantize`,
    /// `y` holds int32 accumulators that become floats times `columnScale[c]` first, unless
    /// `accumulators` holds them (rows `channels` apart; `y` then only receives the result).
    /// - Returns: with `measureRange`, the smallest and largest value written (what an int8 layer
    ///   reading `y` would otherwise measure in a pass of its own); nil when not measured.
    @discardableResult
    func apply(_ y: UnsafeMutablePointer<Float>, rows: Int, channels: Int, stride: Int,
               residual: UnsafePointer<Float>?, dequantize columnScale: UnsafePointer<Float>? = nil,
               accumulators: UnsafePointer<Int32>? = nil, measureRange: Bool = false) -> (lo: Float, hi: Float)? {
        let plain = bias == nil && scale == 1 && residual == nil && columnScale == nil && accumulators == nil
        if plain && activation == .linear { return nil }
        // ReLU-like activations go in the one C pass; the others after it, row by row.
        let (code, alpha) = fusedCode ?? (Int32(FM_EPI_LINEAR), 0)
        let rest: Activation? = fusedCode == nil ? activation : nil
        let measure = measureRange && rest == nil
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * teamSize) { ranges in
            ranges.initialize(repeating: .nan)
            let b = bias?.pointer
            parallelFor(rows, grain: max(1, 2 * rowGrain / max(channels, 1))) { range in
                let slot = measure ? ranges.baseAddress! + 2 * threadNumber() : nil
                let source = accumulators.map { (UnsafeRawPointer($0 + range.lowerBound * channels), channels) }
                    ?? (UnsafeRawPointer(y + range.lowerBound * stride), stride)
                fm_epilogue(y + range.lowerBound * stride, range.count, channels, stride, source.0, source.1, columnScale, b, scale,
                            residual.map { $0 + range.lowerBound * channels }, code, alpha, slot)
                if let rest { for r in range { rest.apply(y + r * stride, count: channels, channels: channels) } }
            }
            guard measure else { return nil }
            var lo = Float.infinity, hi = -Float.infinity
            for t in 0..<teamSize where !ranges[2 * t].isNaN { (lo, hi) = (min(lo, ranges[2 * t]), max(hi, ranges[2 * t + 1])) }
            return lo <= hi ? (lo, hi) : nil
        }
    }
}
