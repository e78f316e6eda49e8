import FModelCore

/// What follows a GEMM, applied row by row while the row is still in cache:
/// `y = activation(scale · (acc + bias) + residual)`.
///
/// The executor folds a conv or dense node's bias and activation here, and, when they are its
/// only consumers, the `scale`, residual `add` and activation that close an Inception-ResNet
/// block, so that none of them makes another pass over memory.
struct Epilogue {
    var bias: [Float]?
    var scale: Float = 1
    var activation: Activation = .linear
    /// True when a residual input is added (the executor passes its buffer).
    var addsResidual = false

    /// Applies the epilogue to `rows` rows of `channels` floats, `stride` apart. With `dequantize`,
    /// `y` holds int32 accumulators that become floats times `columnScale[c]` first.
    func apply(_ y: UnsafeMutablePointer<Float>, rows: Int, channels: Int, stride: Int,
               residual: UnsafePointer<Float>?, dequantize columnScale: UnsafePointer<Float>? = nil) {
        let plain = bias == nil && scale == 1 && residual == nil && columnScale == nil
        if plain && activation == .linear { return }
        let run: (UnsafePointer<Float>?) -> Void = { b in
            parallelFor(rows, grain: max(1, 8192 / max(channels, 1))) { range in
                for r in range {
                    let row = y + r * stride
                    if let columnScale {
                        let acc = UnsafeMutableRawPointer(row).assumingMemoryBound(to: Int32.self)
                        for c in 0..<channels { row[c] = Float(acc[c]) * columnScale[c] }
                    }
                    if let b { for c in 0..<channels { row[c] += b[c] } }
                    if scale != 1 { for c in 0..<channels { row[c] *= scale } }
                    if let residual {
                        let res = residual + r * channels
                        for c in 0..<channels { row[c] += res[c] }
                    }
                    activation.apply(row, count: channels, channels: channels)
                }
            }
        }
        if let bias { bias.withUnsafeBufferPointer { run($0.baseAddress!) } } else { run(nil) }
    }
}
