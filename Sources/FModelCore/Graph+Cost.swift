/// What one node costs: parameters, bytes stored and multiply-adds counted as two FLOPs.
public struct NodeCost: Sendable, Hashable, Codable {
    public var parameters: Int
    public var bytes: Int
    /// Floating-point operations for one sample; `Int.max` where the count does not fit.
    public var flops: Int

    /// A count's product and sum, saturating at `Int.max`: FLOPs are counted, not allocated, and
    /// a graph within `Graph.maxDimension` can still state more than an Int holds (a 2^30 pool
    /// window over 2^30 values); counting them must not trap.
    public static func product(_ factors: [Int]) -> Int {
        factors.reduce(1) { p, f in let (r, o) = p.multipliedReportingOverflow(by: f); return o ? .max : r }
    }

    public static func sum(_ terms: some Sequence<Int>) -> Int {
        terms.reduce(0) { s, t in let (r, o) = s.addingReportingOverflow(t); return o ? .max : r }
    }
}

extension Graph {
    /// Parameters, stored bytes and per-sample FLOPs of `node`, given the inferred output shape.
    public func cost(of node: Node, shapes: [String: Shape]) -> NodeCost {
        let params = node.params.values.compactMap { tensors[$0] }
        let parameters = params.reduce(0) { $0 + $1.count }
        let bytes = params.reduce(0) { $0 + $1.byteCount }
        let out = shapes[node.name].map { Shape(Array($0.dims.dropFirst())).elementCount ?? 0 } ?? 0
        let flops: Int
        switch node.op {
        case .conv2D, .dense:
            let k = param("kernel", of: node)?.shape.dims ?? []
            flops = NodeCost.product([2, out] + k.dropLast())
        case .depthwiseConv2D:
            let k = param("kernel", of: node)?.shape.dims ?? [1, 1]
            flops = NodeCost.product([2, out, k[0], k[1]])
        case .maxPool(let p), .avgPool(let p):
            flops = NodeCost.product([out] + p.size)
        case .globalAvgPool, .globalMaxPool:
            let input = node.inputs.first.flatMap { shapes[$0] }
            flops = input.map { Shape(Array($0.dims.dropFirst())).elementCount ?? 0 } ?? 0
        default:
            flops = NodeCost.product([out, max(node.inputs.count, 1)])
        }
        return NodeCost(parameters: parameters, bytes: bytes, flops: flops)
    }
}
