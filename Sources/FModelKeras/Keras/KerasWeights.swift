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
    /// Per top-level group: `layer/weight` (without `:0`) → dataset path.
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
            var entries: [String: String] = [:]
            for w in try file.strings("weight_names", of: groupPath) ?? [] {
                // tf-keras's preprocessing layers (Normalization) name their weights with no
                // scope (`mean:0`), in the group of the layer itself.
                let key = Self.key(w)
                entries[key.contains("/") ? key : "\(group)/\(key)"] = "\(groupPath)/\(w)"
            }
            index[group] = entries
        }
    }

    /// `conv/kernel:0` → `conv/kernel`; a longer scope keeps its last two parts.
    static func key(_ weightName: String) -> String {
        let trimmed = weightName.hasSuffix(":0") ? String(weightName.dropLast(2)) : weightName
        let parts = trimmed.split(separator: "/")
        return parts.suffix(2).joined(separator: "/")
    }

    /// True when layer `layer` (stored in top-level group `group`) has weight `role`.
    func has(_ role: String, layer: String, group: String) -> Bool {
        dataset(role, layer: layer, group: group) != nil
    }

    /// The dataset of weight `role` of `layer`. Keras 3 names a DepthwiseConv2D's kernel
    /// `kernel`, and so writes it in the `.h5` it saves (`model.save("x.h5")`): a layer's one
    /// kernel either way.
    private func dataset(_ role: String, layer: String, group: String) -> String? {
        index[group]?["\(layer)/\(role)"] ?? (role == "depthwise_kernel" ? index[group]?["\(layer)/kernel"] : nil)
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
