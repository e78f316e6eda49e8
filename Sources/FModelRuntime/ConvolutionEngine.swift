import Foundation

/// How an executor runs convolutions.
public enum ConvolutionEngine: Sendable {
    /// The GEMM path throughout (im2col, or windows read in place, and fmodel's own product):
    /// nothing to compile, slower per run.
    case gemm
    /// oneDNN primitives (JIT code, epilogue fused), made on the first run of each batch size:
    /// that run pays the compilation and the kernels' reorders.
    case native
    /// A batch size's first run takes the GEMM path for its float32 convolutions; its second
    /// times each one every way it has (oneDNN's primitive, the GEMM path, fmodel's Winograd)
    /// and keeps the fastest (`NativeConvolutions.trial`). A process that runs once answers
    /// sooner; one that runs often pays the compilation and the trial once. The paths agree to
    /// float rounding (the golden tests hold each to TensorFlow). int8 convolutions are native
    /// from the start, as their GEMM path quantizes differently and a model should give one
    /// answer twice.
    case tiered

    /// `tiered`, unless the environment sets `FMODEL_NATIVE_CONV`: `0` for `gemm`, `1` for
    /// `native`.
    public static let `default`: ConvolutionEngine =
        switch getenv("FMODEL_NATIVE_CONV").map({ String(cString: $0) }) {
        case "0": .gemm
        case "1": .native
        default: .tiered
        }
}
