import Foundation
import FModelCore

/// TensorFlow ops with a dynamic input, lowered to IR nodes.
extension TFLowering {
    mutating func lower(_ node: Tensorflow_NodeDef, _ inputs: [TFValue]) throws -> TFValue {
        let name = node.name
        func dyn(_ i: Int) -> String? { if i < inputs.count, case .dynamic(let v) = inputs[i] { return v } else { return nil } }
        func const(_ i: Int) -> HostTensor? { if i < inputs.count, case .const(let c) = inputs[i] { return c } else { return nil } }
        let a = node.attr
        switch node.op {
        case "Identity", "StopGradient", "Snapshot", "PreventGradient":
            return inputs[0]
        case "Conv2D", "DepthwiseConv2dNative":
            guard let x = dyn(0), let w = const(1) else { return record(node) }
            try requireNHWC(a, name)
            let attrs = ConvAttributes(strides: try pair(a["strides"], name), dilations: try pair(a["dilations"], name, default: [1, 1]),
                                       padding: try padding(a, name))
            let channels = builder.shape(x).last
            if node.op == "Conv2D", w.shape.count == 4, w.shape[2] != channels, channels > 0 {
                // Grouped (a kernel of fewer input channels than the input): tf-keras's
                // Conv2D(groups=) as XLA compiles it. One group an input channel is a depthwise
                // convolution, the kernel [h, w, 1, out] read as HWCM, [h, w, channels, out / channels].
                guard w.shape[2] == 1, w.shape[3] % channels == 0 else {
                    throw fail(name, "Conv2D of \(channels) input channels by a kernel of \(w.shape[2]): groups of \(w.shape[2]) channels are not supported (only one channel a group, a depthwise convolution)")
                }
                let kernel = w.tensor
                return try emit(name, .depthwiseConv2D(attrs), [x],
                                ["kernel": Tensor(dtype: kernel.dtype, shape: [w.shape[0], w.shape[1], channels, w.shape[3] / channels], storage: kernel.storage)])
            }
            return try emit(name, node.op == "Conv2D" ? .conv2D(attrs) : .depthwiseConv2D(attrs), [x], ["kernel": w.tensor])
        case "BiasAdd":
            guard let x = dyn(0), let b = const(1) else { return record(node) }
            if builder.shape(x).rank > 2 { try requireNHWC(a, name) }  // NCHW adds along axis 1
            return try emit(name, .affine, [x], ["bias": b.tensor])
        case "FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3":
            guard let x = dyn(0), let scale = const(1), let offset = const(2), let mean = const(3), let variance = const(4) else { return record(node) }
            guard !(a["is_training"]?.b ?? false) else { throw fail(name, "batch norm in training mode on the inference path (is_training=true)") }
            try requireNHWC(a, name)
            return try emit(name, .batchNorm(epsilon: a["epsilon"]?.f ?? 0.001), [x],
                           ["gamma": scale.tensor, "beta": offset.tensor, "mean": mean.tensor, "variance": variance.tensor])
        case "Relu": return try activation(.relu, inputs, node)
        case "Relu6": return try activation(.relu6, inputs, node)
        case "LeakyRelu": return try activation(.leakyRelu(alpha: a["alpha"]?.f ?? 0.2), inputs, node)
        case "Sigmoid": return try activation(.sigmoid, inputs, node)
        case "Tanh": return try activation(.tanh, inputs, node)
        case "Elu": return try activation(.elu(alpha: 1), inputs, node)
        case "Softmax": return try activation(.softmax, inputs, node)
        case "MaxPool", "AvgPool":
            guard let x = dyn(0) else { return record(node) }
            try requireNHWC(a, name)
            let p = PoolAttributes(size: try pair(a["ksize"], name), strides: try pair(a["strides"], name), padding: try padding(a, name))
            return try emit(name, node.op == "MaxPool" ? .maxPool(p) : .avgPool(p), [x])
        case "ConcatV2":
            guard let axis = const(inputs.count - 1)?.scalar else { return record(node) }
            let parts = (0..<(inputs.count - 1)).compactMap(dyn)
            guard parts.count == inputs.count - 1 else { throw fail(name, "concatenation of constants and activations is not supported") }
            return try emit(name, .concat(axis: Int(axis)), parts)
        case "Add", "AddV2", "Sub", "Mul", "RealDiv":
            return try arithmetic(node, inputs)
        case "Mean", "Max":
            // Over height and width: Keras's global pooling.
            guard let x = dyn(0), let axes = const(1)?.ints, Set(axes.map { $0 < 0 ? $0 + 4 : $0 }) == [1, 2], builder.shape(x).rank == 4 else { return record(node) }
            let keep = a["keep_dims"]?.b ?? false
            return try emit(name, node.op == "Mean" ? .globalAvgPool(keepDims: keep) : .globalMaxPool(keepDims: keep), [x])
        case "MatMul":
            guard let x = dyn(0), var w = const(1), !(a["transpose_a"]?.b ?? false) else { return record(node) }
            if a["transpose_b"]?.b ?? false { w = transpose(w) }
            return try emit(name, .dense(activation: .linear), [x], ["kernel": w.tensor])
        case "Reshape":
            guard let x = dyn(0), let target = const(1)?.ints, !target.isEmpty else { return record(node) }
            let s = builder.shape(x)
            if target.count == 2, target[1] == -1 || (target[0] == -1 && Shape(Array(s.dims.dropFirst())).elementCount == target[1]) {
                return try emit(name, .flatten, [x])
            }
            return try emit(name, .reshape(shape: Array(target.dropFirst())), [x])
        case "Squeeze":
            guard let x = dyn(0) else { return record(node) }
            let s = builder.shape(x).dims
            let axes = Set((a["squeeze_dims"]?.list.i ?? []).map { Int($0) < 0 ? Int($0) + s.count : Int($0) })
            let kept = s.enumerated().filter { i, d in i == 0 || !(d == 1 && (axes.isEmpty || axes.contains(i))) }.map(\.element)
            return try emit(name, .reshape(shape: Array(kept.dropFirst())), [x])
        case "ExpandDims":
            guard let x = dyn(0), let axis = const(1)?.scalar else { return record(node) }
            var s = builder.shape(x).dims
            let i = Int(axis) < 0 ? Int(axis) + s.count + 1 : Int(axis)
            guard i >= 1, i <= s.count else { return record(node) }
            s.insert(1, at: i)
            return try emit(name, .reshape(shape: Array(s.dropFirst())), [x])
        case "StridedSlice":
            guard let x = dyn(0), let begin = const(1)?.ints, let end = const(2)?.ints, let strides = const(3)?.ints else { return record(node) }
            return try emit(name, try crop(x, begin: begin, end: end, strides: strides, a, name), [x])
        case "Pad", "PadV2":
            guard let x = dyn(0), let p = const(1)?.ints, p.count == 8, p[0] == 0, p[1] == 0, p[6] == 0, p[7] == 0,
                  node.op == "Pad" || const(2)?.scalar == 0 else { return record(node) }
            return try emit(name, .zeroPad(top: p[2], bottom: p[3], left: p[4], right: p[5]), [x])
        default:
            return record(node)
        }
    }

    /// Adds an IR node named after the TensorFlow node.
    private mutating func emit(_ name: String, _ op: Op, _ ins: [String], _ params: [String: Tensor] = [:]) throws -> TFValue {
        do { return .dynamic(try builder.add(name, op, inputs: ins, params: params)) } catch { throw fail(name, error.reason(at: name)) }
    }

    private mutating func activation(_ act: Activation, _ inputs: [TFValue], _ node: Tensorflow_NodeDef) throws -> TFValue {
        guard case .dynamic(let x) = inputs[0] else { return record(node) }
        return try emit(node.name, .activation(act), [x], [:])
    }

    /// Element-wise arithmetic: two activations (add, mul, or FaceNet's l2 normalisation), or
    /// an activation with a scalar or per-channel constant (scale or affine).
    private mutating func arithmetic(_ node: Tensorflow_NodeDef, _ inputs: [TFValue]) throws -> TFValue {
        guard inputs.count == 2 else { return record(node) }
        let name = node.name
        switch (inputs[0], inputs[1]) {
        case (.dynamic(let x), .dynamic(let y)):
            // TensorFlow aligns shapes from the last axis, fmodel's nodes after the batch (as
            // Keras's merge layers): they agree when the ranks do.
            let (sx, sy) = (builder.shape(x), builder.shape(y))
            guard sx.rank == sy.rank else { throw fail(name, "\(node.op) of \(sx) and \(sy): shapes of different ranks are not supported") }
            if node.op == "Add" || node.op == "AddV2" { return try emit(name, .add, [x, y], [:]) }
            if node.op == "Mul" { return try emit(name, .mul, [x, y], [:]) }
            return record(node)
        case (.dynamic(let x), .const(let c)), (.const(let c), .dynamic(let x)):
            let constFirst: Bool = { if case .const = inputs[0] { return true } else { return false } }()
            if constFirst, node.op == "Sub" || node.op == "RealDiv" { return record(node) }
            let channels = builder.shape(x).last
            guard c.count == 1 || (c.count == channels && c.shape.last == channels) else { return record(node) }
            let v = c.floats
            let vector = c.count == 1 ? [Float](repeating: v[0], count: channels) : v
            switch node.op {
            case "Mul" where c.count == 1: return try emit(name, .scale(v[0]), [x], [:])
            case "RealDiv" where c.count == 1: return try emit(name, .scale(1 / v[0]), [x], [:])
            case "Mul": return try emit(name, .affine, [x], ["scale": Tensor(vector, shape: [channels])])
            case "RealDiv": return try emit(name, .affine, [x], ["scale": Tensor(vector.map { 1 / $0 }, shape: [channels])])
            case "Sub": return try emit(name, .affine, [x], ["bias": Tensor(vector.map { -$0 }, shape: [channels])])
            default: return try emit(name, .affine, [x], ["bias": Tensor(vector, shape: [channels])])
            }
        default:
            return record(node)
        }
    }

    /// A StridedSlice of an activation that keeps its batch and channels and cuts rows and
    /// columns off its edges (Keras's Cropping2D: `x[:, top:-bottom, left:-right, :]`).
    private func crop(_ x: String, begin: [Int], end: [Int], strides: [Int], _ a: [String: Tensorflow_AttrValue], _ node: String) throws(ImportError) -> Op {
        let s = builder.shape(x)
        let (beginMask, endMask) = (Int(a["begin_mask"]?.i ?? 0), Int(a["end_mask"]?.i ?? 0))
        let others = [a["ellipsis_mask"], a["new_axis_mask"], a["shrink_axis_mask"]].map { $0?.i ?? 0 }
        guard s.rank == 4, begin.count == 4, end.count == 4, strides == [1, 1, 1, 1], others == [0, 0, 0] else {
            throw fail(node, "StridedSlice of an activation \(s) by begin \(begin), end \(end), strides \(strides): only a crop of height and width (strides 1, no new, shrunk or elided axes) is supported")
        }
        /// Axis i's kept range [from, to), or nil when not known.
        func kept(_ i: Int) -> (Int, Int)? {
            let n = s[i]
            if n < 0 { return (beginMask >> i & 1 == 1 || begin[i] == 0) && endMask >> i & 1 == 1 ? (0, n) : nil }  // unknown, kept whole
            func place(_ v: Int) -> Int { min(max(v < 0 ? v + n : v, 0), n) }
            let from = beginMask >> i & 1 == 1 ? 0 : place(begin[i]), to = endMask >> i & 1 == 1 ? n : place(end[i])
            return (from, max(to, from))
        }
        guard let batch = kept(0), let rows = kept(1), let columns = kept(2), let channels = kept(3),
              batch == (0, s[0]), channels == (0, s[3]) else {
            throw fail(node, "StridedSlice of an activation \(s) by begin \(begin), end \(end) (masks \(beginMask), \(endMask)): only a crop of height and width is supported, keeping the batch and channels whole")
        }
        return .crop(top: rows.0, bottom: s[1] - rows.1, left: columns.0, right: s[2] - columns.1)
    }

    private func pair(_ v: Tensorflow_AttrValue?, _ node: String, default d: [Int]? = nil) throws(ImportError) -> [Int] {
        let list = (v?.list.i ?? []).map { Int($0) }
        if list.isEmpty, let d { return d }
        guard list.count == 4, list[0] == 1, list[3] == 1, list[1] > 0, list[2] > 0 else { throw fail(node, "window attribute \(list) is not [1, h, w, 1]") }
        return [list[1], list[2]]
    }

    /// Refuses a layout other than NHWC, TensorFlow's default: the IR is NHWC, and an NCHW
    /// node taken as NHWC computes along the wrong axis without a word.
    private func requireNHWC(_ a: [String: Tensorflow_AttrValue], _ node: String) throws(ImportError) {
        let format = a["data_format"].map { String(decoding: $0.s, as: UTF8.self) } ?? "NHWC"
        guard format == "NHWC" else { throw fail(node, "data_format \(format) is not supported (only NHWC)") }
    }

    private func padding(_ a: [String: Tensorflow_AttrValue], _ node: String) throws(ImportError) -> Padding {
        switch String(decoding: a["padding"]?.s ?? Data("VALID".utf8), as: UTF8.self) {
        case "SAME": return .same
        case "VALID": return .valid
        case let p: throw fail(node, "padding \(p) is not supported")
        }
    }

    private func transpose(_ w: HostTensor) -> HostTensor {
        let (r, c) = (w.shape[0], w.shape[1]), v = w.floats
        return HostTensor(floats: (0..<(r * c)).map { v[($0 % r) * c + $0 / r] }, shape: [c, r])
    }
}
