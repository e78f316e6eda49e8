import CHDF5
import FModelCore
import FModelImport

/// The weights of a Keras 2 HDF5 file, found by name: each top-level layer's group lists its
/// `weight_names` (a nested model lists all of its layers' weights in its one group, trainable
/// first and the batch-norm statistics last), so weights are matched by `layer/weight`, never
/// by position.
/// Where a lowering finds a layer's weights, by role (`kernel`, `bias`, `gamma`, …).
protocol KerasWeightSource {
    /// Reads weight `role` of `layer` (in top-level group `group`) as a float32 tensor.
    func tensor(_ role: String, layer: String, group: String) throws(ImportError) -> Tensor
}

struct KerasWeights: KerasWeightSource {
    let file: HDF5File
    /// Per top-level group: `layer/weight` (without `:0`) → dataset path, under the full name
    /// and under each shorter scope that names one weight only (see `names`).
    private var index: [String: [String: String]] = [:]

    /// Indexes the groups under `root` (`/model_weights` for full models, `/` for `save_weights`).
    init(file: HDF5File, root: String) throws(ImportError) {
        self.file = file
        let rootPath = root == "/" ? "" : root
        guard let groups = try file.strings("layer_names", of: root) else {
            throw .missing(path: file.path, object: root, what: "'layer_names' attribute (not a Keras weights file)")
        }
        for group in groups {
            let groupPath = "\(rootPath)/\(group)"
            let weights = try file.strings("weight_names", of: groupPath) ?? []
            index[group] = Self.names(weights.map { ($0, "\(groupPath)/\($0)") }, group: group)
        }
    }

    /// A group's weights by the names a layer may look them up under: the full name without
    /// `:0` (`conv1/conv/kernel`: tf-keras's DenseNet and MobileNetV3 put `/` in layer names);
    /// each shorter scope of two parts or more that no other weight of the group shares
    /// (`outer/conv/kernel` is also `conv/kernel`); and a name with no scope at all under the
    /// group's own (tf-keras's Normalization writes `mean:0` in group `adapted`). Full names win.
    static func names(_ weights: [(name: String, path: String)], group: String) -> [String: String] {
        var full: [String: String] = [:], scopes: [String: String?] = [:]
        for (name, path) in weights {
            let trimmed = name.hasSuffix(":0") ? String(name.dropLast(2)) : name
            let parts = trimmed.split(separator: "/")
            full[parts.count == 1 ? "\(group)/\(trimmed)" : trimmed] = path
            for k in parts.indices.dropFirst().dropLast() {
                let scope = parts[k...].joined(separator: "/")
                scopes[scope] = scopes[scope] == nil ? path : .some(nil)
            }
        }
        return full.merging(scopes.compactMapValues { $0 }) { whole, _ in whole }
    }

    /// True when layer `layer` (stored in top-level group `group`) has weight `role`.
    func has(_ role: String, layer: String, group: String) -> Bool {
        dataset(role, layer: layer, group: group) != nil
    }

    /// The dataset of weight `role` of `layer`. Keras 3 names a DepthwiseConv2D's kernel
    /// `kernel`, and so writes it in the `.h5` it saves (`model.save("x.h5")`): a layer's one
    /// kernel either way. It names a weight created without a name `variable`, `variable_1`, …
    /// (a count over the model), as ConvNeXt's LayerScale creates its `gamma`: a layer's one
    /// such weight.
    private func dataset(_ role: String, layer: String, group: String) -> String? {
        guard let names = index[group] else { return nil }
        if let path = names["\(layer)/\(role)"] { return path }
        if role == "depthwise_kernel" { return names["\(layer)/kernel"] }
        guard role == "gamma" else { return nil }
        let prefix = "\(layer)/variable"
        let unnamed = names.filter { key, _ in
            guard key.hasPrefix(prefix) else { return false }
            let rest = key.dropFirst(prefix.count)
            return rest.isEmpty || (rest.first == "_" && rest.dropFirst().allSatisfy(\.isNumber))
        }
        return unnamed.count == 1 ? unnamed.first!.value : nil
    }

    /// Reads weight `role` of `layer` as a float32 tensor.
    func tensor(_ role: String, layer: String, group: String) throws(ImportError) -> Tensor {
        guard let dataset = dataset(role, layer: layer, group: group), file.kind(dataset) == H5I_DATASET else {
            throw .missingWeight(path: file.path, layer: layer, weight: "\(layer)/\(role):0")
        }
        let (shape, storage) = try file.floatStorage(dataset)
        return Tensor(dtype: .f32, shape: Shape(shape), storage: storage)
    }
}

/// Optimizer state in a Keras file: how many tensors and bytes (reported, never imported).
struct OptimizerState {
    var tensors = 0
    var bytes = 0

    /// Walks `/optimizer_weights`, if present.
    init(file: HDF5File) throws(ImportError) {
        guard file.kind("/optimizer_weights") == H5I_GROUP else { return }
        try walk(file, "/optimizer_weights", depth: 0)
    }

    private mutating func walk(_ file: HDF5File, _ path: String, depth: Int) throws(ImportError) {
        guard depth < 32 else { return }
        for child in try file.children(path) {
            let p = "\(path)/\(child)"
            switch file.kind(p) {
            case H5I_DATASET:
                tensors += 1
                bytes += try file.datasetInfo(p).bytes
            case H5I_GROUP: try walk(file, p, depth: depth + 1)
            default: break
            }
        }
    }
}
