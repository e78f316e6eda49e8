import FModelCore

/// `a[m×k] · b[k×n]` (row-major) summed in Double: the definition the products are held to.
func directProduct(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float] {
    (0..<(m * n)).map { i in Float((0..<k).reduce(0.0) { $0 + Double(a[(i / n) * k + $1]) * Double(b[$1 * n + i % n]) }) }
}

/// How far a row-major product `c[m×n] = a[m×k] · b[k×n]` computed by `product` (given the
/// three buffers) is from `directProduct`.
func productError(m: Int, k: Int, n: Int, a: [Float], b: [Float],
                  _ product: (UnsafePointer<Float>, UnsafePointer<Float>, UnsafeMutablePointer<Float>) -> Void) -> Float {
    var c = [Float](repeating: .nan, count: m * n)
    a.withUnsafeBufferPointer { a in
        b.withUnsafeBufferPointer { b in c.withUnsafeMutableBufferPointer { product(a.baseAddress!, b.baseAddress!, $0.baseAddress!) } }
    }
    return Difference(c, directProduct(a, b, m: m, k: k, n: n), tolerance: .tensorFlow).maxAbsolute
}

/// `y[r][c] = Σ x-patch · kernel + bias` in Double, straight from the definition (NHWC,
/// HWIO, TensorFlow's SAME padding or, with `same` false, VALID), as the oracle.
func directConv(_ x: [Float], _ inShape: [Int], _ kernel: [Float], kH: Int, kW: Int, cout: Int, stride: Int,
                bias: [Float], same: Bool = true) -> [Float] {
    let (n, h, w, cin) = (inShape[0], inShape[1], inShape[2], inShape[3])
    let (oh, ow) = same ? ((h + stride - 1) / stride, (w + stride - 1) / stride) : ((h - kH) / stride + 1, (w - kW) / stride + 1)
    let padTop = same ? max((oh - 1) * stride + kH - h, 0) / 2 : 0, padLeft = same ? max((ow - 1) * stride + kW - w, 0) / 2 : 0
    var y = [Float](repeating: 0, count: n * oh * ow * cout)
    for b in 0..<n {
        for i in 0..<oh {
            for j in 0..<ow {
                for c in 0..<cout {
                    var acc = Double(bias[c])
                    for di in 0..<kH {
                        for dj in 0..<kW {
                            let (r, s) = (i * stride + di - padTop, j * stride + dj - padLeft)
                            guard r >= 0, r < h, s >= 0, s < w else { continue }
                            for ci in 0..<cin {
                                acc += Double(x[((b * h + r) * w + s) * cin + ci]) * Double(kernel[((di * kW + dj) * cin + ci) * cout + c])
                            }
                        }
                    }
                    y[((b * oh + i) * ow + j) * cout + c] = Float(acc)
                }
            }
        }
    }
    return y
}
