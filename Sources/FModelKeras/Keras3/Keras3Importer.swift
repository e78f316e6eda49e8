import CHDF5
import FModelCore
import FModelFormat
import FModelImport
import Foundation

/// Imports Keras 3 `.keras` files (and tf-keras's): a zip of `config.json` and
/// `model.weights.h5`, whose weights sit in `…/vars/0, 1, …` groups at each layer's place, in
/// the order the layer creates them; or the same two files in a directory (`save(zipped=False)`,
/// as Keras puts models on the Hugging Face Hub); or weights saved in shards, with their config
/// (`--config`).
enum Keras3Importer {
    static func importModel(path: String, configJSON: String? = nil) throws -> Graph {
        if KerasShardIndex.isIndex(path: path) { return try importShards(index: path, configJSON: configJSON) }
        if ModelLoader.isDirectory(path) {
            let config: String
            do { config = try MappedFile.text(path: path + "/config.json", maxBytes: MappedFile.maxConfigBytes) } catch {
                throw ImportError.unknownFormat(path: path, reason: "cannot read its config.json: \(error.detail)")
            }
            let h5 = path + "/model.weights.h5"
            guard access(h5, F_OK) == 0 else { throw ImportError.missing(path: path, object: "/", what: "model.weights.h5 in the directory") }
            return try lower(try KerasModel(text: config, what: "config.json", path: path), weights: h5, named: h5, path: path)
        }
        // libhdf5 reads files: the weights go to a private temporary copy (in the import's
        // scratch directory when fmodel runs this worker), removed on a signal too.
        let dir = try TemporaryDirectory.make(prefix: "fmodel-keras3"), h5 = dir + "/model.weights.h5"
        let cleanup = [Cleanup.remember(directory: dir), Cleanup.remember(file: h5)]
        defer {
            try? FileManager.default.removeItem(atPath: dir)
            cleanup.forEach { $0.forget() }
        }
        return try lower(try unpack(path, weightsTo: h5), weights: h5, named: path + " (its model.weights.h5)", path: path)
    }

    /// The graph of the model whose weights the shard index at `index` lists, its config given.
    private static func importShards(index: String, configJSON: String?) throws -> Graph {
        guard let configJSON else {
            throw ImportError.missing(path: index, object: "/", what: "model config: weights in shards need --config MODEL.json")
        }
        let model = try KerasModel(text: configJSON, what: "config", path: index)
        let shards = try KerasShardIndex(path: index).shards
        return try HDF5File.withLibrary {
            var files: [HDF5File] = []
            for shard in shards { files.append(try HDF5File(path: shard)) }
            return try lower(model, weights: files, path: index)
        }
    }

    /// The graph of `model`, its weights read from the Keras 3 weights file `h5` (`name` in
    /// errors).
    private static func lower(_ model: KerasModel, weights h5: String, named name: String, path: String) throws -> Graph {
        try HDF5File.withLibrary { try lower(model, weights: try HDF5File(path: h5, name: name), path: path) }
    }

    /// The graph of `model`, its weights read from `file`, a Keras 3 weights file (the
    /// `model.weights.h5` of a `.keras`, or what `save_weights` writes); `path` names the model.
    static func lower(_ model: KerasModel, weights file: HDF5File, path: String) throws -> Graph {
        try lower(model, weights: [file], path: path)
    }

    /// The graph of `model`, its weights read from `files`, Keras 3 weights files that each hold
    /// some of the layers' places (one for a whole file; its shards).
    static func lower(_ model: KerasModel, weights files: [HDF5File], path: String) throws -> Graph {
        let source = try Keras3Weights(files: files, model: model, path: path)
        var lowering = KerasLowering(path: path, weights: source, keras3: model.isKeras3)
        let outputs = try lowering.lowerTopLevel(model)
        return lowering.builder.build(outputs: outputs, metadata: ModelMetadata(sourceFormat: "keras3", preprocess: lowering.inputPreprocess))
    }

    /// True when `file` is laid out as Keras 3 writes weights: a `layers` group at its root,
    /// no Keras 2 `layer_names` list.
    static func holdsWeights(_ file: HDF5File) throws(ImportError) -> Bool {
        try file.strings("layer_names", of: "/") == nil && file.kind("/layers") == H5I_GROUP
    }

    /// Reads the `.keras` zip's model config and copies its weights to `h5`. The zip is unmapped
    /// on return, before libhdf5 reads the copy: its pages, all read for their checksums, were
    /// resident beside the weights libhdf5 reads (a 134 MB file peaked at 294 MB, now 162).
    private static func unpack(_ path: String, weightsTo h5: String) throws -> KerasModel {
        let zip = try ZipArchive(path: path)
        let config = try zip.contents("config.json", maxBytes: MappedFile.maxConfigBytes)
        let model = try KerasModel(text: String(decoding: config, as: UTF8.self), what: "config.json", path: path)
        try zip.extract("model.weights.h5", to: h5)
        return model
    }
}

/// Keras 3 weights: per layer, the `vars` datasets in order, and which role each index is. A
/// layer is keyed by its top-level group and its name (`key`): a nested model may name a layer
/// as one outside it is named.
struct Keras3Weights: KerasWeightSource {
    let path: String
    /// Found where Keras puts them (`locate`), by key: each weight's file and dataset, in order.
    private var vars: [String: [(file: HDF5File, dataset: String)]] = [:]
    private var roles: [String: [String]] = [:]

    /// `files`: the weights file, or its shards (a layer's place may be in several).
    init(files: [HDF5File], model: KerasModel, path: String) throws(ImportError) {
        self.path = path
        try locate(model, in: "", group: nil, files: files)
        roles = Self.roleOrders(model, group: nil)
    }

    /// The key of layer `layer` in top-level group `group` (the layer's own name at top level).
    static func key(_ group: String, _ layer: String) -> String { group + "\u{0}" + layer }

    /// Finds each layer's `vars` group by where Keras (tf-keras and Keras 3 alike) puts it: a
    /// model's layers, in order, at `layers/` + the snake-cased class name, numbered from the
    /// second of a class (`dense`, `dense_1`, …); a nested model's below its own. (Keras
    /// leaves a Sequential model's InputLayer out of its layers there: it counts only
    /// `input_layer`s, which hold no weights.) Keras loads by these places. Keras 3 also tags
    /// each with the layer's name, which tf-keras does not; fmodel took Keras 3's weights by
    /// those names, one for two layers of a name (`keras3_shadowed`). `group`: the top-level
    /// group of `model`'s layers (nil: they are top-level).
    private mutating func locate(_ model: KerasModel, in place: String, group: String?, files: [HDF5File]) throws(ImportError) {
        guard place.count < 4096 else { return }
        var used: [String: Int] = [:]
        for layer in model.layers {
            let base = Self.snakeCase(layer.className == "Model" ? "Functional" : layer.className)
            let count = used[base].map { $0 + 1 } ?? 0
            used[base] = count
            let at = place + "/layers/" + (count == 0 ? base : "\(base)_\(count)"), key = Self.key(group ?? layer.name, layer.name)
            if vars[key] == nil {
                var found: [(index: Int, file: HDF5File, dataset: String)] = []
                for file in files where file.kind(at + "/vars") == H5I_GROUP {
                    found += try Self.datasets(in: at + "/vars", of: file)
                }
                if !found.isEmpty { vars[key] = found.sorted { $0.index < $1.index }.map { ($0.file, $0.dataset) } }
            }
            if let nested = layer.nested { try locate(nested, in: at, group: group ?? layer.name, files: files) }
        }
    }

    /// A class name as Keras names its weights' place: `Conv2D` → `conv2d`, `LeakyReLU` →
    /// `leaky_re_lu`, `BatchNormalization` → `batch_normalization` (tf-keras's `to_snake_case`).
    static func snakeCase(_ name: String) -> String {
        func replacing(_ regex: NSRegularExpression, in text: String) -> String {
            regex.stringByReplacingMatches(in: text, range: NSRange(text.startIndex..., in: text), withTemplate: "$1_$2")
        }
        let snake = replacing(lowerUpper, in: replacing(word, in: name)).lowercased()
        return snake.hasPrefix("_") ? "private" + snake : snake
    }

    /// `snakeCase`'s two patterns, compiled once rather than for every layer.
    private static let word = try! NSRegularExpression(pattern: "(.)([A-Z][a-z0-9]+)")
    private static let lowerUpper = try! NSRegularExpression(pattern: "([a-z])([A-Z])")

    /// The datasets `0`, `1`, … of a `vars` group of `file`, with their numbers.
    private static func datasets(in group: String, of file: HDF5File) throws(ImportError) -> [(index: Int, file: HDF5File, dataset: String)] {
        try file.children(group).compactMap { c in Int(c).map { ($0, file, group + "/" + c) } }
    }

    /// Each layer's weights by Keras name, in the order it creates them (nested models too), by
    /// key.
    static func roleOrders(_ model: KerasModel, group: String?) -> [String: [String]] {
        var out: [String: [String]] = [:]
        for layer in model.layers {
            if let nested = layer.nested { out.merge(roleOrders(nested, group: group ?? layer.name)) { a, _ in a } }
            let names = layer.weights.map(\.keras)
            if !names.isEmpty { out[key(group ?? layer.name, layer.name)] = names }
        }
        return out
    }

    func tensor(_ role: String, layer: String, group: String) throws(ImportError) -> Tensor {
        let key = Self.key(group, layer)
        guard let i = roles[key]?.firstIndex(of: role), let list = vars[key], i < list.count else {
            throw .missingWeight(path: path, layer: layer, weight: role)
        }
        let (shape, storage) = try list[i].file.floatStorage(list[i].dataset)
        return Tensor(dtype: .f32, shape: Shape(shape), storage: storage)
    }
}
