import FModelCore
import FModelFormat
import Foundation

/// Walks a frozen graph from its outputs, folding constants and resolving Switch/Merge, and
/// lowers what remains to IR nodes.
struct TFLowering {
    let path: String
    private(set) var nodes: [String: Tensorflow_NodeDef]
    /// Per node name, its weight's bytes in the mapped file (`FrozenGraph.weights`), decoded from
    /// there; `file` keeps them mapped and takes their pages back once they are.
    let weights: [String: UnsafeRawBufferPointer]
    let file: MappedFile
    var builder = GraphBuilder()
    var memo: [String: [TFValue]] = [:]
    /// Nodes whose evaluation has begun and not ended: one read again is on a cycle.
    var evaluating: Set<String> = []
    /// Readers of each node (inputs listed in the NodeDefs) not yet computed.
    var pendingReaders: [String: Int] = [:]
    /// Weights dropped from `memo` after their last reader (`releaseWeights`); reading one again
    /// would be an importer bug, reported as an error.
    var released: Set<String> = []
    /// The nodes `outputs` names, whose values are read after the walk and so are never released.
    let outputNodes: Set<String>
    var inputSpecs: [String: Shape?] = [:]
    var sets: [String: HostTensor] = [:]
    let outputs: [String]
    var unsupported: [String: (count: Int, example: String)] = [:]
    var notes: [String] = []

    init(_ frozen: FrozenGraph, path: String, cut: GraphCut) throws(ImportError) {
        self.path = path
        file = frozen.file
        let g = frozen.graphDef
        var map: [String: Tensorflow_NodeDef] = [:], contents: [String: UnsafeRawBufferPointer] = [:]
        // Of two nodes of one name, the last is the one read: its weight, or none.
        for (i, n) in g.node.enumerated() { (map[n.name], contents[n.name]) = (n, frozen.content(i)) }
        try FunctionInlining.inline(&map, library: g.library.function, maxNodes: Self.maxNodes, path: path)
        nodes = map
        weights = contents
        for n in map.values { for i in n.input { pendingReaders[TFRef(i).node, default: 0] += 1 } }
        for spec in cut.inputs {
            let parts = spec.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard map[parts[0]] != nil else { throw .badGraph(path: path, node: parts[0], reason: "--inputs names a node the graph does not have") }
            inputSpecs[parts[0]] = try parts.count > 1 ? Self.shape(parts[1], path: path) : nil
        }
        for s in cut.sets {
            let kv = s.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2, map[kv[0]] != nil else { throw .badGraph(path: path, node: kv.first, reason: "--set wants NAME=VALUE with a node of the graph") }
            switch kv[1].lowercased() {
            case "true": sets[kv[0]] = HostTensor(shape: [], values: .bool([true]))
            case "false": sets[kv[0]] = HostTensor(shape: [], values: .bool([false]))
            default:
                guard let v = Float(kv[1]) else { throw .badGraph(path: path, node: kv[0], reason: "--set value '\(kv[1])' is not true, false or a number") }
                sets[kv[0]] = HostTensor(floats: [v], shape: [])
            }
        }
        outputs = cut.outputs.isEmpty ? Self.sinks(g) : cut.outputs
        outputNodes = Set(outputs.map { TFRef($0).node })
        for o in outputs where map[TFRef(o).node] == nil { throw .badGraph(path: path, node: o, reason: "--outputs names a node the graph does not have") }
    }

    /// The most nodes a graph may have once its function calls are inlined (as many as
    /// `TensorFlowImporter.frozenGraph` reads).
    static let maxNodes = 1 << 20

    /// Decoded constants of this many bytes or more (the weights) leave `memo` after their last
    /// reader: the size from which a constant's bytes are left in the file.
    static let releasedConstantBytes = FrozenGraph.weightBytes

    /// The fewest data inputs each op reads, checked before any is used.
    static let arity: [String: Int] = {
        var a: [String: Int] = [:]
        for op in ["Identity", "StopGradient", "Snapshot", "PreventGradient", "Square", "Sqrt", "Rsqrt", "Neg", "Cast", "Squeeze",
                   "Relu", "Relu6", "LeakyRelu", "Elu", "Sigmoid", "Tanh", "Softmax", "MaxPool", "AvgPool", "Shape", "Merge", "Pack"] { a[op] = 1 }
        for op in ["Add", "AddV2", "Sub", "Mul", "RealDiv", "Div", "Maximum", "Minimum", "SquaredDifference", "Reshape", "Prod",
                   "Sum", "Mean", "Max", "Fill", "ExpandDims", "Conv2D", "DepthwiseConv2dNative", "BiasAdd", "MatMul", "Pad", "Switch", "ConcatV2"] { a[op] = 2 }
        a["PadV2"] = 3
        a["StridedSlice"] = 4
        for op in ["FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"] { a[op] = 5 }
        return a
    }()

    /// The inputs `node`'s op needs (`arity`) when it has fewer data inputs; nil when it has
    /// enough. Checked before anything reads them, by `compute` and by the subgraph matchers'
    /// folding.
    static func missingInputs(_ node: Tensorflow_NodeDef) -> Int? {
        guard let needed = arity[node.op], node.input.filter({ !$0.hasPrefix("^") }).count < needed else { return nil }
        return needed
    }

    /// Ops `lower` handles on activations (constant folding handles more on constants).
    static let lowered: Set<String> = [
        "Identity", "StopGradient", "Snapshot", "PreventGradient", "Conv2D", "DepthwiseConv2dNative", "BiasAdd",
        "FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3", "Relu", "Relu6", "LeakyRelu", "Elu", "Sigmoid", "Tanh", "Softmax",
        "MaxPool", "AvgPool", "ConcatV2", "Add", "AddV2", "Sub", "Mul", "RealDiv", "Mean", "Max", "MatMul", "Reshape", "Squeeze",
        "ExpandDims", "Pad", "PadV2", "Shape", "StridedSlice",
    ]

    static func shape(_ s: String, path: String) throws(ImportError) -> Shape {
        // Every field a size: "1x2x" and "" were taken (the empty fields dropped).
        let dims = s.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "x" || $0 == "," })
            .map { $0 == "?" || $0 == "-1" ? -1 : Int($0) ?? -2 }
        guard !dims.isEmpty, dims.allSatisfy({ $0 >= -1 && $0 != 0 }) else { throw .badGraph(path: path, node: nil, reason: "shape '\(s)' is not like 1x160x160x3") }
        return Shape(dims)
    }

    /// Nodes nobody reads, except bookkeeping ops.
    static func sinks(_ g: Tensorflow_GraphDef) -> [String] {
        var read = Set<String>()
        for n in g.node { for i in n.input { read.insert(TFRef(i).node) } }
        let ignored: Set<String> = ["NoOp", "Const", "Placeholder", "Assert", "SaveV2", "RestoreV2", "VarHandleOp", "VariableV2", "FIFOQueueV2"]
        return g.node.filter { !read.contains($0.name) && !ignored.contains($0.op) }.map(\.name)
    }

    func fail(_ node: String, _ reason: String) -> ImportError { .badGraph(path: path, node: node, reason: reason) }

    // MARK: - Driver

    mutating func run() throws -> Graph {
        var outs: [String] = []
        for o in outputs {
            let ref = TFRef(o)
            switch try value(ref) {
            case .dynamic(let v): outs.append(v)
            case .const: throw fail(o, "the output is a constant: nothing to compute")
            case .dead: throw fail(o, "the output is on a branch that is never taken")
            case .unsupported: outs.append("")
            }
        }
        if !unsupported.isEmpty {
            let list = unsupported.sorted { $0.key < $1.key }.map { "\($0.key) ×\($0.value.count) (e.g. \($0.value.example))" }
            throw ImportError.unsupportedOps(path: path, ops: list)
        }
        var graph = builder.build(outputs: outs, metadata: ModelMetadata(sourceFormat: "tensorflow-pb"))
        // Outputs carry the TensorFlow names users fetch (a TF2 graph's `Identity`).
        for (i, o) in outputs.enumerated() where outs[i] != TFRef(o).node {
            graph.rename(outs[i], to: TFRef(o).node)
        }
        graph.metadata.sourceNodeCount = nodes.count
        return graph
    }

    // MARK: - Evaluation

    /// The value of `ref`, evaluated with every node it reads.
    mutating func value(_ ref: TFRef) throws -> TFValue {
        try evaluate(ref.node)
        return try input(ref)
    }

    /// What `compute` needs before it can go on: these nodes, not evaluated yet, in the order
    /// it reads them.
    struct Pending: Error {
        let nodes: [String]
    }

    /// Evaluates `root` and the nodes it reads, depth first in the order `compute` reads them,
    /// with a stack of its own: recursion overflowed the thread's stack on a chain of 5,000
    /// nodes (a crash, SIGSEGV). A node's `compute` that meets an input not yet evaluated
    /// throws `Pending` before it does anything else, and runs again once those are; what it
    /// reads it finds in `memo` then.
    mutating func evaluate(_ root: String) throws {
        var stack = [root]
        while let name = stack.last {
            if !evaluating.contains(name) {
                guard memo[name] == nil else {
                    stack.removeLast()  // evaluated since it was pushed, by another reader
                    continue
                }
                guard !released.contains(name) else { throw fail(name, "is read after its last reader (an importer bug)") }
                guard nodes[name] != nil else { throw fail(name, "is read but not defined in the graph") }
                evaluating.insert(name)
            }
            let node = nodes[name]!
            do {
                memo[name] = try compute(node)
            } catch let pending as Pending {
                stack += pending.nodes.reversed()
                continue
            }
            evaluating.remove(name)
            stack.removeLast()
            releaseWeights(readBy: node)
        }
    }

    /// The value of `ref` for `compute`, once evaluated; else `Pending`.
    func input(_ ref: TFRef) throws -> TFValue {
        guard !evaluating.contains(ref.node) else { throw fail(ref.node, "is on a cycle: it reads itself through its inputs (a while loop? fmodel does not lower loops)") }
        guard let values = memo[ref.node] else { throw Pending(nodes: [ref.node]) }
        guard ref.output < values.count else { throw fail(ref.node, "output :\(ref.output) is not supported") }
        return values[ref.output]
    }

    /// The values of all `refs` for `compute`; `Pending` with every one not evaluated yet, so
    /// that a node of many inputs runs again once, not once for each.
    func inputs(_ refs: [TFRef]) throws -> [TFValue] {
        var seen: Set<String> = []
        let missing = refs.map(\.node).filter { memo[$0] == nil && !evaluating.contains($0) && seen.insert($0).inserted }
        guard missing.isEmpty else { throw Pending(nodes: missing) }
        return try refs.map(input)
    }

    /// Drops from `memo` the decoded weights (constants of `releasedConstantBytes` or more)
    /// that `node`, now computed, was the last to read: the graph holds its own copies of what
    /// it uses, so the lowering does not hold every weight twice at its end. Compute reads only
    /// a node's listed inputs, so no later computation reads them; the outputs are kept.
    private mutating func releaseWeights(readBy node: Tensorflow_NodeDef) {
        for input in node.input {
            let name = TFRef(input).node
            guard let left = pendingReaders[name] else { continue }
            pendingReaders[name] = left - 1
            guard left == 1, !outputNodes.contains(name), let values = memo[name],
                  values.contains(where: { if case .const(let t) = $0 { t.count * 4 >= Self.releasedConstantBytes } else { false } }) else { continue }
            memo[name] = nil
            released.insert(name)
        }
    }

    mutating func compute(_ node: Tensorflow_NodeDef) throws -> [TFValue] {
        if let spec = inputSpecs[node.name] {
            return [.dynamic(try graphInput(node, shape: spec))]
        }
        if let v = sets[node.name] { return [.const(v)] }
        switch node.op {
        case "Const":
            // A constant inside a tf.cond branch hangs on the branch's switch by a control input.
            for v in try inputs(node.input.filter { $0.hasPrefix("^") }.map(TFRef.init)) {
                if case .dead = v { return [.dead] }
            }
            let content = weights[node.name]
            let value = try HostTensor(node.attr["value"]?.tensor ?? .init(), content: content, node: node.name, path: path)
            // Decoded (`memo` keeps the tensor), a weight's pages of the file can go.
            if let content { file.releasePages(content) }
            return [.const(value)]
        case "Placeholder":
            if node.attr["dtype"]?.type == .dtBool {
                notes.append("\(node.name) (bool placeholder) set to false: inference; --set \(node.name)=true to change")
                return [.const(HostTensor(shape: [], values: .bool([false])))]
            }
            guard inputSpecs.isEmpty else { throw fail(node.name, "this placeholder feeds the outputs but is not among --inputs (add it, or --set it)") }
            return [.dynamic(try graphInput(node, shape: nil))]
        case "PlaceholderWithDefault":
            guard let first = node.input.first else { throw fail(node.name, "PlaceholderWithDefault without a default") }
            return [try input(TFRef(first))]
        case "NoOp":
            return [.const(HostTensor(floats: [], shape: [0]))]
        default:
            break
        }
        // A subgraph TensorFlow spells out for one op (l2_normalize, gelu, LayerNormalization, …):
        // read only its x and its parameters.
        if let sub = subgraph(node), let value = try lower(sub, at: node) { return [value] }
        if let needed = Self.missingInputs(node) {
            throw fail(node.name, "\(node.op) needs \(needed) inputs, has \(node.input.filter { !$0.hasPrefix("^") }.count)")
        }
        let refs = node.input.map(TFRef.init), values = try self.inputs(refs)
        let anyDead = values.contains { if case .dead = $0 { true } else { false } }
        let inputs = zip(refs, values).filter { !$0.0.isControl }.map(\.1)
        try checkUnknownBatch(node, inputs)
        switch node.op {
        case "Switch": return try switchOutputs(node, inputs)
        case "Merge":
            let live = inputs.enumerated().filter { if case .dead = $0.element { return false } else { return true } }
            guard let first = live.first else { return [.dead, .dead] }
            return [first.element, .const(HostTensor(ints: [Int64(first.offset)], shape: []))]
        // Each input passed through as its output: how `tf.custom_gradient` (Keras's swish,
        // `tf.nn.silu`) leaves its result in a frozen graph.
        case "IdentityN": return inputs
        default: break
        }
        if anyDead { return [TFValue](repeating: .dead, count: 6) }
        if inputs.contains(where: { if case .unsupported = $0 { return true } else { return false } }) {
            // Downstream of an unsupported op: still list this op if it is unsupported too.
            return Self.lowered.contains(node.op) ? [.unsupported] : [record(node)]
        }
        let consts = inputs.compactMap { if case .const(let c) = $0 { return c } else { return nil } }
        if consts.count == inputs.count, !inputs.isEmpty,
           var folded = try ConstantFolding.evaluate(node.op, consts, attr: node.attr, fail: { self.fail(node.name, $0) }) {
            if consts.contains(where: { !$0.unknownBatch.isEmpty }) {
                folded.unknownBatch = try ConstantFolding.unknownBatch(node.op, consts, attr: node.attr, fail: { self.fail(node.name, $0) })
            }
            return [.const(folded)]
        }
        if node.op == "Shape", case .dynamic(let v) = inputs[0] {
            // The batch, unknown, is -1 and marked as such; another unknown size is an error.
            let s = builder.shape(v)
            guard s.dims.dropFirst().allSatisfy({ $0 >= 0 }) else { throw fail(node.name, "Shape of \(s) needs its sizes known: give --inputs NAME:1x...") }
            var shape = HostTensor(ints: s.dims.map(Int64.init), shape: [s.rank])
            if s.rank > 0, s[0] < 0 { shape.unknownBatch = [0] }
            return [.const(shape)]
        }
        return [try lower(node, inputs)]
    }

    /// Refuses a node that reads the unknown batch size other than to move it (an identity,
    /// StridedSlice, Pack, ConcatV2) into a Reshape's target as its first element, where the
    /// batch is: arithmetic on it would compute with -1 without a word.
    func checkUnknownBatch(_ node: Tensorflow_NodeDef, _ inputs: [TFValue]) throws(ImportError) {
        for (i, v) in inputs.enumerated() {
            guard case .const(let c) = v, !c.unknownBatch.isEmpty else { continue }
            let carried = switch node.op {
            case "Identity", "StopGradient", "Snapshot", "PreventGradient", "IdentityN", "Merge", "Pack": true
            case "Switch", "StridedSlice": i == 0
            case "ConcatV2": i < inputs.count - 1
            case "Reshape": i == 1 && c.unknownBatch == [0]
            default: false
            }
            guard carried else {
                throw fail(node.name, "\(node.op) reads the batch size, which is unknown here: give it with --inputs NAME:1x... (the .fmodel still runs any batch)")
            }
        }
    }

    /// `sub`'s op as the node `node`; nil when its input is a constant or a parameter is not a
    /// constant of the right size (the node is then lowered, or folded, as itself).
    mutating func lower(_ sub: TFSubgraph, at node: Tensorflow_NodeDef) throws -> TFValue? {
        let values = try inputs([sub.input] + sub.params.map(\.ref))
        let x: String
        switch values[0] {
        case .dynamic(let v): x = v
        case .const: return nil
        case .dead, .unsupported: return values[0]
        }
        let shape = builder.shape(x), channels = shape.last
        guard sub.axis == -1 || sub.axis == shape.rank - 1, sub.rank.map({ $0 == shape.rank }) ?? true else { return nil }
        var params: [String: Tensor] = [:]
        for (p, value) in zip(sub.params, values.dropFirst()) {
            guard case .const(let c) = value, c.unknownBatch.isEmpty else { return nil }
            if p.perChannel {
                guard c.count == channels else { return nil }
                params[p.role] = HostTensor(shape: [channels], values: c.values).tensor
            } else {
                params[p.role] = c.tensor
            }
        }
        do { return .dynamic(try builder.add(node.name, sub.op, inputs: [x], params: params)) } catch { throw fail(node.name, error.reason(at: node.name)) }
    }

    mutating func switchOutputs(_ node: Tensorflow_NodeDef, _ inputs: [TFValue]) throws -> [TFValue] {
        guard inputs.count == 2 else { throw fail(node.name, "Switch needs data and predicate") }
        if case .dead = inputs[0] { return [.dead, .dead] }
        guard case .const(let p) = inputs[1], let taken = p.scalar else {
            throw fail(node.name, "the Switch predicate is not a constant: --set the placeholder it depends on (e.g. phase_train=false)")
        }
        return taken != 0 ? [.dead, inputs[0]] : [inputs[0], .dead]
    }

    mutating func graphInput(_ node: Tensorflow_NodeDef, shape spec: Shape?) throws -> String {
        var shape = spec
        if shape == nil, let s = node.attr["shape"]?.shape, !s.unknownRank, !s.dim.isEmpty {
            shape = Shape(s.dim.map { Int($0.size) < 0 ? -1 : Int($0.size) })
        }
        guard let shape, shape.rank >= 1 else { throw fail(node.name, "its shape is unknown: give --inputs \(node.name):?x160x160x3") }
        return builder.addInput(node.name, shape: shape.withBatch(shape[0] > 0 ? shape[0] : -1))
    }

    mutating func record(_ node: Tensorflow_NodeDef) -> TFValue {
        unsupported[node.op, default: (0, node.name)].count += 1
        return .unsupported
    }
}

extension Graph {
    /// Renames value `old` (a node) to `new` everywhere it is read or output.
    mutating func rename(_ old: String, to new: String) {
        guard !nodes.contains(where: { $0.name == new }) else { return }
        for i in nodes.indices {
            if nodes[i].name == old { nodes[i].name = new }
            nodes[i].inputs = nodes[i].inputs.map { $0 == old ? new : $0 }
        }
        outputs = outputs.map { $0 == old ? new : $0 }
    }
}
