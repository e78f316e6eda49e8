import CKernels
import FModelCore
@testable import FModelRuntime
import FModelTestSupport
import Testing

/// `count` values in [−1, 1] (times `scale`) from `g`.
private func randoms(_ count: Int, _ g: inout SplitMix64, scale: Float = 1) -> [Float] {
    (0..<count).map { _ in (Float(g.next() % 2001) / 1000 - 1) * scale }
}

/// A graph of one conv2D layer `y` (HWIO `kernel`, `bias` if given) over `x` of shape `inShape`
/// (any batch size).
private func convGraph(_ inShape: [Int], kernel: [Float], kH: Int, kW: Int, cout: Int, bias: [Float]?,
                       _ attributes: ConvAttributes) -> Graph {
    var params = ["kernel": "k"], tensors = ["k": Tensor(kernel, shape: [kH, kW, inShape[3], cout])]
    if let bias { (params["bias"], tensors["b"]) = ("b", Tensor(bias, shape: [cout])) }
    return Graph(inputs: [ValueInfo(name: "x", shape: Shape([-1] + inShape.dropFirst()))], outputs: ["y"],
                 nodes: [Node(name: "y", op: .conv2D(attributes), inputs: ["x"], params: params)], tensors: tensors)
}

/// One conv2D layer (`convGraph`) over `x` on the `gemm` engine: what the GEMM path's
/// convolution tests run against `directConv`.
private func gemmEngineConv(_ x: [Float], _ inShape: [Int], kernel: [Float], kH: Int, kW: Int, cout: Int, bias: [Float]?,
                            _ attributes: ConvAttributes) throws -> [Float] {
    let graph = convGraph(inShape, kernel: kernel, kH: kH, kW: kW, cout: cout, bias: bias, attributes)
    return try Executor(graph: graph, engine: .gemm).run(["x": FloatTensor(shape: Shape(inShape), values: x)])["y"]!.values
}

/// The GEMM path's own product (`gemm`, `fm_gemm_f32`) and its im2col fed a chunk of rows at a
/// time (`im2colGEMM`): what a `tiered` executor's first run and the `gemm` engine compute
/// with, instead of oneDNN's `dnnl_sgemm`, which compiles its kernels at its first call.
@Suite struct GEMMPathTests {
    /// Row counts with and without a tail of the twelve-row register block, the threads sharing
    /// the columns (below `columnSplitRows`) or the rows, column counts that are not a multiple
    /// of 32, depths not a multiple of the 256-deep pieces, and a kernel wide and deep enough to
    /// be cut into column panels (2000 deep: panels of 128 columns with AVX-512's 2 MB of L2).
    /// With AVX2, from 24 rows, each 256-deep piece of a 128-column panel is packed: 300 and
    /// 600 columns are three and five panels, the last short; 400 rows give each of two
    /// threads more than the 144 rows that pass over a packed piece at a time.
    @Test(arguments: [(1, 128, 117), (13, 7, 5), (25, 300, 33), (100, 256, 64), (37, 2000, 300), (200, 70, 40),
                      (250, 300, 50), (200, 300, 600), (400, 300, 50)])
    func productMatchesDirectSum(m: Int, k: Int, n: Int) {
        var g = SplitMix64(seed: 11)
        let a = randoms(m * k, &g), b = randoms(k * n, &g, scale: 0.05)  // sums of a size float32 keeps to 1e-4
        #expect(productError(m: m, k: k, n: n, a: a, b: b) { gemm(m: m, n: n, k: k, a: $0, b: $1, c: $2) } < 1e-4)
    }

    /// A kernel packed once (`fm_pack_kernel`, as Winograd's transformed kernels are) times rows
    /// on one thread (`fm_gemm_packed_f32`): depths of one and of three 256-deep pieces, the
    /// last short; columns that end inside a 16-column strip and that fill their last one (on
    /// AVX-512, where strips go in pairs, also inside the second of a pair: 20); more rows than
    /// pass over a piece at a time (144), and than a register block holds (6 on AVX2, 12 on
    /// AVX-512).
    @Test(.enabled(if: fm_packed_available() != 0, "packed products need AVX2 + FMA"),
          arguments: [(7, 20, 9), (13, 40, 20), (30, 300, 33), (150, 600, 48)])
    func packedKernelProductMatchesDirectSum(m: Int, k: Int, n: Int) {
        var g = SplitMix64(seed: 14)
        let a = randoms(m * k, &g), b = randoms(k * n, &g, scale: 0.05)
        let packed = Buffer(capacity: fm_packed_floats(k, n))
        b.withUnsafeBufferPointer { fm_pack_kernel($0.baseAddress!, k, n, packed.pointer) }
        #expect(productError(m: m, k: k, n: n, a: a, b: b) { a, _, c in fm_gemm_packed_f32(a, k, m, k, packed.pointer, n, c) } < 1e-4)
    }

    /// A 3×3 SAME convolution on the `gemm` engine whose im2col chunks (48 rows at a depth of
    /// 2,700) cross image boundaries (81 rows an image) and split unevenly between the threads,
    /// against `directConv`.
    @Test func chunkedIm2colMatchesDirectSum() throws {
        var g = SplitMix64(seed: 12)
        let (n, h, cin, cout) = (3, 9, 300, 20)
        let kernel = randoms(9 * cin * cout, &g, scale: 0.05), x = randoms(n * h * h * cin, &g)
        let y = try gemmEngineConv(x, [n, h, h, cin], kernel: kernel, kH: 3, kW: 3, cout: cout, bias: nil, ConvAttributes(padding: .same))
        let expected = directConv(x, [n, h, h, cin], kernel, kH: 3, kW: 3, cout: cout, stride: 1,
                                  bias: [Float](repeating: 0, count: cout))
        #expect(Difference(y, expected, tolerance: .tensorFlow).maxAbsolute < 1e-4)
    }
}

/// Convolutions whose window is one line of taps (1×k, k×1), which the GEMM path runs without
/// im2col, skipping the taps on the padding and finishing with the bias and activation in the
/// last store (`LineConvolution`): SAME and VALID, rows and columns, output channels not a
/// multiple of the 16-column block, groups of pixels that are not a multiple of the six-row
/// block, fewer pixels than `columnSplitRows` (the threads share the channels) and more (they
/// share the pixels), more than 128 input channels (a piece of the depth a tap: the later taps
/// add to the output, the last finishes it), more output channels than a column panel holds
/// (330 at 200 input channels with 512 KB of L2, on 192 pixels: each thread takes every
/// channel of its pixels), ReLU, leaky ReLU and none, against `directConv`.
@Suite struct LineConvolutionTests {
    @Test(arguments: [(1, 7, true, 1, 8, 8, 24, 40, 1), (7, 1, true, 1, 8, 8, 24, 40, 2), (1, 7, true, 4, 8, 8, 33, 21, 0),
                      (7, 1, true, 4, 8, 7, 33, 21, 1), (1, 3, true, 5, 3, 3, 48, 19, 2), (3, 1, true, 2, 5, 3, 16, 16, 0),
                      (1, 5, false, 3, 6, 9, 10, 35, 1), (4, 1, false, 2, 9, 5, 8, 17, 0), (1, 2, true, 2, 4, 5, 7, 9, 2),
                      (1, 7, true, 4, 8, 8, 140, 18, 1), (7, 1, true, 8, 6, 4, 200, 330, 2)])
    func matchesDirectSum(kH: Int, kW: Int, same: Bool, n: Int, h: Int, w: Int, cin: Int, cout: Int, activation: Int) throws {
        var g = SplitMix64(seed: 13)
        let kernel = randoms(kH * kW * cin * cout, &g, scale: 0.05), bias = randoms(cout, &g, scale: 0.5), x = randoms(n * h * w * cin, &g)
        let padding: Padding = same ? .same : .valid
        let act: Activation = [.linear, .relu, .leakyRelu(alpha: 0.2)][activation]
        let (oh, ow) = same ? (h, w) : (h - kH + 1, w - kW + 1)
        if LineConvolution.available {
            let win = Window(inH: h, inW: w, outH: oh, outW: ow, kH: kH, kW: kW, strides: [1, 1], dilations: [1, 1], padding: padding)
            #expect(LineConvolution(win, n: n, cin: cin, cout: cout) != nil)
        }
        let y = try gemmEngineConv(x, [n, h, w, cin], kernel: kernel, kH: kH, kW: kW, cout: cout, bias: bias,
                                   ConvAttributes(padding: padding, activation: act))
        let expected = directConv(x, [n, h, w, cin], kernel, kH: kH, kW: kW, cout: cout, stride: 1, bias: bias, same: same)
            .map { activation == 0 ? $0 : $0 > 0 ? $0 : activation == 1 ? 0 : 0.2 * $0 }
        #expect(y.count == n * oh * ow * cout)
        #expect(Difference(y, expected, tolerance: .tensorFlow).maxAbsolute < 1e-4)
    }
}

/// Convolutions without padding, which the GEMM path runs without im2col, each pixel's inputs
/// under a window row read in place (`WindowConvolution`): stride 2 and 1, a non-square window,
/// fewer pixels than `columnSplitRows` (the threads share the channels) and more (they share
/// the pixels, more than the 144 a packed piece takes at a time), window rows of more than 256
/// floats (two pieces of the depth a row), more output channels than a packed panel holds (300:
/// 256 and 44), several images; against `directConv`. A SAME window that pads, and a window row
/// shorter than 64 floats (three input channels), stay on im2col.
@Suite struct WindowConvolutionTests {
    @Test(arguments: [(3, 3, 2, 1, 9, 11, 40, 20), (3, 3, 2, 3, 21, 19, 100, 300), (3, 3, 1, 2, 20, 20, 32, 24),
                      (2, 3, 1, 1, 7, 9, 30, 17)])
    func matchesDirectSum(kH: Int, kW: Int, stride: Int, n: Int, h: Int, w: Int, cin: Int, cout: Int) throws {
        var g = SplitMix64(seed: 15)
        let kernel = randoms(kH * kW * cin * cout, &g, scale: 0.05), bias = randoms(cout, &g, scale: 0.5), x = randoms(n * h * w * cin, &g)
        let (oh, ow) = ((h - kH) / stride + 1, (w - kW) / stride + 1)
        if WindowConvolution.available {
            let win = Window(inH: h, inW: w, outH: oh, outW: ow, kH: kH, kW: kW, strides: [stride, stride], dilations: [1, 1],
                             padding: .valid)
            #expect(WindowConvolution(win, n: n, cin: cin, cout: cout) != nil)
        }
        let y = try gemmEngineConv(x, [n, h, w, cin], kernel: kernel, kH: kH, kW: kW, cout: cout, bias: bias,
                                   ConvAttributes(strides: [stride, stride], padding: .valid))
        let expected = directConv(x, [n, h, w, cin], kernel, kH: kH, kW: kW, cout: cout, stride: stride, bias: bias, same: false)
        #expect(y.count == n * oh * ow * cout)
        #expect(Difference(y, expected, tolerance: .tensorFlow).maxAbsolute < 1e-4)
    }

    /// Past a tiered executor's first run, where its trial keeps the GEMM path (forced here),
    /// the kernel is packed once (`WindowConvolution.pack`) and the later runs read it: the threads
    /// sharing the pixels (two pieces a window row, two panels) or the channels (the second
    /// share starting at channel 64 of the packed strips); where oneDNN wins, the packed copy
    /// goes. Every run gives the direct sum.
    @Test(arguments: [(ConvPath.gemm, 3, 21, 19, 100, 300), (.gemm, 1, 15, 15, 64, 100), (.native, 1, 15, 15, 64, 100)])
    func packedOnceWhereTheGEMMPathWins(verdict: ConvPath, n: Int, h: Int, w: Int, cin: Int, cout: Int) throws {
        var g = SplitMix64(seed: 16)
        let kernel = randoms(9 * cin * cout, &g, scale: 0.05), bias = randoms(cout, &g, scale: 0.5), x = randoms(n * h * w * cin, &g)
        let attributes = ConvAttributes(strides: [2, 2], padding: .valid)
        let e = try Executor(graph: convGraph([n, h, w, cin], kernel: kernel, kH: 3, kW: 3, cout: cout, bias: bias, attributes))
        e.forceTrialVerdict(verdict)
        let input = ["x": FloatTensor(shape: [n, h, w, cin], values: x)]
        let runs = try (0..<3).map { _ in try e.run(input)["y"]!.values }
        let expected = directConv(x, [n, h, w, cin], kernel, kH: 3, kW: 3, cout: cout, stride: 2, bias: bias, same: false)
        for y in runs { #expect(Difference(y, expected, tolerance: .tensorFlow).maxAbsolute < 1e-4) }
        guard case .conv(let k) = e.program.instructions[0].step, let native = k.native else { Issue.record("not a native conv"); return }
        #expect(native.holdsPackedWindowKernel == (verdict == .gemm && WindowConvolution.available))
    }

    @Test func paddedOrShallowWindowsStayOnIm2col() {
        let padded = Window(inH: 9, inW: 9, outH: 9, outW: 9, kH: 3, kW: 3, strides: [1, 1], dilations: [1, 1], padding: .same)
        #expect(WindowConvolution(padded, n: 1, cin: 64, cout: 8) == nil)
        let shallow = Window(inH: 9, inW: 9, outH: 4, outW: 4, kH: 3, kW: 3, strides: [2, 2], dilations: [1, 1], padding: .valid)
        #expect(WindowConvolution(shallow, n: 1, cin: 3, cout: 8) == nil)
        // Stride 2 over an even size under SAME pads only after the last pixel: still padded.
        let after = Window(inH: 8, inW: 8, outH: 4, outW: 4, kH: 3, kW: 3, strides: [2, 2], dilations: [1, 1], padding: .same)
        #expect(after.padTop == 0 && WindowConvolution(after, n: 1, cin: 64, cout: 8) == nil)
    }
}
