import CKernels
import Glibc

/// A float32 3×3 stride-1 convolution as Winograd F(4×4, 3×3) (`winograd.c`): 36
/// multiplications per input and output channel for each 4×4 block of output pixels instead of
/// 144, through fmodel's own GEMM. Its transformed kernel is 4× the layer's (the columns
/// rounded up to 16 where packed), in memory of its own.
///
/// One of the contenders a tiered executor's trial weighs (`NativeConvolutions.trial`): oneDNN
/// 2.6 has Winograd only for AVX-512, so on an AVX2 CPU the alternatives are its direct
/// `jit:avx2` kernels and im2col + GEMM.
final class WinogradKernel: @unchecked Sendable {
    private let transformed: Buffer
    let cin, cout: Int

    /// True when a `kH×kW` layer over `win` with `epilogue` can run as Winograd here on `n`
    /// images: a 3×3 stride-1 window, no residual and a ReLU-like activation (which the output
    /// transform applies), more 4×4 tiles than a streamed product has rows, on a CPU with AVX2 +
    /// FMA, unless `FMODEL_NO_WINOGRAD` is set (which turns oneDNN's off too). On fewer tiles
    /// the 36 products are a read of the transformed kernel (4× the layer's), which the trial,
    /// timing the contenders back to back, finds warm in the cache and inference does not:
    /// Mixed_7a's 256→288 on four tiles at batch 1 (a 10.6 MB transformed kernel) won 3 of 6
    /// trials at 0.73-0.85 ms and then took 1.7 ms a run, against 0.64-0.84 on the GEMM path
    /// (`profile_vs_ort.py`, five runs).
    static func applies(kH: Int, kW: Int, n: Int, win: Window, epilogue: Epilogue) -> Bool {
        kH == 3 && kW == 3 && win.strideH == 1 && win.strideW == 1 && win.dilH == 1 && win.dilW == 1
            && !epilogue.addsResidual && epilogue.fusedCode != nil && available
            && withUnsafePointer(to: shape(n: n, win: win, cin: 0, cout: 0)) { fm_winograd_tiles($0) } > streamedRowLimit
    }

    /// The C side's geometry of `n` images over `win`.
    private static func shape(n: Int, win: Window, cin: Int, cout: Int) -> fm_winograd_shape {
        fm_winograd_shape(n: n, ih: win.inH, iw: win.inW, c: cin, oh: win.outH, ow: win.outW, k: cout, pad_top: win.padTop,
                          pad_left: win.padLeft)
    }

    /// True when this CPU and the environment allow Winograd at all.
    static let available = fm_winograd_available() != 0 && getenv("FMODEL_NO_WINOGRAD") == nil

    /// Transforms an HWIO `[3, 3, cin, cout]` kernel, and packs each of the 36 points' `[cin,
    /// cout]` products for `fm_gemm_packed_f32`.
    init(kernel: UnsafePointer<Float>, cin: Int, cout: Int) {
        (self.cin, self.cout) = (cin, cout)
        let point = fm_packed_floats(cin, cout)
        transformed = Buffer(capacity: 36 * point)
        let plain = Buffer(capacity: 36 * cin * cout)
        fm_winograd_kernel(kernel, cin, cout, plain.pointer)
        for p in 0..<36 { fm_pack_kernel(plain.pointer + p * cin * cout, cin, cout, transformed.pointer + p * point) }
    }

    /// Tiles a thread transforms and multiplies at a time: their transformed inputs and
    /// products, `36 × tiles × (cin + cout)` floats, in about 1 MB.
    private var tilesAtATime: Int { max(8, (1 << 20) / (36 * (cin + cout) * 4)) }

    /// `output = epilogue(conv(input))` for the `n` images over `win`, an epilogue `applies`
    /// accepted.
    func run(input: UnsafePointer<Float>, n: Int, win: Window, output: UnsafeMutablePointer<Float>, epilogue: Epilogue,
             scratch: Scratch) {
        let (code, alpha) = epilogue.fusedCode!
        var shape = Self.shape(n: n, win: win, cin: cin, cout: cout)
        let tiles = fm_winograd_tiles(&shape)
        let block = min(tilesAtATime, (tiles + teamSize - 1) / teamSize)
        let perThread = 36 * block * (cin + cout)
        let space = scratch(teamSize * perThread * 4).assumingMemoryBound(to: Float.self)
        let (transformed, scale) = (transformed.pointer, epilogue.scale)
        epilogue.bias.withOptionalPointer { bias in
            withUnsafePointer(to: &shape) { shape in
                parallelFor(tiles, grain: 4) { range in
                    let mine = space + threadNumber() * perThread
                    for t0 in stride(from: range.lowerBound, to: range.upperBound, by: block) {
                        fm_winograd_run(shape, input, transformed, t0, min(range.upperBound, t0 + block), mine, output, bias, scale,
                                        code, alpha)
                    }
                }
            }
        }
    }
}
