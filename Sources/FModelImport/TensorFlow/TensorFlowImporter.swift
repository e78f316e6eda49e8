import FModelCore
import Foundation
import SwiftProtobuf

/// How to cut a frozen graph: which tensors are the inputs (with shapes), which the outputs,
/// and which placeholders are set to constants.
public struct GraphCut: Sendable {
    /// `NAME[:SHAPE]`, SHAPE like `1x160x160x3` or `?x160x160x3`.
    public var inputs: [String] = []
    public var outputs: [String] = []
    /// `NAME=VALUE` (`true`/`false` or a number).
    public var sets: [String] = []

    public init(inputs: [String] = [], outputs: [String] = [], sets: [String] = []) {
        (self.inputs, self.outputs, self.sets) = (inputs, outputs, sets)
    }
}

/// Imports TensorFlow frozen GraphDefs (`.pb`): TF1 graphs with `phase_train` and tf.cond batch
/// norm (Switch/Merge resolved on the constant predicate), and graphs frozen the TF2 way.
public enum TensorFlowImporter {
    /// Imports `path`; `notes` collects the choices made (defaults for bool placeholders).
    public static func importModel(path: String, cut: GraphCut = .init(), notes: inout [String]) throws -> Graph {
        var lowering = try TFLowering(try graphDef(path: path), path: path, cut: cut)
        let graph = try lowering.run()
        notes += lowering.notes
        return graph
    }

    /// The file at `path` parsed. Its bytes are read here and go when it returns: the message
    /// holds copies of what it needs, and the file's bytes held through the lowering were a
    /// fourth copy of the weights at the peak (FaceNet: 407 MB for a 94 MB output).
    static func graphDef(path: String) throws(ImportError) -> Tensorflow_GraphDef {
        guard let data = FileManager.default.contents(atPath: path) else { throw .unknownFormat(path: path, reason: "cannot read the file") }
        let graphDef: Tensorflow_GraphDef
        do {
            var options = BinaryDecodingOptions()
            options.messageDepthLimit = 64
            graphDef = try Tensorflow_GraphDef(serializedBytes: data, options: options)
        } catch {
            throw .unknownFormat(path: path, reason: "not a valid GraphDef protobuf (\(error))")
        }
        guard !graphDef.node.isEmpty else { throw .unknownFormat(path: path, reason: "the GraphDef has no nodes") }
        return graphDef
    }
}

/// A tensor reference in a NodeDef input: `name`, `name:k` or `^name` (control).
struct TFRef: Hashable {
    var node: String
    var output: Int
    var isControl: Bool

    init(_ s: String) {
        isControl = s.hasPrefix("^")
        let body = isControl ? String(s.dropFirst()) : s
        if let colon = body.lastIndex(of: ":"), let k = Int(body[body.index(after: colon)...]) {
            node = String(body[..<colon])
            output = k
        } else {
            node = body
            output = 0
        }
    }
}

/// What a tensor is at import time.
enum TFValue {
    case const(HostTensor)
    /// An IR value (graph input or node output).
    case dynamic(String)
    /// Produced by the branch of a Switch that is not taken.
    case dead
    /// Depends on an op fmodel cannot lower (recorded, reported at the end).
    case unsupported
}
