/// A tensor or activation shape. A dimension of `-1` is unknown until run time (the batch).
public struct Shape: Hashable, Codable, Sendable, CustomStringConvertible, ExpressibleByArrayLiteral {
    /// The dimensions, outermost first (NHWC for images).
    public var dims: [Int]

    /// Creates a shape from its dimensions.
    public init(_ dims: [Int]) { self.dims = dims }
    public init(arrayLiteral elements: Int...) { self.dims = elements }
    public init(from decoder: any Decoder) throws { dims = try [Int](from: decoder) }
    public func encode(to encoder: any Encoder) throws { try dims.encode(to: encoder) }

    /// Number of dimensions.
    public var rank: Int { dims.count }
    /// Product of the dimensions, or nil when one is unknown or the product overflows.
    public var elementCount: Int? {
        var n = 1
        for d in dims {
            guard d >= 0 else { return nil }
            guard let p = n.multipliedOrNil(by: d) else { return nil }
            n = p
        }
        return n
    }
    /// The shape with its first dimension replaced by `batch`.
    public func withBatch(_ batch: Int) -> Shape {
        guard !dims.isEmpty else { return self }
        var d = dims
        d[0] = batch
        return Shape(d)
    }
    /// The shape as an element-wise node reads it against `rank` axes: unit axes inserted
    /// after the batch, as Keras's merge layers expand an input of lower rank (`[N, C]` against
    /// `[N, H, W, C]` reads as `[N, 1, 1, C]`).
    public func expanded(toRank rank: Int) -> Shape {
        guard dims.count < rank, !dims.isEmpty else { return self }
        return Shape([dims[0]] + [Int](repeating: 1, count: rank - dims.count) + dims.dropFirst())
    }
    /// The last dimension, or 1 for a scalar.
    public var last: Int { dims.last ?? 1 }
    public var description: String {
        "[" + dims.map { $0 < 0 ? "?" : String($0) }.joined(separator: ",") + "]"
    }
    public subscript(i: Int) -> Int { dims[i < 0 ? dims.count + i : i] }
}

extension Int {
    /// `self * n`, or nil when the product overflows.
    package func multipliedOrNil(by n: Int) -> Int? {
        let (p, overflow) = multipliedReportingOverflow(by: n)
        return overflow ? nil : p
    }
}
