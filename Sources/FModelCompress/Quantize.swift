import FModelCore
import Foundation

/// The compact encodings a kernel can be stored in.
public enum QuantizationScheme: Sendable, Hashable, CustomStringConvertible {
    case f16
    /// Symmetric int8 with one float32 scale per output channel (the last axis).
    case int8PerChannel
    /// Symmetric int4 with one float16 scale per `groupSize` consecutive values.
    case int4PerGroup(groupSize: Int)

    /// The encoding this scheme stores.
    public var dtype: DType {
        switch self {
        case .f16: .f16
        case .int8PerChannel: .int8PerChannel
        case .int4PerGroup: .int4PerGroup
        }
    }

    public var description: String {
        switch self {
        case .f16: "f16"
        case .int8PerChannel: "int8"
        case .int4PerGroup(let g): "int4/\(g)"
        }
    }
}

extension Tensor {
    /// This tensor (dequantized first if needed) encoded with `scheme`.
    public func quantized(_ scheme: QuantizationScheme) -> Tensor {
        let w = floats()
        switch scheme {
        case .f16:
            return Tensor(dtype: .f16, shape: shape, storage: TensorStorage(values: w.map { Float16($0).bitPattern }))
        case .int8PerChannel:
            let channels = shape.last
            var maxAbs = [Float](repeating: 0, count: channels)
            for (i, v) in w.enumerated() { maxAbs[i % channels] = max(maxAbs[i % channels], abs(v)) }
            let scales = maxAbs.map { $0 / 127 }
            let q = w.enumerated().map { i, v -> Int8 in
                let s = scales[i % channels]
                return s == 0 ? 0 : Int8(max(-127, min(127, (v / s).rounded())))
            }
            return Tensor(dtype: .int8PerChannel, shape: shape, storage: TensorStorage(values: q), scales: TensorStorage(values: scales))
        case .int4PerGroup(let g):
            // In that order: `(count + g - 1) / g` and `(k + 1) * g` overflowed (a crash) for
            // a group near Int.max, which is one group, as is any past the count.
            let groups = w.count / g + (w.count % g == 0 ? 0 : 1)
            var scales = [Float16](repeating: 0, count: groups)
            for k in 0..<groups {
                let m = w[k * g..<(k * g + min(g, w.count - k * g))].reduce(0) { max($0, abs($1)) }
                scales[k] = Float16(m / 7)
            }
            var packed = [UInt8](repeating: 0, count: (w.count + 1) / 2)
            for (i, v) in w.enumerated() {
                let s = Float(scales[i / g])
                let q = s == 0 ? 0 : Int8(max(-7, min(7, (v / s).rounded())))
                let nibble = UInt8(bitPattern: q) & 0x0F
                packed[i / 2] |= i % 2 == 0 ? nibble : nibble << 4
            }
            return Tensor(dtype: .int4PerGroup, shape: shape, storage: TensorStorage(values: packed),
                          scales: TensorStorage(values: scales.map(\.bitPattern)), groupSize: g)
        }
    }
}

/// Which kernels a quantization touches: conv, depthwise and dense kernels whose node name
/// matches an include glob (all when none) and no exclude glob. Biases and batch-norm
/// parameters stay float32.
public struct LayerSelection: Sendable {
    public var include: [String]
    public var exclude: [String]

    public init(include: [String] = [], exclude: [String] = []) {
        self.include = include
        self.exclude = exclude
    }

    /// Nodes (in graph order) whose kernel is selected.
    public func nodes(in graph: Graph) -> [Node] {
        graph.nodes.filter { node in
            guard node.params["kernel"] != nil, node.op.hasKernel else { return false }
            let included = include.isEmpty || include.contains { glob($0, node.name) }
            return included && !exclude.contains { glob($0, node.name) }
        }
    }

    private func glob(_ pattern: String, _ name: String) -> Bool { fnmatch(pattern, name, 0) == 0 }
}

extension Op {
    /// True for ops with a weight kernel.
    public var hasKernel: Bool {
        switch self {
        case .conv2D, .depthwiseConv2D, .dense: true
        default: false
        }
    }
}

extension Graph {
    /// The graph with `node`'s kernel stored as `scheme`.
    public func quantizing(_ node: Node, _ scheme: QuantizationScheme) -> Graph {
        var g = self
        g.quantize(node, scheme)
        return g
    }

    /// Stores `node`'s kernel as `scheme`, in place.
    mutating func quantize(_ node: Node, _ scheme: QuantizationScheme) {
        let name = node.params["kernel"]!
        tensors[name] = tensors[name]!.quantized(scheme)
    }

    /// The selected nodes whose kernel `scheme` would store in fewer bits a value: a kernel
    /// already as compact (int8 for f16, as Keras's own int8 layers import) stays as it is,
    /// rather than grow.
    public func shrinkable(_ selection: LayerSelection, to scheme: QuantizationScheme) -> [Node] {
        selection.nodes(in: self).filter { tensors[$0.params["kernel"]!]!.dtype.bitsPerValue > scheme.dtype.bitsPerValue }
    }

    /// The graph with every selected kernel that would shrink (`shrinkable`) stored as
    /// `scheme`. In place on one copy: a copy of the graph per layer copied its tensors' table
    /// each time, and a model of 50,000 layers took 266 s.
    public func quantizing(_ selection: LayerSelection, _ scheme: QuantizationScheme) -> Graph {
        quantizing(shrinkable(selection, to: scheme), scheme)
    }

    /// The graph with the kernels of `nodes` stored as `scheme`, and the pass recorded.
    public func quantizing(_ nodes: [Node], _ scheme: QuantizationScheme) -> Graph {
        var g = self
        for node in nodes { g.quantize(node, scheme) }
        g.metadata.passes.append("quantize_\(scheme)")
        return g
    }
}
