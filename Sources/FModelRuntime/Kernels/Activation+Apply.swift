import FModelCore
import Foundation

extension Activation {
    /// Applies the activation in place to `count` values laid out as rows of `channels`.
    func apply(_ x: UnsafeMutablePointer<Float>, count: Int, channels: Int) {
        switch self {
        case .linear: return
        // Branch-free forms, which the compiler vectorises.
        case .relu: for i in 0..<count { x[i] = max(x[i], 0) }
        case .relu6: for i in 0..<count { x[i] = min(max(x[i], 0), 6) }
        case .leakyRelu(let a) where a <= 1: for i in 0..<count { x[i] = max(x[i], x[i] * a) }
        case .leakyRelu(let a): for i in 0..<count { x[i] = min(x[i], x[i] * a) }
        case .sigmoid: for i in 0..<count { x[i] = 1 / (1 + expf(-x[i])) }
        case .tanh: for i in 0..<count { x[i] = tanhf(x[i]) }
        case .softmax: softmaxRows(x, rows: count / max(channels, 1), channels: channels)
        case .swish: for i in 0..<count { x[i] = x[i] / (1 + expf(-x[i])) }
        case .elu(let a): for i in 0..<count where x[i] < 0 { x[i] = a * expm1f(x[i]) }
        case .gelu(false): for i in 0..<count { x[i] = 0.5 * x[i] * (1 + erff(x[i] * Float(0.5).squareRoot())) }
        case .hardSwish: for i in 0..<count { x[i] = x[i] * (min(max(x[i] + 3, 0), 6) / 6) }
        case .hardSigmoid(let a): for i in 0..<count { x[i] = min(max(a * x[i] + 0.5, 0), 1) }
        case .gelu(true):
            let c = Float(2 / Double.pi).squareRoot()
            for i in 0..<count { x[i] = 0.5 * x[i] * (1 + tanhf(c * (x[i] + 0.044715 * x[i] * x[i] * x[i]))) }
        }
    }
}

extension Activation {
    /// `y = activation(x)` over rows of `channels`, split across the thread team.
    func apply(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int, channels: Int) {
        let c = max(channels, 1)
        parallelFor(count / c, grain: max(1, rowGrain / c)) { rows in
            let start = rows.lowerBound * c, n = rows.count * c
            (y + start).update(from: x + start, count: n)
            apply(y + start, count: n, channels: c)
        }
    }
}

/// Softmax over each row: `exp(x - max) / sum`, as TensorFlow computes it.
func softmaxRows(_ x: UnsafeMutablePointer<Float>, rows: Int, channels: Int) {
    for r in 0..<rows {
        let row = x + r * channels
        var m = -Float.infinity
        for i in 0..<channels { m = max(m, row[i]) }
        var sum: Float = 0
        for i in 0..<channels {
            row[i] = expf(row[i] - m)
            sum += row[i]
        }
        let inv = 1 / sum
        for i in 0..<channels { row[i] *= inv }
    }
}

/// Adds `bias` to every row of `channels` values.
func addBias(_ x: UnsafeMutablePointer<Float>, rows: Int, channels: Int, bias: UnsafePointer<Float>) {
    for r in 0..<rows {
        let row = x + r * channels
        for c in 0..<channels { row[c] += bias[c] }
    }
}
