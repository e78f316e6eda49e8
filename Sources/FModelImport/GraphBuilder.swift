import FModelCore

/// Accumulates nodes and tensors while an importer lowers layers, giving each node a unique
/// name and checking its shape as it is added.
package struct GraphBuilder {
    package private(set) var graph = Graph(inputs: [], outputs: [], nodes: [], tensors: [:])
    package private(set) var shapes: [String: Shape] = [:]

    package init() {}

    /// Adds a graph input.
    package mutating func addInput(_ name: String, shape: Shape) -> String {
        let n = unique(name)
        graph.inputs.append(ValueInfo(name: n, shape: shape))
        shapes[n] = shape
        return n
    }

    /// Adds a node with its parameter tensors (named `node/role`) and returns its value name.
    /// - Throws: `GraphError` when the node does not fit its inputs.
    package mutating func add(_ name: String, _ op: Op, inputs: [String], params: [String: Tensor] = [:]) throws(GraphError) -> String {
        let n = unique(name)
        var roles: [String: String] = [:]
        for (role, t) in params {
            roles[role] = "\(n)/\(role)"
            graph.tensors["\(n)/\(role)"] = t
        }
        let node = Node(name: n, op: op, inputs: inputs, params: roles)
        let inShapes = inputs.map { shapes[$0] ?? [] }
        shapes[n] = try graph.inferShape(of: node, inputShapes: inShapes)
        graph.nodes.append(node)
        return n
    }

    /// The shape of a value added so far.
    package func shape(_ value: String) -> Shape { shapes[value] ?? [] }

    private func unique(_ name: String) -> String {
        guard shapes[name] != nil else { return name }
        var k = 1
        while shapes["\(name)_\(k)"] != nil { k += 1 }
        return "\(name)_\(k)"
    }

    /// Finishes with the given outputs.
    package consuming func build(outputs: [String], metadata: ModelMetadata) -> Graph {
        graph.outputs = outputs
        graph.metadata = metadata
        return graph
    }
}
