import FModelCore

/// Why a graft cannot be done.
public enum GraftError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownNode(String)
    case headsNeedOneInput(Int)
    case shapeMismatch(node: String, base: Shape, heads: Shape)
    case invalidResult(GraphError)

    public var description: String {
        switch self {
        case .unknownNode(let n): "the base model has no node '\(n)'"
        case .headsNeedOneInput(let n): "the head model must have one input, it has \(n)"
        case .shapeMismatch(let n, let b, let h): "'\(n)' gives \(b), the head model takes \(h)"
        case .invalidResult(let e): "the grafted graph is not valid: \(e)"
        }
    }
}

extension Graph {
    /// Attaches `heads` (a model whose one input takes the value at `node`) to this graph: the
    /// result runs this graph up to `node`, then the heads, and returns the heads' outputs.
    /// Head names that clash with the base's get a `heads/` prefix.
    public func grafting(_ heads: Graph, at node: String) throws(GraftError) -> Graph {
        guard heads.inputs.count == 1, let headInput = heads.inputs.first else { throw .headsNeedOneInput(heads.inputs.count) }
        let shapes: [String: Shape]
        do { shapes = try inferShapes() } catch { throw .invalidResult(error) }
        guard let at = shapes[node] else { throw .unknownNode(node) }
        let fits = at.rank == headInput.shape.rank && zip(at.dims, headInput.shape.dims).dropFirst().allSatisfy { $0 == $1 || $1 < 0 }
        guard fits else { throw .shapeMismatch(node: node, base: at, heads: headInput.shape) }
        var g = self
        let taken = Set(nodes.map(\.name) + inputs.map(\.name)).union(tensors.keys)
        func rename(_ n: String) -> String { n == headInput.name ? node : (taken.contains(n) ? "heads/" + n : n) }
        for var n in heads.nodes {
            n.name = rename(n.name)
            n.inputs = n.inputs.map(rename)
            n.params = n.params.mapValues(rename)
            g.nodes.append(n)
        }
        for (name, t) in heads.tensors { g.tensors[rename(name)] = t }
        g.outputs = heads.outputs.map(rename)
        _ = GraphPass.removeDeadNodes.run(&g)
        g.metadata.passes[g.metadata.passes.count - 1] = "graft_at_\(node)"
        do { try g.validate() } catch { throw .invalidResult(error) }
        return g
    }
}
