import FModelCore

extension GraphPass {
    /// Removes nodes whose values never reach an output.
    public static let removeDeadNodes = GraphPass(name: "remove_dead_nodes") { g in
        var live = Set(g.outputs)
        for n in g.nodes.reversed() where live.contains(n.name) { live.formUnion(n.inputs) }
        g.nodes.removeAll { !live.contains($0.name) }
    }

    /// Removes dropout and identity nodes (not graph outputs), reading their inputs instead.
    public static let removeIdentities = GraphPass(name: "remove_identities") { g in
        let outputs = Set(g.outputs)
        var alias: [String: String] = [:]
        for n in g.nodes where !outputs.contains(n.name) && isIdentity(n.op) {
            alias[n.name] = alias[n.inputs[0]] ?? n.inputs[0]
        }
        g.nodes.removeAll { alias[$0.name] != nil }
        for i in g.nodes.indices { g.nodes[i].inputs = g.nodes[i].inputs.map { alias[$0] ?? $0 } }
    }

    /// Folds a batch norm into the conv, depthwise conv or dense node before it, when that node
    /// has no activation and feeds only the batch norm:
    /// `W' = W · γ/√(σ²+ε)` per output channel, `b' = (b − μ) · γ/√(σ²+ε) + β`.
    /// The folded node takes the batch norm's name, so readers need no change.
    public static let foldBatchNorm = GraphPass(name: "fold_batch_norm") { g in
        fuseIntoProducer(&g) { g, producer, node in
            guard linearLayer(producer.op) else { return nil }
            switch node.op {
            case .batchNorm(let eps): return foldedBatchNorm(g, producer: producer, bn: node, epsilon: eps)
            case .affine: return foldedAffine(g, producer: producer, affine: node)
            default: return nil
            }
        }
    }

    /// Moves an activation node into the conv or dense node before it (when that node has none
    /// and feeds only the activation).
    public static let fuseActivations = GraphPass(name: "fuse_activations") { g in
        fuseIntoProducer(&g) { _, producer, node in
            guard case .activation(let a) = node.op, linearLayer(producer.op) else { return nil }
            var fused = producer
            switch producer.op {
            case .conv2D(var attrs):
                guard a != .softmax else { return nil }
                attrs.activation = a
                fused.op = .conv2D(attrs)
            case .depthwiseConv2D(var attrs):
                guard a != .softmax else { return nil }
                attrs.activation = a
                fused.op = .depthwiseConv2D(attrs)
            case .dense: fused.op = .dense(activation: a)
            default: return nil
            }
            return (fused, [:])
        }
    }
}

/// True for ops that pass their input through at inference.
private func isIdentity(_ op: Op) -> Bool {
    if case .dropout = op { return true }
    return op == .identity
}

/// True for a conv or dense node with no activation.
private func linearLayer(_ op: Op) -> Bool {
    switch op {
    case .conv2D(let a), .depthwiseConv2D(let a): a.activation == .linear
    case .dense(let a): a == .linear
    default: false
    }
}

/// Merges node pairs (producer → node) where the producer feeds only `node`: `merge` returns
/// the merged node (named by the caller's choice below) and any new parameter tensors.
private func fuseIntoProducer(_ g: inout Graph, merge: (Graph, Node, Node) -> (Node, [String: Tensor])?) {
    var index = Dictionary(uniqueKeysWithValues: g.nodes.enumerated().map { ($1.name, $0) })
    var removed = Set<Int>()
    let consumers = g.consumerCounts()
    let outputs = Set(g.outputs)
    for (i, node) in g.nodes.enumerated() where node.inputs.count == 1 {
        guard let p = index[node.inputs[0]], !removed.contains(p), consumers[node.inputs[0]] == 1,
              !outputs.contains(g.nodes[p].name), let (merged, tensors) = merge(g, g.nodes[p], node) else { continue }
        var fused = merged
        fused.name = node.name
        for (name, t) in tensors { g.tensors[name] = t }
        g.nodes[i] = fused
        removed.insert(p)
        index[node.name] = i
    }
    g.nodes = g.nodes.enumerated().filter { !removed.contains($0.offset) }.map(\.element)
}

/// The producer with the batch norm folded into its kernel and bias.
private func foldedBatchNorm(_ g: Graph, producer: Node, bn: Node, epsilon: Float) -> (Node, [String: Tensor])? {
    guard let mean = g.param("mean", of: bn)?.floats(), let variance = g.param("variance", of: bn)?.floats() else { return nil }
    let (scale, shift) = BatchNorm.scaleShift(mean: mean, variance: variance, gamma: g.param("gamma", of: bn)?.floats(),
                                              beta: g.param("beta", of: bn)?.floats(), epsilon: epsilon)
    return folded(g, producer: producer, into: bn.name, scale: scale, shift: shift)
}

/// The producer with a per-channel `x · scale + bias` folded into its kernel and bias.
private func foldedAffine(_ g: Graph, producer: Node, affine: Node) -> (Node, [String: Tensor])? {
    let scale = g.param("scale", of: affine)?.floats(), bias = g.param("bias", of: affine)?.floats()
    let channels = scale?.count ?? bias?.count ?? 0
    return folded(g, producer: producer, into: affine.name, scale: scale ?? [Float](repeating: 1, count: channels),
                  shift: bias ?? [Float](repeating: 0, count: channels))
}

/// `W' = W · scale` per output channel, `b' = b · scale + shift`; tensors named after `name`.
private func folded(_ g: Graph, producer: Node, into name: String, scale: [Float], shift: [Float]) -> (Node, [String: Tensor])? {
    guard let kernel = g.param("kernel", of: producer), !scale.isEmpty else { return nil }
    let channels = scale.count
    var w = kernel.floats()
    guard w.count % channels == 0, kernel.shape.last * (producer.op.isDepthwise ? kernel.shape[2] : 1) == channels else { return nil }
    var bias = g.param("bias", of: producer)?.floats() ?? [Float](repeating: 0, count: channels)
    for c in 0..<channels {
        bias[c] = bias[c] * scale[c] + shift[c]
        for j in stride(from: c, to: w.count, by: channels) { w[j] *= scale[c] }
    }
    var result = producer
    result.params = ["kernel": "\(name)/kernel", "bias": "\(name)/bias"]
    return (result, ["\(name)/kernel": Tensor(w, shape: kernel.shape), "\(name)/bias": Tensor(bias, shape: [channels])])
}

extension Op {
    var isDepthwise: Bool {
        if case .depthwiseConv2D = self { return true }
        return false
    }
}
