/// Batch norm at inference as a per-channel affine map: `x · scale + shift` with
/// `scale = γ / √(σ² + ε)` and `shift = β − μ · scale` (γ = 1, β = 0 when absent). The runtime
/// applies it and the folding pass bakes it into a kernel, from this one formula.
public enum BatchNorm {
    public static func scaleShift(mean: [Float], variance: [Float], gamma: [Float]?, beta: [Float]?,
                                  epsilon: Float) -> (scale: [Float], shift: [Float]) {
        let scale = mean.indices.map { (gamma?[$0] ?? 1) / (variance[$0] + epsilon).squareRoot() }
        let shift = mean.indices.map { (beta?[$0] ?? 0) - mean[$0] * scale[$0] }
        return (scale, shift)
    }
}
