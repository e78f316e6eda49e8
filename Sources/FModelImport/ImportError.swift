/// Why a model could not be imported. Each case names the file and what in it is wrong.
public enum ImportError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file is not in a format fmodel reads.
    case unknownFormat(path: String, reason: String)
    /// The HDF5 library refused an operation on `object`.
    case hdf5(path: String, object: String, reason: String)
    /// A required attribute or group is absent.
    case missing(path: String, object: String, what: String)
    /// The Keras model config cannot be understood.
    case badConfig(path: String, layer: String?, reason: String)
    /// A TensorFlow graph, or the options naming its nodes, cannot be understood.
    case badGraph(path: String, node: String?, reason: String)
    /// A layer class fmodel does not lower.
    case unsupportedLayer(path: String, layer: String, className: String)
    /// A Lambda layer that is not a recognised residual scaling.
    case unsupportedLambda(path: String, layer: String, saw: String)
    /// A weight the layer needs is not in the file.
    case missingWeight(path: String, layer: String, weight: String)
    /// A weight has the wrong shape for its layer.
    case weightShape(path: String, layer: String, weight: String, expected: [Int], got: [Int])
    /// A size declared in the file is over a limit.
    case limitExceeded(path: String, object: String, reason: String)
    /// Ops fmodel cannot lower: every type with its count and one node.
    case unsupportedOps(path: String, ops: [String])
    /// An isolated import worker failed; its message names the file and what is wrong.
    case worker(message: String)
    /// A Keras file, with no `fmodel-keras` worker to import it (nor the importer in process).
    case noWorker(path: String)

    public var description: String {
        switch self {
        case .unknownFormat(let p, let r): "\(p): \(r)"
        case .hdf5(let p, let o, let r): "\(p): HDF5 object '\(o)': \(r)"
        case .missing(let p, let o, let w): "\(p): '\(o)' has no \(w)"
        case .badConfig(let p, let l, let r): "\(p): model config\(l.map { ", layer '\($0)'" } ?? ""): \(r)"
        case .badGraph(let p, let n, let r): "\(p): \(n.map { "node '\($0)': " } ?? "")\(r)"
        case .unsupportedLayer(let p, let l, let c): "\(p): layer '\(l)' is a \(c), which fmodel does not support"
        case .unsupportedLambda(let p, let l, let s): "\(p): Lambda layer '\(l)' is not a residual scaling (x * scale): \(s)"
        case .missingWeight(let p, let l, let w): "\(p): layer '\(l)' needs weight '\(w)', which the file does not hold"
        case .weightShape(let p, let l, let w, let e, let g): "\(p): layer '\(l)' weight '\(w)' has shape \(g), expected \(e)"
        case .limitExceeded(let p, let o, let r): "\(p): '\(o)': \(r)"
        case .worker(let m): m
        case .noWorker(let p): "\(p): Keras files are imported by the fmodel-keras worker, which is not beside this program (FMODEL_HELPER names it)"
        case .unsupportedOps(let p, let ops): "\(p): unsupported TensorFlow ops: \(ops.joined(separator: "; "))"
        }
    }
}
