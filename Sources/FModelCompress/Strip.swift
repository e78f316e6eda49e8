import FModelCore

/// Why a strip cannot be done.
public enum StripError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A named layer is not in the graph.
    case unknownLayer(String, known: Int)
    /// Removing the layers leaves a graph whose shapes do not fit.
    case invalidResult(GraphError)

    public var description: String {
        switch self {
        case .unknownLayer(let n, let k): "the model has no layer '\(n)' (it has \(k) layers; see fmodel inspect)"
        case .invalidResult(let e): "the stripped graph is not valid: \(e)"
        }
    }
}

extension Graph {
    /// Removes the named layers: each one's readers (and an output it was) read its first input
    /// instead. FaceNet: `Bottleneck`, `Bottleneck_BatchNorm`, `Dropout` leave `AvgPool` as the
    /// 1792-d feature.
    public func stripping(layers names: [String]) throws(StripError) -> Graph {
        var g = self
        var alias: [String: String] = [:]
        for name in names {
            guard let node = g.node(named: name), let input = node.inputs.first else {
                throw .unknownLayer(name, known: g.nodes.count)
            }
            alias[name] = alias[input] ?? input
            for (k, v) in alias where v == name { alias[k] = alias[name] }
        }
        g.nodes.removeAll { alias[$0.name] != nil }
        for i in g.nodes.indices { g.nodes[i].inputs = g.nodes[i].inputs.map { alias[$0] ?? $0 } }
        g.outputs = g.outputs.map { alias[$0] ?? $0 }
        return try g.finishedStrip(pass: "strip_layers")
    }

    /// Cuts the graph after `node`, which becomes the only output.
    public func cutting(after node: String) throws(StripError) -> Graph {
        guard self.node(named: node) != nil || inputs.contains(where: { $0.name == node }) else {
            throw .unknownLayer(node, known: nodes.count)
        }
        var g = self
        g.outputs = [node]
        return try g.finishedStrip(pass: "cut_after")
    }

    private func finishedStrip(pass: String) throws(StripError) -> Graph {
        var g = self
        var seen = Set<String>()
        g.outputs = g.outputs.filter { seen.insert($0).inserted }
        _ = GraphPass.removeDeadNodes.run(&g)
        g.metadata.passes[g.metadata.passes.count - 1] = pass
        do { try g.validate() } catch { throw .invalidResult(error) }
        return g
    }
}
