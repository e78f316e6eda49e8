import FModelCore

/// Subgraphs in which TensorFlow writes out, op by op, what the IR has as one op: matched at
/// their last node, which is then lowered to that op on the one activation they read (and the
/// constants they name as its parameters). Their inner nodes are never evaluated, so ops the
/// lowering has no kernel for (Erfc, Pow, Greater, SelectV2; a Tensordot's shape arithmetic on
/// the unknown batch) are no obstacle there; anywhere else they stay unsupported.
struct TFSubgraph {
    /// The activation the op reads.
    var input: TFRef
    var op: Op
    /// The op's parameters by role: constants the lowering evaluates, each flattened to one axis
    /// of the input's channels when `perChannel` (a LayerNormalization's gamma and beta, which
    /// Keras 3 reshapes to [1, 1, 1, C]).
    var params: [(role: String, ref: TFRef, perChannel: Bool)] = []
    /// The axis the op works along, which must be the input's last (-1 or its rank less one),
    /// and the rank the input must have: checked once the input is lowered.
    var axis: Int = -1
    var rank: Int? = nil
}

extension TFLowering {
    /// The subgraph `node` ends, if any:
    /// - `l2_normalize`: `x · rsqrt(max(sum(x², axis, keepdims), ε))`;
    /// - `tf.nn.gelu`, exact: `0.5 · x · erfc(−x · √½)`;
    /// - `tf.nn.gelu(approximate=True)`: `0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))`;
    /// - swish (`tf.nn.silu`): `x · sigmoid(x)`, or `x · sigmoid(1 · x)` as tf-keras writes it;
    /// - Keras's ELU with alpha other than 1: `where(x > 0, elu(x), alpha · elu(x))`;
    /// - LayerNormalization over the last axis, as tf-keras's and Keras 3's `moments` and
    ///   `batch_normalization` write it, or tf-keras's fused form: the activation reshaped to
    ///   [1, pixels, channels, 1], a FusedBatchNorm of it in training mode, NCHW, with a scale of
    ///   ones and an offset of zeros (each pixel a "channel"), reshaped back;
    /// - a Dense layer on more than two axes, which `tf.tensordot` writes as a MatMul between
    ///   two Reshapes.
    func subgraph(_ node: Tensorflow_NodeDef) -> TFSubgraph? {
        switch node.op {
        case "Mul":
            if let (x, eps) = l2Normalize(node) { return TFSubgraph(input: x, op: .l2Normalize(epsilon: eps)) }
            if let (x, approximate) = gelu(node) { return TFSubgraph(input: x, op: .activation(.gelu(approximate: approximate))) }
            if let x = swish(node) { return TFSubgraph(input: x, op: .activation(.swish)) }
            return nil
        case "SelectV2", "Select":
            return scaledElu(node).map { TFSubgraph(input: $0.0, op: .activation(.elu(alpha: $0.1))) }
        case "Add", "AddV2":
            return layerNorm(node)
        case "Reshape":
            return tensordot(node) ?? fusedLayerNorm(node)
        default:
            return nil
        }
    }

    private func l2Normalize(_ node: Tensorflow_NodeDef) -> (TFRef, Float)? {
        for (x, other) in orders(node) {
            guard let rsqrt = producer(other, "Rsqrt"), let maximum = producer(dataInputs(rsqrt).first, "Maximum"),
                  case let m = dataInputs(maximum), m.count == 2, let sum = producer(m[0], "Sum"),
                  let square = producer(dataInputs(sum).first, "Square"), dataInputs(square).first == x,
                  let eps = scalarConstant(m[1]) else { continue }
            return (x, Float(eps))
        }
        return nil
    }

    /// x and whether it is the tanh form, when `node` is `(0.5 · x) · erfc(…)` or
    /// `(0.5 · x) · (1 + tanh(…))` as `tf.nn.gelu` builds them.
    private func gelu(_ node: Tensorflow_NodeDef) -> (TFRef, Bool)? {
        for (half, rest) in orders(node) {
            guard let (c, x) = scaled(producer(half, "Mul")), close(c, 0.5) else { continue }
            if let erfc = producer(rest, "Erfc"), let (k, negated) = scaled(producer(dataInputs(erfc).first, "Mul")),
               close(k, 0.5.squareRoot()), let neg = producer(negated, "Neg"), dataInputs(neg) == [x] {
                return (x, false)
            }
            if let (one, t) = scaled(producer(rest, "AddV2", "Add")), close(one, 1), let tanh = producer(t, "Tanh"),
               let (k, inner) = scaled(producer(dataInputs(tanh).first, "Mul")), close(k, (2 / Double.pi).squareRoot()),
               let sum = producer(inner, "AddV2", "Add") {
                for (y, cubic) in orders(sum) where y == x {
                    guard let (a, p) = scaled(producer(cubic, "Mul")), close(a, 0.044715), let pow = producer(p, "Pow"),
                          case let q = dataInputs(pow), q.count == 2, q[0] == x, scalarConstant(q[1]).map({ close($0, 3) }) == true else { continue }
                    return (x, true)
                }
            }
        }
        return nil
    }

    /// x when `node` is `x · sigmoid(x)` or `x · sigmoid(1 · x)`.
    private func swish(_ node: Tensorflow_NodeDef) -> TFRef? {
        for (x, s) in orders(node) {
            guard let sigmoid = producer(s, "Sigmoid"), let y = dataInputs(sigmoid).first else { continue }
            if y == x { return x }
            if let (beta, z) = scaled(producer(y, "Mul")), z == x, close(beta, 1) { return x }
        }
        return nil
    }

    /// x and alpha when `node` is `SelectV2(x > 0, elu(x), alpha · elu(x))`, tf-keras's
    /// `backend.elu` for alpha other than 1.
    private func scaledElu(_ node: Tensorflow_NodeDef) -> (TFRef, Float)? {
        let refs = dataInputs(node)
        guard refs.count == 3, let greater = producer(refs[0], "Greater"), case let g = dataInputs(greater), g.count == 2,
              scalarConstant(g[1]) == 0, let positive = producer(refs[1], "Elu"), dataInputs(positive) == [g[0]],
              let (alpha, e) = scaled(producer(refs[2], "Mul")), let negative = producer(e, "Elu"), dataInputs(negative) == [g[0]]
        else { return nil }
        return (g[0], Float(alpha))
    }

    /// `x · s + shift`, where `s = rsqrt(variance + ε) [· gamma]` and the shift is
    /// `beta − mean · s` or `−mean · s` (tf-keras) or `−mean · s + beta` (Keras 3), over the
    /// last axis: mean and variance `Mean`s of x and of `SquaredDifference(x, mean)` there.
    private func layerNorm(_ node: Tensorflow_NodeDef) -> TFSubgraph? {
        for (term, shift) in orders(node) {
            for (x, s) in orders(producer(term, "Mul")) {
                guard let (eps, variance, gamma) = normScale(s) else { continue }
                var beta: TFRef?, mean: TFRef?
                if let sub = producer(shift, "Sub"), case let d = dataInputs(sub), d.count == 2 {
                    (beta, mean) = (d[0], centre(d[1], s))
                } else if let neg = producer(shift, "Neg"), let first = dataInputs(neg).first {
                    mean = centre(first, s)
                } else {
                    for (product, b) in orders(producer(shift, "Add", "AddV2")) {
                        if let m = negatedCentre(product, s) { (beta, mean) = (b, m); break }
                    }
                    if beta == nil { mean = negatedCentre(shift, s) }
                }
                guard let mean, let m = producer(mean, "Mean"), let axis = meanAxis(m, of: x),
                      let v = producer(variance, "Mean"), let squares = dataInputs(v).first, meanAxis(v, of: squares) == axis,
                      let d = producer(squares, "SquaredDifference"), case let e = dataInputs(d), e.count == 2, e[0] == x,
                      e[1] == mean || producer(e[1], "StopGradient").map({ dataInputs($0) == [mean] }) == true else { continue }
                var params: [(String, TFRef, Bool)] = []
                if let gamma { params.append(("gamma", gamma, true)) }
                if let beta { params.append(("beta", beta, true)) }
                return TFSubgraph(input: x, op: .layerNorm(epsilon: Float(eps)), params: params, axis: axis)
            }
        }
        return nil
    }

    /// ε, the variance and gamma (nil when unscaled) when `s` is `rsqrt(variance + ε) [· gamma]`.
    private func normScale(_ s: TFRef) -> (Double, TFRef, TFRef?)? {
        func rsqrt(_ r: TFRef) -> (Double, TFRef)? {
            guard let n = producer(r, "Rsqrt"), let (eps, variance) = scaled(producer(dataInputs(n).first, "Add", "AddV2")) else { return nil }
            return (eps, variance)
        }
        if let (eps, variance) = rsqrt(s) { return (eps, variance, nil) }
        for (r, gamma) in orders(producer(s, "Mul")) {
            if let (eps, variance) = rsqrt(r) { return (eps, variance, gamma) }
        }
        return nil
    }

    /// The mean when `product` is `mean · s` (either order).
    private func centre(_ product: TFRef, _ s: TFRef) -> TFRef? {
        orders(producer(product, "Mul")).first { $0.1 == s }?.0
    }

    /// The mean when `product` is `−mean · s`.
    private func negatedCentre(_ product: TFRef, _ s: TFRef) -> TFRef? {
        guard let negated = centre(product, s), let neg = producer(negated, "Neg") else { return nil }
        return dataInputs(neg).first
    }

    /// The one axis over which `mean` averages `x`, keeping it.
    private func meanAxis(_ mean: Tensorflow_NodeDef, of x: TFRef) -> Int? {
        let d = dataInputs(mean)
        guard d.count == 2, d[0] == x, mean.attr["keep_dims"]?.b == true, let axes = constantValue(d[1])?.ints, axes.count == 1 else { return nil }
        return axes[0]
    }

    /// tf-keras's fused LayerNormalization (its gamma and beta follow as a Mul and an Add):
    /// `Reshape(FusedBatchNorm(Reshape(x, [1, ∏ shape[..<k], ∏ shape[k...], 1]), ones, zeros;
    /// training, NCHW), Shape(x))`, which normalises over the axes from k on.
    private func fusedLayerNorm(_ node: Tensorflow_NodeDef) -> TFSubgraph? {
        let d = dataInputs(node)
        guard d.count == 2, let bn = producer(d[0], "FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"),
              bn.attr["is_training"]?.b == true, bn.attr["data_format"].map({ String(decoding: $0.s, as: UTF8.self) }) == "NCHW",
              case let b = dataInputs(bn), b.count >= 3, fill(b[1]) == 1, fill(b[2]) == 0,
              let inner = producer(b[0], "Reshape"), case let r = dataInputs(inner), r.count == 2,
              let x = r.first, let restored = producer(d[1], "Shape"), dataInputs(restored) == [x],
              let pack = producer(r[1], "Pack"), case let p = dataInputs(pack), p.count == 4,
              scalarConstant(p[0]) == 1, scalarConstant(p[3]) == 1,
              let prod = producer(p[2], "Prod"), let slice = producer(dataInputs(prod).first, "StridedSlice"),
              case let s = dataInputs(slice), s.count == 4, let shape = producer(s[0], "Shape"), dataInputs(shape) == [x],
              slice.attr["end_mask"]?.i == 1, let from = constantValue(s[1])?.ints, from.count == 1 else { return nil }
        return TFSubgraph(input: x, op: .layerNorm(epsilon: bn.attr["epsilon"]?.f ?? 0.001), axis: from[0])
    }

    /// The value a `Fill` of a scalar constant fills with.
    private func fill(_ ref: TFRef) -> Double? {
        guard let f = producer(ref, "Fill"), case let d = dataInputs(f), d.count == 2 else { return nil }
        return scalarConstant(d[1])
    }

    /// `tf.tensordot(x, W, [[last], [0]])` where x's batch is unknown:
    /// `Reshape(MatMul(Reshape(Transpose(x, identity), …), W), ConcatV2(Gather(Shape(x), free), [out]))`,
    /// a Dense layer's product on more than two axes. The last Reshape gives the product back x's
    /// shape but for the last axis (its free axes, all before it), so the first one can only have
    /// flattened them: the product is over x's last axis.
    private func tensordot(_ node: Tensorflow_NodeDef) -> TFSubgraph? {
        let d = dataInputs(node)
        guard d.count == 2, let matmul = producer(d[0], "MatMul"), case let m = dataInputs(matmul), m.count == 2,
              !(matmul.attr["transpose_a"]?.b ?? false), !(matmul.attr["transpose_b"]?.b ?? false),
              let flat = producer(m[0], "Reshape"), let transpose = producer(dataInputs(flat).first, "Transpose"),
              case let t = dataInputs(transpose), t.count == 2, let perm = constantValue(t[1])?.ints, perm == Array(0..<perm.count),
              perm.count >= 3,
              let target = producer(d[1], "ConcatV2"), case let c = dataInputs(target), c.count == 3, constantValue(c[2])?.scalar == 0,
              constantValue(c[1])?.count == 1, let gather = producer(c[0], "GatherV2"), case let g = dataInputs(gather), g.count == 3,
              let shape = producer(g[0], "Shape"), dataInputs(shape) == [t[0]], constantValue(g[1])?.ints == Array(0..<perm.count - 1),
              constantValue(g[2])?.scalar == 0 else { return nil }
        return TFSubgraph(input: t[0], op: .dense(activation: .linear), params: [("kernel", m[1], false)], rank: perm.count)
    }

    // MARK: - Matching

    /// A commutative binary node's two inputs in both orders (none when it is not one).
    private func orders(_ node: Tensorflow_NodeDef?) -> [(TFRef, TFRef)] {
        guard let node, case let d = dataInputs(node), d.count == 2 else { return [] }
        return [(d[0], d[1]), (d[1], d[0])]
    }

    /// The value of a small constant subtree (Const nodes, identities and foldable ops over
    /// them, at most 8 deep): shape arguments such as axes and permutations.
    /// A node the lowering has evaluated gives its value from `memo` (an activation, or a value
    /// holding the unknown batch: none), and the walk stops at the first input that is not
    /// constant.
    func constantValue(_ ref: TFRef, depth: Int = 8) -> HostTensor? {
        if let values = memo[ref.node] {
            guard ref.output < values.count, case .const(let c) = values[ref.output], c.unknownBatch.isEmpty else { return nil }
            return c
        }
        guard depth > 0, let n = nodes[ref.node], ref.output == 0 else { return nil }
        switch n.op {
        case "Const":
            guard weights[n.name] == nil else { return nil }  // a weight, not a shape argument
            return try? HostTensor(n.attr["value"]?.tensor ?? .init(), node: n.name, path: path)
        default:
            let refs = dataInputs(n)
            guard !refs.isEmpty, Self.missingInputs(n) == nil else { return nil }
            var values: [HostTensor] = []
            for r in refs {
                guard let v = constantValue(r, depth: depth - 1) else { return nil }
                values.append(v)
            }
            return try? ConstantFolding.evaluate(n.op, values, attr: n.attr, fail: { self.fail(n.name, $0) })
        }
    }

    private func dataInputs(_ node: Tensorflow_NodeDef) -> [TFRef] {
        node.input.filter { !$0.hasPrefix("^") }.map(TFRef.init)
    }

    /// The node whose first output `ref` reads, when it is one of `ops`.
    private func producer(_ ref: TFRef?, _ ops: String...) -> Tensorflow_NodeDef? {
        guard let ref, ref.output == 0, let n = nodes[ref.node], ops.contains(n.op) else { return nil }
        return n
    }

    /// The value of a scalar constant.
    private func scalarConstant(_ ref: TFRef) -> Double? { constantValue(ref)?.scalar }

    /// A commutative binary node (Mul, Add) of a scalar constant and another input: the
    /// constant and that input.
    private func scaled(_ node: Tensorflow_NodeDef?) -> (Double, TFRef)? {
        guard let node, case let refs = dataInputs(node), refs.count == 2 else { return nil }
        if let c = scalarConstant(refs[0]) { return (c, refs[1]) }
        if let c = scalarConstant(refs[1]) { return (c, refs[0]) }
        return nil
    }

    /// TensorFlow's constants are float32 roundings of these.
    private func close(_ value: Double, _ expected: Double) -> Bool { abs(value - expected) <= 1e-6 * max(1, abs(expected)) }
}
