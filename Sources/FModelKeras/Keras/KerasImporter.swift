import FModelCore
import FModelImport

/// Imports Keras 2 / tf-keras HDF5 files: full models (`model_config` + `model_weights`) and
/// weights-only files (`save_weights`) with a config from `model.to_json()`.
public enum KerasImporter {
    /// Imports the model in `path`.
    /// - Parameter configJSON: the model config text, required for weights-only files.
    /// - Throws: `ImportError` naming the file and layer.
    public static func importModel(path: String, configJSON: String? = nil) throws -> Graph {
        try HDF5File.withLibrary { try importModel(file: try HDF5File(path: path), configJSON: configJSON) }
    }

    private static func importModel(file: HDF5File, configJSON: String?) throws -> Graph {
        let path = file.path
        let configText: String
        let weightsRoot: String
        if let text = try file.strings("model_config", of: "/")?.first {
            configText = configJSON ?? text
            weightsRoot = "/model_weights"
        } else if let configJSON {
            configText = configJSON
            weightsRoot = "/"
        } else {
            throw ImportError.missing(path: path, object: "/", what: "'model_config' attribute: a weights-only file needs --config MODEL.json")
        }
        let model = try KerasModel(text: configText, what: "config", path: path)
        // Keras 3's `save_weights` file (and tf-keras's `.weights.h5`): a `.keras` file's layout.
        if weightsRoot == "/", try Keras3Importer.holdsWeights(file) { return try Keras3Importer.lower(model, weights: file, path: path) }
        let weights = try KerasWeights(file: file, root: weightsRoot)
        // The file says which Keras wrote it: a Keras 3 Sequential model's legacy `.h5` has a
        // config of the Keras 2 form.
        let version = try file.strings("keras_version", of: "/")?.first
        var lowering = KerasLowering(path: path, weights: weights, keras3: version.map { $0.hasPrefix("3.") } ?? model.isKeras3)
        let outputs = try lowering.lowerTopLevel(model)
        let optimizer = try OptimizerState(file: file)
        var metadata = ModelMetadata(sourceFormat: "keras-h5", preprocess: lowering.inputPreprocess)
        metadata.sourceOptimizerTensors = optimizer.tensors
        metadata.sourceOptimizerBytes = optimizer.bytes
        return lowering.builder.build(outputs: outputs, metadata: metadata)
    }
}

/// Walks a Keras model config in connection order and lowers each layer call to IR nodes.
struct KerasLowering {
    let path: String
    let weights: any KerasWeightSource
    var builder = GraphBuilder()
    /// True when a Rescaling or Normalization reads a model input: the model normalises its
    /// pixels itself.
    var rescalesInput = false
    /// True when Keras 3 wrote the model, whose activations of one name can differ from
    /// tf-keras's (`hard_sigmoid`).
    let keras3: Bool

    init(path: String, weights: any KerasWeightSource, keras3: Bool) {
        self.path = path
        self.weights = weights
        self.keras3 = keras3
    }

    /// Lowers the top-level model: its InputLayers become graph inputs, and outputs it names
    /// (`Model(x, {"age": …})`) take those names, as Keras's `predict` gives them (an identity
    /// node, unless the layer has the name or a node already does).
    mutating func lowerTopLevel(_ model: KerasModel) throws(ImportError) -> [String] {
        let outputs = try lowerValues(model)
        guard let names = model.outputNames else { return outputs }
        var named: [String] = []
        for (name, value) in zip(names, outputs) {
            guard name != value, builder.shapes[name] == nil else { named.append(value); continue }
            do { named.append(try builder.add(name, .identity, inputs: [value])) } catch {
                throw .badConfig(path: path, layer: name, reason: error.reason(at: name))
            }
        }
        return named
    }

    private mutating func lowerValues(_ model: KerasModel) throws(ImportError) -> [String] {
        var inputs: [String] = []
        for ref in model.inputs {
            guard let layer = model.layers.first(where: { $0.name == ref.layer }), layer.className == "InputLayer" else {
                throw .badConfig(path: path, layer: ref.layer, reason: "model input is not an InputLayer")
            }
            inputs.append(builder.addInput(layer.name, shape: try inputShape(layer)))
        }
        return try lower(model, inputs: inputs, group: nil)
    }

    /// Lowers `model` with its input layers bound to `inputs`; returns its output values.
    /// - Parameter group: the weights group of the enclosing top-level layer (nil at top level).
    mutating func lower(_ model: KerasModel, inputs: [String], group: String?) throws(ImportError) -> [String] {
        guard inputs.count == model.inputs.count else {
            throw .badConfig(path: path, layer: model.name, reason: "called with \(inputs.count) inputs, takes \(model.inputs.count)")
        }
        var values: [KerasRef: String] = [:]
        for (ref, v) in zip(model.inputs, inputs) { values[KerasRef(layer: ref.layer, node: 0, tensor: 0)] = v }
        var pending = model.layers.filter { $0.className != "InputLayer" }
        // Layers are listed in topological order; a few passes cover configs that are not.
        while !pending.isEmpty {
            var progressed = false
            var rest: [KerasLayer] = []
            for layer in pending {
                if try lowerCalls(layer, values: &values, group: group, keras3: model.isKeras3) { progressed = true } else { rest.append(layer) }
            }
            guard progressed else {
                throw .badConfig(path: path, layer: rest[0].name, reason: "its inputs are never produced")
            }
            pending = rest
        }
        var outputs: [String] = []
        for ref in model.outputs {
            guard let v = values[ref] else { throw .badConfig(path: path, layer: ref.layer, reason: "model output is never produced") }
            outputs.append(v)
        }
        return outputs
    }

    /// Lowers every call of `layer` once its inputs exist; false when they do not yet.
    private mutating func lowerCalls(_ layer: KerasLayer, values: inout [KerasRef: String], group: String?, keras3: Bool) throws(ImportError) -> Bool {
        var resolved: [[String]] = []
        for call in layer.inbound {
            var ins: [String] = []
            for ref in call {
                guard let v = values[ref] else { return false }
                ins.append(v)
            }
            resolved.append(ins)
        }
        // In Keras 2 a nested model's first node is its own construction; calls count from 1.
        let offset = keras3 ? 0 : layer.nested.map { $0.layers.first?.className == "InputLayer" ? 1 : 0 } ?? 0
        for (i, ins) in resolved.enumerated() {
            let outs: [String]
            if let nested = layer.nested {
                outs = try lower(nested, inputs: ins, group: group ?? layer.name)
            } else {
                outs = [try lowerLayer(layer, call: i, inputs: ins, group: group ?? layer.name)]
            }
            for (t, v) in outs.enumerated() { values[KerasRef(layer: layer.name, node: i + offset, tensor: t)] = v }
        }
        return true
    }

    private func inputShape(_ layer: KerasLayer) throws(ImportError) -> Shape {
        guard let dims = (layer.config["batch_input_shape"] ?? layer.config["batch_shape"])?.array, !dims.isEmpty, dims.count <= 8 else {
            throw .badConfig(path: path, layer: layer.name, reason: "InputLayer without batch_input_shape")
        }
        return Shape(dims.map { $0.int ?? -1 })
    }
}
