/// What one node costs: parameters, bytes stored and multiply-adds counted as two FLOPs.
public struct NodeCost: Sendable, Hashable, Codable {
    public var parameters: Int
    public var bytes: Int
    /// Floating-point operations for one sample.
    public var flops: Int
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
            let fanIn = k.dropLast().reduce(1, *)
            flops = 2 * out * fanIn
        case .depthwiseConv2D:
            let k = param("kernel", of: node)?.shape.dims ?? [1, 1]
            flops = 2 * out * k[0] * k[1]
        case .maxPool(let p), .avgPool(let p):
            flops = out * p.size.reduce(1, *)
        case .globalAvgPool, .globalMaxPool:
            let input = node.inputs.first.flatMap { shapes[$0] }
            flops = input.map { Shape(Array($0.dims.dropFirst())).elementCount ?? 0 } ?? 0
        default:
            flops = out * max(node.inputs.count, 1)
        }
        return NodeCost(parameters: parameters, bytes: bytes, flops: flops)
    }
}
