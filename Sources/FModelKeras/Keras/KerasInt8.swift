import FModelCore
import FModelImport

/// Dense layers Keras quantized itself (`model.quantize("int8")`). Keras stores an int8 kernel
/// `q` ([inputs, units]) and a float `kernel_scale` per unit; the float kernel is
/// `q / kernel_scale` (`abs_max_quantize`: `q = round(w · 127 / max|w|)`). fmodel keeps the same
/// int8 values as its own per-channel tensor, scaled by `1 / kernel_scale`, so the model stays
/// as small as Keras made it and runs on fmodel's int8 kernels, as `fmodel quantize`'s do.
extension LayerConfig {
    /// The int8 per-channel kernel of `q` (read as floats) and Keras's `kernelScale`.
    func int8Kernel(_ q: Tensor, kerasScale: Tensor) throws(ImportError) -> Tensor {
        let units = q.shape.last
        try checkShape(kerasScale, "kernel_scale", [units])
        var scales: [Float] = []
        for (unit, s) in kerasScale.floats().enumerated() {
            let scale = 1 / s
            guard s > 0, s.isFinite, scale.isFinite else { throw fail("kernel_scale of unit \(unit) is \(s), expected a positive finite number") }
            scales.append(scale)
        }
        var values: [Int8] = []
        for (i, v) in q.floats().enumerated() {
            guard v == v.rounded(), (-128...127).contains(v) else { throw fail("int8 kernel value \(i) is \(v), not an 8-bit integer") }
            values.append(Int8(v))
        }
        return Tensor(dtype: .int8PerChannel, shape: q.shape, storage: TensorStorage(values: values), scales: TensorStorage(values: scales))
    }
}
