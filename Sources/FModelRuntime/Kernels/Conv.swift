import CKernels
import FModelCore
import Foundation

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

    /// A `kH×kW` convolution's window from `inShape` to `outShape` (NHWC).
    init(_ inShape: Shape, _ outShape: Shape, kH: Int, kW: Int, _ a: ConvAttributes) {
        self.init(inH: inShape[1], inW: inShape[2], outH: outShape[1], outW: outShape[2], kH: kH, kW: kW,
                  strides: a.strides, dilations: a.dilations, padding: a.padding)
    }

    /// True when the window is a 1×1, stride-1 identity map of the pixels.
    var isPointwise: Bool { kH == 1 && kW == 1 && strideH == 1 && strideW == 1 && padTop == 0 && padLeft == 0 }
}

/// Scratch memory a kernel may use during one call: `bytes` or more, 64-byte aligned.
typealias Scratch = (_ bytes: Int) -> UnsafeMutableRawPointer

/// Output widths, in pixels, at or below which a 1×1 layer multiplies as a GEMM rather than as
/// a oneDNN convolution (`ConvKernel.multipliesAsGEMM`).
let narrowOutputWidth = 4

/// Rows (output pixels of all images) from which such a layer does (`ConvKernel.multipliesAsGEMM`);
/// at least `libraryRows`, so that its product is `dnnl_sgemm`'s.
let narrowProductRows = 64

/// An activation tensor converted for a oneDNN convolution — quantized to 8 bits (no zero
/// point), or rounded to bfloat16 — shared by the convolutions that read the same tensor (the
/// branches of an Inception block).
typealias ConvertedInput = (_ x: UnsafePointer<Float>, _ count: Int, _ to: InputEncoding) -> (ActivationQuantization?, UnsafeRawPointer)

enum InputEncoding: Hashable, CaseIterable {
    case int8
    case bf16
}

/// Prepared 2-D convolution: a oneDNN primitive (`native`), or im2col (none for 1×1) and one GEMM
/// against the `[KH·KW·Cin, Cout]` kernel — streamed, read in place, when the output has few
/// rows (`streams`); then the epilogue.
struct ConvKernel {
    let weights: GEMMWeights
    /// The epilogue; a new one means new native primitives, which bake it in.
    var epilogue: Epilogue { didSet { if native != nil { native = NativeConvolutions() } } }
    let attributes: ConvAttributes
    let kH, kW, cin, cout: Int
    /// oneDNN's convolution primitives, or nil to run im2col + GEMM.
    private(set) var native: NativeConvolutions?
    /// A float32 kernel multiplies in bfloat16 (oneDNN's AVX512-BF16 code; float32 accumulation).
    let bf16: Bool

    /// Whether a float32 layer's first native run times oneDNN's primitive against im2col + GEMM
    /// and keeps the faster (`NativeConvolutions.trial`): a `tiered` executor's layers.
    let measuresNative: Bool

    /// True for a kernel stored as int8 that multiplies in float32 on a dequantized copy
    /// (`Step.dequantizesIntegerKernel`). Like the int8 layers around it, it runs its oneDNN
    /// primitive from the first run, untimed and unchained, so that the model gives one answer
    /// twice (an int8 layer after it quantizes what it writes).
    let dequantized: Bool

    init(weights: GEMMWeights, epilogue: Epilogue, attributes: ConvAttributes, kH: Int, kW: Int, cin: Int, cout: Int,
         native: Bool, bf16: Bool = false, measuresNative: Bool = false, dequantized: Bool = false) {
        (self.weights, self.epilogue, self.attributes) = (weights, epilogue, attributes)
        (self.kH, self.kW, self.cin, self.cout) = (kH, kW, cin, cout)
        self.native = native ? NativeConvolutions() : nil
        self.bf16 = native && bf16
        self.dequantized = dequantized
        self.measuresNative = native && !bf16 && measuresNative && !dequantized
    }

    /// True when the layer's primitive is made and run from a batch size's first run: int8
    /// layers and dequantized ones.
    var nativeFromFirstRun: Bool { weights.isInteger || dequantized }

    /// Makes the native primitive the common case will use: float32, or int8 on unsigned
    /// activations (the input of every conv after a ReLU).
    /// The kernel is not loaded yet: `loadNative` does that, on any thread.
    func prepareNative(inShape: Shape, outShape: Shape) {
        _ = native?.primitive(batch: inShape[0], win: window(inShape, outShape), kernel: self, load: false)
    }

    func loadNative() { native?.loadKernels(self) }

    func window(_ inShape: Shape, _ outShape: Shape) -> Window { Window(inShape, outShape, kH: kH, kW: kW, attributes) }

    /// True when a float32 kernel at `rows` output pixels (all images) is read once, in place,
    /// by `streamedGEMM` on every run rather than run by oneDNN (which would make a primitive
    /// and a copy of the kernel for it): where the GEMM path streams it and oneDNN's kernels are
    /// AVX-512 ones, which read such kernels about 20% slower. On AVX2 oneDNN's `jit_1x1:avx2`
    /// read them 17-31% faster (`Benchmarks/streamed_gemm.c`, Block8's 1×1 shapes at nine
    /// rows), so there the layer streams on the first run only; later the trial weighs the two.
    /// A layer with a residual, which is not trialled, streams everywhere: in the model, with
    /// its kernel out of cache, Block8's residual 384→1792 layers at batch 1 took 0.81–1.02 ms
    /// for the six streamed against 0.91–1.00 through oneDNN (`bench --profile`, six alternating
    /// processes each), and their 16.5 MB of kernel copies go.
    func streams(rows: Int) -> Bool { streamsOnGEMMPath(rows: rows) && (native == nil || epilogue.addsResidual || oneDNNIsAVX512) }

    /// True when a float32 1×1 layer over `win` multiplies as one `sgemm` past the first run
    /// rather than as a oneDNN convolution, with no primitive and no copy of the kernel (the
    /// mapped one is read in place): an output at most `narrowOutputWidth` pixels wide on
    /// `narrowProductRows` rows or more, where oneDNN's convolutions are its AVX-512 ones.
    /// Those block the output along its width, and Block8's maps are three pixels wide:
    /// its 1×1s ran at 357-431 GFLOP/s in the multi-task model at batch 32 (the stride-1 1×1s
    /// of Block17 and Block35 at 427-481), and as `sgemm`s the residual 384→1792s took 0.86×
    /// their time at batch 32, 0.81× at 16, 0.73× at 8, the branches' 1792→192s 0.90-0.92×,
    /// 0.93-0.99× and 0.89-0.94× (`layer_ab.py`, 7-9 rounds). At batch 4 (36 rows) the
    /// residual ones took 1.09× and stay oneDNN's; at batch 1 (nine rows) they stream.
    func multipliesAsGEMM(_ win: Window, rows: Int) -> Bool {
        guard case .f32 = weights, !bf16, native != nil, oneDNNIsAVX512, win.isPointwise else { return false }
        return win.outW <= narrowOutputWidth && rows >= narrowProductRows
    }

    /// True when the layer makes no oneDNN primitive for `rows` output pixels over `win` and runs
    /// on the GEMM path past the first run too: it streams its kernel (`streams`) or multiplies
    /// as one `sgemm` (`multipliesAsGEMM`). The one place that says so: `run` follows it, and the
    /// executor makes no primitive for such a layer and keeps it out of chains.
    func bypassesNative(_ win: Window, rows: Int) -> Bool { streams(rows: rows) || multipliesAsGEMM(win, rows: rows) }

    /// True when the GEMM path reads the kernel once, in place (`streamsKernel`).
    func streamsOnGEMMPath(rows: Int) -> Bool {
        guard case .f32 = weights, !bf16 else { return false }
        return streamsKernel(rows: rows, weights: kH * kW * cin * cout)
    }

    /// `nativeFloat` false keeps a float32 kernel on im2col + GEMM (a `tiered` first run).
    /// `outputStride`, for int8 weights only: the floats from one output pixel to the next, when
    /// the layer writes its channels into a wider tensor (a concat's, `Program.ConcatSlot`).
    /// - Returns: the range of the output when the epilogue measured it (int8 layers, whose
    ///   readers are int8 layers too), else nil.
    @discardableResult
    func run(input: UnsafePointer<Float>, inShape: Shape, output: UnsafeMutablePointer<Float>, outShape: Shape,
             outputStride: Int? = nil, residual: UnsafePointer<Float>?, scratch: Scratch, nativeFloat: Bool,
             converted: ConvertedInput) -> (lo: Float, hi: Float)? {
        let n = inShape[0]
        let win = window(inShape, outShape)
        let pixels = win.outH * win.outW, k = kH * kW * cin, rows = n * pixels
        let inCount = n * win.inH * win.inW * cin
        switch weights {
        case .f32(let w):
            precondition(outputStride == nil, "a float32 convolution writes a tensor of its own")
            let nativeFloat = nativeFloat || dequantized
            func runStreamed() {
                let columns = win.isPointwise ? 0 : rows * k
                let space = scratch((columns + (teamSize - 1) * rows * cout) * 4).assumingMemoryBound(to: Float.self)
                if !win.isPointwise { im2col(input, win, cin: cin, rows: rows, into: space) }
                streamedGEMM(m: rows, n: cout, k: k, a: win.isPointwise ? input : UnsafePointer(space), b: w.pointer, c: output,
                             partial: space + columns)
                epilogue.apply(output, rows: rows, channels: cout, stride: cout, residual: residual)
            }
            // oneDNN's sgemm (which compiles its kernels at its first call) only where oneDNN
            // runs anyway: not on the `gemm` engine, nor on a tiered executor's first run.
            let library = nativeFloat && native != nil
            func runGEMM() {
                if streamsOnGEMMPath(rows: rows) {
                    runStreamed()
                    return
                }
                if win.isPointwise {
                    gemm(m: rows, n: cout, k: cin, a: input, b: w.pointer, c: output, library: library)
                } else if let line = LineConvolution(win, n: n, cin: cin, cout: cout) {
                    // With the epilogue in its last store where it can (no residual, a ReLU-like activation).
                    if line.run(input: input, kernel: w.pointer, output: output, epilogue: epilogue) { return }
                } else if let window = WindowConvolution(win, n: n, cin: cin, cout: cout) {
                    // Its kernel packed once where oneDNN runs anyway (`WindowConvolution.pack`).
                    let packed = library ? native?.packedWindowKernel(weights) { window.pack(w.pointer) } : nil
                    window.run(input: input, kernel: w.pointer, packed: packed, output: output, scratch: scratch)
                } else {
                    im2colGEMM(input, win, cin: cin, rows: rows, kernel: w.pointer, cout: cout, output: output, scratch: scratch,
                               library: library)
                }
                epilogue.apply(output, rows: rows, channels: cout, stride: cout, residual: residual)
            }
            // The GEMM path on every run (streamed, or one `sgemm`), as the executor planned
            // (`bypassesNative`). Asked only where a native run may follow: a tiered executor's
            // first run goes to `runGEMM` anyway, and asking would page in oneDNN's code.
            if nativeFloat && bypassesNative(win, rows: rows) {
                runGEMM()
                return nil
            }
            if nativeFloat, let winograd = native?.winograd(batch: n) {
                winograd.run(input: input, n: n, win: win, output: output, epilogue: epilogue, scratch: scratch)
                return nil
            }
            if nativeFloat, let native, let primitive = native.primitive(batch: n, win: win, kernel: self) {
                func runNative() {
                    if let residual, residual != UnsafePointer(output) { copyValues(residual, into: output, count: rows * cout) }
                    let source = bf16 ? converted(input, inCount, .bf16).1 : UnsafeRawPointer(input)
                    let status = fm_conv_run(primitive, source, output, workspace(primitive, scratch))
                    precondition(status == 0, "oneDNN convolution failed")
                }
                // Without a residual (which a native run may add in place) the two can be run
                // one after the other on the same output.
                if measuresNative && !epilogue.addsResidual && !native.decided(batch: n) {
                    let winograd = WinogradKernel.applies(kH: kH, kW: kW, n: n, win: win, epilogue: epilogue)
                        ? native.winogradCandidate { WinogradKernel(kernel: w.pointer, kH: kH, kW: kW, win: win, cin: cin, cout: cout) } : nil
                    func runWinograd() { winograd?.run(input: input, n: n, win: win, output: output, epilogue: epilogue, scratch: scratch) }
                    let verdict = withoutActuallyEscaping(runWinograd) { runWinograd in
                        native.trial("conv \(kH)x\(kW)/\(win.strideH) \(cin)->\(cout) \(win.outH)x\(win.outW)", batch: n,
                                     inputBytes: inCount * MemoryLayout<Float>.stride, native: runNative, gemm: runGEMM,
                                     winograd: winograd == nil ? nil : runWinograd)
                    }
                    // The GEMM runs read the mapped kernel back in: a kept primitive, or Winograd,
                    // has its own copy.
                    if verdict != .gemm { weights.releaseResidentPages() }
                } else {
                    runNative()
                }
                return nil
            }
            runGEMM()
            return nil
        case .int8(let w):
            // The int32 accumulators take the output's place, unless it is a wider tensor's
            // channels: then they go to scratch, ahead of what the kernels take of it (one
            // request: scratch moves when it grows).
            let stride = outputStride ?? cout
            let accumulatorBytes = stride == cout ? 0 : (rows * cout * MemoryLayout<Int32>.stride + 63) & ~63
            func space(_ bytes: Int) -> (accumulators: UnsafeMutablePointer<Int32>, rest: UnsafeMutableRawPointer) {
                let base = scratch(accumulatorBytes + bytes)
                let accumulators = accumulatorBytes == 0 ? UnsafeMutableRawPointer(output) : base
                return (accumulators.assumingMemoryBound(to: Int32.self), base + accumulatorBytes)
            }
            func finish(_ q: ActivationQuantization, _ accumulators: UnsafeMutablePointer<Int32>) -> (lo: Float, hi: Float)? {
                q.columnScales(w.scales) {
                    epilogue.apply(output, rows: rows, channels: cout, stride: stride, residual: residual, dequantize: $0,
                                   accumulators: accumulatorBytes == 0 ? nil : UnsafePointer(accumulators), measureRange: true)
                }
            }
            if let native {
                let (quantization, a) = converted(input, inCount, .int8)
                let q = quantization!
                if let primitive = native.primitive(batch: n, signed: q.signed, win: win, kernel: self) {
                    let workspaceBytes = fm_conv_workspace_size(primitive)
                    let (accumulators, workspace) = space(workspaceBytes)
                    let status = fm_conv_run(primitive, a, accumulators, workspaceBytes > 0 ? workspace : nil)
                    precondition(status == 0, "oneDNN convolution failed")
                    return finish(q, accumulators)
                }
            }
            let q = ActivationQuantization(input, count: inCount)
            if win.isPointwise {
                let (accumulators, rest) = space(inCount)
                let a = rest.assumingMemoryBound(to: UInt8.self)
                q.quantize(input, count: inCount, into: a)
                gemmU8S8(m: rows, n: cout, k: cin, a: a, aZero: q.zeroPoint, b: w.pointer, c: accumulators)
                return finish(q, accumulators)
            }
            // Several images per GEMM (a taller matrix runs faster), within a 4 MiB im2col.
            let perChunk = max(1, min(n, (4 << 20) / max(pixels * k, 1)))
            let (accumulators, rest) = space(perChunk * pixels * k)
            let col = rest.assumingMemoryBound(to: UInt8.self)
            for first in Swift.stride(from: 0, to: n, by: perChunk) {
                let images = min(perChunk, n - first)
                im2col(input + first * win.inH * win.inW * cin, win, cin: cin, rows: images * pixels, into: col, quantization: q)
                gemmU8S8(m: images * pixels, n: cout, k: k, a: col, aZero: q.zeroPoint, b: w.pointer,
                         c: accumulators + first * pixels * cout)
            }
            return finish(q, accumulators)
        }
    }
}

/// What a oneDNN convolution holds only while it runs (its scratchpads, Winograd's blocked
/// activations), in `scratch`: nil where it needs none.
private func workspace(_ primitive: OpaquePointer, _ scratch: Scratch) -> UnsafeMutableRawPointer? {
    let bytes = fm_conv_workspace_size(primitive)
    return bytes > 0 ? scratch(bytes) : nil
}

/// Prepared dense layer: one GEMM of `[rows, inputs]` by `[inputs, units]`, then the epilogue.
struct DenseKernel {
    let weights: GEMMWeights
    var epilogue: Epilogue
    let inputs, units: Int
    /// Column panels or `dnnl_sgemm`, where both may run (`readsKernelInPanels`).
    let trial = DenseTrial()

    func run(input: UnsafePointer<Float>, rows: Int, output: UnsafeMutablePointer<Float>, residual: UnsafePointer<Float>?,
             scratch: Scratch) {
        switch weights {
        case .f32(let w) where streamsKernel(rows: rows, weights: inputs * units):
            // A large layer on few rows (batch 1 to 16) is a read of its kernel.
            let partial = scratch((teamSize - 1) * rows * units * 4).assumingMemoryBound(to: Float.self)
            streamedGEMM(m: rows, n: units, k: inputs, a: input, b: w.pointer, c: output, partial: partial)
            epilogue.apply(output, rows: rows, channels: units, stride: units, residual: residual)
        case .f32(let w) where multipliesPackedCopy(rows: rows, weights: inputs * units):
            // fc1 from batch 17 on an AVX2 CPU: a copy of the kernel in 16-column strips.
            packedColumnGEMM(m: rows, n: units, k: inputs, a: input, packed: w.packed(k: inputs, n: units), c: output)
            epilogue.apply(output, rows: rows, channels: units, stride: units, residual: residual)
        case .f32(let w) where readsKernelInPanels(rows: rows, weights: inputs * units):
            // fc1 at batch 17 to 32 on an AVX-512 CPU: the kernel read once, in place, or
            // sgemm, whichever this machine runs faster.
            trial.run("dense \(inputs)->\(units)", rows: rows,
                      panels: { columnGEMM(m: rows, n: units, k: inputs, a: input, b: w.pointer, c: output) },
                      library: { sgemm(m: rows, n: units, k: inputs, a: input, b: w.pointer, c: output) })
            epilogue.apply(output, rows: rows, channels: units, stride: units, residual: residual)
        case .f32(let w) where rows <= streamedRowLimit:
            // The heads at batch 1 to 16: no call to dnnl_sgemm, which would compile its kernels.
            gemm(m: rows, n: units, k: inputs, a: input, b: w.pointer, c: output)
            epilogue.apply(output, rows: rows, channels: units, stride: units, residual: residual)
        case .f32(let w):
            sgemm(m: rows, n: units, k: inputs, a: input, b: w.pointer, c: output)
            epilogue.apply(output, rows: rows, channels: units, stride: units, residual: residual)
        case .int8(let w) where rows <= 2:
            // A row or two (batch 1): bandwidth-bound, so read the int8 kernel once per row in
            // float arithmetic — no activation rounding at all — from its column-blocked copy
            // (each 256-column block contiguous, so the reads stream), on every core: by block
            // when there are enough, else by block and share of the rows, partial sums added.
            let packed = w.columnBlocks(inputs: inputs)
            let blocks = packed.count, parts = blocks >= 2 * teamSize ? 1 : teamSize
            let partial = parts == 1 ? output : scratch(parts * rows * units * 4).assumingMemoryBound(to: Float.self)
            w.scales.withUnsafeBufferPointer { scales in
                parallelFor(blocks * parts, grain: 1) { tasks in
                    for task in tasks {
                        let (block, part) = (task / parts, task % parts)
                        let (c0, width) = (block * Int8Weights.blockWidth, packed[block].width)
                        let k0 = inputs * part / parts, k1 = inputs * (part + 1) / parts
                        for r in 0..<rows {
                            fm_gemv_s8(input + r * inputs + k0, k1 - k0, width, packed[block].pointer + k0 * width,
                                       scales.baseAddress! + c0, partial + (part * rows + r) * units + c0)
                        }
                    }
                }
            }
            if parts > 1 { addPartials(partial, parts: parts, count: rows * units, into: output) }
            epilogue.apply(output, rows: rows, channels: units, stride: units, residual: residual)
        case .int8(let w):
            let q = ActivationQuantization(input, count: rows * inputs)
            let a = scratch(rows * inputs).assumingMemoryBound(to: UInt8.self)
            q.quantize(input, count: rows * inputs, into: a)
            gemmU8S8(m: rows, n: units, k: inputs, a: a, aZero: q.zeroPoint, b: w.pointer,
                     c: UnsafeMutableRawPointer(output).assumingMemoryBound(to: Int32.self))
            _ = q.columnScales(w.scales) { epilogue.apply(output, rows: rows, channels: units, stride: units, residual: residual, dequantize: $0) }
        }
    }
}

/// `y = Σ partial[p]` over `parts` consecutive arrays of `count` floats (threads' shares of a sum).
private func addPartials(_ partial: UnsafePointer<Float>, parts: Int, count: Int, into y: UnsafeMutablePointer<Float>) {
    y.update(from: partial, count: count)
    for p in 1..<max(parts, 1) { for i in 0..<count { y[i] += partial[p * count + i] } }
}

/// Lays out every receptive field of `rows` output pixels (whole images, in order) as a row
/// of `kH·kW·cin` values, zero outside the image. Rows are split across the thread team.
func im2col(_ x: UnsafePointer<Float>, _ w: Window, cin: Int, rows: Int, into col: UnsafeMutablePointer<Float>) {
    forEachPatch(w, cin: cin, rows: rows) { dst, src in
        if let src { (col + dst).update(from: x + src, count: cin) } else { (col + dst).update(repeating: 0, count: cin) }
    }
}

/// `output = im2col(x) · kernel` for `rows` output pixels, each thread taking a contiguous
/// share of the rows a chunk at a time: the chunk's receptive fields laid out in the thread's
/// own slice of the scratch (about 512 KB, so it is still in L2 when the product reads it),
/// then multiplied (`fm_gemm_f32`). The whole im2col matrix never exists: Conv2d_2a's at batch
/// 1 would be 6.8 MB. Below `columnSplitRows` rows it does (at most 1.8 MB here), and the
/// threads share its product's columns (`gemm`).
/// `library` (see `gemm`): about 4 MB of im2col rows at a time, laid out by all threads, each
/// chunk one `gemm`.
func im2colGEMM(_ x: UnsafePointer<Float>, _ w: Window, cin: Int, rows: Int, kernel: UnsafePointer<Float>, cout: Int,
                output: UnsafeMutablePointer<Float>, scratch: Scratch, library: Bool = false) {
    let k = w.kH * w.kW * cin
    if takesLibrary(rows: rows, library: library) {
        let chunk = max(columnSplitRows, (4 << 20) / (k * 4))
        let col = scratch(min(rows, chunk) * k * 4).assumingMemoryBound(to: Float.self)
        for r0 in stride(from: 0, to: rows, by: chunk) {
            let r1 = min(rows, r0 + chunk)
            parallelFor(r1 - r0, grain: max(1, 16384 / k)) { range in
                layOut(x, w, cin: cin, rows: (r0 + range.lowerBound)..<(r0 + range.upperBound), into: col + range.lowerBound * k)
            }
            gemm(m: r1 - r0, n: cout, k: k, a: col, b: kernel, c: output + r0 * cout, library: true)
        }
        return
    }
    if rows < columnSplitRows {
        // Few rows (the later blocks at batch 1): the threads share the columns of one product.
        let col = scratch(rows * k * 4).assumingMemoryBound(to: Float.self)
        im2col(x, w, cin: cin, rows: rows, into: col)
        gemm(m: rows, n: cout, k: k, a: col, b: kernel, c: output)
        return
    }
    let share = ((rows + teamSize - 1) / teamSize + 11) / 12 * 12
    let chunk = max(12, min(share, (512 << 10) / (k * 4) / 12 * 12))
    let col = scratch(teamSize * chunk * k * 4).assumingMemoryBound(to: Float.self)
    parallelFor((rows + chunk - 1) / chunk, grain: 1) { chunks in
        let mine = col + threadNumber() * chunk * k
        for c in chunks {
            let r0 = c * chunk, r1 = min(rows, r0 + chunk)
            layOut(x, w, cin: cin, rows: r0..<r1, into: mine)
            fm_gemm_f32(mine, k, r1 - r0, k, kernel, cout, output + r0 * cout, 0, cout)
        }
    }
}

/// The receptive fields of output `rows` into `col` (its first row: the first of `rows`), on
/// this thread.
private func layOut(_ x: UnsafePointer<Float>, _ w: Window, cin: Int, rows: Range<Int>, into col: UnsafeMutablePointer<Float>) {
    patches(w, cin: cin, rows: rows) { dst, src in
        if let src { (col + dst).update(from: x + src, count: cin) } else { (col + dst).update(repeating: 0, count: cin) }
    }
}

/// im2col into unsigned 8-bit values quantized with `q`; padding becomes `q`'s zero point.
func im2col(_ x: UnsafePointer<Float>, _ w: Window, cin: Int, rows: Int, into col: UnsafeMutablePointer<UInt8>,
            quantization q: ActivationQuantization) {
    forEachPatch(w, cin: cin, rows: rows) { dst, src in
        if let src { q.quantize(x + src, count: cin, into: col + dst) } else { (col + dst).update(repeating: q.zeroPoint, count: cin) }
    }
}

/// Calls `copy(destinationOffset, sourceOffset or nil for padding)` for each `cin`-long patch
/// of the im2col matrix, in parallel over output rows.
@inline(__always)
private func forEachPatch(_ w: Window, cin: Int, rows: Int, _ copy: (Int, Int?) -> Void) {
    parallelFor(rows, grain: max(1, 16384 / (w.kH * w.kW * cin))) { range in
        patches(w, cin: cin, rows: range) { dst, src in copy(dst + range.lowerBound * w.kH * w.kW * cin, src) }
    }
}

/// Calls `copy(destinationOffset, sourceOffset or nil for padding)` for each `cin`-long patch
/// of the im2col matrix's `rows`, on this thread; offsets into the destination count from the
/// first of `rows`.
@inline(__always)
private func patches(_ w: Window, cin: Int, rows: Range<Int>, _ copy: (Int, Int?) -> Void) {
    let pixels = w.outH * w.outW
    let imageSize = w.inH * w.inW * cin
    var dst = 0
    for r in rows {
        let image = r / pixels, p = r % pixels
        let oy = p / w.outW, ox = p % w.outW
        for ky in 0..<w.kH {
            let iy = oy * w.strideH + ky * w.dilH - w.padTop
            for kx in 0..<w.kW {
                let ix = ox * w.strideW + kx * w.dilW - w.padLeft
                let inside = iy >= 0 && iy < w.inH && ix >= 0 && ix < w.inW
                copy(dst, inside ? image * imageSize + (iy * w.inW + ix) * cin : nil)
                dst += cin
            }
        }
    }
}

/// Prepared depthwise convolution: kernel [KH, KW, Cin, M], output channel `c·M + m`.
struct DepthwiseKernel {
    let kernel: FloatWeights
    var epilogue: Epilogue
    let attributes: ConvAttributes
    let kH, kW, cin, multiplier: Int

    func run(input: UnsafePointer<Float>, inShape: Shape, output: UnsafeMutablePointer<Float>, outShape: Shape,
             residual: UnsafePointer<Float>?) {
        let win = Window(inShape, outShape, kH: kH, kW: kW, attributes)
        let cout = cin * multiplier
        let w = kernel.pointer
        let pixels = win.outH * win.outW
        let (cin, multiplier, kH, kW) = (cin, multiplier, kH, kW)
        parallelFor(inShape[0] * pixels, grain: max(1, 4096 / cout)) { range in
            for r in range {
                let b = r / pixels, oy = (r % pixels) / win.outW, ox = r % win.outW
                let x = input + b * win.inH * win.inW * cin
                let out = output + r * cout
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
        epilogue.apply(output, rows: inShape[0] * pixels, channels: cout, stride: cout, residual: residual)
    }
}
