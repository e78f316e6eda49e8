import FModelCore
import Foundation

/// Evaluates ops whose inputs are all constants: shape arithmetic, batch norm written as
/// primitive ops, and the like. Returns nil for an op it does not know (the caller decides).
enum ConstantFolding {
    typealias Fail = (String) -> ImportError

    /// The most values a constant made at import time may hold beyond its inputs' (a `Fill`, a
    /// broadcast, a repeated value list): 128 MB as doubles, where a hostile graph of a few
    /// bytes could otherwise ask for any size.
    static let maxMadeValues = 1 << 24

    static func evaluate(_ op: String, _ inputs: [HostTensor], attr: [String: Tensorflow_AttrValue], fail: Fail) throws(ImportError) -> HostTensor? {
        switch op {
        case "Identity", "StopGradient", "Snapshot", "PreventGradient": return inputs.first
        case "Add", "AddV2": return try broadcast(inputs, fail) { $0 + $1 }
        case "Sub": return try broadcast(inputs, fail) { $0 - $1 }
        case "Mul": return try broadcast(inputs, fail) { $0 * $1 }
        case "RealDiv", "Div": return try broadcast(inputs, fail) { $0 / $1 }
        case "Maximum": return try broadcast(inputs, fail) { max($0, $1) }
        case "Minimum": return try broadcast(inputs, fail) { min($0, $1) }
        case "SquaredDifference": return try broadcast(inputs, fail) { ($0 - $1) * ($0 - $1) }
        case "Square": return unary(inputs[0]) { $0 * $0 }
        case "Sqrt": return unary(inputs[0]) { $0.squareRoot() }
        case "Rsqrt": return unary(inputs[0]) { 1 / $0.squareRoot() }
        case "Neg": return unary(inputs[0]) { -$0 }
        case "Cast":
            let to = attr["DstT"]?.type ?? .dtFloat
            return to == .dtFloat || to == .dtDouble || to == .dtHalf
                ? HostTensor(floats: inputs[0].doubles.map(Float.init), shape: inputs[0].shape)
                : HostTensor(ints: inputs[0].doubles.map { Int64($0) }, shape: inputs[0].shape)
        case "Reshape": return try reshape(inputs[0], to: inputs[1].ints, fail)
        case "Prod": return try reduce(inputs, attr, fail, start: 1, *)
        case "Sum": return try reduce(inputs, attr, fail, start: 0, +)
        case "Pack": return try pack(inputs, axis: Int(attr["axis"]?.i ?? 0), fail)
        case "Fill":
            let dims = inputs[0].ints
            guard let v = inputs[1].scalar, let n = Shape(dims).elementCount, n <= maxMadeValues else { throw fail("Fill to \(dims)") }
            return inputs[1].with([Double](repeating: v, count: n), shape: dims)
        case "StridedSlice": return try stridedSlice(inputs, attr, fail)
        case "ConcatV2":
            guard let axis = inputs.last?.scalar else { return nil }
            return try concat(Array(inputs.dropLast()), axis: saturatingInt(axis), fail)
        case "ExpandDims":
            var dims = inputs[0].shape
            let a = saturatingInt(inputs[1].scalar ?? 0)
            let axis = a < 0 ? dims.count + 1 + a : a
            guard axis >= 0, axis <= dims.count else { throw fail("ExpandDims axis \(a)") }
            dims.insert(1, at: axis)
            return HostTensor(shape: dims, values: inputs[0].values)
        case "Squeeze":
            let axes = attr["squeeze_dims"]?.list.i.map(Int.init) ?? []
            let dims = inputs[0].shape.enumerated().filter { i, d in d != 1 || !(axes.isEmpty || axes.contains(i) || axes.contains(i - inputs[0].shape.count)) }.map(\.element)
            return HostTensor(shape: dims, values: inputs[0].values)
        default: return nil
        }
    }

    /// Where `op`, folding `inputs`, puts the elements that stand for the unknown batch: the
    /// same op on masks of them (1 at the batch), its other inputs (slice bounds, the axis) as
    /// they are. For the ops `TFLowering.checkUnknownBatch` lets read the batch.
    static func unknownBatch(_ op: String, _ inputs: [HostTensor], attr: [String: Tensorflow_AttrValue], fail: Fail) throws(ImportError) -> [Int] {
        let moved = op == "StridedSlice" ? 0..<1 : op == "ConcatV2" ? 0..<(inputs.count - 1) : inputs.indices
        let masks = inputs.indices.map { moved.contains($0) ? inputs[$0].unknownBatchMask : inputs[$0] }
        guard let mask = try evaluate(op, masks, attr: attr, fail: fail)?.doubles else { return [] }
        return mask.indices.filter { mask[$0] != 0 }
    }

    static func unary(_ x: HostTensor, _ f: (Double) -> Double) -> HostTensor { x.with(x.doubles.map(f), shape: x.shape) }

    /// NumPy-style broadcasting of two tensors.
    static func broadcast(_ inputs: [HostTensor], _ fail: Fail, _ f: (Double, Double) -> Double) throws(ImportError) -> HostTensor {
        guard inputs.count == 2 else { throw fail("needs 2 inputs") }
        let (a, b) = (inputs[0], inputs[1])
        let rank = max(a.shape.count, b.shape.count)
        let sa = [Int](repeating: 1, count: rank - a.shape.count) + a.shape, sb = [Int](repeating: 1, count: rank - b.shape.count) + b.shape
        var out: [Int] = []
        for (x, y) in zip(sa, sb) {
            guard x == y || x == 1 || y == 1 else { throw fail("shapes \(a.shape) and \(b.shape) do not broadcast") }
            out.append(x == 1 ? y : x)  // 1 against 0 is 0, as NumPy has it: max took 1, and read values that are not there
        }
        guard let n = Shape(out).elementCount, n <= max(maxMadeValues, a.count, b.count) else { throw fail("a folded constant of shape \(out)") }
        let (da, db) = (a.doubles, b.doubles)
        func index(_ flat: Int, _ s: [Int]) -> Int {
            var rem = flat, idx = 0, mul = 1
            for k in Swift.stride(from: rank - 1, through: 0, by: -1) {
                let coord = rem % out[k]
                rem /= out[k]
                if s[k] != 1 { idx += coord * mul }
                mul *= s[k]
            }
            return idx
        }
        let values = (0..<n).map { f(da[index($0, sa)], db[index($0, sb)]) }
        return (a.isFloat || !b.isFloat ? a : b).with(values, shape: out)  // float if either is
    }

    static func reshape(_ x: HostTensor, to target: [Int], _ fail: Fail) throws(ImportError) -> HostTensor {
        var dims = target
        guard target.filter({ $0 == -1 }).count <= 1, let known = Shape(dims.filter { $0 >= 0 }).elementCount,
              target.allSatisfy({ $0 >= -1 }) else { throw fail("cannot reshape \(x.shape) to \(target)") }
        if let i = dims.firstIndex(of: -1) {
            guard known > 0, x.count % known == 0 else { throw fail("cannot reshape \(x.shape) to \(target)") }
            dims[i] = x.count / known
        }
        guard Shape(dims).elementCount == x.count else { throw fail("cannot reshape \(x.shape) to \(target)") }
        return HostTensor(shape: dims, values: x.values)
    }

    static func reduce(_ inputs: [HostTensor], _ attr: [String: Tensorflow_AttrValue], _ fail: Fail, start: Double,
                       _ f: (Double, Double) -> Double) throws(ImportError) -> HostTensor {
        let x = inputs[0]
        let axes = Set(inputs[1].ints.map { $0 < 0 ? $0 + x.shape.count : $0 })
        let keep = attr["keep_dims"]?.b ?? false
        var outShape: [Int] = []
        for (i, d) in x.shape.enumerated() { if axes.contains(i) { if keep { outShape.append(1) } } else { outShape.append(d) } }
        var out = [Double](repeating: start, count: outShape.reduce(1, *))
        let dx = x.doubles
        for flat in 0..<x.count {
            var rem = flat, o = 0, mul = 1
            for k in Swift.stride(from: x.shape.count - 1, through: 0, by: -1) {
                let coord = rem % x.shape[k]
                rem /= x.shape[k]
                if !axes.contains(k) {
                    o += coord * mul
                    mul *= x.shape[k]
                }
            }
            out[o] = f(out[o], dx[flat])
        }
        return x.with(out, shape: outShape)
    }

    static func pack(_ inputs: [HostTensor], axis: Int, _ fail: Fail) throws(ImportError) -> HostTensor {
        guard let first = inputs.first, axis == 0, inputs.allSatisfy({ $0.shape == first.shape }) else { throw fail("Pack of \(inputs.map(\.shape)) on axis \(axis)") }
        return first.with(inputs.flatMap(\.doubles), shape: [inputs.count] + first.shape)
    }

    static func concat(_ inputs: [HostTensor], axis a: Int, _ fail: Fail) throws(ImportError) -> HostTensor {
        guard let first = inputs.first else { throw fail("ConcatV2 of nothing") }
        let axis = a < 0 ? a + first.shape.count : a
        guard axis >= 0, axis < first.shape.count,
              inputs.allSatisfy({ t in t.shape.count == first.shape.count && t.shape.indices.allSatisfy { i in i == axis || t.shape[i] == first.shape[i] } })
        else { throw fail("ConcatV2 of \(inputs.map(\.shape)) on axis \(a)") }
        let outer = first.shape.prefix(axis).reduce(1, *)
        var values: [Double] = []
        for o in 0..<outer {
            for t in inputs {
                let inner = t.shape.dropFirst(axis).reduce(1, *)
                values += t.doubles[o * inner..<(o + 1) * inner]
            }
        }
        var shape = first.shape
        if !shape.isEmpty { shape[axis] = inputs.reduce(0) { $0 + $1.shape[axis] } }
        return first.with(values, shape: shape)
    }

    /// 1-D StridedSlice (shape arithmetic), with begin/end/shrink masks.
    static func stridedSlice(_ inputs: [HostTensor], _ attr: [String: Tensorflow_AttrValue], _ fail: Fail) throws(ImportError) -> HostTensor {
        let x = inputs[0]
        guard x.shape.count == 1, inputs.count == 4 else { throw fail("StridedSlice of a rank-\(x.shape.count) constant") }
        let n = x.shape[0]
        let (beginMask, endMask, shrink) = (attr["begin_mask"]?.i ?? 0, attr["end_mask"]?.i ?? 0, attr["shrink_axis_mask"]?.i ?? 0)
        let step = inputs[3].ints.first ?? 1
        guard step != 0 else { throw fail("StridedSlice stride 0") }
        var b = inputs[1].ints.first ?? 0, e = inputs[2].ints.first ?? n
        if b < 0 { b = b &+ n }
        if e < 0 { e = e &+ n }
        if beginMask & 1 != 0 { b = step > 0 ? 0 : n - 1 }
        if endMask & 1 != 0 { e = step > 0 ? n : -1 }
        // Only indices inside the vector are picked: the walk need not go further.
        (b, e) = (min(max(b, -1), n), min(max(e, -1), n))
        if shrink & 1 != 0 {
            guard b >= 0, b < n else { throw fail("StridedSlice index \(b) of \(n)") }
            return x.with([x.doubles[b]], shape: [])
        }
        let d = x.doubles
        let picked = Swift.stride(from: b, to: e, by: step).filter { $0 >= 0 && $0 < n }.map { d[$0] }
        return x.with(picked, shape: [picked.count])
    }
}
