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

    public init(graph: Graph, layer name: String) throws(PruneError) {
        guard let node = graph.node(named: name), case .dense = node.op else { throw .notADenseLayer(name) }
        self.graph = graph
        layer = node
        var chain: [Node] = [], consumers: [Node] = [], frontier = [name]
        let outputs = Set(graph.outputs)
        while let v = frontier.popLast() {
            if outputs.contains(v) { throw .isAnOutput(v) }
            for reader in graph.nodes where reader.inputs.contains(v) {
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
        var reads: [String: Int] = [:]
        for reader in graph.nodes { for t in reader.params.values { reads[t, default: 0] += 1 } }
        if let shared = ([node] + chain + consumers).flatMap(\.params.values).first(where: { reads[$0, default: 0] > 1 }) {
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
        var g = graph
        try slice(&g, node: layer, role: "kernel", columns: kept)
        try slice(&g, node: layer, role: "bias", columns: kept)
        for node in chain { for role in ["gamma", "beta", "mean", "variance"] { try slice(&g, node: node, role: role, columns: kept) } }
        for c in consumers {
            // A least-squares fit needs at least as many samples as kept units.
            if let x = atReaders[c.inputs[0]], rows > kept.count {
                refit(&g, consumer: c, x: x, rows: rows, kept: Array(kept))
            } else {
                try sliceRows(&g, node: c, rows: Array(kept))
            }
        }
        g.metadata.passes.append("prune_\(layer.name)")
        let report = PruneReport(layer: layer.name, unitsBefore: units, unitsKept: keep, consumers: consumers.map(\.name),
                                 refitted: activations != nil && rows > kept.count, bytesSaved: graph.parameterBytes - g.parameterBytes)
        return (g, report)
    }

    private func slice(_ g: inout Graph, node: Node, role: String, columns kept: [Int]) throws {
        guard let name = node.params[role], let t = g.tensors[name] else { return }
        let w = t.floats(), n = t.shape.last, rows = w.count / n
        var out: [Float] = []
        out.reserveCapacity(rows * kept.count)
        for r in 0..<rows { for j in kept { out.append(w[r * n + j]) } }
        var dims = t.shape.dims
        dims[dims.count - 1] = kept.count
        g.tensors[name] = Tensor(out, shape: Shape(dims))
    }

    private func sliceRows(_ g: inout Graph, node: Node, rows kept: [Int]) throws {
        let name = node.params["kernel"]!, t = g.tensors[name]!
        let w = t.floats(), out = t.shape[1]
        g.tensors[name] = Tensor(kept.flatMap { w[$0 * out..<($0 + 1) * out] }, shape: [kept.count, out])
    }

    /// Least squares with a small ridge: `[X_kept 1]·[W'; b'] ≈ X·W + b` over the data rows.
    private func refit(_ g: inout Graph, consumer c: Node, x: [Float], rows: Int, kept: [Int]) {
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
        g.tensors[c.params["kernel"]!] = Tensor((0..<(k - 1) * out).map { Float(solution[$0]) }, shape: [kept.count, out])
        let biasName = c.params["bias"] ?? "\(c.name)/bias"
        g.tensors[biasName] = Tensor((0..<out).map { Float(solution[(k - 1) * out + $0]) }, shape: [out])
        if let i = g.nodes.firstIndex(where: { $0.name == c.name }) { g.nodes[i].params["bias"] = biasName }
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
