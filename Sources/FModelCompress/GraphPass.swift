import FModelCore

/// What one graph pass changed.
public struct PassReport: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The pass's name, as recorded in `ModelMetadata.passes`.
    public var pass: String
    /// Nodes removed from the graph.
    public var nodesRemoved: Int
    /// Parameter bytes no longer stored.
    public var bytesSaved: Int

    public var description: String { "\(pass): \(nodesRemoved) nodes removed, \(bytesSaved) bytes saved" }
}

/// A rewrite of a graph that keeps its outputs (exactly, or within float rounding).
public struct GraphPass: Sendable {
    public let name: String
    let apply: @Sendable (inout Graph) -> Void

    /// Runs the pass, records it in the metadata and reports what it changed.
    public func run(_ graph: inout Graph) -> PassReport {
        let nodes = graph.nodes.count
        let bytes = graph.parameterBytes
        apply(&graph)
        graph.removeUnusedTensors()
        graph.metadata.passes.append(name)
        return PassReport(pass: name, nodesRemoved: nodes - graph.nodes.count, bytesSaved: bytes - graph.parameterBytes)
    }

    /// The lossless passes, in the order they work best.
    public static let lossless: [GraphPass] = [.removeDeadNodes, .removeIdentities, .foldBatchNorm, .fuseActivations]

    /// Runs the lossless passes in order on `graph` (`import --optimize`, the start of shrink).
    public static func runLossless(_ graph: inout Graph) -> [PassReport] {
        lossless.map { $0.run(&graph) }
    }
}

extension Graph {
    /// Bytes of all parameter tensors.
    public var parameterBytes: Int { tensors.values.reduce(0) { $0 + $1.byteCount } }

    /// How many nodes read each value (graph outputs count as readers).
    func consumerCounts() -> [String: Int] {
        var counts: [String: Int] = [:]
        for n in nodes { for i in n.inputs { counts[i, default: 0] += 1 } }
        for o in outputs { counts[o, default: 0] += 1 }
        return counts
    }

    /// Replaces every read of value `old` by `new`.
    mutating func rewire(_ old: String, to new: String) {
        for i in nodes.indices { nodes[i].inputs = nodes[i].inputs.map { $0 == old ? new : $0 } }
    }

    /// Drops tensors no node refers to.
    mutating func removeUnusedTensors() {
        let used = Set(nodes.flatMap { $0.params.values })
        tensors = tensors.filter { used.contains($0.key) }
    }
}
