/// Spatial padding of a convolution or pooling window, with TensorFlow's meaning.
public enum Padding: String, Codable, Sendable {
    /// Output size `ceil(in / stride)`; the padding is split, the extra pixel after.
    case same
    /// No padding: output size `ceil((in - window + 1) / stride)`.
    case valid
}

/// An element-wise activation, possibly fused into a conv or dense node.
public enum Activation: Hashable, Sendable {
    case linear, relu, relu6, sigmoid, tanh
    /// `x < 0 ? alpha * x : x`.
    case leakyRelu(alpha: Float)
    /// Softmax over the last axis.
    case softmax
    /// `x · sigmoid(x)`: Keras's swish, also named silu.
    case swish
    /// `x < 0 ? alpha · (e^x − 1) : x`.
    case elu(alpha: Float)
    /// `x · Φ(x)`, Φ the normal distribution: `0.5 · x · (1 + erf(x / √2))`, or with
    /// `approximate` its tanh form, `0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))`.
    case gelu(approximate: Bool)
    /// `x · relu6(x + 3) / 6`: Keras 3's hard_silu (MobileNetV3's hard swish).
    case hardSwish
    /// `clip(slope · x + 0.5, 0, 1)`: Keras's hard_sigmoid, slope 0.2 in tf-keras and 1/6 in
    /// Keras 3 (`relu6(x + 3) / 6`).
    case hardSigmoid(slope: Float)
}

/// Attributes of a 2-D convolution (also depthwise).
public struct ConvAttributes: Hashable, Sendable {
    /// Strides along height and width.
    public var strides: [Int]
    /// Dilation rates along height and width.
    public var dilations: [Int]
    public var padding: Padding
    /// Activation applied after the bias.
    public var activation: Activation

    public init(strides: [Int] = [1, 1], dilations: [Int] = [1, 1], padding: Padding = .valid, activation: Activation = .linear) {
        self.strides = strides
        self.dilations = dilations
        self.padding = padding
        self.activation = activation
    }
}

/// Attributes of a max or average pooling window.
public struct PoolAttributes: Hashable, Sendable {
    /// Window height and width.
    public var size: [Int]
    /// Strides along height and width.
    public var strides: [Int]
    public var padding: Padding

    public init(size: [Int], strides: [Int], padding: Padding) {
        self.size = size
        self.strides = strides
        self.padding = padding
    }
}

/// The operation a node performs. Activations are NHWC float32.
///
/// Parameters live in the graph's tensor table and are named by role in `Node.params`:
/// conv2D/depthwiseConv2D/dense take `kernel` (HWIO, HWCM, or [in, out]) and optional `bias`;
/// batchNorm takes `mean`, `variance` and optional `gamma`, `beta`; affine takes `scale`?, `bias`?.
public enum Op: Hashable, Sendable {
    case conv2D(ConvAttributes)
    case depthwiseConv2D(ConvAttributes)
    /// Matrix product over the last axis, then bias and activation.
    case dense(activation: Activation)
    case batchNorm(epsilon: Float)
    /// `x · scale + bias` over the last axis (params `scale`?, `bias`?): TensorFlow's BiasAdd and
    /// batch norm written as primitive ops lower to it.
    case affine
    case activation(Activation)
    case maxPool(PoolAttributes)
    case avgPool(PoolAttributes)
    case globalAvgPool(keepDims: Bool)
    case globalMaxPool(keepDims: Bool)
    /// Concatenation of all inputs along `axis` (negative counts from the end).
    case concat(axis: Int)
    /// Element-wise sum of all inputs, broadcast as NumPy does once each has the highest rank
    /// (unit axes inserted after the batch, as Keras's merge layers do).
    case add
    /// Element-wise product of all inputs, broadcast as `add`'s.
    case mul
    /// Multiplication by a constant.
    case scale(Float)
    /// Reshape to `shape` (without the batch dimension; one entry may be -1).
    case reshape(shape: [Int])
    /// Collapse every dimension after the batch.
    case flatten
    /// Zero padding of height and width: top, bottom, left, right.
    case zeroPad(top: Int, bottom: Int, left: Int, right: Int)
    /// Rows and columns cut from height and width: top, bottom, left, right.
    case crop(top: Int, bottom: Int, left: Int, right: Int)
    /// `x / sqrt(max(sum(x^2), epsilon))` over the last axis.
    case l2Normalize(epsilon: Float)
    /// `(x − mean) / sqrt(variance + epsilon) · gamma + beta`, the mean and (biased) variance
    /// over the last axis of each row (params `gamma`?, `beta`?): Keras's LayerNormalization.
    case layerNorm(epsilon: Float)
    /// Training-only regularisation; the identity at inference.
    case dropout(rate: Float)
    case identity
}

extension Op {
    /// The parameter tensors a node of this op may name, by role.
    public var parameterRoles: Set<String> {
        switch self {
        case .conv2D, .depthwiseConv2D, .dense: ["kernel", "bias"]
        case .batchNorm: ["mean", "variance", "gamma", "beta"]
        case .affine: ["scale", "bias"]
        case .layerNorm: ["gamma", "beta"]
        default: []
        }
    }

    /// Short name used in reports and the file format.
    public var kind: String {
        switch self {
        case .conv2D: "conv2d"
        case .depthwiseConv2D: "depthwise_conv2d"
        case .dense: "dense"
        case .batchNorm: "batch_norm"
        case .affine: "affine"
        case .activation: "activation"
        case .maxPool: "max_pool"
        case .avgPool: "avg_pool"
        case .globalAvgPool: "global_avg_pool"
        case .globalMaxPool: "global_max_pool"
        case .concat: "concat"
        case .add: "add"
        case .mul: "mul"
        case .scale: "scale"
        case .reshape: "reshape"
        case .flatten: "flatten"
        case .zeroPad: "zero_pad"
        case .crop: "crop"
        case .l2Normalize: "l2_normalize"
        case .layerNorm: "layer_norm"
        case .dropout: "dropout"
        case .identity: "identity"
        }
    }
}
