import FModelCore

/// A constant known at import time: a Const node's value, or one folded from constants.
struct HostTensor: Equatable {
    enum Values: Equatable {
        case float([Float])
        /// Float32 values decoded from raw content (the weights) into the storage the IR
        /// tensor shares: no second copy, nor a freed array between the graph's tensors.
        case stored(TensorStorage)
        case int([Int64])
        case bool([Bool])

        static func == (a: Values, b: Values) -> Bool {
            switch (a, b) {
            case (.int(let x), .int(let y)): x == y
            case (.bool(let x), .bool(let y)): x == y
            case (.float, .float), (.float, .stored), (.stored, .float), (.stored, .stored): a.floats == b.floats
            default: false
            }
        }

        /// The float values (nil for ints and bools).
        var floats: [Float]? {
            switch self {
            case .float(let v): v
            case .stored(let s): Array(s.bytes.bindMemory(to: Float.self))
            case .int, .bool: nil
            }
        }
    }

    var shape: [Int]
    var values: Values
    /// The flat indices of the elements that stand for the graph's batch size, unknown at
    /// import (`Shape(x)[0]`, as a frozen Keras Reshape reads it), each -1. Only ops that move
    /// elements carry them (`TFLowering.carriesUnknownBatch`), to where a Reshape's target
    /// may hold the batch.
    var unknownBatch: [Int] = []

    var count: Int { shape.reduce(1, *) }

    /// 1 where an element is the unknown batch, else 0.
    var unknownBatchMask: HostTensor {
        var mask = [Float](repeating: 0, count: count)
        for i in unknownBatch { mask[i] = 1 }
        return HostTensor(floats: mask, shape: shape)
    }

    init(shape: [Int], values: Values) {
        self.shape = shape
        self.values = values
    }

    init(floats: [Float], shape: [Int]) { self.init(shape: shape, values: .float(floats)) }
    init(ints: [Int64], shape: [Int]) { self.init(shape: shape, values: .int(ints)) }

    /// Every value as a Double (bools as 0/1).
    var doubles: [Double] {
        switch values {
        case .float, .stored: floats.map(Double.init)
        case .int(let v): v.map(Double.init)
        case .bool(let v): v.map { $0 ? 1 : 0 }
        }
    }

    var floats: [Float] { values.floats ?? doubles.map(Float.init) }

    /// As integers, saturating (a NaN is 0): a hostile constant does not trap the conversion.
    var ints: [Int] { doubles.map(saturatingInt) }

    var isFloat: Bool {
        switch values {
        case .float, .stored: true
        case .int, .bool: false
        }
    }

    /// The single value of a scalar (or one-element) tensor.
    var scalar: Double? { count == 1 ? doubles.first : nil }

    /// As an IR parameter tensor (decoded weights shared, not copied).
    var tensor: Tensor {
        if case .stored(let s) = values { return Tensor(dtype: .f32, shape: Shape(shape), storage: s) }
        return Tensor(floats, shape: Shape(shape))
    }

    /// The same kind of values, rebuilt from doubles.
    func with(_ doubles: [Double], shape: [Int]) -> HostTensor {
        switch values {
        case .float, .stored: HostTensor(floats: doubles.map(Float.init), shape: shape)
        case .int: HostTensor(ints: doubles.map { Int64(saturatingInt($0)) }, shape: shape)
        case .bool: HostTensor(shape: shape, values: .bool(doubles.map { $0 != 0 }))
        }
    }
}

/// `d` toward zero as an Int, clamped to Int's range; NaN is 0.
func saturatingInt(_ d: Double) -> Int {
    if d.isNaN { return 0 }
    if d >= Double(Int.max) { return .max }
    if d <= Double(Int.min) { return .min }
    return Int(d)
}

extension HostTensor {
    /// Decodes a TensorProto: `tensor_content` (raw little-endian; `content` in its place when
    /// the bytes were left in the file) or the typed value lists, in which a shorter list
    /// repeats its last value, as TensorFlow reads it.
    /// - Throws: `ImportError.badGraph` naming `node` when content and shape disagree.
    init(_ proto: Tensorflow_TensorProto, content: UnsafeRawBufferPointer? = nil, node: String, path: String) throws(ImportError) {
        let dims = proto.tensorShape.dim.map { Int($0.size) }
        guard dims.count <= 8, dims.allSatisfy({ $0 >= 0 }), let n = Shape(dims).elementCount, n <= 1 << 31 else {
            throw .badGraph(path: path, node: node, reason: "tensor shape \(dims) is not valid")
        }
        func fail(_ what: String) -> ImportError { .badGraph(path: path, node: node, reason: what) }
        let rawCount = content?.count ?? proto.tensorContent.count
        /// `body` over the raw content, in the file or in the message.
        func withRaw<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R { content.map(body) ?? proto.tensorContent.withUnsafeBytes(body) }
        /// Whether there is raw content, which must hold the shape's values of `size` bytes.
        func hasRaw(_ size: Int) throws(ImportError) -> Bool {
            guard rawCount > 0 else { return false }
            guard rawCount == n * size else { throw fail("tensor_content holds \(rawCount) bytes, shape \(dims) needs \(n * size)") }
            return true
        }
        /// The raw content read as `T`s, each converted: one array, straight from the bytes.
        func fromRaw<T: FixedWidthInteger, R>(_: T.Type, _ convert: (T) -> R) throws(ImportError) -> [R]? {
            guard try hasRaw(MemoryLayout<T>.size) else { return nil }
            return withRaw { b in
                [R](unsafeUninitializedCapacity: n) { values, count in
                    for i in 0..<n { (values.baseAddress! + i).initialize(to: convert(T(littleEndian: b.loadUnaligned(fromByteOffset: i * MemoryLayout<T>.size, as: T.self)))) }
                    count = n
                }
            }
        }
        /// The list at the shape's count: a shorter one repeats its last value, and an empty
        /// one is `zero`s, as TensorFlow fills a tensor (`FromProtoField`). A frozen Keras
        /// Reshape's `strided_slice` begins at a `[0]` stored as no values at all.
        func expand<T>(_ list: [T], _ what: String, zero: T) throws(ImportError) -> [T] {
            // A shape of no values reads none, whatever the list holds (as before the zeros).
            if n == 0 { return [] }
            if list.count == n { return list }
            guard list.count < n else { throw fail("\(what) holds \(list.count) values, shape \(dims) needs \(n)") }
            // A few bytes of file repeated into a large tensor: bounded, unlike raw content.
            guard n <= ConstantFolding.maxMadeValues else {
                throw fail("\(what) is filled out to \(n) values (at most \(ConstantFolding.maxMadeValues))")
            }
            return list + [T](repeating: list.last ?? zero, count: n - list.count)
        }
        switch proto.dtype {
        case .dtFloat:
            if try hasRaw(4) {
                let storage = TensorStorage(floatCount: n) { floats in
                    withRaw { b in
                        for i in 0..<n { floats[i] = Float(bitPattern: UInt32(littleEndian: b.loadUnaligned(fromByteOffset: i * 4, as: UInt32.self))) }
                    }
                }
                self.init(shape: dims, values: .stored(storage))
            }
            else { self.init(floats: try expand(proto.floatVal, "float_val", zero: 0), shape: dims) }
        case .dtDouble:
            if let r = try fromRaw(UInt64.self, { Float(Double(bitPattern: $0)) }) { self.init(floats: r, shape: dims) }
            else { self.init(floats: try expand(proto.doubleVal.map(Float.init), "double_val", zero: 0), shape: dims) }
        case .dtHalf:
            if let r = try fromRaw(UInt16.self, { Float(Float16(bitPattern: $0)) }) { self.init(floats: r, shape: dims) }
            else { self.init(floats: try expand(proto.halfVal.map { Float(Float16(bitPattern: UInt16(truncatingIfNeeded: $0))) }, "half_val", zero: 0), shape: dims) }
        case .dtInt32:
            if let r = try fromRaw(UInt32.self, { Int64(Int32(bitPattern: $0)) }) { self.init(ints: r, shape: dims) }
            else { self.init(ints: try expand(proto.intVal.map(Int64.init), "int_val", zero: 0), shape: dims) }
        case .dtInt64:
            if let r = try fromRaw(UInt64.self, { Int64(bitPattern: $0) }) { self.init(ints: r, shape: dims) }
            else { self.init(ints: try expand(proto.int64Val, "int64_val", zero: 0), shape: dims) }
        case .dtBool:
            if let r = try fromRaw(UInt8.self, { $0 != 0 }) { self.init(shape: dims, values: .bool(r)) }
            else { self.init(shape: dims, values: .bool(try expand(proto.boolVal, "bool_val", zero: false))) }
        default:
            throw fail("tensors of type \(proto.dtype) are not supported")
        }
    }
}
