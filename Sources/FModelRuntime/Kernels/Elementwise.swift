import FModelCore
import Foundation

/// Rows of at least this many floats per thread before a loop is split across the team.
let rowGrain = 4096

/// `y = x * scale[c] + shift[c]` over rows of `channels` (batch norm at inference).
func scaleShift(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, scale: [Float], shift: [Float]) {
    let c = scale.count
    scale.withUnsafeBufferPointer { s in
        shift.withUnsafeBufferPointer { t in
            parallelFor(count / c, grain: max(1, rowGrain / c)) { rows in
                for r in rows {
                    let xr = x + r * c, yr = y + r * c
                    for i in 0..<c { yr[i] = xr[i] * s[i] + t[i] }
                }
            }
        }
    }
}

/// `y = x`, split across the team.
func copyValues(_ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>, count: Int) {
    parallelFor(count, grain: 4 * rowGrain) { range in (y + range.lowerBound).update(from: x + range.lowerBound, count: range.count) }
}

/// `y = x * s`.
func scaleValues(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, by s: Float) {
    parallelFor(count, grain: rowGrain) { range in for i in range { y[i] = x[i] * s } }
}

/// Element-wise sum or product of inputs broadcast to `outShape` (`Graph`'s rule: unit axes
/// after the batch for a lower rank, then size 1 against any). Inputs in the output's shape
/// are read straight through; the others a row (the last axis) at a time.
func combine(_ inputs: [(UnsafePointer<Float>, Shape)], into y: UnsafeMutablePointer<Float>, outShape: Shape, multiply: Bool) {
    let count = outShape.elementCount!
    if inputs.allSatisfy({ $0.1 == outShape }) {
        parallelFor(count, grain: rowGrain) { range in
            (y + range.lowerBound).update(from: inputs[0].0 + range.lowerBound, count: range.count)
            for (x, _) in inputs.dropFirst() {
                if multiply { for i in range { y[i] *= x[i] } } else { for i in range { y[i] += x[i] } }
            }
        }
        return
    }
    let readers = inputs.map { BroadcastRows($0.0, shape: $0.1, to: outShape) }
    let width = outShape.last
    parallelFor(count / width, grain: max(1, rowGrain / width)) { rows in
        for r in rows {
            let yr = y + r * width
            readers[0].read(row: r, into: yr, width: width)
            for reader in readers.dropFirst() { reader.combine(row: r, into: yr, width: width, multiply: multiply) }
        }
    }
}

/// One input of an element-wise node read against the output's rows: for each output axis
/// before the last, the input's element stride there (0 where it is broadcast), and along the
/// last axis 1, or 0 when one value serves the whole row.
struct BroadcastRows {
    let base: UnsafePointer<Float>
    /// Output sizes and the input's strides for the axes before the last, innermost first.
    let outer: [(size: Int, stride: Int)]
    let step: Int

    init(_ base: UnsafePointer<Float>, shape: Shape, to out: Shape) {
        let e = shape.expanded(toRank: out.rank).dims
        var strides = [Int](repeating: 0, count: e.count), n = 1
        for i in e.indices.reversed() {
            strides[i] = e[i] == 1 && out[i] != 1 ? 0 : n
            n *= e[i]
        }
        self.base = base
        outer = (0..<(e.count - 1)).reversed().map { (out[$0], strides[$0]) }
        step = strides[e.count - 1]
    }

    /// Where output row `r` starts in this input.
    func start(_ r: Int) -> UnsafePointer<Float> {
        var rest = r, offset = 0
        for (size, stride) in outer {
            offset += (rest % size) * stride
            rest /= size
        }
        return base + offset
    }

    func read(row r: Int, into yr: UnsafeMutablePointer<Float>, width: Int) {
        let x = start(r)
        if step == 0 { yr.update(repeating: x[0], count: width) } else { yr.update(from: x, count: width) }
    }

    func combine(row r: Int, into yr: UnsafeMutablePointer<Float>, width: Int, multiply: Bool) {
        let x = start(r)
        switch (step, multiply) {
        case (0, true): let v = x[0]; for i in 0..<width { yr[i] *= v }
        case (0, false): let v = x[0]; for i in 0..<width { yr[i] += v }
        case (_, true): for i in 0..<width { yr[i] *= x[i] }
        case (_, false): for i in 0..<width { yr[i] += x[i] }
        }
    }
}

/// `y = x / sqrt(max(sum(x²), epsilon))` over each row of `channels`, as `tf.math.l2_normalize`.
func l2Normalize(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, channels: Int, epsilon: Float) {
    for r in 0..<(count / channels) {
        let xr = x + r * channels, yr = y + r * channels
        var sum: Float = 0
        for i in 0..<channels { sum += xr[i] * xr[i] }
        let inv = 1 / sqrtf(max(sum, epsilon))
        for i in 0..<channels { yr[i] = xr[i] * inv }
    }
}

/// Each row of `channels`: `(x − mean) / sqrt(variance + epsilon) · gamma + beta`, the mean and
/// the biased variance of the row, as Keras's LayerNormalization; sums in double precision.
/// `gamma` and `beta` hold one value a channel, or none for 1 and 0.
func layerNormalize(_ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, channels: Int, epsilon: Float,
                    gamma: [Float], beta: [Float]) {
    parallelFor(count / channels, grain: max(1, rowGrain / channels)) { rows in
        for r in rows {
            let xr = x + r * channels, yr = y + r * channels
            var sum = 0.0
            for i in 0..<channels { sum += Double(xr[i]) }
            let mean = sum / Double(channels)
            var squares = 0.0
            for i in 0..<channels { let d = Double(xr[i]) - mean; squares += d * d }
            let inverse = Float(1 / (squares / Double(channels) + Double(epsilon)).squareRoot()), m = Float(mean)
            if gamma.isEmpty {
                for i in 0..<channels { yr[i] = (xr[i] - m) * inverse }
            } else {
                for i in 0..<channels { yr[i] = (xr[i] - m) * inverse * gamma[i] + beta[i] }
            }
        }
    }
}
