import FModelCore

/// How far a row-major product `c[m×n] = a[m×k] · b[k×n]` computed by `product` (given the
/// three buffers) is from the same product summed in Double: a GEMM kernel against its
/// definition.
func productError(m: Int, k: Int, n: Int, a: [Float], b: [Float],
                  _ product: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) -> Float {
    var c = [Float](repeating: .nan, count: m * n)
    a.withUnsafeBufferPointer { a in
        b.withUnsafeBufferPointer { b in c.withUnsafeMutableBufferPointer { product(a.baseAddress!, b.baseAddress!, $0.baseAddress!) } }
    }
    let expected = (0..<(m * n)).map { i in
        Float((0..<k).reduce(0.0) { $0 + Double(a[(i / n) * k + $1]) * Double(b[$1 * n + i % n]) })
    }
    return Difference(c, expected, tolerance: .tensorFlow).maxAbsolute
}
