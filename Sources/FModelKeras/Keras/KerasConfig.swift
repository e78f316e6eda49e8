import FModelImport

/// A reference to one output of one call of a layer: `[layer, node_index, tensor_index]`.
struct KerasRef: Hashable {
    var layer: String
    var node: Int
    var tensor: Int
}

/// One layer of a Keras model config.
struct KerasLayer {
    var className: String
    var name: String
    var config: JSONValue
    /// The calls of this layer: each a list of input references.
    var inbound: [[KerasRef]]
    /// The model config, when this layer is itself a model.
    var nested: KerasModel?
    /// True for arithmetic on tensors that Keras wrote as a layer (`x + 3.0`): tf-keras's
    /// TFOpLambda, and Keras 3's op classes (module `keras.src.ops.numpy`), whose names (`Add`,
    /// `Multiply`) are also merge layers'; a legacy `.h5` omits the module, but a merge layer
    /// takes one list of tensors where an op takes two operands.
    var isOp = false
    /// Per call, the numbers among an op's two operands, by position (0 or 1): `3.0 - x` has
    /// the 3.0 first.
    var numbers: [[Int: Double]] = []

    /// How Keras quantized this layer (`model.quantize(mode)`): its dtype policy's `mode`
    /// (`int8`, `int4`, `float8`, `gptq`, `awq`, …), nil for a float layer.
    var quantization: String? { config["dtype"]?["config"]?["mode"].map { $0.string ?? $0.brief } }

    /// The weights this layer creates, by Keras name in the order it creates them (the order
    /// of a Keras 3 file's `vars/0, 1, …`), with the IR parameter each becomes.
    var weights: [(keras: String, role: String)] {
        func flag(_ key: String) -> Bool { config[key]?.bool ?? true }
        let bias = flag("use_bias") ? [(keras: "bias", role: "bias")] : []
        switch className {
        case "Conv2D": return [("kernel", "kernel")] + bias
        case "Dense": return [("kernel", "kernel")] + bias + (quantization == "int8" ? [("kernel_scale", "kernel_scale")] : [])
        case "DepthwiseConv2D": return [("depthwise_kernel", "kernel")] + bias
        case "SeparableConv2D": return [("depthwise_kernel", "depthwise"), ("pointwise_kernel", "kernel")] + bias
        case "LayerNormalization": return (flag("scale") ? [("gamma", "gamma")] : []) + (flag("center") ? [("beta", "beta")] : [])
        // Keras's ConvNeXt: one factor a channel.
        case "LayerScale": return [("gamma", "scale")]
        case "BatchNormalization":
            return (flag("scale") ? [("gamma", "gamma")] : []) + (flag("center") ? [("beta", "beta")] : [])
                + [("moving_mean", "mean"), ("moving_variance", "variance")]
        // Adapted (`adapt`) statistics; given ones are in the config instead. Its third
        // weight, `count`, is not read.
        case "Normalization": return config["mean"]?.isNull ?? true ? [("mean", "mean"), ("variance", "variance")] : []
        default: return []
        }
    }
}

/// A Keras 2 model config (`model_config` attribute or `model.to_json()`), Functional or Sequential,
/// reduced to layers and their connections.
struct KerasModel {
    var name: String
    var layers: [KerasLayer]
    var inputs: [KerasRef]
    var outputs: [KerasRef]
    /// Keras 3 configs write calls as `{"args": …}` and number a nested model's calls from 0.
    var isKeras3 = false
    /// The names a model gives its outputs (`Model(x, {"age": …})`), in `outputs`' order; nil
    /// when they are a list.
    var outputNames: [String]?

    static let modelClasses: Set<String> = ["Functional", "Model", "Sequential"]

    /// Parses the text of such a document: `what` names it in the error when it is not JSON.
    init(text: String, what: String, path: String) throws(ImportError) {
        let json: JSONValue
        do { json = try JSONValue.parse(text) } catch { throw .badConfig(path: path, layer: nil, reason: "\(what) is not JSON") }
        try self.init(json, path: path)
    }

    /// Parses a `{"class_name": ..., "config": ...}` document.
    init(_ json: JSONValue, path: String, depth: Int = 0) throws(ImportError) {
        guard depth < 16 else { throw .badConfig(path: path, layer: nil, reason: "models nested deeper than 16") }
        guard let cls = json["class_name"]?.string, let config = json["config"] else {
            throw .badConfig(path: path, layer: nil, reason: "no class_name/config at the top")
        }
        guard Self.modelClasses.contains(cls) else {
            throw .badConfig(path: path, layer: nil, reason: "top-level class '\(cls)' is not a Functional or Sequential model")
        }
        name = config["name"]?.string ?? cls
        guard let layerList = config["layers"]?.array else { throw .badConfig(path: path, layer: nil, reason: "no layer list") }
        var parsed: [KerasLayer] = []
        for l in layerList { parsed.append(try Self.layer(l, path: path, depth: depth)) }
        // tf-keras's `.keras` configs (and Keras 2.13–2.15's) name a module too, but from its
        // `engine` (`tf_keras.src.engine.functional`), and write calls as Keras 2 does.
        isKeras3 = layerList.contains { $0["inbound_nodes"]?[0]?.object != nil }
            || json["module"]?.string.map { !$0.contains(".engine") } ?? false
        if cls == "Sequential" {
            (layers, inputs, outputs) = try Self.chain(parsed, path: path)
        } else {
            layers = parsed
            inputs = try Self.refs(config["input_layers"], path: path, layer: nil)
            outputs = try Self.refs(config["output_layers"], path: path, layer: nil)
            outputNames = config["output_layers"]?.object?.keys.sorted()
        }
    }

    private static func layer(_ l: JSONValue, path: String, depth: Int) throws(ImportError) -> KerasLayer {
        guard let cls = l["class_name"]?.string, let config = l["config"] else {
            throw .badConfig(path: path, layer: nil, reason: "a layer without class_name/config")
        }
        guard let name = l["name"]?.string ?? config["name"]?.string else {
            throw .badConfig(path: path, layer: nil, reason: "a \(cls) layer without a name")
        }
        var inbound: [[KerasRef]] = [], numbers: [[Int: Double]] = []
        let module = l["module"]?.string
        let calls = l["inbound_nodes"]?.array ?? []
        let isOp = cls == "TFOpLambda" || module?.hasPrefix("keras.src.ops") ?? false
            || (module == nil && opClasses.contains(cls) && !calls.isEmpty && calls.allSatisfy { $0["args"]?.array?.count == 2 })
        for node in calls {
            // tf-keras writes a TFOpLambda's call bare, `[name, node, tensor, {"y": …}]`.
            if cls == "TFOpLambda", let call = node[0]?.array != nil ? node[0] : node, call.array != nil {
                let (refs, values) = try opOperands(call, path: path, layer: name)
                inbound.append(refs)
                numbers.append(values)
            } else if let args = node["args"] {
                inbound.append(try keras3Refs(args, path: path, layer: name))
                var values: [Int: Double] = [:]
                if isOp {
                    for (i, a) in (args.array ?? []).enumerated() { if let d = a.double { values[i] = d } }
                }
                numbers.append(values)
            } else {
                guard node.array != nil else {
                    throw .badConfig(path: path, layer: name, reason: "inbound node \(node.brief.prefix(80)) is neither the Keras 2 nor the Keras 3 form")
                }
                inbound.append(try refs(node, path: path, layer: name))
            }
        }
        let nested = modelClasses.contains(cls) ? try KerasModel(l, path: path, depth: depth + 1) : nil
        return KerasLayer(className: cls, name: name, config: config, inbound: inbound, nested: nested, isOp: isOp, numbers: numbers)
    }

    /// Keras 3's arithmetic op classes that lower: the class names among `KerasLowering.operators`
    /// (tf-keras's TFOpLambda functions are named with a module, `math.add`).
    static let opClasses = Set(KerasLowering.operators.keys.filter { !$0.contains(".") })

    /// A TFOpLambda call's operands `x` and keyword `y`: each a reference, or a number (`x` as
    /// `["_CONSTANT_VALUE", -1, 3.0, {"y": …}]` when the number came first, `3.0 - t`).
    private static func opOperands(_ call: JSONValue, path: String, layer: String) throws(ImportError) -> ([KerasRef], [Int: Double]) {
        var refs: [KerasRef] = [], numbers: [Int: Double] = [:]
        if call[0]?.string == "_CONSTANT_VALUE", let d = call[2]?.double {
            numbers[0] = d
        } else {
            refs.append(try ref(call, path: path, layer: layer))
        }
        if let y = call[3]?["y"] {
            if let d = y.double { numbers[1] = d } else { refs.append(try ref(y, path: path, layer: layer)) }
        }
        return (refs, numbers)
    }

    /// The `__keras_tensor__` references in a Keras 3 call's `args`, in order (nested lists too).
    static func keras3Refs(_ args: JSONValue, path: String, layer: String) throws(ImportError) -> [KerasRef] {
        var out: [KerasRef] = []
        var stack = [args]
        var visited = 0
        while let v = stack.popLast() {
            visited += 1
            guard visited < 10_000 else { throw .badConfig(path: path, layer: layer, reason: "call arguments nest too deep") }
            if let history = v["config"]?["keras_history"], v["class_name"]?.string == "__keras_tensor__" {
                out.append(try ref(history, path: path, layer: layer))
            } else if let list = v.array {
                stack.append(contentsOf: list.reversed())
            }
        }
        return out
    }

    /// Parses `[[name, node, tensor, kwargs?], ...]`, or a model's inputs or outputs given by
    /// name (`{"age": [name, node, tensor], …}`, Keras 3's `Model(…, outputs={…})`), in the order
    /// Keras flattens them: by key.
    static func refs(_ v: JSONValue?, path: String, layer: String?) throws(ImportError) -> [KerasRef] {
        if let named = v?.object {
            var out: [KerasRef] = []
            for key in named.keys.sorted() { out.append(try ref(named[key]!, path: path, layer: layer)) }
            return out
        }
        guard let list = v?.array else { throw .badConfig(path: path, layer: layer, reason: "missing connection list") }
        // A single reference may be given bare: [name, node, tensor].
        if list.first?.string != nil { return [try ref(v!, path: path, layer: layer)] }
        var out: [KerasRef] = []
        for r in list { out.append(try ref(r, path: path, layer: layer)) }
        return out
    }

    private static func ref(_ r: JSONValue, path: String, layer: String?) throws(ImportError) -> KerasRef {
        guard let name = r[0]?.string, let node = r[1]?.int, let tensor = r[2]?.int, node >= 0, tensor >= 0 else {
            throw .badConfig(path: path, layer: layer, reason: "bad layer reference \(r.brief.prefix(80))")
        }
        return KerasRef(layer: name, node: node, tensor: tensor)
    }

    /// Connects a Sequential model's layers in order; its input comes from an InputLayer or the
    /// first layer's `batch_input_shape`.
    private static func chain(_ list: [KerasLayer], path: String) throws(ImportError) -> ([KerasLayer], [KerasRef], [KerasRef]) {
        var layers = list
        if layers.first?.className != "InputLayer" {
            guard let first = layers.first, let shape = first.config["batch_input_shape"] else {
                throw .badConfig(path: path, layer: list.first?.name, reason: "Sequential model without an input shape")
            }
            let input = KerasLayer(className: "InputLayer", name: first.name + "_input",
                                   config: .object(["batch_input_shape": shape]), inbound: [], nested: nil)
            layers.insert(input, at: 0)
        }
        for i in 1..<layers.count {
            layers[i].inbound = [[KerasRef(layer: layers[i - 1].name, node: 0, tensor: 0)]]
        }
        let first = KerasRef(layer: layers[0].name, node: 0, tensor: 0)
        let last = KerasRef(layer: layers[layers.count - 1].name, node: 0, tensor: 0)
        return (layers, [first], [last])
    }
}
