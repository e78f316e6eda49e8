extension Graph {
    /// The largest dimension, window, stride, dilation or padding a graph may state, and the
    /// most values one image of any value may hold: within them the arithmetic on shapes and
    /// sizes cannot overflow (a hostile file's 2^40 pool window trapped the cost count), and a
    /// dimension, or an input's extent with a window's, fits the 32-bit integers the kernels
    /// take (a dilation of 2^31 trapped the conversion). No dimension but the batch may be 0.
    public static let maxDimension = Int(Int32.max)
    public static let maxImageValues = 1 << 31

    /// Infers the shape of every value, checking each node's inputs, parameters and attributes.
    ///
    /// - Parameter batch: the batch size to assume; nil keeps it unknown (`-1`).
    /// - Returns: shapes by value name (graph inputs and node outputs).
    /// - Throws: `GraphError` naming the first node that does not fit.
    public func inferShapes(batch: Int? = nil) throws(GraphError) -> [String: Shape] {
        var shapes: [String: Shape] = [:]
        for input in inputs {
            guard shapes[input.name] == nil else { throw .duplicateName(input.name) }
            shapes[input.name] = batch.map { input.shape.withBatch($0) } ?? input.shape
            try Self.checkSize(shapes[input.name]!, of: input.name, batchKnown: batch != nil, input: true)
        }
        for node in nodes {
            guard shapes[node.name] == nil else { throw .duplicateName(node.name) }
            var inShapes: [Shape] = []
            for v in node.inputs {
                guard let s = shapes[v] else { throw .unknownValue(node: node.name, value: v) }
                inShapes.append(s)
            }
            let shape = try ShapeRules(graph: self, node: node, inputs: inShapes).output()
            try Self.checkSize(shape, of: node.name, batchKnown: batch != nil)
            shapes[node.name] = shape
        }
        for o in outputs where shapes[o] == nil { throw .unknownOutput(o) }
        return shapes
    }

    /// Infers the output shape of one node from its input shapes, checking it as `inferShapes` does.
    package func inferShape(of node: Node, inputShapes: [Shape]) throws(GraphError) -> Shape {
        let shape = try ShapeRules(graph: self, node: node, inputs: inputShapes).output()
        try Self.checkSize(shape, of: node.name)
        return shape
    }

    /// With `batchKnown` (a run's shapes) no dimension may be unknown: the runtime sizes every
    /// buffer from them, and binds only the batch of its inputs.
    static func checkSize(_ s: Shape, of name: String, batchKnown: Bool = false, input: Bool = false) throws(GraphError) {
        func fail(_ reason: String) -> GraphError { input ? .invalidInput(name: name, reason: reason) : .invalidNode(node: name, reason: reason) }
        if batchKnown, s.dims.contains(where: { $0 < 0 }) {
            throw fail("shape \(s) has an unknown dimension (only the batch may be unknown)")
        }
        guard s.dims.allSatisfy({ $0 >= -1 && $0 <= maxDimension }),
              let n = Shape(s.dims.dropFirst().map { max($0, 1) }).elementCount, n <= maxImageValues else {
            throw fail("shape \(s) is too large (at most 2^31 − 1 a dimension and 2^31 values an image)")
        }
        // An image of no values (a conv of no channels) is nothing a model computes, and the
        // kernels divide by its sizes.
        guard !s.dims.dropFirst().contains(0) else { throw fail("shape \(s) has a dimension of 0") }
    }

    /// Checks the graph is well formed: shapes, parameters, tensor sizes and outputs.
    /// - Returns: the shapes it inferred (`inferShapes()`), for a caller that needs them too.
    @discardableResult
    public func validate() throws(GraphError) -> [String: Shape] {
        for (name, t) in tensors { try t.validate(name: name) }
        return try inferShapes()
    }
}

/// Output-shape rules per op, with the checks that make a node runnable.
private struct ShapeRules {
    let graph: Graph
    let node: Node
    let inputs: [Shape]

    func fail(_ reason: String) -> GraphError { .invalidNode(node: node.name, reason: reason) }

    func param(_ role: String) throws(GraphError) -> Tensor {
        guard let t = graph.param(role, of: node) else { throw .missingParameter(node: node.name, role: role) }
        return t
    }

    func single() throws(GraphError) -> Shape {
        guard inputs.count == 1 else { throw fail("takes 1 input, has \(inputs.count)") }
        return inputs[0]
    }

    func image() throws(GraphError) -> Shape {
        let s = try single()
        guard s.rank == 4 else { throw fail("needs an NHWC input, got \(s)") }
        return s
    }

    func checkBias(channels: Int) throws(GraphError) {
        guard node.params["bias"] != nil else { return }
        let b = try param("bias")
        guard b.shape == [channels] else { throw fail("bias \(b.shape) does not match \(channels) channels") }
    }

    func window(_ n: Int, _ k: Int, _ stride: Int, _ dilation: Int, _ padding: Padding) throws(GraphError) -> Int {
        guard k > 0, stride > 0, dilation > 0 else { throw fail("window \(k), stride \(stride), dilation \(dilation) must be positive") }
        guard max(k, stride, dilation) <= Graph.maxDimension else { throw fail("window \(k), stride \(stride), dilation \(dilation): at most 2^31 − 1") }
        // The dilated window and the input together (a "same" layer's padded extent is less).
        let effective = (k - 1) * dilation + 1
        guard effective <= Graph.maxDimension - max(n, 0) else {
            throw fail("window \(k) dilated by \(dilation) spans \(effective): with the input's \(n), more than 2^31 − 1")
        }
        if n < 0 { return -1 }
        switch padding {
        case .same: return (n + stride - 1) / stride
        case .valid:
            guard n >= effective else { throw fail("window \(effective) is larger than the input's \(n)") }
            return (n - effective) / stride + 1
        }
    }

    func checkPair(_ v: [Int], _ what: String) throws(GraphError) {
        guard v.count == 2 else { throw fail("\(what) needs 2 values, has \(v.count)") }
    }

    func output() throws(GraphError) -> Shape {
        // A role the op does not read is a file that says something the runtime would ignore
        // (a hostile one's extra role naming a tensor twice trapped `shrink`'s planner).
        let roles = node.op.parameterRoles
        if let role = node.params.keys.filter({ !roles.contains($0) }).min() {
            throw fail("names a '\(role)' tensor, which a \(node.op.kind) node does not take")
        }
        switch node.op {
        case .conv2D(let a): return try conv(a, depthwise: false)
        case .depthwiseConv2D(let a): return try conv(a, depthwise: true)
        case .dense: return try dense()
        case .batchNorm: return try batchNorm()
        case .layerNorm(let e):
            let s = try single()
            guard e.isFinite, e >= 0 else { throw fail("epsilon \(e) is not a finite number ≥ 0") }
            for role in ["gamma", "beta"] where node.params[role] != nil {
                guard try param(role).shape == [s.last] else { throw fail("\(role) does not have \(s.last) channels") }
            }
            return s
        case .affine:
            let s = try single()
            guard node.params["scale"] != nil || node.params["bias"] != nil else { throw fail("affine without scale or bias") }
            for role in ["scale", "bias"] where node.params[role] != nil {
                guard try param(role).shape == [s.last] else { throw fail("\(role) does not have \(s.last) channels") }
            }
            return s
        case .activation, .scale, .dropout, .identity, .l2Normalize: return try single()
        case .maxPool(let p), .avgPool(let p): return try pool(p)
        case .globalAvgPool(let keep), .globalMaxPool(let keep):
            let s = try image()
            return keep ? [s[0], 1, 1, s[3]] : [s[0], s[3]]
        case .concat(let axis): return try concat(axis)
        case .add, .mul: return try elementwise()
        case .reshape(let target): return try reshape(target)
        case .flatten:
            let s = try single()
            guard let inner = Shape(Array(s.dims.dropFirst())).elementCount else { throw fail("cannot flatten \(s)") }
            return [s[0], inner]
        case .zeroPad(let t, let b, let l, let r):
            let s = try image()
            guard min(t, b, l, r) >= 0 else { throw fail("negative padding") }
            guard max(t, b, l, r) <= Graph.maxDimension else { throw fail("padding of more than 2^31 − 1") }
            return [s[0], s[1] < 0 ? -1 : s[1] + t + b, s[2] < 0 ? -1 : s[2] + l + r, s[3]]
        case .crop(let t, let b, let l, let r):
            let s = try image()
            guard min(t, b, l, r) >= 0, max(t, b, l, r) <= Graph.maxDimension else { throw fail("crop of \([t, b, l, r]) is not 0 to 2^31 − 1") }
            guard s[1] < 0 || t + b < s[1], s[2] < 0 || l + r < s[2] else { throw fail("crop of \([t, b, l, r]) leaves nothing of \(s)") }
            return [s[0], s[1] < 0 ? -1 : s[1] - t - b, s[2] < 0 ? -1 : s[2] - l - r, s[3]]
        }
    }

    func conv(_ a: ConvAttributes, depthwise: Bool) throws(GraphError) -> Shape {
        let s = try image()
        try checkPair(a.strides, "strides")
        try checkPair(a.dilations, "dilations")
        let k = try param("kernel")
        guard k.shape.rank == 4, k.shape[2] == s[3] else { throw fail("kernel \(k.shape) does not fit input \(s)") }
        let cout = depthwise ? k.shape[2] * k.shape[3] : k.shape[3]
        try checkBias(channels: cout)
        let h = try window(s[1], k.shape[0], a.strides[0], a.dilations[0], a.padding)
        let w = try window(s[2], k.shape[1], a.strides[1], a.dilations[1], a.padding)
        return [s[0], h, w, cout]
    }

    func dense() throws(GraphError) -> Shape {
        let s = try single()
        let k = try param("kernel")
        guard s.rank >= 2, k.shape.rank == 2, k.shape[0] == s.last else { throw fail("kernel \(k.shape) does not fit input \(s)") }
        try checkBias(channels: k.shape[1])
        var d = s.dims
        d[d.count - 1] = k.shape[1]
        return Shape(d)
    }

    func batchNorm() throws(GraphError) -> Shape {
        let s = try single()
        let c = s.last
        for role in ["mean", "variance", "gamma", "beta"] where role == "mean" || role == "variance" || node.params[role] != nil {
            guard try param(role).shape == [c] else { throw fail("\(role) does not have \(c) channels") }
        }
        return s
    }

    func pool(_ p: PoolAttributes) throws(GraphError) -> Shape {
        let s = try image()
        try checkPair(p.size, "pool size")
        try checkPair(p.strides, "strides")
        return [s[0], try window(s[1], p.size[0], p.strides[0], 1, p.padding),
                try window(s[2], p.size[1], p.strides[1], 1, p.padding), s[3]]
    }

    func concat(_ axis: Int) throws(GraphError) -> Shape {
        guard let first = inputs.first else { throw fail("has no inputs") }
        let ax = axis < 0 ? first.rank + axis : axis
        guard ax >= 1, ax < first.rank else { throw fail("axis \(axis) is out of range for \(first)") }
        var total = 0
        for s in inputs {
            guard s.rank == first.rank else { throw fail("inputs differ in rank") }
            for i in 0..<s.rank where i != ax && s[i] != first[i] { throw fail("inputs \(first) and \(s) differ off the axis") }
            total += s[ax]
        }
        var d = first.dims
        d[ax] = total
        return Shape(d)
    }

    /// The inputs broadcast together: each expanded to the highest rank (`Shape.expanded`),
    /// then along each axis all of one size or 1 (squeeze-and-excitation's `[N, 1, 1, C]`
    /// against `[N, H, W, C]`, spatial attention's `[N, H, W, 1]`). The batch is never broadcast.
    func elementwise() throws(GraphError) -> Shape {
        guard inputs.count >= 2 else { throw fail("needs at least 2 inputs") }
        let rank = inputs.map(\.rank).max()!
        guard inputs.allSatisfy({ $0.rank >= 2 }) else { throw fail("inputs \(inputs.map(\.description).joined(separator: " and ")) need a batch and channels") }
        var out = inputs[0].expanded(toRank: rank).dims
        for s in inputs.dropFirst() {
            let e = s.expanded(toRank: rank)
            for i in 0..<rank where e[i] != out[i] {
                // An unknown size (-1) takes a known one; only a 1 broadcasts.
                if i > 0, e[i] == 1 { continue }
                guard i > 0, out[i] == 1 || out[i] < 0 || e[i] < 0 else {
                    throw fail("inputs \(inputs.map(\.description).joined(separator: " and ")) do not broadcast")
                }
                if out[i] == 1 || out[i] < 0 { out[i] = e[i] }
            }
        }
        return Shape(out)
    }

    func reshape(_ target: [Int]) throws(GraphError) -> Shape {
        let s = try single()
        guard let inner = Shape(Array(s.dims.dropFirst())).elementCount else { throw fail("cannot reshape \(s)") }
        let unknown = target.filter { $0 == -1 }.count
        guard unknown <= 1, target.allSatisfy({ $0 == -1 || $0 > 0 }),
              let known = Shape(target.filter { $0 > 0 }).elementCount else { throw fail("bad target \(target)") }
        var d = target
        if let i = d.firstIndex(of: -1) {
            guard known > 0, inner % known == 0 else { throw fail("cannot reshape \(s) to \(target)") }
            d[i] = inner / known
        } else if known != inner {
            throw fail("cannot reshape \(s) to \(target)")
        }
        return Shape([s[0]] + d)
    }
}
