import CKernels
import Glibc

/// A float32 stride-1 convolution as Winograd (`winograd.c`): a 3×3 layer as F(4×4, 3×3), 36
/// multiplications per input and output channel for each 4×4 block of output pixels instead of
/// 144; a 1×7 or 7×1 layer (Block17's) as F(4, 7), 10 for four outputs along the line instead
/// of 28. Each point a product through fmodel's own GEMM. Its transformed kernel is 4× (3×3) or
/// 10/7× (line) the layer's, the columns rounded up to 16 where packed, in memory of its own.
///
/// One of the contenders a tiered executor's trial weighs (`NativeConvolutions.trial`): oneDNN
/// 2.6 has Winograd only for AVX-512 (and only for 3×3), so on an AVX2 CPU the alternatives are
/// its direct `jit:avx2` kernels and the GEMM path (im2col + GEMM, the line convolutions).
final class WinogradKernel: @unchecked Sendable {
    /// The two algorithms, by the window they take.
    private enum Form {
        /// F(4×4, 3×3).
        case square
        /// F(4, 7) along a row (1×7) or down a column (7×1).
        case line(vertical: Bool)

        /// The points: the products per tile.
        var points: Int { if case .square = self { 36 } else { Int(FM_LINE_WINOGRAD_POINTS) } }

        /// The fewest tiles it runs on. On few tiles the products are a read of the transformed
        /// kernel, which the trial, timing the contenders back to back, finds warm in the cache
        /// and inference does not. F(4×4, 3×3)'s is 4× the layer's kernel: more tiles than a
        /// streamed product has rows (Mixed_7a's 256→288 on four tiles at batch 1, a 10.6 MB
        /// transformed kernel, won 3 of 6 trials at 0.73-0.85 ms and then took 1.7 ms a run,
        /// against 0.64-0.84 on the GEMM path; `profile_vs_ort.py`, five runs). F(4, 7)'s is
        /// 10/7×, and at Block17's 16 tiles at batch 1 it still gains in inference (`layer_ab.py`
        /// against the build that kept it to 17 tiles, 11 rounds: 1×7s 0.667, 7×1s 0.743, the
        /// model 0.935). With AVX-512 products (the 30th session's Zen 5) the trial's warm runs
        /// flatter it more, and both forms take 64 tiles at least: at batch 1 (Block17's 16
        /// tiles, Block35's and Mixed_6a's 25) they won their trials (1×7s 0.018 ms against
        /// oneDNN's 0.030) and then ran slower in the model (the 1×7s and 7×1s 1.39×, Block35
        /// 1.12×, Mixed_6a 1.10×, the model 1.05×; `layer_ab.py`, 7 rounds), while at batch 32
        /// (512 tiles) the 1×7s and 7×1s went 0.72 → 0.43 ms and Block17 0.875×.
        var minimumTiles: Int {
            if oneDNNIsAVX512 { return 64 }
            if case .square = self { return streamedRowLimit + 1 } else { return streamedRowLimit }
        }

        init?(kH: Int, kW: Int, win: Window) {
            guard win.strideH == 1, win.strideW == 1, win.dilH == 1, win.dilW == 1 else { return nil }
            switch (kH, kW) {
            case (3, 3): self = .square
            // One tap across the line: the map keeps its size that way, unpadded.
            case (1, 7) where win.inH == win.outH && win.padTop == 0: self = .line(vertical: false)
            case (7, 1) where win.inW == win.outW && win.padLeft == 0: self = .line(vertical: true)
            default: return nil
            }
        }
    }

    private let form: Form
    private let transformed: Buffer
    let cin, cout: Int

    /// True when a `kH×kW` layer over `win` with `epilogue` can run as Winograd here on `n`
    /// images: a 3×3, 1×7 or 7×1 stride-1 window, no residual and a ReLU-like activation (which
    /// the output transform applies), enough tiles (`minimumTiles`), on a CPU with AVX2 + FMA,
    /// unless `FMODEL_NO_WINOGRAD` is set (which turns oneDNN's off too).
    static func applies(kH: Int, kW: Int, n: Int, win: Window, epilogue: Epilogue) -> Bool {
        guard available, !epilogue.addsResidual, epilogue.fusedCode != nil, let form = Form(kH: kH, kW: kW, win: win) else {
            return false
        }
        return Geometry(form, n: n, win: win, cin: 0, cout: 0).tiles >= form.minimumTiles
    }

    /// The C side's geometry of `n` images over `win`: the tiles, and the run of a block of them.
    private enum Geometry {
        case square(fm_winograd_shape)
        case line(fm_line_shape)

        init(_ form: Form, n: Int, win: Window, cin: Int, cout: Int) {
            switch form {
            case .square:
                self = .square(fm_winograd_shape(n: n, ih: win.inH, iw: win.inW, c: cin, oh: win.outH, ow: win.outW, k: cout,
                                                 pad_top: win.padTop, pad_left: win.padLeft))
            case .line(let vertical):
                self = .line(fm_line_shape(n: n, ih: win.inH, iw: win.inW, c: cin, oh: win.outH, ow: win.outW, k: cout, taps: 7,
                                           vertical: vertical ? 1 : 0, pad: vertical ? win.padTop : win.padLeft))
            }
        }

        /// The output tiles, all images.
        var tiles: Int {
            switch self {
            case .square(var s): fm_winograd_tiles(&s)
            case .line(var s): fm_line_winograd_tiles(&s)
            }
        }

        /// Tiles [t0, t1) on this thread (`fm_winograd_run`, `fm_line_winograd_run`).
        func run(_ input: UnsafePointer<Float>, _ transformed: UnsafePointer<Float>, _ t0: Int, _ t1: Int,
                 _ scratch: UnsafeMutablePointer<Float>, _ output: UnsafeMutablePointer<Float>, _ bias: UnsafePointer<Float>?,
                 _ scale: Float, _ code: Int32, _ alpha: Float) {
            switch self {
            case .square(var s): fm_winograd_run(&s, input, transformed, t0, t1, scratch, output, bias, scale, code, alpha)
            case .line(var s): fm_line_winograd_run(&s, input, transformed, t0, t1, scratch, output, bias, scale, code, alpha)
            }
        }
    }

    /// The fewest tiles a 3×3 (`line` false) or a 1×7 / 7×1 layer runs as Winograd on.
    static func fewestTiles(line: Bool) -> Int { (line ? Form.line(vertical: false) : Form.square).minimumTiles }

    /// True when this CPU and the environment allow Winograd at all.
    static let available = fm_winograd_available() != 0 && getenv("FMODEL_NO_WINOGRAD") == nil

    /// Transforms an HWIO `[kH, kW, cin, cout]` kernel (a window `applies` accepted), and packs
    /// each point's `[cin, cout]` product for `fm_gemm_packed_f32`.
    init(kernel: UnsafePointer<Float>, kH: Int, kW: Int, win: Window, cin: Int, cout: Int) {
        form = Form(kH: kH, kW: kW, win: win)!
        (self.cin, self.cout) = (cin, cout)
        let points = form.points, point = fm_packed_floats(cin, cout)
        transformed = Buffer(capacity: points * point)
        let plain = Buffer(capacity: points * cin * cout)
        if case .square = form {
            fm_winograd_kernel(kernel, cin, cout, plain.pointer)
        } else {
            fm_line_winograd_kernel(kernel, cin, cout, plain.pointer)
        }
        for p in 0..<points { fm_pack_kernel(plain.pointer + p * cin * cout, cin, cout, transformed.pointer + p * point) }
    }

    /// Tiles a thread transforms and multiplies at a time: their transformed inputs and
    /// products, `points × tiles × (cin + cout)` floats, in about 1 MB.
    private var tilesAtATime: Int { max(8, (1 << 20) / (form.points * (cin + cout) * 4)) }

    /// `output = epilogue(conv(input))` for the `n` images over `win`, an epilogue `applies`
    /// accepted.
    func run(input: UnsafePointer<Float>, n: Int, win: Window, output: UnsafeMutablePointer<Float>, epilogue: Epilogue,
             scratch: Scratch) {
        let (code, alpha) = epilogue.fusedCode!
        let geometry = Geometry(form, n: n, win: win, cin: cin, cout: cout), tiles = geometry.tiles
        let block = min(tilesAtATime, (tiles + teamSize - 1) / teamSize)
        let perThread = form.points * block * (cin + cout)
        let space = scratch(teamSize * perThread * 4).assumingMemoryBound(to: Float.self)
        let (transformed, bias, scale) = (UnsafePointer(transformed.pointer), epilogue.bias?.pointer, epilogue.scale)
        parallelFor(tiles, grain: 4) { range in
            let mine = space + threadNumber() * perThread
            for t0 in stride(from: range.lowerBound, to: range.upperBound, by: block) {
                geometry.run(input, transformed, t0, min(range.upperBound, t0 + block), mine, output, bias, scale, code, alpha)
            }
        }
    }
}
