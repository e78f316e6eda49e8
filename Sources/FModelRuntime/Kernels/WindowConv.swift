import CKernels
import Glibc

/// A float32 convolution without padding — every tap of every output pixel inside the image —
/// any window and stride, no dilation, as the GEMM path runs it (`window_conv.c`): im2col's
/// product without im2col, each output pixel's inputs under one row of the window read in place
/// (one contiguous run of `kW·cin` floats). FaceNet's strided 3×3 reductions (Conv2d_4b,
/// Mixed_6a's and Mixed_7a's) and, on a first run, its VALID stride-1 3×3s.
struct WindowConvolution {
    private var shape: fm_window_shape

    /// Nil unless `win` has no padding on any side and no dilation, is not a 1×1 (a plain
    /// product already), and a window row holds 64 floats or more (Conv2d_1a's 3×3 over 3
    /// channels, nine, stays on im2col), on a CPU with AVX2 + FMA, unless
    /// `FMODEL_NO_WINDOW_CONV` is set (im2col + GEMM then).
    init?(_ win: Window, n: Int, cin: Int, cout: Int) {
        guard Self.available, win.padTop == 0, win.padLeft == 0, win.dilH == 1, win.dilW == 1, !win.isPointwise,
              (win.outH - 1) * win.strideH + win.kH <= win.inH, (win.outW - 1) * win.strideW + win.kW <= win.inW,
              win.kW * cin >= 64 else { return nil }
        shape = fm_window_shape(n: n, ih: win.inH, iw: win.inW, c: cin, oh: win.outH, ow: win.outW, k: cout, kh: win.kH, kw: win.kW,
                                sh: win.strideH, sw: win.strideW)
    }

    static let available = fm_window_conv_available() != 0 && getenv("FMODEL_NO_WINDOW_CONV") == nil

    /// `output = conv(input, kernel)` (HWIO), the plain sums. The threads share the output
    /// pixels or, below `columnSplitRows` of them, the output channels, so that each packs
    /// only its part of the kernel; each packs into 256 KB of `scratch`.
    func run(input: UnsafePointer<Float>, kernel: UnsafePointer<Float>, output: UnsafeMutablePointer<Float>, scratch: Scratch) {
        let floats = fm_window_conv_buffer_floats()
        let buffers = scratch(teamSize * floats * 4).assumingMemoryBound(to: Float.self)
        withUnsafePointer(to: shape) { s in
            let rows = s.pointee.n * s.pointee.oh * s.pointee.ow, cout = s.pointee.k
            if rows < columnSplitRows {
                columnShares(cout, grain: 1) { fm_window_conv_f32(s, input, kernel, output, 0, rows, $0, $1, buffers + threadNumber() * floats) }
            } else {
                parallelFor((rows + 5) / 6, grain: 1) { blocks in
                    fm_window_conv_f32(s, input, kernel, output, blocks.lowerBound * 6, min(rows, blocks.upperBound * 6), 0, cout,
                                       buffers + threadNumber() * floats)
                }
            }
        }
    }
}
