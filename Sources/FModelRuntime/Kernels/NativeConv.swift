import CKernels
import FModelCore
import Foundation

/// oneDNN convolution primitives for one conv layer, one per batch size (and, for an int8
/// kernel, per activation signedness), made on first use.
///
/// oneDNN's AVX-512 convolution (direct `brgconv`, or Winograd for wide 3×3 layers) reads NHWC
/// activations in place (no im2col) and, in float32 or bf16, applies the layer's epilogue as
/// post-ops; in int8 it returns int32 accumulators for the runtime's own epilogue. Its kernel is
/// a copy of the `.fmodel`'s HWIO kernel in a blocked layout. Layers it cannot take (a softmax
/// activation, a geometry it refuses) fall back to im2col + GEMM: `primitive` returns nil.
final class NativeConvolutions: @unchecked Sendable {
    private var primitives: [Int: OpaquePointer?] = [:]
    static let creation = NSLock()
    /// `FMODEL_DEBUG_CONV=1`: say which implementation each primitive got.
    static let debug = getenv("FMODEL_DEBUG_CONV") != nil

    deinit { for case let p?? in primitives.values { fm_conv_destroy(p) } }

    /// Says on standard error what `subject` got: its `implementation`, else the C side's
    /// error in `message` (for `FMODEL_DEBUG_CONV`).
    static func report(_ subject: String, _ implementation: String?, message: [CChar]) {
        let what = implementation ?? String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        say("\(subject): \(what)")
    }

    /// A line on standard error, as one `write` (FileHandle.write ends the process when the
    /// write fails; a debug line is not worth that).
    static func say(_ line: String) { _ = (line + "\n").withCString { write(2, $0, strlen($0)) } }

    /// True when the float32 (or unsigned int8) primitive for `batch` was made and works.
    func made(batch: Int) -> Bool {
        if case .some(.some) = primitives[batch * 2] { return true }
        return false
    }

    /// True when the float32 (or unsigned int8) primitive for `batch` was made or refused.
    func tried(batch: Int) -> Bool { primitives[batch * 2] != nil }

    /// Each trialled batch size's verdict (`trial`): what the batch size runs, and so which of
    /// the layer's own copies (Winograd's kernel, the packed window kernel) are kept.
    private var verdicts: [Int: ConvPath] = [:]

    /// True when `trial` ran for `batch`.
    func decided(batch: Int) -> Bool { verdicts[batch] != nil }

    /// For tests: the verdict this layer's trials return, not the clock's (`.winograd` where
    /// the layer has no Winograd form is `.native`).
    var forcedVerdict: ConvPath?

    /// The layer as Winograd, while a batch size runs it so (or a trial weighs it).
    private var winogradKernel: WinogradKernel?

    /// The Winograd form `batch` runs in, if its trial chose it.
    func winograd(batch: Int) -> WinogradKernel? { verdicts[batch] == .winograd ? winogradKernel : nil }

    /// The layer's Winograd form, made by `make` unless a trial for another batch size made it.
    func winogradCandidate(_ make: () -> WinogradKernel) -> WinogradKernel {
        if let winogradKernel { return winogradKernel }
        let made = make()
        winogradKernel = made
        return made
    }

    /// The layer's kernel packed for its window convolution (`WindowConvolution.pack`), made at
    /// its first run on the GEMM path where oneDNN runs anyway (`ConvKernel.run`), kept unless
    /// every trialled batch size runs another way.
    private var windowKernel: Buffer?
    /// For tests: whether the layer holds a packed window kernel.
    var holdsPackedWindowKernel: Bool { windowKernel != nil }

    /// The layer's packed window kernel, made by `make` on first use, after which the mapped
    /// kernel's pages leave memory (the copy replaces them, as a primitive's does).
    func packedWindowKernel(_ weights: GEMMWeights, _ make: () -> Buffer) -> Buffer {
        Self.creation.withLock {
            if let windowKernel { return windowKernel }
            let made = make()
            windowKernel = made
            weights.releaseResidentPages()
            return made
        }
    }

    /// Times the layer's float32 primitive (`native`) against the GEMM path (`gemm`) and, for a
    /// layer with a Winograd form, Winograd (`winograd`, from `winogradCandidate`), each run three
    /// times in turns (the fastest counts), and keeps the faster (`ConvPath.verdict`): the
    /// primitive, or the other, in which case the primitive and its copy of the kernel are
    /// dropped. oneDNN's kernels differ by CPU: on an AVX2-only Zen 3 its direct `jit:avx2`
    /// convolutions were slower than the GEMM path for FaceNet's strided 3×3 and 1×7 layers and
    /// faster for its stem and 1×1 layers (`bench --profile` with each engine), on AVX-512
    /// `brgconv` is ahead almost everywhere. In turns rather than back to back, a contender is
    /// timed with the others' kernels in the caches, as in the model: with each run twice back
    /// to back, 37 of the multi-task model's 112 batch-1 trials did not give the same verdict in
    /// 8 processes, 22 in turns (`FMODEL_DEBUG_CONV=1`); the model's time the same (`ab.sh` 15
    /// rounds at batch 1 twice: 0.992, 0.997; batch 32, 7 and 9 rounds: 1.027, 0.983).
    /// `inputBytes`: the layer's input, which decides near-ties (`ConvPath.verdict`).
    /// The winner runs last, so that the output is what later runs compute.
    /// `subject` names the layer in `FMODEL_DEBUG_CONV`'s line.
    /// - Returns: the verdict.
    @discardableResult
    func trial(_ subject: @autoclosure () -> String, batch: Int, inputBytes: Int, native: () -> Void, gemm: () -> Void,
               winograd: (() -> Void)?) -> ConvPath {
        let times = withoutActuallyEscaping(native) { native in
            withoutActuallyEscaping(gemm) { gemm in fastestRuns([native, gemm] + (winograd.map { [$0] } ?? [])) }
        }
        let (n, g, w) = (times[0], times[1], times.count > 2 ? times[2] : nil)
        let inL2 = inputBytes <= Int(fm_l2_cache_bytes())
        let verdict: ConvPath
        if let forcedVerdict {
            verdict = forcedVerdict == .winograd && winograd == nil ? .native : forcedVerdict
        } else {
            let (other, time): (ConvPath, UInt64) = if let w, w < g { (.winograd, w) } else { (.gemm, g) }
            verdict = ConvPath.verdict(native: Double(n), other: other, otherTime: Double(time), inputInL2: inL2)
        }
        if Self.debug {
            let wino = w.map { String(format: ", Winograd %.3f ms", Double($0) / 1e6) } ?? ""
            Self.say(String(format: "trial %@ batch %d: native %.3f ms, GEMM %.3f ms%@%@: %@", subject(), batch,
                            Double(n) / 1e6, Double(g) / 1e6, wino, inL2 ? " (input in L2)" : "", "\(verdict)"))
        }
        verdicts[batch] = verdict
        let copiesBefore = copiesHeld(batch: batch)
        // A copy no batch size runs goes.
        if !verdicts.values.contains(.winograd) { winogradKernel = nil }
        if !verdicts.values.contains(.gemm) { windowKernel = nil }
        // The output is the winner's: this run and the next give the same answer.
        switch verdict {
        case .native: native()
        case .gemm: if winograd != nil { gemm() }
        case .winograd: break
        }
        if verdict != .native {
            if case .some(.some(let p)) = primitives[batch * 2] { fm_conv_destroy(p) }
            primitives[batch * 2] = .some(nil)
        }
        // And its memory back to the system now: malloc keeps what the losers held (it had set
        // the peak of the run that holds the trials, 236-263 MB against 217 for the full model).
        if copiesHeld(batch: batch) < copiesBefore { fm_release_free_heap() }
        return verdict
    }

    /// How many of the layer's own copies exist: its Winograd and window kernels and its
    /// float32 primitive for `batch`.
    private func copiesHeld(batch: Int) -> Int {
        [winogradKernel != nil, windowKernel != nil, (primitives[batch * 2] ?? nil) != nil].filter { $0 }.count
    }

    /// The primitive for `batch`, made now if this is the first call with it (with its kernel
    /// loaded unless `load` is false: see `loadKernels`). `signed` picks, for an int8 kernel,
    /// signed rather than unsigned activations. Call it outside OpenMP parallel regions.
    func primitive(batch: Int, signed: Bool = false, win: Window, kernel: ConvKernel, load: Bool = true) -> OpaquePointer? {
        let key = batch * 2 + (signed ? 1 : 0)
        if let known = primitives[key] { return known }
        var made: OpaquePointer?
        var message = [CChar](repeating: 0, count: 256)
        let integer: Bool, weights: UnsafeRawPointer
        switch kernel.weights {
        case .f32(let w): (integer, weights) = (false, UnsafeRawPointer(w.pointer))
        case .int8(let w): (integer, weights) = (true, UnsafeRawPointer(w.pointer))
        }
        let source = integer ? (signed ? FM_SRC_S8 : FM_SRC_U8) : kernel.bf16 ? FM_SRC_BF16 : FM_SRC_F32
        // Without VNNI, oneDNN's convolution on signed int8 input halves the weights (to keep
        // vpmaddubsw's int16 sums from saturating once it adds 128 to the input): a bit of every
        // weight lost, off by up to a whole weight step. Such layers take the im2col + u8·s8
        // GEMM path with a zero point instead, which is exact (IntegerGEMMTests).
        let halvesWeights = integer && signed && !cpuHasVNNI
        if !halvesWeights, let (activation, alpha) = integer ? (Int32(FM_ACT_LINEAR), 0) : kernel.epilogue.activation.nativeCode {
            // One primitive at a time in the whole process: oneDNN's JIT crashed here when
            // several threads made primitives at once (two executors on two threads would).
            Self.creation.lock()
            defer { Self.creation.unlock() }
            var p = kernel.nativeParameters(batch: batch, win: win, source: Int32(source), activation: activation, alpha: alpha)
            made = fm_conv_create(&p, weights, kernel.epilogue.bias?.pointer, &message, message.count)
        }
        if Self.debug {
            Self.report("conv \(kernel.kH)x\(kernel.kW) \(kernel.cin)->\(kernel.cout) batch \(batch)\(integer ? (signed ? " s8" : " u8") : kernel.bf16 ? " bf16" : "")",
                        made.map { String(cString: fm_conv_implementation($0)) }, message: message)
        }
        primitives[key] = made
        if let made {
            if load { loadKernel(made, kernel) } else { unloaded.append(made) }
        }
        return made
    }

    /// The oneDNN implementation running the float32 (or unsigned int8) primitive for `batch`.
    func implementation(batch: Int) -> String? {
        guard case .some(.some(let p)) = primitives[batch * 2] else { return nil }
        return String(cString: fm_conv_implementation(p))
    }

    /// Loads the kernels of primitives made with `load: false`; any thread may call it.
    func loadKernels(_ kernel: ConvKernel) {
        for p in unloaded { loadKernel(p, kernel) }
        unloaded.removeAll()
    }

    private var unloaded: [OpaquePointer] = []

    private func loadKernel(_ p: OpaquePointer, _ kernel: ConvKernel) {
        precondition(fm_conv_load_weights(p) == 0, "oneDNN kernel reorder failed")
        // The primitive holds its own copy of the kernel: the mapped one can leave memory.
        kernel.weights.releaseResidentPages()
    }
}

/// True when oneDNN's convolutions are its AVX-512 ones (`ONEDNN_MAX_CPU_ISA` may cap them):
/// what bf16 needs, and where streaming a few-row layer's kernel beats them (`ConvKernel.streams`).
let oneDNNIsAVX512 = fm_dnnl_has_avx512() != 0

/// How a float32 convolution runs once its trial is over.
enum ConvPath: Sendable {
    /// oneDNN's primitive.
    case native
    /// im2col (none for 1×1) and a GEMM.
    case gemm
    /// Winograd F(4×4, 3×3) (`WinogradKernel`).
    case winograd
}

/// Each contender's fastest of `rounds` runs in nanoseconds, the contenders taking turns: the
/// timing of a trial between implementations (`NativeConvolutions.trial`, `DenseTrial`).
func fastestRuns(_ contenders: [() -> Void], rounds: Int = 3) -> [UInt64] {
    var best = [UInt64](repeating: .max, count: contenders.count)
    for _ in 0..<rounds {
        for (i, run) in contenders.enumerated() {
            let start = DispatchTime.now().uptimeNanoseconds
            run()
            best[i] = min(best[i], DispatchTime.now().uptimeNanoseconds - start)
        }
    }
    return best
}

extension ConvPath {
    /// A trial's verdict from the fastest times of oneDNN's primitive (`native`) and of the
    /// faster of the others (`other`, in `otherTime`). A near-tie, within 10%, goes against the
    /// side the trial flatters.
    ///
    /// With oneDNN's AVX2 kernels (`avx512` false), where the layer's input fits in a core's L2
    /// cache (`inputInL2`; batch 1 on the Zen 3), that is the primitive, which must then be 10%
    /// faster. Its second and third trial runs read the input settled in the cache, but in the
    /// model it runs straight after the layer whose threads wrote it, and there oneDNN reads it
    /// more slowly: Conv2d_4b, after Winograd's Conv2d_4a, took 2.20–2.42 ms a steady inference
    /// against 1.63–1.66 for a second call at once, while the GEMM path's time in the model
    /// matched its trial's. With larger inputs, read from L3 or memory either way, the other
    /// must be 10% faster, so that near-ties, which the warm timing decides by noise, do not
    /// flip. The alternating-process measurements behind the split (batch 1 and 32, both models)
    /// are in `Benchmarks/HISTORY.md`, thirteenth session.
    ///
    /// With its AVX-512 kernels the other must be 10% faster at any size: on the 30th session's
    /// Zen 5 the near-ties the L2 rule gave to fmodel's own paths at batch 1 (Block17's 1×1s to
    /// the GEMM path, its 1×7s and 7×1s, Block35's 3×3s and Mixed_6a's 192→192 to fmodel's
    /// Winograd, each within 10% in the trial) made the multi-task model slower: this rule
    /// against the L2 rule 0.979 and 0.966, every layer forced to the primitive 0.947 and 0.912
    /// (`Benchmarks/ab.sh`, 11 rounds each). There the stem runs as a chain, and the case behind
    /// the L2 rule is gone.
    static func verdict(native: Double, other: ConvPath, otherTime: Double, inputInL2: Bool,
                        avx512: Bool = oneDNNIsAVX512) -> ConvPath {
        inputInL2 && !avx512 ? (native < 0.9 * otherTime ? .native : other) : (otherTime < 0.9 * native ? other : .native)
    }
}

extension ConvKernel {
    /// What `fm_conv_create` (and `fm_chain_create`, for a layer) takes for this kernel at
    /// `batch` over `win`: activations of type `source`, the epilogue as post-ops.
    func nativeParameters(batch: Int, win: Window, source: Int32, activation: Int32, alpha: Float) -> fm_conv_params {
        fm_conv_params(
            n: Int32(batch), ih: Int32(win.inH), iw: Int32(win.inW), ic: Int32(cin), oh: Int32(win.outH),
            ow: Int32(win.outW), oc: Int32(cout), kh: Int32(kH), kw: Int32(kW),
            stride_h: Int32(win.strideH), stride_w: Int32(win.strideW), dilation_h: Int32(win.dilH), dilation_w: Int32(win.dilW),
            pad_top: Int32(win.padTop), pad_left: Int32(win.padLeft), scale: epilogue.scale,
            add_dst: epilogue.addsResidual ? 1 : 0, activation: activation, alpha: alpha, src_type: source, linked_src: 0, linked_dst: 0)
    }
}

extension Activation {
    /// The `FM_ACT_*` code and slope oneDNN's post-op takes, or nil (softmax).
    var nativeCode: (Int32, Float)? {
        switch self {
        case .linear: (Int32(FM_ACT_LINEAR), 0)
        case .relu: (Int32(FM_ACT_RELU), 0)
        case .relu6: (Int32(FM_ACT_RELU6), 0)
        case .leakyRelu(let a): (Int32(FM_ACT_LEAKY), a)
        case .sigmoid: (Int32(FM_ACT_SIGMOID), 0)
        case .tanh: (Int32(FM_ACT_TANH), 0)
        case .swish: (Int32(FM_ACT_SWISH), 0)
        case .elu(let a): (Int32(FM_ACT_ELU), a)
        case .gelu(let approximate): (Int32(approximate ? FM_ACT_GELU_TANH : FM_ACT_GELU_ERF), 0)
        case .hardSwish: (Int32(FM_ACT_HARD_SWISH), 0)
        // oneDNN 2.6 has no hard sigmoid post-op: such a layer takes the GEMM path.
        case .softmax, .hardSigmoid: nil
        }
    }
}
