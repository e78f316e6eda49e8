import CKernels
import FModelCore

/// Max or average pooling over NHWC. Average pooling with SAME padding divides by the number
/// of pixels inside the image, as TensorFlow does.
func windowPool(_ x: UnsafePointer<Float>, inShape: Shape, _ y: UnsafeMutablePointer<Float>, outShape: Shape,
          _ p: PoolAttributes, max isMax: Bool) {
    let c = inShape[3]
    let win = Window(inH: inShape[1], inW: inShape[2], outH: outShape[1], outW: outShape[2], kH: p.size[0], kW: p.size[1],
                     strides: p.strides, dilations: [1, 1], padding: p.padding)
    parallelFor(inShape[0] * win.outH, grain: max(1, rowGrain / (win.outW * c * win.kH * win.kW))) { lines in
        for line in lines {
            let b = line / win.outH, oy = line % win.outH
            let xb = x + b * win.inH * win.inW * c
            let yb = y + b * win.outH * win.outW * c
            let y0 = max(oy * win.strideH - win.padTop, 0), y1 = min(oy * win.strideH - win.padTop + win.kH, win.inH)
            for ox in 0..<win.outW {
                let x0 = max(ox * win.strideW - win.padLeft, 0), x1 = min(ox * win.strideW - win.padLeft + win.kW, win.inW)
                let out = yb + (oy * win.outW + ox) * c
                if isMax {
                    if y0 < y1 && x0 < x1 {
                        fm_window_max(out, xb + (y0 * win.inW + x0) * c, c, win.inW * c, y1 - y0, x1 - x0)
                    } else {
                        out.update(repeating: -.infinity, count: c)
                    }
                    continue
                }
                out.update(repeating: 0, count: c)
                for iy in y0..<y1 {
                    for ix in x0..<x1 {
                        let px = xb + (iy * win.inW + ix) * c
                        for ch in 0..<c { out[ch] += px[ch] }
                    }
                }
                let inv = 1 / Float((y1 - y0) * (x1 - x0))
                for ch in 0..<c { out[ch] *= inv }
            }
        }
    }
}

/// Mean or max over height and width of each image.
func globalPool(_ x: UnsafePointer<Float>, inShape: Shape, _ y: UnsafeMutablePointer<Float>, max isMax: Bool) {
    let pixels = inShape[1] * inShape[2], c = inShape[3]
    for b in 0..<inShape[0] {
        let out = y + b * c, image = x + b * pixels * c
        if isMax {
            // The image is one window: a row of `pixels` pixels.
            if pixels > 0 { fm_window_max(out, image, c, pixels * c, 1, pixels) } else { out.update(repeating: -.infinity, count: c) }
            continue
        }
        out.update(repeating: 0, count: c)
        for p in 0..<pixels { for ch in 0..<c { out[ch] += image[p * c + ch] } }
        let inv = 1 / Float(pixels)
        for ch in 0..<c { out[ch] *= inv }
    }
}
