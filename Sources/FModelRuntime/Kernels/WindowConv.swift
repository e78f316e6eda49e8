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

    /// `output = conv(input, kernel)` (HWIO), the plain sums, with the kernel `packed` once
    /// (`pack`) or, where that is nil, packed as it goes: each thread packs its part into 256
    /// KB of `scratch` on every call. The threads share the output pixels or, below
    /// `columnSplitRows` of them, the output channels, so that each packs (or reads) only its
    /// part of the kernel.
    func run(input: UnsafePointer<Float>, kernel: UnsafePointer<Float>, packed: Buffer?, output: UnsafeMutablePointer<Float>,
             scratch: Scratch) {
        let floats = packed == nil ? fm_window_conv_buffer_floats() : 0
        let buffers = scratch(max(teamSize * floats * 4, 1)).assumingMemoryBound(to: Float.self)
        let strips = packed.map { UnsafePointer($0.pointer) }
        withUnsafePointer(to: shape) { s in
            let rows = s.pointee.n * s.pointee.oh * s.pointee.ow, cout = s.pointee.k
            if rows < columnSplitRows {
                columnShares(cout, grain: 1) {
                    fm_window_conv_f32(s, input, kernel, strips, output, 0, rows, $0, $1, buffers + threadNumber() * floats)
                }
            } else {
                parallelFor((rows + 5) / 6, grain: 1) { blocks in
                    fm_window_conv_f32(s, input, kernel, strips, output, blocks.lowerBound * 6, min(rows, blocks.upperBound * 6), 0, cout,
                                       buffers + threadNumber() * floats)
                }
            }
        }
    }

    /// The layer's kernel laid out once as `run` multiplies it (`fm_window_pack_kernel`), for
    /// every image size: what `run` would otherwise pack on each thread at every call (with it,
    /// Conv2d_4b at batch 1 took 0.887 of the time it took packing as it went, `layer_ab.py`
    /// against 267a9c7, 15 rounds). Kept where oneDNN runs anyway — a tiered executor past its
    /// first run — in place of the mapped kernel, whose pages leave memory, as they do for a
    /// oneDNN primitive's copy.
    func pack(_ kernel: UnsafePointer<Float>) -> Buffer {
        withUnsafePointer(to: shape) { s in
            let packed = Buffer(capacity: fm_window_packed_floats(s))
            fm_window_pack_kernel(s, kernel, packed.pointer)
            return packed
        }
    }
}
