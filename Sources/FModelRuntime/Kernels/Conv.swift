import FModelCore

/// Geometry of a 2-D convolution or pooling window over an NHWC image, with TensorFlow's
/// SAME/VALID padding arithmetic.
struct Window {
    var inH, inW, outH, outW: Int
    var kH, kW: Int
    var strideH, strideW: Int
    var dilH, dilW: Int
    var padTop, padLeft: Int

    init(inH: Int, inW: Int, outH: Int, outW: Int, kH: Int, kW: Int, strides: [Int], dilations: [Int], padding: Padding) {
        (self.inH, self.inW, self.outH, self.outW, self.kH, self.kW) = (inH, inW, outH, outW, kH, kW)
        (strideH, strideW, dilH, dilW) = (strides[0], strides[1], dilations[0], dilations[1])
        if padding == .same {
            padTop = max((outH - 1) * strideH + (kH - 1) * dilH + 1 - inH, 0) / 2
            padLeft = max((outW - 1) * strideW + (kW - 1) * dilW + 1 - inW, 0) / 2
        } else {
            (padTop, padLeft) = (0, 0)
        }
    }

    /// True when the window is a 1×1, stride-1 identity map of the pixels.
    var isPointwise: Bool { kH == 1 && kW == 1 && strideH == 1 && strideW == 1 && padTop == 0 && padLeft == 0 }
}

/// Prepared 2-D convolution: kernel as a [KH·KW·Cin, Cout] matrix.
struct ConvKernel {
    let kernel: FloatWeights
    let bias: [Float]?
    let attributes: ConvAttributes
    let kH, kW, cin, cout: Int

    /// Runs the convolution for a batch; `scratch` holds one image's im2col matrix when needed.
    func run(input: UnsafePointer<Float>, inShape: Shape, output: UnsafeMutablePointer<Float>, outShape: Shape,
             scratch: (Int) -> UnsafeMutablePointer<Float>) {
        let n = inShape[0]
        let win = Window(inH: inShape[1], inW: inShape[2], outH: outShape[1], outW: outShape[2], kH: kH, kW: kW,
                         strides: attributes.strides, dilations: attributes.dilations, padding: attributes.padding)
        let pixels = win.outH * win.outW
        let k = kH * kW * cin
        let w = kernel.pointer
        do {
            if win.isPointwise {
                sgemm(m: n * pixels, n: cout, k: cin, a: input, b: w, c: output)
            } else {
                // Several images per GEMM (a taller matrix runs faster), within a 64 MiB scratch.
                let perChunk = max(1, min(n, (16 << 20) / max(pixels * k, 1)))
                let col = scratch(perChunk * pixels * k)
                for first in stride(from: 0, to: n, by: perChunk) {
                    let images = min(perChunk, n - first)
                    for i in 0..<images {
                        im2col(input + (first + i) * win.inH * win.inW * cin, win, cin: cin, into: col + i * pixels * k)
                    }
                    sgemm(m: images * pixels, n: cout, k: k, a: col, b: w, c: output + first * pixels * cout)
                }
            }
        }
        let rows = n * pixels
        if let bias { bias.withUnsafeBufferPointer { addBias(output, rows: rows, channels: cout, bias: $0.baseAddress!) } }
        attributes.activation.apply(output, count: rows * cout, channels: cout)
    }
}

/// Lays out every receptive field of one image as a row of `kH·kW·cin` values (zeros outside).
func im2col(_ x: UnsafePointer<Float>, _ w: Window, cin: Int, into col: UnsafeMutablePointer<Float>) {
    var dst = col
    for oy in 0..<w.outH {
        for ox in 0..<w.outW {
            for ky in 0..<w.kH {
                let iy = oy * w.strideH + ky * w.dilH - w.padTop
                for kx in 0..<w.kW {
                    let ix = ox * w.strideW + kx * w.dilW - w.padLeft
                    if iy >= 0, iy < w.inH, ix >= 0, ix < w.inW {
                        dst.update(from: x + (iy * w.inW + ix) * cin, count: cin)
                    } else {
                        dst.update(repeating: 0, count: cin)
                    }
                    dst += cin
                }
            }
        }
    }
}

/// Prepared depthwise convolution: kernel [KH, KW, Cin, M], output channel `c·M + m`.
struct DepthwiseKernel {
    let kernel: FloatWeights
    let bias: [Float]?
    let attributes: ConvAttributes
    let kH, kW, cin, multiplier: Int

    func run(input: UnsafePointer<Float>, inShape: Shape, output: UnsafeMutablePointer<Float>, outShape: Shape) {
        let win = Window(inH: inShape[1], inW: inShape[2], outH: outShape[1], outW: outShape[2], kH: kH, kW: kW,
                         strides: attributes.strides, dilations: attributes.dilations, padding: attributes.padding)
        let cout = cin * multiplier
        let n = inShape[0]
        let w = kernel.pointer
        do {
            for b in 0..<n {
                let x = input + b * win.inH * win.inW * cin
                let y = output + b * win.outH * win.outW * cout
                for oy in 0..<win.outH {
                    for ox in 0..<win.outW {
                        let out = y + (oy * win.outW + ox) * cout
                        out.update(repeating: 0, count: cout)
                        for ky in 0..<kH {
                            let iy = oy * win.strideH + ky * win.dilH - win.padTop
                            guard iy >= 0, iy < win.inH else { continue }
                            for kx in 0..<kW {
                                let ix = ox * win.strideW + kx * win.dilW - win.padLeft
                                guard ix >= 0, ix < win.inW else { continue }
                                let px = x + (iy * win.inW + ix) * cin
                                let wk = w + (ky * kW + kx) * cout
                                for c in 0..<cin {
                                    for m in 0..<multiplier { out[c * multiplier + m] += px[c] * wk[c * multiplier + m] }
                                }
                            }
                        }
                    }
                }
            }
        }
        let rows = n * win.outH * win.outW
        if let bias { bias.withUnsafeBufferPointer { addBias(output, rows: rows, channels: cout, bias: $0.baseAddress!) } }
        attributes.activation.apply(output, count: rows * cout, channels: cout)
    }
}
