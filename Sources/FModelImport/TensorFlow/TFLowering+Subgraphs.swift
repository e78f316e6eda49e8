import FModelCore

/// Subgraphs in which TensorFlow writes out, op by op, what the IR has as one op: matched at
/// their last node, which is then lowered to that op on the one activation they read. Their
/// inner nodes are never evaluated, so ops the lowering has no kernel for (Erfc, Pow, Greater,
/// SelectV2) are no obstacle there; anywhere else they stay unsupported.
extension TFLowering {
    /// The op and its input when `node` ends one of these subgraphs:
    /// - `l2_normalize`: `x · rsqrt(max(sum(x², axis, keepdims), ε))`;
    /// - `tf.nn.gelu`, exact: `0.5 · x · erfc(−x · √½)`;
    /// - `tf.nn.gelu(approximate=True)`: `0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))`;
    /// - swish (`tf.nn.silu`): `x · sigmoid(x)`, or `x · sigmoid(1 · x)` as tf-keras writes it;
    /// - Keras's ELU with alpha other than 1: `where(x > 0, elu(x), alpha · elu(x))`.
    func subgraph(_ node: Tensorflow_NodeDef) -> (TFRef, Op)? {
        switch node.op {
        case "Mul":
            if let (x, eps) = l2Normalize(node) { return (x, .l2Normalize(epsilon: eps)) }
            if let (x, approximate) = gelu(node) { return (x, .activation(.gelu(approximate: approximate))) }
            if let x = swish(node) { return (x, .activation(.swish)) }
            return nil
        case "SelectV2", "Select":
            return scaledElu(node).map { ($0.0, .activation(.elu(alpha: $0.1))) }
        default:
            return nil
        }
    }

    private func l2Normalize(_ node: Tensorflow_NodeDef) -> (TFRef, Float)? {
        let refs = dataInputs(node)
        guard refs.count == 2 else { return nil }
        for (x, other) in [(refs[0], refs[1]), (refs[1], refs[0])] {
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
        let refs = dataInputs(node)
        guard refs.count == 2 else { return nil }
        for (half, rest) in [(refs[0], refs[1]), (refs[1], refs[0])] {
            guard let (c, x) = scaled(producer(half, "Mul")), close(c, 0.5) else { continue }
            if let erfc = producer(rest, "Erfc"), let (k, negated) = scaled(producer(dataInputs(erfc).first, "Mul")),
               close(k, 0.5.squareRoot()), let neg = producer(negated, "Neg"), dataInputs(neg) == [x] {
                return (x, false)
            }
            if let (one, t) = scaled(producer(rest, "AddV2", "Add")), close(one, 1), let tanh = producer(t, "Tanh"),
               let (k, inner) = scaled(producer(dataInputs(tanh).first, "Mul")), close(k, (2 / Double.pi).squareRoot()),
               let sum = producer(inner, "AddV2", "Add"), case let s = dataInputs(sum), s.count == 2 {
                for (y, cubic) in [(s[0], s[1]), (s[1], s[0])] where y == x {
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
        let refs = dataInputs(node)
        guard refs.count == 2 else { return nil }
        for (x, s) in [(refs[0], refs[1]), (refs[1], refs[0])] {
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

    // MARK: - Matching

    private func dataInputs(_ node: Tensorflow_NodeDef) -> [TFRef] {
        node.input.filter { !$0.hasPrefix("^") }.map(TFRef.init)
    }

    /// The node whose first output `ref` reads, when it is one of `ops`.
    private func producer(_ ref: TFRef?, _ ops: String...) -> Tensorflow_NodeDef? {
        guard let ref, ref.output == 0, let n = nodes[ref.node], ops.contains(n.op) else { return nil }
        return n
    }

    /// The value of a scalar Const node.
    private func scalarConstant(_ ref: TFRef) -> Double? {
        guard let n = producer(ref, "Const") else { return nil }
        return (try? HostTensor(n.attr["value"]?.tensor ?? .init(), node: n.name, path: path))?.scalar
    }

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
