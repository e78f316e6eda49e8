/// A named parameter tensor: dtype, shape and the bytes that hold it.
///
/// For `int8PerChannel` the scales are float32, one per entry of the last axis; for
/// `int4PerGroup` they are float16, one per `groupSize` consecutive elements in row-major order.
public struct Tensor: Sendable {
    /// How the values are encoded.
    public var dtype: DType
    /// The logical shape.
    public var shape: Shape
    /// Encoded values.
    public var storage: TensorStorage
    /// Quantization scales, for the quantized dtypes only.
    public var scales: TensorStorage?
    /// Elements per scale group for `int4PerGroup`.
    public var groupSize: Int?

    /// Creates a tensor from encoded parts; the caller guarantees the sizes agree (see `validate`).
    public init(dtype: DType, shape: Shape, storage: TensorStorage, scales: TensorStorage? = nil, groupSize: Int? = nil) {
        self.dtype = dtype
        self.shape = shape
        self.storage = storage
        self.scales = scales
        self.groupSize = groupSize
    }

    /// Creates a float32 tensor by copying `values`.
    public init(_ values: [Float], shape: Shape) {
        precondition(shape.elementCount == values.count, "shape \(shape) does not hold \(values.count) values")
        self.init(dtype: .f32, shape: shape, storage: TensorStorage(values: values))
    }

    /// Number of elements.
    public var count: Int { shape.elementCount ?? 0 }

    /// Bytes stored for this tensor, values and scales.
    public var byteCount: Int { storage.bytes.count + (scales?.bytes.count ?? 0) }
}

extension Tensor {
    /// Expected byte counts of values and scales for this dtype and shape, or nil if they overflow
    /// or the dtype's parameters are missing.
    package func expectedByteCounts() -> (values: Int, scales: Int)? {
        guard let n = shape.elementCount, let values = dtype.valueBytes(count: n) else { return nil }
        switch dtype {
        case .f32, .f16: return (values, 0)
        case .int8PerChannel: return shape.last.multipliedOrNil(by: 4).map { (values, $0) }
        case .int4PerGroup:
            guard let g = groupSize, g > 0 else { return nil }
            return (n / g + (n % g == 0 ? 0 : 1)).multipliedOrNil(by: 2).map { (values, $0) }
        }
    }

    /// Checks that the stored bytes agree with dtype and shape.
    public func validate(name: String) throws(GraphError) {
        guard let expected = expectedByteCounts() else {
            throw .invalidTensor(name: name, reason: "shape \(shape) or dtype \(dtype.rawValue) parameters are invalid")
        }
        let scaleBytes = scales?.bytes.count ?? 0
        guard storage.bytes.count == expected.values, scaleBytes == expected.scales else {
            throw .invalidTensor(
                name: name,
                reason: "holds \(storage.bytes.count)+\(scaleBytes) bytes, \(dtype.rawValue) \(shape) needs \(expected.values)+\(expected.scales)")
        }
    }
}
