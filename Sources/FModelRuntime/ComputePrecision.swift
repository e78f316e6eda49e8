import CKernels

/// What the runtime's float32 convolutions multiply in.
public enum ComputePrecision: String, Sendable, CaseIterable {
    /// float32 throughout: faithful to TensorFlow within 1e-4.
    case f32
    /// bfloat16 products (8 bits of mantissa) with float32 accumulation, on CPUs with
    /// AVX512-BF16 (oneDNN emulates it, slowly, elsewhere). Its accuracy cost is for `verify`.
    case bf16

    /// True when oneDNN runs bf16 convolutions on this CPU (AVX-512 at least: natively with
    /// AVX512-BF16, emulated on plain AVX512). Elsewhere every layer of a `bf16` executor falls
    /// back to float32, and its outputs are float32's.
    public static let bf16Available = oneDNNIsAVX512

    /// What the convolutions multiply in on this CPU: `bf16` falls back to `f32` without it.
    public var effective: ComputePrecision { self == .bf16 && !Self.bf16Available ? .f32 : self }
}
