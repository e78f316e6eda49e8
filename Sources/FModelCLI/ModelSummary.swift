import FModelCore

/// Per-node and total costs of a graph, as `inspect` reports them.
struct ModelSummary: Codable {
    struct Row: Codable {
        var name: String
        var op: String
        var inputs: [String]
        var outputShape: [Int]
        var parameters: Int
        var bytes: Int
        var dtype: String
        var flops: Int
    }

    struct Value: Codable {
        var name: String
        var shape: [Int]
    }

    var inputs: [Value]
    var outputs: [Value]
    var layers: [Row]
    var parameters: Int
    var bytes: Int
    var flops: Int
    var metadata: ModelMetadata

    init(_ graph: Graph) {
        let shapes = (try? graph.inferShapes()) ?? [:]
        inputs = graph.inputs.map { Value(name: $0.name, shape: $0.shape.dims) }
        outputs = graph.outputs.map { Value(name: $0, shape: shapes[$0]?.dims ?? []) }
        layers = graph.nodes.map { node in
            let cost = graph.cost(of: node, shapes: shapes)
            let dtypes = Set(node.params.values.compactMap { graph.tensors[$0]?.dtype.rawValue })
            return Row(name: node.name, op: node.op.kind, inputs: node.inputs, outputShape: shapes[node.name]?.dims ?? [],
                       parameters: cost.parameters, bytes: cost.bytes, dtype: dtypes.sorted().joined(separator: "+"), flops: cost.flops)
        }
        parameters = layers.reduce(0) { $0 + $1.parameters }
        bytes = layers.reduce(0) { $0 + $1.bytes }
        flops = NodeCost.sum(layers.map(\.flops))
        metadata = graph.metadata
    }
}
