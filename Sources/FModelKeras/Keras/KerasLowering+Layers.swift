import FModelCore
import FModelImport

/// The Keras layer classes fmodel lowers, each to one IR node named after the layer, or (a
/// few) to two, the first named `layer/part`.
extension KerasLowering {
    /// Lowers one call of a (non-model) layer and returns the value it produces.
    mutating func lowerLayer(_ layer: KerasLayer, call: Int, inputs: [String], group: String) throws(ImportError) -> String {
        guard !inputs.isEmpty else { throw .badConfig(path: path, layer: layer.name, reason: "a call of this layer has no inputs") }
        if let mode = layer.quantization, !(mode == "int8" && layer.className == "Dense") {
            throw .badConfig(path: path, layer: layer.name, reason: "is quantized by Keras (\(mode)); fmodel reads Keras's quantization "
                             + "only for Dense layers in int8: import the float model and quantize it with `fmodel quantize`")
        }
        let c = LayerConfig(layer: layer, path: path, keras3: keras3)
        // The layer's weights by IR role, read under their Keras names.
        var p: [String: Tensor] = [:]
        for w in layer.weights { p[w.role] = try weights.tensor(w.keras, layer: layer.name, group: group) }
        if let (first, then) = try twoNodes(layer, c, p, inputs: inputs) {
            let part = try add(layer, "\(layer.name)/\(first.part)", first.op, inputs: first.inputs, params: first.params)
            return try add(layer, layer.name, then.op, inputs: then.inputs(part), params: then.params)
        }
        let (op, params) = layer.isOp ? try arithmetic(layer, c, numbers: layer.numbers.indices.contains(call) ? layer.numbers[call] : [:], inputs: inputs)
            : try lowering(layer, c, p, inputs: inputs)
        if Self.pixelLayers.contains(layer.className), builder.graph.inputs.contains(where: { $0.name == inputs[0] }) { rescalesInput = true }
        return try add(layer, layer.name, op, inputs: inputs, params: params)
    }

    private mutating func add(_ layer: KerasLayer, _ name: String, _ op: Op, inputs: [String], params: [String: Tensor]) throws(ImportError) -> String {
        do {
            return try builder.add(name, op, inputs: inputs, params: params)
        } catch {
            throw .badConfig(path: path, layer: layer.name, reason: error.reason(at: layer.name))
        }
    }

    /// The first node of a layer that becomes two (its name's `part`), and the second, which
    /// reads the first's value; nil for the others.
    private func twoNodes(_ layer: KerasLayer, _ c: LayerConfig, _ p: [String: Tensor], inputs: [String]) throws(ImportError)
        -> ((part: String, op: Op, inputs: [String], params: [String: Tensor]), (op: Op, inputs: (String) -> [String], params: [String: Tensor]))? {
        switch layer.className {
        case "SeparableConv2D":
            // A depthwise convolution, then a 1×1 convolution with the bias and the activation.
            try c.checkShape(p["depthwise"]!, "depthwise_kernel", c.pair("kernel_size") + [-1, c.int("depth_multiplier", default: 1)])
            try c.checkShape(p["kernel"]!, "pointwise_kernel", [1, 1, -1, c.int("filters")])
            var spatial = try c.conv()
            let activation = spatial.activation
            spatial.activation = .linear
            return (("depthwise", .depthwiseConv2D(spatial), inputs, ["kernel": p["depthwise"]!]),
                    (.conv2D(ConvAttributes(activation: activation)), { [$0] }, p.filter { $0.key != "depthwise" }))
        case "CustomScaleLayer", "Custom>CustomScaleLayer":
            // Keras's InceptionResNetV2 (tf-keras and Keras 3): `inputs[0] + inputs[1] · scale`.
            guard inputs.count == 2, let scale = layer.config["scale"]?.double, scale.isFinite else {
                throw c.fail("a CustomScaleLayer takes two inputs and a number 'scale' (Keras's InceptionResNetV2)")
            }
            return (("scaled", .scale(Float(scale)), [inputs[1]], [:]), (.add, { [inputs[0], $0] }, [:]))
        default:
            return nil
        }
    }

    /// Layers that map pixels to what a model was trained on: a model whose input goes straight
    /// into one normalises its input itself.
    static let pixelLayers: Set<String> = ["Rescaling", "Normalization"]

    /// The input normalisation to record: none when the model rescales its pixels itself (a
    /// prewhitened face fed to `Rescaling(1 / 127.5, offset: -1)` is not what it was trained
    /// on); nil leaves FaceNet's prewhitening, the default.
    var inputPreprocess: Preprocess? { rescalesInput ? Preprocess.none : nil }

    /// Arithmetic Keras wrote as a layer (`x + 3.0`, `x * y`): a sum or product of two tensors;
    /// or one tensor and a number, as an affine or scale node.
    private func arithmetic(_ layer: KerasLayer, _ c: LayerConfig, numbers: [Int: Double], inputs: [String]) throws(ImportError) -> (Op, [String: Tensor]) {
        let kind = layer.className == "TFOpLambda" ? layer.config["function"]?.string ?? "?" : layer.className
        let what = layer.className == "TFOpLambda" ? "tf.\(kind)" : "ops.\(kind)"
        switch (Self.operators[kind], inputs.count, numbers.count) {
        case (let o?, 2, 0) where o == "+" || o == "*":
            // An op aligns its operands' shapes from the last axis, a merge layer (and fmodel's
            // node) after the batch: they agree when the ranks do.
            let (a, b) = (builder.shape(inputs[0]), builder.shape(inputs[1]))
            guard a.rank == b.rank else { throw c.fail("\(what) of \(a) and \(b): shapes of different ranks are not supported") }
            return (o == "+" ? .add : .mul, [:])
        case (let o?, 1, 1):
            let (position, number) = numbers.first!
            let v = Float(number)
            guard v.isFinite else { throw c.fail("\(what) of \(number): not a finite float") }
            let channels = builder.shape(inputs[0]).last
            func perChannel(_ value: Float) -> Tensor { Tensor([Float](repeating: value, count: channels), shape: [channels]) }
            func affine(scale: Float = 1, bias: Float) -> (Op, [String: Tensor]) {
                var params = ["bias": perChannel(bias)]
                if scale != 1 { params["scale"] = perChannel(scale) }
                return (.affine, params)
            }
            switch (o, position) {
            case ("+", _): return affine(bias: v)
            case ("*", _): return (.scale(v), [:])
            case ("-", 1): return affine(bias: -v)
            case ("-", _): return affine(scale: -1, bias: v)
            case ("/", 1) where v != 0: return (.scale(1 / v), [:])
            case ("/", 0): throw c.fail("\(what): a number divided by a tensor is not supported")
            default: break
            }
        default: break
        }
        throw c.fail("\(what) of \(inputs.count) tensor(s) and \(numbers.count) number(s) is not supported (of arithmetic written as a layer, "
                     + "sums and products of two tensors, and +, −, × and ÷ by a number, are)")
    }

    /// The arithmetic op layers: Keras 3's `keras.src.ops` classes and tf-keras's TFOpLambda
    /// functions.
    static let operators: [String: Character] = [
        "Add": "+", "__operators__.add": "+", "math.add": "+",
        "Subtract": "-", "math.subtract": "-", "__operators__.sub": "-",
        "Multiply": "*", "math.multiply": "*", "__operators__.mul": "*",
        "TrueDivide": "/", "Divide": "/", "math.truediv": "/", "__operators__.truediv": "/", "math.divide": "/",
    ]

    private func lowering(_ layer: KerasLayer, _ c: LayerConfig, _ weights: [String: Tensor], inputs: [String]) throws(ImportError) -> (Op, [String: Tensor]) {
        var p = weights
        switch layer.className {
        case "Conv2D":
            try c.checkShape(p["kernel"]!, "kernel", c.pair("kernel_size") + [-1, c.int("filters")])
            let groups = c.int("groups", default: 1), channels = builder.shape(inputs[0]).last
            if groups != 1 {
                // One group an input channel (ConvNeXt's 7×7) is a depthwise convolution: the
                // kernel [h, w, 1, filters] holds, in the same order, [h, w, channels, filters / channels].
                let k = p["kernel"]!
                guard groups == channels, k.shape[2] == 1, k.shape[3] % groups == 0 else {
                    throw c.fail("'groups' = \(groups) is not supported (only 1, or one group an input channel)")
                }
                p["kernel"] = Tensor(dtype: k.dtype, shape: [k.shape[0], k.shape[1], groups, k.shape[3] / groups], storage: k.storage)
                return (.depthwiseConv2D(try c.conv()), p)
            }
            return (.conv2D(try c.conv()), p)
        case "DepthwiseConv2D":
            try c.checkShape(p["kernel"]!, "depthwise_kernel", c.pair("kernel_size") + [-1, c.int("depth_multiplier", default: 1)])
            return (.depthwiseConv2D(try c.conv()), p)
        case "Dense":
            try c.checkShape(p["kernel"]!, "kernel", [-1, c.int("units")])
            if let scale = p.removeValue(forKey: "kernel_scale") { p["kernel"] = try c.int8Kernel(p["kernel"]!, kerasScale: scale) }
            return (.dense(activation: try c.activation()), p)
        case "BatchNormalization":
            try c.checkLastAxis(rank: builder.shape(inputs[0]).rank)
            return (.batchNorm(epsilon: Float(c.double("epsilon", default: 0.001))), p)
        case "LayerNormalization":
            try c.checkLastAxis(rank: builder.shape(inputs[0]).rank)
            guard !c.bool("rms_scaling", default: false) else { throw c.fail("rms_scaling is not supported") }
            return (.layerNorm(epsilon: Float(c.double("epsilon", default: 0.001))), p)
        case "LayerScale":
            // Keras's ConvNeXt (tf-keras and Keras 3): `x · gamma`, one factor a channel.
            try c.checkShape(p["scale"]!, "gamma", [builder.shape(inputs[0]).last])
            return (.affine, p)
        case "StochasticDepth": return (.identity, [:])
        case "Activation": return (.activation(try c.activation()), [:])
        case "ReLU": return (.activation(try c.relu()), [:])
        case "LeakyReLU": return (.activation(c.leakyRelu()), [:])
        case "ELU": return (.activation(.elu(alpha: Float(c.double("alpha", default: 1)))), [:])
        case "Softmax":
            try c.checkLastAxis(rank: builder.shape(inputs[0]).rank)
            return (.activation(.softmax), [:])
        case "Dropout", "SpatialDropout2D", "GaussianDropout", "AlphaDropout": return (.dropout(rate: Float(c.double("rate", default: 0))), [:])
        // Layers that pass their input through at inference.
        case "Identity", "GaussianNoise", "ActivityRegularization": return (.identity, [:])
        case "MaxPooling2D": return (.maxPool(try c.pool()), [:])
        case "AveragePooling2D": return (.avgPool(try c.pool()), [:])
        case "GlobalAveragePooling2D":
            try c.channelsLast()
            return (.globalAvgPool(keepDims: c.bool("keepdims", default: false)), [:])
        case "GlobalMaxPooling2D":
            try c.channelsLast()
            return (.globalMaxPool(keepDims: c.bool("keepdims", default: false)), [:])
        case "Flatten":
            // channels_first moves axis 1 last before flattening (none to move at rank 2).
            if builder.shape(inputs[0]).rank > 2 { try c.channelsLast() }
            return (.flatten, [:])
        case "Reshape": return (.reshape(shape: try c.ints("target_shape")), [:])
        case "Concatenate": return (.concat(axis: c.int("axis", default: -1)), [:])
        case "Add": return (.add, [:])
        case "Multiply": return (.mul, [:])
        case "Cropping2D":
            let p = try c.padding2D("cropping")
            return (.crop(top: p[0], bottom: p[1], left: p[2], right: p[3]), [:])
        case "ZeroPadding2D":
            let p = try c.padding2D()
            return (.zeroPad(top: p[0], bottom: p[1], left: p[2], right: p[3]), [:])
        case "Rescaling":
            // `x · scale + offset`, each a number or one per channel (`Rescaling(1 / 127.5, offset: -1)`).
            let channels = builder.shape(inputs[0]).last
            return (.affine, ["scale": Tensor(try c.perChannel("scale", channels: channels, default: 1), shape: [channels]),
                              "bias": Tensor(try c.perChannel("offset", channels: channels, default: 0), shape: [channels])])
        case "Normalization":
            // `(x − mean) / max(√variance, 1e-7)` per channel, or with `invert` its inverse,
            // `mean + x · max(√variance, 1e-7)`: an affine node.
            // `axis=None` (written `[]`) normalises by one mean and variance for all values.
            let channels = builder.shape(inputs[0]).last, overAll = c.isEmptyList("axis")
            if !overAll { try c.checkLastAxis(rank: builder.shape(inputs[0]).rank) }
            func statistic(_ role: String) throws(ImportError) -> [Float] {
                let n = overAll ? 1 : channels
                let v: [Float]
                if let t = p[role] {
                    v = t.floats()
                    guard v.count == n || v.count == 1 else { throw .weightShape(path: path, layer: layer.name, weight: role, expected: [n], got: t.shape.dims) }
                } else {
                    v = try c.perChannel(role, channels: n, default: .nan)
                }
                return v.count == 1 ? [Float](repeating: v[0], count: channels) : v
            }
            let mean = try statistic("mean"), deviation = try statistic("variance").map { max($0.squareRoot(), 1e-7) }
            guard (mean + deviation).allSatisfy(\.isFinite) else { throw c.fail("mean or variance is not a finite number") }
            let invert = c.bool("invert", default: false)
            let scale = invert ? deviation : deviation.map { 1 / $0 }
            let bias = invert ? mean : zip(mean, scale).map { -$0 * $1 }
            return (.affine, ["scale": Tensor(scale, shape: [channels]), "bias": Tensor(bias, shape: [channels])])
        case "Lambda":
            switch LambdaScaling.scale(config: layer.config) {
            case .success(let s): return (.scale(s), [:])
            case .failure(let m): throw .unsupportedLambda(path: path, layer: layer.name, saw: m.saw)
            }
        default:
            throw .unsupportedLayer(path: path, layer: layer.name, className: layer.className)
        }
    }
}

/// Typed reads of one layer's config, with errors that name the layer and the key.
struct LayerConfig {
    let layer: KerasLayer
    let path: String
    /// True when Keras 3 wrote the file (`KerasLowering.keras3`): its activations are Keras 3's.
    let keras3: Bool

    func fail(_ reason: String) -> ImportError { .badConfig(path: path, layer: layer.name, reason: reason) }
    private var config: JSONValue { layer.config }

    func int(_ key: String, default d: Int? = nil) -> Int { config[key]?.int ?? d ?? -1 }
    func int(_ key: String) throws(ImportError) -> Int {
        guard let v = config[key]?.int else { throw fail("'\(key)' is \(config[key]?.brief ?? "missing"), expected an integer") }
        return v
    }
    func double(_ key: String, default d: Double) -> Double { config[key]?.double ?? d }
    func bool(_ key: String, default d: Bool) -> Bool { config[key]?.bool ?? d }

    func ints(_ key: String) throws(ImportError) -> [Int] {
        guard let a = config[key]?.array, a.count <= 8 else { throw fail("'\(key)' is \(config[key]?.brief ?? "missing"), expected a list") }
        var out: [Int] = []
        for v in a {
            guard let i = v.int else { throw fail("'\(key)' holds \(v.brief)") }
            out.append(i)
        }
        return out
    }

    /// A 2-element list, or an integer meaning both.
    func pair(_ key: String) throws(ImportError) -> [Int] {
        if let i = config[key]?.int { return [i, i] }
        let v = try ints(key)
        guard v.count == 2, v.allSatisfy({ $0 > 0 }) else { throw fail("'\(key)' is \(v), expected 2 positive integers") }
        return v
    }

    func require(_ key: String, _ expected: Int, default d: Int) throws(ImportError) {
        let v = config[key]?.int ?? d
        guard v == expected else { throw fail("'\(key)' = \(v) is not supported (only \(expected))") }
    }

    func require(_ key: String, _ expected: String, default d: String) throws(ImportError) {
        let v = config[key]?.string ?? d
        guard v == expected else { throw fail("'\(key)' = \(v) is not supported (only \(expected))") }
    }

    func padding() throws(ImportError) -> Padding {
        switch config["padding"]?.string ?? "valid" {
        case "same": return .same
        case "valid": return .valid
        case let p: throw fail("padding '\(p)' is not supported")
        }
    }

    /// A layer's `activation`: a function's name, or a layer given as the activation
    /// (`activation=LeakyReLU(0.1)`), which Keras writes as that layer's config. Anything else
    /// is an error: a layer or a lambda taken as "linear" imported and ran to other numbers.
    func activation() throws(ImportError) -> Activation {
        guard let value = config["activation"], !value.isNull else { return .linear }
        if let name = value.string {
            // tf-keras's hard_sigmoid is `clip(0.2 · x + 0.5, 0, 1)`, Keras 3's `relu6(x + 3) / 6`.
            if name == "hard_sigmoid" { return .hardSigmoid(slope: keras3 ? 1 / 6 : 0.2) }
            guard let a = Self.activations[name] else { throw fail("activation '\(name)' is not supported") }
            return a
        }
        guard let cls = value["class_name"]?.string else { throw fail("activation \(value.brief.prefix(60))… is not supported (a lambda's code?)") }
        if let layerConfig = value["config"], layerConfig.object != nil, ["LeakyReLU", "ReLU"].contains(cls) {
            let inner = LayerConfig(layer: KerasLayer(className: cls, name: layer.name, config: layerConfig, inbound: [], nested: nil), path: path, keras3: keras3)
            return cls == "LeakyReLU" ? inner.leakyRelu() : try inner.relu()
        }
        throw fail("activation '\(cls)' is not supported (of layers given as an activation, LeakyReLU and ReLU are)")
    }

    /// The activations Keras names, as tf-keras and Keras 3 define them: `leaky_relu` is
    /// `tf.nn.leaky_relu`'s and Keras 3's (slope 0.2), `swish` is tf-keras's name for Keras 3's
    /// `silu`, `elu` has alpha 1, `gelu` is the exact form (`approximate=False`), and
    /// `hard_silu` (also `hard_swish`) is Keras 3's. `hard_sigmoid` differs between the two and
    /// is read by `activation()`.
    static let activations: [String: Activation] = [
        "linear": .linear, "relu": .relu, "relu6": .relu6, "sigmoid": .sigmoid, "tanh": .tanh, "softmax": .softmax,
        "leaky_relu": .leakyRelu(alpha: 0.2), "swish": .swish, "silu": .swish, "elu": .elu(alpha: 1), "gelu": .gelu(approximate: false),
        "hard_silu": .hardSwish, "hard_swish": .hardSwish,
    ]

    /// LeakyReLU's slope: tf-keras's `alpha`, Keras 3's `negative_slope`.
    func leakyRelu() -> Activation {
        .leakyRelu(alpha: Float(double("alpha", default: double("negative_slope", default: 0.3))))
    }

    func relu() throws(ImportError) -> Activation {
        let maxValue = config["max_value"]?.double
        let slope = double("negative_slope", default: 0)
        guard double("threshold", default: 0) == 0 else { throw fail("ReLU threshold is not supported") }
        switch (maxValue, slope) {
        case (nil, 0): return .relu
        case (6?, 0): return .relu6
        case (nil, let s): return .leakyRelu(alpha: Float(s))
        default: throw fail("ReLU(max_value: \(maxValue!), negative_slope: \(slope)) is not supported")
        }
    }

    /// Refuses `data_format` channels_first: the IR is NHWC, and such a layer taken as NHWC
    /// computes over the wrong axes without a word.
    func channelsLast() throws(ImportError) {
        try require("data_format", "channels_last", default: "channels_last")
    }

    func conv() throws(ImportError) -> ConvAttributes {
        try channelsLast()
        return ConvAttributes(strides: try pair("strides"), dilations: try pair("dilation_rate"), padding: try padding(), activation: try activation())
    }

    func pool() throws(ImportError) -> PoolAttributes {
        try channelsLast()
        let size = try pair("pool_size")
        let strides = config["strides"]?.isNull == false ? try pair("strides") : size
        return PoolAttributes(size: size, strides: strides, padding: try padding())
    }

    /// ZeroPadding2D's `padding` (Cropping2D's `cropping`): int, (h, w) or ((top, bottom), (left, right)).
    func padding2D(_ key: String = "padding") throws(ImportError) -> [Int] {
        try channelsLast()
        let p = config[key]
        if let i = p?.int { return [i, i, i, i] }
        if let a = p?.array, a.count == 2 {
            if let h = a[0].int, let w = a[1].int { return [h, h, w, w] }
            if let h = a[0].array?.compactMap(\.int), let w = a[1].array?.compactMap(\.int), h.count == 2, w.count == 2 { return h + w }
        }
        throw fail("\(key) \(p?.brief ?? "missing") is not understood")
    }

    /// A number, or one per channel, as `channels` values: a number or a list (of one or
    /// `channels`), or Keras 3's serialised array (`{"class_name": "__numpy__", "config":
    /// {"value": […]}}`).
    func perChannel(_ key: String, channels: Int, default d: Double) throws(ImportError) -> [Float] {
        let v = config[key] ?? .number(d)
        let list = v["class_name"]?.string == "__numpy__" ? v["config"]?["value"] : v
        let values = list?.double.map { [$0] } ?? list?.array?.compactMap(\.double)
        guard let values, values.count == (list?.array?.count ?? 1), values.count == 1 || values.count == channels, channels > 0 else {
            throw fail("'\(key)' is \(v.brief.prefix(80)), expected a number or \(channels) numbers")
        }
        return values.count == 1 ? [Float](repeating: Float(values[0]), count: channels) : values.map(Float.init)
    }

    /// True when `key` is an empty list (Normalization's `axis=None`).
    func isEmptyList(_ key: String) -> Bool { config[key]?.array?.isEmpty ?? false }

    /// Only the channel (last) axis is supported for normalisation and softmax.
    func checkLastAxis(rank: Int) throws(ImportError) {
        let axes = config["axis"]?.array?.compactMap(\.int) ?? config["axis"].flatMap { $0.int.map { [$0] } } ?? [-1]
        guard axes.count == 1, axes[0] == -1 || axes[0] == rank - 1 else { throw fail("axis \(axes) is not the last axis of a rank-\(rank) input") }
    }

    /// Checks a weight's shape against the config (`-1` entries are not checked here).
    func checkShape(_ t: Tensor, _ role: String, _ expected: [Int]) throws(ImportError) {
        let ok = t.shape.rank == expected.count && zip(t.shape.dims, expected).allSatisfy { $1 < 0 || $0 == $1 }
        guard ok else { throw .weightShape(path: path, layer: layer.name, weight: role, expected: expected, got: t.shape.dims) }
    }
}
