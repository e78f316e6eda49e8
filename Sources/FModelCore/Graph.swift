/// One operation in a graph. Its output value carries the node's name.
public struct Node: Hashable, Codable, Sendable {
    /// Unique name; also the name of the value this node produces.
    public var name: String
    public var op: Op
    /// Names of the values consumed (graph inputs or earlier nodes).
    public var inputs: [String]
    /// Parameter tensors by role (`kernel`, `bias`, `gamma`, `beta`, `mean`, `variance`).
    public var params: [String: String]

    public init(name: String, op: Op, inputs: [String], params: [String: String] = [:]) {
        self.name = name
        self.op = op
        self.inputs = inputs
        self.params = params
    }
}

/// A graph input: its name and shape, with `-1` for the batch.
public struct ValueInfo: Hashable, Codable, Sendable {
    public var name: String
    public var shape: Shape

    public init(name: String, shape: Shape) {
        self.name = name
        self.shape = shape
    }
}

/// A model: nodes in topological order, named inputs and outputs, and the parameter tensors.
public struct Graph: Sendable {
    public var inputs: [ValueInfo]
    /// Names of the values the model returns, in order.
    public var outputs: [String]
    public var nodes: [Node]
    /// Parameter tensors by name.
    public var tensors: [String: Tensor]
    public var metadata: ModelMetadata

    public init(inputs: [ValueInfo], outputs: [String], nodes: [Node], tensors: [String: Tensor], metadata: ModelMetadata = ModelMetadata()) {
        self.inputs = inputs
        self.outputs = outputs
        self.nodes = nodes
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The node with `name`, if any.
    public func node(named name: String) -> Node? { nodes.first { $0.name == name } }

    /// The tensor bound to `role` in `node`, if any.
    public func param(_ role: String, of node: Node) -> Tensor? {
        node.params[role].flatMap { tensors[$0] }
    }
}

/// How input images are normalised before the first layer.
public enum Preprocess: String, Codable, Sendable, CaseIterable {
    /// FaceNet's per-image standardisation: `(x - mean) / max(std, 1/sqrt(N))`.
    case prewhiten
    /// `x / 255`.
    case scale01
    /// Pixels as they are, 0...255.
    case none
}

/// Facts about where a model came from and what was done to it.
public struct ModelMetadata: Codable, Sendable, Hashable {
    /// File name (no directories) of the source the model was imported from.
    public var sourceFile: String?
    /// Hex sha256 of that source file.
    public var sourceSHA256: String?
    /// `keras-h5`, `tensorflow-pb`, `fmodel`, ...
    public var sourceFormat: String?
    public var preprocess: Preprocess?
    /// Names of the passes applied since import, in order.
    public var passes: [String]
    /// The tool and version that wrote the file.
    public var producer: String?
    /// Optimizer state found in the source (and not imported): tensor count and bytes.
    public var sourceOptimizerTensors: Int?
    public var sourceOptimizerBytes: Int?
    /// Nodes in the source graph before folding (TensorFlow GraphDefs).
    public var sourceNodeCount: Int?

    public init(sourceFile: String? = nil, sourceSHA256: String? = nil, sourceFormat: String? = nil,
                preprocess: Preprocess? = nil, passes: [String] = [], producer: String? = nil) {
        self.sourceFile = sourceFile
        self.sourceSHA256 = sourceSHA256
        self.sourceFormat = sourceFormat
        self.preprocess = preprocess
        self.passes = passes
        self.producer = producer
    }
}
