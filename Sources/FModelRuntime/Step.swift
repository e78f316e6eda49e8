import FModelCore

/// A node lowered to what the CPU runs: kernels as the GEMM reads them (float32, or int8 with
/// per-channel scales), batch norm reduced to a per-channel scale and shift.
enum Step {
    case conv(ConvKernel)
    case depthwise(DepthwiseKernel)
    case dense(DenseKernel)
    case scaleShift(scale: [Float], shift: [Float])
    case activation(Activation)
    case pool(PoolAttributes, max: Bool)
    case globalPool(max: Bool)
    case concat(axis: Int)
    case combine(multiply: Bool)
    case scale(Float)
    case zeroPad(top: Int, left: Int)
    case crop(top: Int, left: Int)
    case l2Normalize(epsilon: Float)
    /// Keras's LayerNormalization: where the node has one of gamma and beta, the other filled
    /// with 1s or 0s; where it has neither, both empty (the kernel's plain normalisation).
    case layerNorm(epsilon: Float, gamma: [Float], beta: [Float])
    /// Identity, dropout, reshape and flatten: the output shares the input's buffer.
    case alias

    /// Lowers `node`; the graph was validated, so the parameters it names exist and fit.
    /// `nativeConvolution`: run convolutions as oneDNN primitives (else im2col + GEMM);
    /// `measuresNative`: time each float32 one against im2col + GEMM first (`ConvKernel`).
    init(_ node: Node, graph: Graph, inputRank: Int, nativeConvolution: Bool = true, measuresNative: Bool = false,
         precision: ComputePrecision = .f32) {
        func floats(_ role: String) -> [Float]? { graph.param(role, of: node)?.floats() }
        let kernel = graph.param("kernel", of: node)
        switch node.op {
        case .conv2D(let a):
            let k = kernel!.shape
            let dequantized = Self.dequantizesIntegerKernel(kernel!)
            self = .conv(ConvKernel(weights: dequantized ? .f32(FloatWeights(kernel!)) : GEMMWeights(kernel!),
                                    epilogue: Epilogue(bias: graph.param("bias", of: node).map(FloatWeights.init), activation: a.activation),
                                    attributes: a, kH: k[0], kW: k[1], cin: k[2], cout: k[3], native: nativeConvolution,
                                    bf16: precision == .bf16, measuresNative: measuresNative, dequantized: dequantized))
        case .depthwiseConv2D(let a):
            let k = kernel!.shape
            self = .depthwise(DepthwiseKernel(kernel: FloatWeights(kernel!), epilogue: Epilogue(bias: graph.param("bias", of: node).map(FloatWeights.init), activation: a.activation),
                                              attributes: a, kH: k[0], kW: k[1], cin: k[2], multiplier: k[3]))
        case .dense(let act):
            let k = kernel!.shape
            self = .dense(DenseKernel(weights: GEMMWeights(kernel!), epilogue: Epilogue(bias: graph.param("bias", of: node).map(FloatWeights.init), activation: act),
                                      inputs: k[0], units: k[1]))
        case .batchNorm(let eps):
            let (scale, shift) = BatchNorm.scaleShift(mean: floats("mean")!, variance: floats("variance")!,
                                                      gamma: floats("gamma"), beta: floats("beta"), epsilon: eps)
            self = .scaleShift(scale: scale, shift: shift)
        case .affine:
            let c = graph.param("scale", of: node)?.count ?? graph.param("bias", of: node)?.count ?? 0
            self = .scaleShift(scale: floats("scale") ?? [Float](repeating: 1, count: c), shift: floats("bias") ?? [Float](repeating: 0, count: c))
        case .activation(let a): self = .activation(a)
        case .maxPool(let p): self = .pool(p, max: true)
        case .avgPool(let p): self = .pool(p, max: false)
        case .globalAvgPool: self = .globalPool(max: false)
        case .globalMaxPool: self = .globalPool(max: true)
        case .concat(let axis): self = .concat(axis: axis < 0 ? inputRank + axis : axis)
        case .add: self = .combine(multiply: false)
        case .mul: self = .combine(multiply: true)
        case .scale(let s): self = .scale(s)
        case .zeroPad(let t, _, let l, _): self = .zeroPad(top: t, left: l)
        case .crop(let t, _, let l, _): self = .crop(top: t, left: l)
        case .l2Normalize(let e): self = .l2Normalize(epsilon: e)
        case .layerNorm(let e):
            let c = graph.param("gamma", of: node)?.count ?? graph.param("beta", of: node)?.count
            func values(_ role: String, else fill: Float) -> [Float] { floats(role) ?? c.map { [Float](repeating: fill, count: $0) } ?? [] }
            self = .layerNorm(epsilon: e, gamma: values("gamma", else: 1), beta: values("beta", else: 0))
        case .identity, .dropout, .reshape, .flatten: self = .alias
        }
    }
}

extension Step {
    /// True for an int8 convolution kernel over fewer than four input channels (an image's
    /// first layer), which runs in float32 on a copy dequantized once (FaceNet's Conv2d_1a:
    /// 864 values, 3.4 KB). Its input is the image, which is signed, so on a CPU without VNNI
    /// the int8 layer takes the exact im2col + u8·s8 GEMM, whose im2col quantizes three values
    /// a pixel at a time: 0.86 ms against 0.09 in float32 for Conv2d_1a at batch 1, 6% of the
    /// int8 model (`bench --profile`). Without the activations' rounding the layer is also
    /// closer to its float32 source (`verify`: README, Reduced precision).
    static func dequantizesIntegerKernel(_ kernel: Tensor) -> Bool {
        kernel.dtype == .int8PerChannel && kernel.shape.rank == 4 && kernel.shape[2] < 4
    }

    /// The epilogue of a GEMM-like step, which later nodes may be fused into.
    var epilogue: Epilogue? {
        switch self {
        case .conv(let k): k.epilogue
        case .depthwise(let k): k.epilogue
        case .dense(let k): k.epilogue
        default: nil
        }
    }

    /// True for a float32 oneDNN convolution with a fused residual whose primitive for `batch`
    /// exists: it may write over the residual's buffer (the sum post-op reads the destination
    /// before writing it). The im2col + GEMM path may not: its GEMM writes first.
    func addsResidualInPlace(batch: Int) -> Bool {
        guard case .conv(let k) = self, k.epilogue.addsResidual, case .f32 = k.weights else { return false }
        return k.native?.made(batch: batch) == true
    }

    /// The same step with `epilogue` in place of its own.
    func with(_ epilogue: Epilogue) -> Step {
        switch self {
        case .conv(var k): k.epilogue = epilogue; return .conv(k)
        case .depthwise(var k): k.epilogue = epilogue; return .depthwise(k)
        case .dense(var k): k.epilogue = epilogue; return .dense(k)
        default: return self
        }
    }
}
