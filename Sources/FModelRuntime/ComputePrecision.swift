/// What the runtime's float32 convolutions multiply in.
public enum ComputePrecision: String, Sendable, CaseIterable {
    /// float32 throughout: faithful to TensorFlow within 1e-4.
    case f32
    /// bfloat16 products (8 bits of mantissa) with float32 accumulation, on CPUs with
    /// AVX512-BF16 (oneDNN emulates it, slowly, elsewhere). Its accuracy cost is for `verify`.
    case bf16
}
