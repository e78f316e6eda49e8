import FModelCore
import FModelRuntime
import Foundation

/// Why a layer cannot be pruned.
public enum PruneError: Error, Equatable, Sendable, CustomStringConvertible {
    case notADenseLayer(String)
    case cannotDropUnits(layer: String, reader: String, op: String)
    case isAnOutput(String)
    case badKeep(layer: String, keep: Int, units: Int)
    case sharedTensor(layer: String, tensor: String)

    public var description: String {
        switch self {
        case .notADenseLayer(let n): "'\(n)' is not a dense layer of the model"
        case .cannotDropUnits(let l, let r, let op): "'\(l)' feeds '\(r)' (\(op)), which cannot lose units"
        case .isAnOutput(let n): "'\(n)' feeds a model output, whose width must stay"
        case .badKeep(let l, let k, let u): "cannot keep \(k) of the \(u) units of '\(l)'"
        case .sharedTensor(let l, let t): "'\(l)' cannot lose units: tensor '\(t)', which the prune would cut, is read more than once"
        }
    }
}

/// What a prune did.
public struct PruneReport: Sendable, Codable {
    public var layer: String
    public var unitsBefore: Int
    public var unitsKept: Int
    public var consumers: [String]
    public var refitted: Bool
    public var bytesSaved: Int
}

/// Structured pruning of a dense layer: whole units go (columns of its kernel and bias, the
/// matching channels of batch norms between, rows of every dense layer that reads it).
public struct DensePruner {
    public let graph: Graph
    public let layer: Node
    /// Unit-wise nodes between the layer and its readers, and the dense readers.
    let chain: [Node]
    let consumers: [Node]

    /// What a prune needs to know of a graph's structure: where each node is, which nodes read
    /// each value and how many read each tensor. A prune changes tensors, not structure, so one
    /// index serves every prune of a graph and of the graphs pruned from it. (Built anew for
    /// each prune, a shrink plan over a chain of 2,000 dense layers spent 61% of its 24 s on it.)
    public struct Index: Sendable {
        let position: [String: Int]
        let readers: [String: [Int]]
        let tensorReads: [String: Int]
        let outputs: Set<String>

        public init(_ graph: Graph) {
            position = Dictionary(graph.nodes.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { first, _ in first })
            var readers: [String: [Int]] = [:], reads: [String: Int] = [:]
            for (i, node) in graph.nodes.enumerated() {
                for v in Set(node.inputs) { readers[v, default: []].append(i) }
                for t in node.params.values { reads[t, default: 0] += 1 }
            }
            (self.readers, tensorReads, outputs) = (readers, reads, Set(graph.outputs))
        }
    }

    /// The pruner of layer `name`; `index`, if given, must be of `graph` or of a graph it was
    /// pruned from.
    public init(graph: Graph, layer name: String, index: Index? = nil) throws(PruneError) {
        let index = index ?? Index(graph)
        guard let at = index.position[name], case .dense = graph.nodes[at].op else { throw .notADenseLayer(name) }
        let node = graph.nodes[at]
        self.graph = graph
        layer = node
        var chain: [Node] = [], consumers: [Node] = [], frontier = [name]
        while let v = frontier.popLast() {
            if index.outputs.contains(v) { throw .isAnOutput(v) }
            for reader in (index.readers[v] ?? []).map({ graph.nodes[$0] }) {
                switch reader.op {
                case .dense where reader.inputs == [v]: consumers.append(reader)
                case .activation(let a) where a != .softmax: chain.append(reader); frontier.append(reader.name)
                case .dropout, .identity, .scale, .batchNorm: chain.append(reader); frontier.append(reader.name)
                default: throw .cannotDropUnits(layer: name, reader: reader.name, op: reader.op.kind)
                }
            }
        }
        // A tensor the prune cuts must have no other reader (a layer called twice shares its
        // kernel): cut for one, it would no longer fit the other.
        if let shared = ([node] + chain + consumers).flatMap(\.params.values).first(where: { index.tensorReads[$0, default: 0] > 1 }) {
            throw .sharedTensor(layer: name, tensor: shared)
        }
        self.chain = chain
        self.consumers = consumers
    }

    var units: Int { graph.param("kernel", of: layer)!.shape[1] }

    /// The values the dense readers take (one per reader).
    var consumerInputs: [String] { consumers.map { $0.inputs[0] } }

    /// Unit importance: the norm of each unit's outgoing weights times, with data, its mean
    /// activation magnitude at the readers (else the norm of its incoming weights).
    public func importance(activations: [Float]? = nil, rows: Int = 0) -> [Double] {
        let n = units
        var outgoing = [Double](repeating: 0, count: n)
        for c in consumers {
            let w = graph.param("kernel", of: c)!.floats(), out = w.count / n
            for j in 0..<n { for o in 0..<out { outgoing[j] += Double(w[j * out + o] * w[j * out + o]) } }
        }
        var incoming = [Double](repeating: 0, count: n)
        if let activations, rows > 0 {
            for r in 0..<rows { for j in 0..<n { incoming[j] += Double(abs(activations[r * n + j])) / Double(rows) } }
        } else {
            let w = graph.param("kernel", of: layer)!.floats()
            for (i, v) in w.enumerated() { incoming[i % n] += Double(v * v) }
            incoming = incoming.map { $0.squareRoot() }
        }
        return (0..<n).map { incoming[$0] * outgoing[$0].squareRoot() }
    }

    /// Keeps the `keep` most important units. With `inputs`, ranks by activations there and
    /// refits each reader by least squares so its pre-activations change as little as possible.
    public func prune(keep: Int, inputs: [String: FloatTensor]? = nil) throws -> (Graph, PruneReport) {
        let (edit, report) = try self.edit(keep: keep, inputs: inputs)
        var g = graph
        edit.apply(to: &g)
        return (g, report)
    }

    /// What a prune changes in the graph: tensors replaced or added, readers given a bias.
    /// Applied to a graph no pruner holds, it changes that graph in place instead of copying
    /// its table of tensors.
    public struct Edit: Sendable {
        var layer: String
        var tensors: [String: Tensor] = [:]
        var biases: [(node: String, tensor: String)] = []

        public func apply(to g: inout Graph) {
            for (name, t) in tensors { g.tensors[name] = t }
            for (node, bias) in biases {
                if let i = g.nodes.firstIndex(where: { $0.name == node }) { g.nodes[i].params["bias"] = bias }
            }
            g.metadata.passes.append("prune_\(layer)")
        }
    }

    /// The prune as an edit of the graph, not yet applied.
    public func edit(keep: Int, inputs: [String: FloatTensor]? = nil) throws -> (Edit, PruneReport) {
        guard keep > 0, keep <= units else { throw PruneError.badKeep(layer: layer.name, keep: keep, units: units) }
        var activations: [Float]?, rows = 0
        var atReaders: [String: [Float]] = [:]
        if let inputs, let first = consumerInputs.first {
            let values = Array(Set(consumerInputs))
            let out = try Executor(graph: graph).run(inputs, outputs: values)
            for v in values { atReaders[v] = out[v]!.values }
            (activations, rows) = (atReaders[first], atReaders[first]!.count / units)
        }
        let scores = importance(activations: activations, rows: rows)
        let kept = (0..<units).sorted { scores[$0] > scores[$1] }.prefix(keep).sorted()
        var edit = Edit(layer: layer.name)
        slice(&edit, node: layer, role: "kernel", columns: kept)
        slice(&edit, node: layer, role: "bias", columns: kept)
        for node in chain { for role in ["gamma", "beta", "mean", "variance"] { slice(&edit, node: node, role: role, columns: kept) } }
        for c in consumers {
            // A least-squares fit needs at least as many samples as kept units.
            if let x = atReaders[c.inputs[0]], rows > kept.count {
                refit(&edit, consumer: c, x: x, rows: rows, kept: Array(kept))
            } else {
                sliceRows(&edit, node: c, rows: Array(kept))
            }
        }
        let saved = edit.tensors.reduce(0) { $0 + (graph.tensors[$1.key]?.byteCount ?? 0) - $1.value.byteCount }
        let report = PruneReport(layer: layer.name, unitsBefore: units, unitsKept: keep, consumers: consumers.map(\.name),
                                 refitted: activations != nil && rows > kept.count, bytesSaved: saved)
        return (edit, report)
    }

    private func slice(_ edit: inout Edit, node: Node, role: String, columns kept: [Int]) {
        guard let name = node.params[role], let t = graph.tensors[name] else { return }
        let w = t.floats(), n = t.shape.last, rows = w.count / n
        var out: [Float] = []
        out.reserveCapacity(rows * kept.count)
        for r in 0..<rows { for j in kept { out.append(w[r * n + j]) } }
        var dims = t.shape.dims
        dims[dims.count - 1] = kept.count
        edit.tensors[name] = Tensor(out, shape: Shape(dims))
    }

    private func sliceRows(_ edit: inout Edit, node: Node, rows kept: [Int]) {
        let name = node.params["kernel"]!, t = graph.tensors[name]!
        let w = t.floats(), out = t.shape[1]
        edit.tensors[name] = Tensor(kept.flatMap { w[$0 * out..<($0 + 1) * out] }, shape: [kept.count, out])
    }

    /// Least squares with a small ridge: `[X_kept 1]·[W'; b'] ≈ X·W + b` over the data rows.
    private func refit(_ edit: inout Edit, consumer c: Node, x: [Float], rows: Int, kept: [Int]) {
        let w = graph.param("kernel", of: c)!.floats(), n = units, out = w.count / n
        let b = graph.param("bias", of: c)?.floats() ?? [Float](repeating: 0, count: out)
        let k = kept.count + 1
        var a = [Double](repeating: 0, count: k * k), rhs = [Double](repeating: 0, count: k * out)
        for r in 0..<rows {
            let row = x[r * n..<(r + 1) * n]
            let feat = kept.map { Double(row[row.startIndex + $0]) } + [1]
            var y = [Double](repeating: 0, count: out)
            for j in 0..<n where row[row.startIndex + j] != 0 {
                let v = Double(row[row.startIndex + j])
                for o in 0..<out { y[o] += v * Double(w[j * out + o]) }
            }
            for o in 0..<out { y[o] += Double(b[o]) }
            for p in 0..<k {
                for q in 0..<k { a[p * k + q] += feat[p] * feat[q] }
                for o in 0..<out { rhs[p * out + o] += feat[p] * y[o] }
            }
        }
        let trace = (0..<k).reduce(0.0) { $0 + a[$1 * k + $1] }
        for p in 0..<k { a[p * k + p] += 1e-4 * trace / Double(k) + 1e-9 }
        let solution = Cholesky.solve(a, rhs, n: k, columns: out)
        edit.tensors[c.params["kernel"]!] = Tensor((0..<(k - 1) * out).map { Float(solution[$0]) }, shape: [kept.count, out])
        let biasName = c.params["bias"] ?? "\(c.name)/bias"
        edit.tensors[biasName] = Tensor((0..<out).map { Float(solution[(k - 1) * out + $0]) }, shape: [out])
        if c.params["bias"] == nil { edit.biases.append((c.name, biasName)) }
    }
}

/// Solves a symmetric positive definite system `A·X = B` by Cholesky factorisation.
enum Cholesky {
    static func solve(_ a: [Double], _ b: [Double], n: Int, columns: Int) -> [Double] {
        var l = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0...i {
                var s = a[i * n + j]
                for k in 0..<j { s -= l[i * n + k] * l[j * n + k] }
                l[i * n + j] = i == j ? max(s, 1e-12).squareRoot() : s / l[j * n + j]
            }
        }
        var x = b
        for c in 0..<columns {
            for i in 0..<n {
                var s = x[i * columns + c]
                for k in 0..<i { s -= l[i * n + k] * x[k * columns + c] }
                x[i * columns + c] = s / l[i * n + i]
            }
            for i in stride(from: n - 1, through: 0, by: -1) {
                var s = x[i * columns + c]
                for k in (i + 1)..<n { s -= l[k * n + i] * x[k * columns + c] }
                x[i * columns + c] = s / l[i * n + i]
            }
        }
        return x
    }
}
