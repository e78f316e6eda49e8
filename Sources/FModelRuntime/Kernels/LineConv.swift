import CKernels
import Glibc

/// A float32 convolution whose window is one line of taps — 1×k or k×1, stride 1, no dilation:
/// Inception-ResNet's 1×7/7×1 (Block17) and 1×3/3×1 (Block8) — as the GEMM path runs it
/// (`line_conv.c`): no im2col, each pixel's taps read in place, the taps on the padding skipped
/// (on Block17's 8×8 maps 12 of a 1×7 window's 56 multiplications a row). The trial weighs it
/// against oneDNN's direct kernels as it weighed im2col + GEMM.
struct LineConvolution {
    private var shape: fm_line_shape

    /// Nil unless `win` is such a window on a CPU with AVX2 + FMA (and `FMODEL_NO_LINE_CONV`
    /// is not set: im2col + GEMM then).
    init?(_ win: Window, n: Int, cin: Int, cout: Int) {
        guard Self.available, win.strideH == 1, win.strideW == 1, win.dilH == 1, win.dilW == 1,
              win.kH == 1 || win.kW == 1, win.kH * win.kW > 1 else { return nil }
        let vertical = win.kW == 1
        shape = fm_line_shape(n: n, ih: win.inH, iw: win.inW, c: cin, oh: win.outH, ow: win.outW, k: cout,
                              taps: vertical ? win.kH : win.kW, vertical: vertical ? 1 : 0,
                              pad: vertical ? win.padTop : win.padLeft)
    }

    static let available = fm_line_conv_available() != 0 && getenv("FMODEL_NO_LINE_CONV") == nil

    /// `output = conv(input, kernel)` (HWIO), finished with `epilogue` in the last store where it
    /// has no residual and a ReLU-like activation (or none): then true; else the plain sums, false.
    /// The threads share the register blocks of pixels or, below `columnSplitRows` output pixels
    /// (Block17 at batch 1: 64), the output channels, so that each reads only its part of the kernel.
    func run(input: UnsafePointer<Float>, kernel: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
             epilogue: Epilogue) -> Bool {
        guard !epilogue.addsResidual, let (code, alpha) = epilogue.fusedCode else {
            run(input: input, kernel: kernel, output: output, finish: nil)
            return false
        }
        var finish = fm_line_finish(bias: epilogue.bias?.pointer, scale: epilogue.scale, activation: code, alpha: alpha)
        run(input: input, kernel: kernel, output: output, finish: &finish)
        return true
    }

    private func run(input: UnsafePointer<Float>, kernel: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>,
                     finish: UnsafePointer<fm_line_finish>?) {
        withUnsafePointer(to: shape) { s in
            let tasks = fm_line_conv_tasks(s), cout = s.pointee.k
            if s.pointee.n * s.pointee.oh * s.pointee.ow < columnSplitRows {
                columnShares(cout, grain: 1) { fm_line_conv_f32(s, input, kernel, output, 0, tasks, $0, $1, finish) }
            } else {
                parallelFor(tasks, grain: 1) { range in
                    fm_line_conv_f32(s, input, kernel, output, range.lowerBound, range.upperBound, 0, cout, finish)
                }
            }
        }
    }
}
