// MARK: - Activation

extension Activation: Codable {
    /// The spelling used in files: `relu`, `leaky_relu(0.1)`, ...
    public var spelling: String {
        switch self {
        case .linear: "linear"
        case .relu: "relu"
        case .relu6: "relu6"
        case .sigmoid: "sigmoid"
        case .tanh: "tanh"
        case .softmax: "softmax"
        case .leakyRelu(let a): "leaky_relu(\(a))"
        case .swish: "swish"
        case .elu(let a): "elu(\(a))"
        case .gelu(let approximate): approximate ? "gelu_tanh" : "gelu"
        case .hardSwish: "hard_swish"
        case .hardSigmoid(let a): "hard_sigmoid(\(a))"
        }
    }

    /// Parses `spelling`; nil for anything else.
    public init?(spelling s: String) {
        switch s {
        case "linear": self = .linear
        case "relu": self = .relu
        case "relu6": self = .relu6
        case "sigmoid": self = .sigmoid
        case "tanh": self = .tanh
        case "softmax": self = .softmax
        case "swish": self = .swish
        case "gelu": self = .gelu(approximate: false)
        case "gelu_tanh": self = .gelu(approximate: true)
        case "hard_swish": self = .hardSwish
        default:
            /// `NAME(NUMBER)`'s number.
            func argument(_ name: String) -> Float? {
                guard s.hasPrefix(name + "("), s.hasSuffix(")"), let a = Float(s.dropFirst(name.count + 1).dropLast()), a.isFinite else { return nil }
                return a
            }
            if let a = argument("leaky_relu") { self = .leakyRelu(alpha: a) }
            else if let a = argument("elu") { self = .elu(alpha: a) }
            else if let a = argument("hard_sigmoid") { self = .hardSigmoid(slope: a) }
            else { return nil }
        }
    }

    public init(from decoder: any Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        guard let a = Activation(spelling: s) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown activation '\(s)'"))
        }
        self = a
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(spelling)
    }
}

// MARK: - Op

/// The flat JSON form of an op: its kind plus whichever attributes it has.
private struct OpWire: Codable {
    var type: String
    var strides: [Int]?
    var dilations: [Int]?
    var padding: Padding?
    var activation: Activation?
    var size: [Int]?
    var epsilon: Float?
    var axis: Int?
    var keepDims: Bool?
    var value: Float?
    var shape: [Int]?
    var pads: [Int]?
    var rate: Float?
}

extension Op: Codable {
    public func encode(to encoder: any Encoder) throws {
        var w = OpWire(type: kind)
        switch self {
        case .conv2D(let a), .depthwiseConv2D(let a):
            (w.strides, w.dilations, w.padding, w.activation) = (a.strides, a.dilations, a.padding, a.activation)
        case .dense(let act), .activation(let act): w.activation = act
        case .batchNorm(let e), .l2Normalize(let e), .layerNorm(let e): w.epsilon = e
        case .maxPool(let p), .avgPool(let p): (w.size, w.strides, w.padding) = (p.size, p.strides, p.padding)
        case .globalAvgPool(let k), .globalMaxPool(let k): w.keepDims = k
        case .concat(let axis): w.axis = axis
        case .scale(let v): w.value = v
        case .reshape(let s): w.shape = s
        case .zeroPad(let t, let b, let l, let r), .crop(let t, let b, let l, let r): w.pads = [t, b, l, r]
        case .dropout(let r): w.rate = r
        case .add, .mul, .flatten, .identity, .affine: break
        }
        try w.encode(to: encoder)
    }

    public init(from decoder: any Decoder) throws {
        let w = try OpWire(from: decoder)
        func need<T>(_ v: T?, _ key: String) throws -> T {
            guard let v else {
                throw DecodingError.keyNotFound(OpKey(key), .init(codingPath: decoder.codingPath, debugDescription: "op '\(w.type)' needs '\(key)'"))
            }
            return v
        }
        func conv() throws -> ConvAttributes {
            ConvAttributes(strides: try need(w.strides, "strides"), dilations: try need(w.dilations, "dilations"),
                           padding: try need(w.padding, "padding"), activation: w.activation ?? .linear)
        }
        func pool() throws -> PoolAttributes {
            PoolAttributes(size: try need(w.size, "size"), strides: try need(w.strides, "strides"), padding: try need(w.padding, "padding"))
        }
        switch w.type {
        case "conv2d": self = .conv2D(try conv())
        case "depthwise_conv2d": self = .depthwiseConv2D(try conv())
        case "dense": self = .dense(activation: w.activation ?? .linear)
        case "batch_norm": self = .batchNorm(epsilon: try need(w.epsilon, "epsilon"))
        case "layer_norm": self = .layerNorm(epsilon: try need(w.epsilon, "epsilon"))
        case "activation": self = .activation(try need(w.activation, "activation"))
        case "max_pool": self = .maxPool(try pool())
        case "avg_pool": self = .avgPool(try pool())
        case "global_avg_pool": self = .globalAvgPool(keepDims: w.keepDims ?? false)
        case "global_max_pool": self = .globalMaxPool(keepDims: w.keepDims ?? false)
        case "concat": self = .concat(axis: try need(w.axis, "axis"))
        case "add": self = .add
        case "affine": self = .affine
        case "mul": self = .mul
        case "scale": self = .scale(try need(w.value, "value"))
        case "reshape": self = .reshape(shape: try need(w.shape, "shape"))
        case "flatten": self = .flatten
        case "zero_pad", "crop":
            let p = try need(w.pads, "pads")
            guard p.count == 4 else {
                throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "\(w.type) needs 4 pads"))
            }
            self = w.type == "crop" ? .crop(top: p[0], bottom: p[1], left: p[2], right: p[3]) : .zeroPad(top: p[0], bottom: p[1], left: p[2], right: p[3])
        case "l2_normalize": self = .l2Normalize(epsilon: try need(w.epsilon, "epsilon"))
        case "dropout": self = .dropout(rate: w.rate ?? 0)
        case "identity": self = .identity
        default:
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown op type '\(w.type)'"))
        }
    }
}

private struct OpKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ s: String) { stringValue = s }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
