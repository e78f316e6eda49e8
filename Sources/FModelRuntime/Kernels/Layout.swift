import CKernels
import FModelCore

/// Concatenates `count` inputs along `axis` (non-negative, not the batch); `input(i)` gives the
/// i-th one's values (nil for one already in place) and shape (a function rather than an array,
/// so nothing is allocated).
func concat(count: Int, _ input: (Int) -> (UnsafePointer<Float>?, Shape), axis: Int, into y: UnsafeMutablePointer<Float>,
            outShape: Shape) {
    let outer = outShape.dims[..<axis].reduce(1, *)
    let innerOut = outShape.dims[axis...].reduce(1, *)
    // A copy is cheap per float: a thread takes about 24K of them or none. Block17's and
    // Block35's small concats ran slower on two threads (all concats of the int8 multi-task
    // model at batch 1 0.167 -> 0.104-0.121 ms against rowGrain's 4K, `bench --profile`).
    parallelFor(outer, grain: max(1, 6 * rowGrain / innerOut)) { rows in
        var offset = 0
        for i in 0..<count {
            let (x, shape) = input(i)
            let chunk = shape.dims[axis...].reduce(1, *)
            if let x { fm_copy_rows(y + rows.lowerBound * innerOut + offset, innerOut, x + rows.lowerBound * chunk, chunk, chunk, rows.count) }
            offset += chunk
        }
    }
}

/// The window of `x` that starts `top` rows and `left` columns in, of `outShape`'s size.
func crop(_ x: UnsafePointer<Float>, inShape: Shape, _ y: UnsafeMutablePointer<Float>, outShape: Shape, top: Int, left: Int) {
    let c = inShape[3]
    for b in 0..<outShape[0] {
        for oy in 0..<outShape[1] {
            let src = x + ((b * inShape[1] + oy + top) * inShape[2] + left) * c
            (y + (b * outShape[1] + oy) * outShape[2] * c).update(from: src, count: outShape[2] * c)
        }
    }
}

/// Zero-pads height and width of NHWC images.
func zeroPad(_ x: UnsafePointer<Float>, inShape: Shape, _ y: UnsafeMutablePointer<Float>, outShape: Shape, top: Int, left: Int) {
    let c = inShape[3]
    y.update(repeating: 0, count: outShape.elementCount!)
    for b in 0..<inShape[0] {
        for iy in 0..<inShape[1] {
            let src = x + ((b * inShape[1] + iy) * inShape[2]) * c
            let dst = y + ((b * outShape[1] + iy + top) * outShape[2] + left) * c
            dst.update(from: src, count: inShape[2] * c)
        }
    }
}
