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

/// Element-wise sum or product of equally shaped inputs; a product's later inputs may also be
/// one row per sample broadcast over the pixels (`[N, C]` against `[N, H, W, C]`).
func combine(_ inputs: [(UnsafePointer<Float>, Int)], into y: UnsafeMutablePointer<Float>, count: Int,
             channels: Int, batch: Int, multiply: Bool) {
    let perSample = count / batch
    parallelFor(count, grain: rowGrain) { range in
        (y + range.lowerBound).update(from: inputs[0].0 + range.lowerBound, count: range.count)
        for (x, n) in inputs.dropFirst() {
            if n == count {
                if multiply { for i in range { y[i] *= x[i] } } else { for i in range { y[i] += x[i] } }
            } else {
                for i in range { y[i] *= x[(i / perSample) * channels + i % channels] }
            }
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
