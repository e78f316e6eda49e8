import CKernels
import FModelCore
import Foundation

/// Runs a graph on the CPU, NHWC: float32 (or bf16 products, with `precision`), and int8 layers
/// in integer arithmetic. Prepared once; `run` may be called from any thread.
public final class Executor: @unchecked Sendable {
    /// The graph as loaded (parameters still in their stored encoding).
    public let graph: Graph
    private let steps: [Step]
    private let valueIndex: [String: Int]
    private let shapes: [String: Shape]
    /// Fused: what `run` executes unless an intermediate value it fused away is asked for.
    let program: Program
    /// Unfused, made on the first request for such a value.
    private var plainProgram: Program?
    /// How convolutions run.
    public let engine: ConvolutionEngine
    /// Each value's shape, by value number, per batch size.
    private var shapesByBatch: [Int: [Shape]] = [:]
    /// Batch sizes that have run once, for the fused and the unfused program (`tiered`).
    private var ranOnce: [Bool: Set<Int>] = [:]
    /// oneDNN chains of the fused program per batch size.
    private var chainsByBatch: [Int: ChainPlan] = [:]
    private let lock = NSLock()
    /// When set (the default), an int8 convolution takes its input's range from the epilogue
    /// that wrote it instead of measuring it again; the two agree exactly (a test holds them).
    var trackRanges = true
    /// int8 inputs quantized with a range taken from their producer, over all runs (for tests).
    private(set) var rangesReused = 0
    /// Values written straight into a concat's buffer (`Program.ConcatSlot`), over all runs
    /// (for tests).
    private(set) var inputsWrittenIntoConcats = 0
    /// When set, `run` adds each instruction's wall time to `profile`.
    public var profiling = false
    /// Seconds spent per instruction since profiling began, by the name of the node that starts
    /// it (a fused group under its conv's name), with the ops it covers.
    public private(set) var profile: [String: (ops: String, seconds: Double)] = [:]
    /// The layers of each oneDNN chain in `profile`, under the name of its first.
    public private(set) var profiledChains: [String: [String]] = [:]
    /// Activation buffers: planned in an arena, or pooled (`ActivationMemory`).
    let memory = ActivationMemory()
    /// When false, runs take pooled buffers instead of planning an arena (for comparisons).
    var plansActivations = true
    /// The most activation memory a run may take, in bytes: a run that would need more is a
    /// `RuntimeError.activationMemory` before anything is allocated (a model may state values of
    /// up to 2^31 floats an image). `memoryAvailable` unless set.
    var activationLimit = Executor.memoryAvailable

    /// The memory this process may take, in bytes, when first asked (`ProcessMemory`: the
    /// machine's, its cgroup's and its ulimits' least).
    public static let memoryAvailable = ProcessMemory.available()
    /// Batch sizes whose first native run (the convolutions' trials) has been.
    private var measuredBatches: Set<Int> = []
    /// im2col scratch, kept across runs.
    private var scratch = Buffer(capacity: 1)

    /// Validates `graph` and prepares every node's parameters.
    /// - Parameters:
    ///   - engine: how convolutions run (see `ConvolutionEngine`; the default is `tiered`, unless
    ///     the environment sets `FMODEL_NATIVE_CONV`).
    ///   - precision: what float32 convolutions multiply in (`bf16`: oneDNN's AVX512-BF16 code,
    ///     float32 accumulation and epilogue; needs oneDNN, so `tiered` becomes `native`).
    /// - Throws: `GraphError` when the graph is not well formed or cannot be run (a dimension
    ///   besides the batch unknown).
    public init(graph: Graph, engine: ConvolutionEngine = .default, precision: ComputePrecision = .f32) throws(GraphError) {
        let shapes = try graph.validate()
        self.graph = graph
        var index: [String: Int] = [:]
        for (i, input) in graph.inputs.enumerated() { index[input.name] = i }
        for (i, node) in graph.nodes.enumerated() { index[node.name] = graph.inputs.count + i }
        valueIndex = index
        self.shapes = shapes
        steps = graph.nodes.map {
            Step($0, graph: graph, inputRank: shapes[$0.inputs.first ?? ""]?.rank ?? 0, nativeConvolution: engine != .gemm,
                 measuresNative: engine == .tiered, precision: precision)
        }
        program = Program(graph: graph, steps: steps, valueIndex: index, shapes: shapes, fuse: true)
        self.engine = precision == .bf16 && engine == .tiered ? .native : engine
        // Runnable: with the batch known, every value's shape is (only the batch may be unknown;
        // a hostile file's input of unknown height trapped the first run). Kept for batch 1.
        _ = try self.shapes(batch: 1)
    }

    /// For tests: makes every float32 layer's trial (`NativeConvolutions.trial`) return
    /// `verdict` instead of timing the contenders.
    func forceTrialVerdict(_ verdict: ConvPath) {
        for case .conv(let k) in steps { k.native?.forcedVerdict = verdict }
        for case .conv(let k) in program.instructions.map(\.step) { k.native?.forcedVerdict = verdict }
    }

    /// Names of the model's inputs, in order.
    public var inputNames: [String] { graph.inputs.map(\.name) }

    /// Runs the model on a batch.
    /// - Parameter inputs: one tensor per model input, all with the same batch size.
    /// - Returns: one tensor per model output, by output name.
    /// - Throws: `RuntimeError` when inputs are missing or misshapen.
    public func run(_ inputs: [String: FloatTensor]) throws -> [String: FloatTensor] {
        try run(inputs, outputs: graph.outputs)
    }

    /// Runs the model and returns the values named in `outputs`: model outputs or any
    /// intermediate value (a node's output or a model input).
    /// - Throws: `RuntimeError` when inputs are missing or misshapen or a value is unknown.
    public func run(_ inputs: [String: FloatTensor], outputs requested: [String]) throws -> [String: FloatTensor] {
        for name in requested where valueIndex[name] == nil { throw RuntimeError.unknownValue(name) }
        let batch = try checkInputs(inputs)
        return try withValues(inputs) { try run(batch: batch, inputs: $0, requested: requested) }
    }

    /// Calls `body` with each model input's values (in `graph.inputs`' order), pinned for the call.
    private func withValues<R>(_ inputs: [String: FloatTensor], _ body: ([UnsafeBufferPointer<Float>]) throws -> R) throws -> R {
        func pin(_ pinned: [UnsafeBufferPointer<Float>]) throws -> R {
            guard pinned.count < graph.inputs.count else { return try body(pinned) }
            return try inputs[graph.inputs[pinned.count].name]!.values.withUnsafeBufferPointer { try pin(pinned + [$0]) }
        }
        return try pin([])
    }

    /// `run` with the inputs' values pinned: the model reads them where they are (`Buffer(borrowing:)`).
    private func run(batch: Int, inputs: [UnsafeBufferPointer<Float>], requested: [String]) throws -> [String: FloatTensor] {
        joinTeam()
        let keep = Set(requested.map { valueIndex[$0]! })
        let program = lock.withLock { self.program(keep: keep) }
        func bindInputs(_ images: Range<Int>) -> (Run) -> Void {
            { run in
                for (i, values) in inputs.enumerated() {
                    let per = values.count / batch
                    run.bind(i, values.baseAddress.map { Buffer(borrowing: $0 + images.lowerBound * per, capacity: per * images.count) } ?? Buffer(capacity: 1))
                }
            }
        }
        func values(_ names: [String]) -> (Run) -> [String: FloatTensor] {
            { run in
                var result: [String: FloatTensor] = [:]
                for name in names {
                    let v = self.valueIndex[name]!, shape = run.shapes[v]
                    result[name] = FloatTensor(shape: shape, values: Array(UnsafeBufferPointer(start: run.buffers[v]!.pointer, count: shape.elementCount!)))
                }
                return result
            }
        }
        let whole = 0..<program.instructions.count
        guard let limit = try passLimit(), batch > limit else {
            return try runSegment(program, whole, batch: batch, keep: keep, bind: bindInputs(0..<batch), collect: values(requested))
        }
        // A batch larger than a pass runs pass by pass (`BatchPasses`): up to `cut`, where the
        // activations are large, or through the whole program, the values joined.
        let passes = BatchPasses.passes(batch: batch, limit: limit)
        guard let cut = try passCut(program, batch: batch, keep: keep) else {
            let parts = try passes.map { try runSegment(program, whole, batch: $0.count, keep: keep, bind: bindInputs($0), collect: values(requested)) }
            var result: [String: FloatTensor] = [:]
            for name in requested { result[name] = FloatTensor.joiningImages(parts.map { $0[name]! }) }
            return result
        }
        let perImage = try lock.withLock { try shapes(batch: 1) }[cut.value].elementCount!
        try checkActivationBytes(perImage * batch * MemoryLayout<Float>.stride, batch: batch)
        let joined = lock.withLock { memory.takeUnplanned(perImage * batch) }
        for images in passes {
            try runSegment(program, 0..<cut.end, batch: images.count, keep: [cut.value], bind: bindInputs(images)) { run in
                (joined.pointer + images.lowerBound * perImage).update(from: run.buffers[cut.value]!.pointer, count: perImage * images.count)
            }
        }
        return try runSegment(program, cut.end..<whole.upperBound, batch: batch, keep: keep, bind: { $0.bind(cut.value, joined) },
                              collect: values(requested))
    }

    /// Images per pass (`BatchPasses`), found once: nil where a batch runs in one pass, where
    /// some value's first dimension is not the batch (a pass could not be joined), or where
    /// `FMODEL_NO_PASSES` is set.
    func passLimit() throws(GraphError) -> Int? {
        lock.lock()
        defer { lock.unlock() }
        if let knownPassLimit { return knownPassLimit }
        let one = try shapes(batch: 1), two = try shapes(batch: 2)
        let perImage = zip(one, two).allSatisfy { $0.rank > 0 && $0[0] == 1 && $1[0] == 2 }
        let largest = one.map { $0.elementCount ?? 0 }.max() ?? 0
        let limit = perImage && BatchPasses.enabled
            ? BatchPasses.limit(largestImageBytes: largest * MemoryLayout<Float>.stride, budget: passActivationBytes) : nil
        knownPassLimit = .some(limit)
        return limit
    }

    private var knownPassLimit: Int??

    /// For tests: where the passes of a run asking for `outputs` end (`passCut`).
    func passCutForTests(batch: Int, outputs: [String]) throws -> (end: Int, value: Int)? {
        let keep = Set(outputs.map { valueIndex[$0]! })
        return try passCut(lock.withLock { program(keep: keep) }, batch: batch, keep: keep)
    }

    /// The largest activation a pass keeps within (`BatchPasses.passActivationBytes`; tests
    /// make passes of small graphs with less).
    var passActivationBytes = BatchPasses.passActivationBytes {
        didSet { (knownPassLimit, passCuts) = (nil, [:]) }
    }

    /// The program a run asking for the values `keep` executes: the fused one, unless it fused
    /// one of them away. Call it holding `lock`.
    private func program(keep: Set<Int>) -> Program { keep.isDisjoint(with: program.missing) ? program : unfused() }

    /// Where the passes of a `batch`-image run of `program` end: the instructions before
    /// `end` run pass by pass and leave one value, `value`, which the rest read at the full
    /// batch. The passes cover every instruction whose output at the full batch is larger than
    /// half of `passActivationBytes` (FaceNet at 32: through Block35, 9.5 MB a value; Mixed_6a's
    /// output is 7.3 MB), then end at the first point that one value crosses. Nil (passes
    /// through the whole program) where no such point is, or where a value asked for is made
    /// before it.
    private func passCut(_ program: Program, batch: Int, keep: Set<Int>) throws(GraphError) -> (end: Int, value: Int)? {
        lock.lock()
        defer { lock.unlock() }
        let shapes = try shapes(batch: batch)
        let key = batch * 2 + (program.fused ? 1 : 0)
        if passCuts[key] == nil { passCuts[key] = .some(findCut(program, shapes: shapes)) }
        guard let cut = passCuts[key]!, keep.isDisjoint(with: cut.made) else { return nil }
        return (cut.end, cut.value)
    }

    /// `passCut`'s point for a program at the batch size of `shapes`, and the values made
    /// before it.
    private func findCut(_ program: Program, shapes: [Shape]) -> (end: Int, value: Int, made: Set<Int>)? {
        let instructions = program.instructions
        guard let lastLarge = instructions.lastIndex(where: { (shapes[$0.output].elementCount ?? 0) * 4 > passActivationBytes / 2 })
        else { return nil }
        var madeAt = [Int](repeating: Int.max, count: valueIndex.count)
        for info in graph.inputs { madeAt[valueIndex[info.name]!] = -1 }
        for (i, instruction) in instructions.enumerated() { madeAt[instruction.output] = i }
        for end in (lastLarge + 1)..<instructions.count {
            // The values made before `end` and read at or after it.
            let crossing = madeAt.indices.filter { madeAt[$0] < end && program.lastUse[$0] >= end }
            if crossing.count == 1 { return (end, crossing[0], Set(madeAt.indices.filter { madeAt[$0] < end })) }
        }
        return nil
    }

    /// `findCut`'s answers by batch size and program (fused or not).
    private var passCuts: [Int: (end: Int, value: Int, made: Set<Int>)?] = [:]

    /// Instructions `segment` of `program` on `batch` images: `bind` binds the values they
    /// start from, `collect` reads what they made before the run's buffers go back. Values in
    /// `keep` are never released. A tiered executor's first and second runs (GEMM path, then
    /// the trials) count per batch size, whatever the segment.
    @discardableResult
    private func runSegment<T>(_ program: Program, _ segment: Range<Int>, batch: Int, keep: Set<Int>, bind: (Run) -> Void,
                               collect: (Run) -> T) throws -> T {
        lock.lock()
        defer { lock.unlock() }
        let shapes = try shapes(batch: batch)
        // No value may be larger than the limit (checked before oneDNN sees the shapes); the plan
        // below says what they need together.
        let largest = segment.lazy.map { shapes[program.instructions[$0].output].elementCount! }.max() ?? 0
        try checkActivationBytes(largest * MemoryLayout<Float>.stride, batch: batch)
        let warm = engine != .tiered || !ranOnce[program.fused, default: []].insert(batch).inserted
        // A tiered executor's first native run for a batch size times its float32 convolutions
        // both ways (`NativeConvolutions.trial`); what the losing GEMM runs held goes after it.
        let measuring = engine == .tiered && warm && measuredBatches.insert(batch).inserted
        prepare(program, batch: batch, shapes: shapes, float: warm, segment: segment)
        let plan = warm && program.fused ? chainsByBatch[batch] : nil
        // The first run of its kind is walked once without computing, to plan its buffers.
        let key = ActivationMemory.PlanKey(fused: program.fused, segment: segment, batch: batch, nativeFloat: warm, keep: keep)
        if plansActivations && !memory.hasPlan(key) {
            let dry = Run(shapes: shapes, valueCount: valueIndex.count, scratch: scratch, nativeFloat: warm, computes: false)
            bind(dry)
            memory.beginRecording(key)
            walk(program, segment, chains: plan, run: dry, keep: keep)
            memory.end()
        }
        if plansActivations { try checkActivationBytes(memory.planBytes(key)!, batch: batch) }
        let run = Run(shapes: shapes, valueCount: valueIndex.count, scratch: scratch, nativeFloat: warm, computes: true)
        defer { scratch = run.scratch }
        bind(run)
        if plansActivations { memory.beginReplay(key) }
        defer { memory.end() }
        walk(program, segment, chains: plan, run: run, keep: keep)
        let result = collect(run)
        rangesReused += run.rangesReused
        for b in run.releaseAll() { memory.give(b) }
        for (_, bytes) in run.converted.values { memory.give(bytes) }
        if measuring {
            run.scratch = Buffer(capacity: 1)
            memory.release(region: false)
            fm_release_free_heap()
        }
        return result
    }

    /// Runs (or, for a run that `computes` nothing, walks) instructions `segment` of `program`,
    /// with oneDNN `chains` where they stand.
    private func walk(_ program: Program, _ segment: Range<Int>, chains plan: ChainPlan?, run: Run, keep: Set<Int>) {
        let profiling = profiling && run.computes
        for i in segment {
            let instruction = program.instructions[i]
            // A chain runs where its first instruction stands, unless a value inside it is asked
            // for, or it reaches past the segment.
            var chain: NativeChain?
            switch plan?.roles[i] ?? .none {
            case .none: break
            case .first(let c): chain = plan!.chains[c].layers.last! < segment.upperBound ? plan!.chains[c] : nil
            case .covered(let c): if keep.isDisjoint(with: plan!.chains[c].inner) && plan!.chains[c].layers.first! >= segment.lowerBound
                                     && plan!.chains[c].layers.last! < segment.upperBound { continue }
            }
            let start = profiling ? DispatchTime.now().uptimeNanoseconds : 0
            var ops = instruction.ops
            if let chain, keep.isDisjoint(with: chain.inner) {
                execute(chain, program: program, run: run, keep: keep)
                if profiling {
                    ops = "chain: " + chain.layers.map { program.instructions[$0].ops }.joined(separator: " > ")
                    profiledChains[instruction.node.name] = chain.layers.map { program.instructions[$0].node.name }
                }
            } else {
                // In place in a concat of this segment, unless the value itself is asked for.
                let slot = program.concatSlots[i].flatMap { segment.contains($0.concat) && !keep.contains($0.part) ? $0 : nil }
                execute(i, instruction, lastUse: program.lastUse, run: run, keep: keep, slot: slot)
            }
            if profiling {
                let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                profile[instruction.node.name, default: (ops, 0)].seconds += seconds
            }
        }
    }

    private func take(_ n: Int) -> Buffer { memory.take(n) }

    private func checkActivationBytes(_ bytes: Int, batch: Int) throws(RuntimeError) {
        guard bytes <= activationLimit else { throw .activationMemory(batch: batch, bytes: bytes, limit: activationLimit) }
    }

    /// Bytes of activation memory the executor holds between runs (buffers and scratch).
    public var workspaceBytes: Int {
        lock.lock()
        defer { lock.unlock() }
        return (memory.capacity + scratch.capacity) * MemoryLayout<Float>.stride
    }

    private func checkInputs(_ inputs: [String: FloatTensor]) throws -> Int {
        for name in inputs.keys where !inputNames.contains(name) { throw RuntimeError.unknownInput(name: name, known: inputNames) }
        var batch: Int?
        for info in graph.inputs {
            guard let t = inputs[info.name] else { throw RuntimeError.missingInput(info.name) }
            let b = t.shape.dims.first ?? 0
            let fits = t.shape.rank == info.shape.rank && b > 0 && (batch == nil || batch == b)
                && zip(t.shape.dims, info.shape.dims).dropFirst().allSatisfy { $0 == $1 || $1 < 0 }
            guard fits else { throw RuntimeError.inputShape(name: info.name, expected: info.shape, got: t.shape) }
            // The run reads the values in place, as far as the shape says.
            guard t.values.count == t.shape.elementCount else {
                throw RuntimeError.inputValueCount(name: info.name, shape: t.shape, count: t.values.count)
            }
            batch = b
        }
        return batch ?? 1
    }

    /// Makes the oneDNN primitives `batch` needs now, rather than on its next run: a server
    /// calls it before its first request, `bench` before timing. Does nothing for `gemm`. A
    /// batch that runs in passes gets its passes' primitives for the layers they run, and the
    /// full batch's for the rest (`segments`).
    /// - Throws: `GraphError` when the graph does not take that batch size.
    public func prepare(batch: Int) throws(GraphError) {
        for (size, segment) in try segments(batch: batch) {
            lock.lock()
            defer { lock.unlock() }
            let shapes = try shapes(batch: size)
            if engine == .gemm { continue }
            ranOnce[program.fused, default: []].insert(size)
            prepare(program, batch: size, shapes: shapes, float: true, segment: segment)
        }
    }

    /// What a run of `batch` images asking for the model's outputs executes: the batch sizes
    /// and the instructions of the fused program each runs (`BatchPasses`).
    private func segments(batch: Int) throws(GraphError) -> [(batch: Int, segment: Range<Int>)] {
        let whole = 0..<program.instructions.count
        guard let limit = try passLimit(), batch > limit else { return [(batch, whole)] }
        let sizes = Set(BatchPasses.passes(batch: batch, limit: limit).map(\.count))
        guard let cut = try passCut(program, batch: batch, keep: Set(graph.outputs.map { valueIndex[$0]! })) else {
            return sizes.map { ($0, whole) }
        }
        return sizes.map { ($0, 0..<cut.end) } + [(batch, cut.end..<whole.upperBound)]
    }

    /// Makes the oneDNN primitives of `program`'s convolutions for `batch` that do not exist
    /// yet (JIT compilation, then the kernel reorders on every core): the int8 ones, and the
    /// float32 ones when `float` is set.
    private func prepare(_ program: Program, batch: Int, shapes: [Shape], float: Bool, segment: Range<Int>) {
        var chains: [NativeChain] = []
        if float && program.fused && chainsByBatch[batch] == nil {
            chains = makeChains(program, shapes: shapes).filter { segment.contains($0.layers.first!) && segment.contains($0.layers.last!) }
            chainsByBatch[batch] = ChainPlan(chains, instructions: program.instructions.count)
        }
        let plan = program.fused ? chainsByBatch[batch] : nil
        let convs = program.instructions.enumerated().compactMap { n, i -> (ConvKernel, Shape, Shape)? in
            // A chain's convolutions need no primitives of their own, nor do those that bypass
            // oneDNN (streamed ones, narrow 1×1s: `ConvKernel.bypassesNative`), nor those another
            // batch size runs (`BatchPasses`).
            guard segment.contains(n), case .conv(let k) = i.step, let native = k.native, !native.tried(batch: batch), plan?.covers(n) != true,
                  float || k.nativeFromFirstRun, !bypassesNative(i, shapes) else { return nil }
            return (k, shapes[i.inputs[0]], shapes[i.output])
        }
        guard !convs.isEmpty || !chains.isEmpty else { return }
        // What the GEMM path's runs held (their im2col scratch, the buffers of the values the
        // chains now keep inside) is not what the primitives need: it goes before the kernels
        // are copied, and the next run takes its own.
        if float {
            scratch = Buffer(capacity: 1)
            memory.release(region: true)
        }
        // The primitives one after another, outside any OpenMP region: oneDNN sizes a
        // primitive's per-thread buffers for the threads it sees when it is made (inside a
        // region, one: a Winograd primitive made there crashed when run on two), and making
        // them on several threads at once crashed in its JIT here. Their kernels' reorders,
        // the memory work, then run on the OpenMP team: each thread takes every
        // teamSize-th conv, so the late blocks' big kernels are shared.
        for (k, inShape, outShape) in convs { k.prepareNative(inShape: inShape, outShape: outShape) }
        parallelFor(teamSize, grain: 1) { threads in
            for t in threads {
                for i in stride(from: t, to: convs.count + chains.count, by: teamSize) {
                    if i < convs.count { convs[i].0.loadNative() } else { chains[i - convs.count].load() }
                }
            }
        }
        if float { fm_release_free_heap() }
    }

    /// The oneDNN chains of `program`'s linear runs at the batch size of `shapes` (kernels not
    /// loaded): each run without the convolutions that make no primitive (streamed ones, narrow
    /// 1×1s: `ConvKernel.bypassesNative`), which break it, and without pools at its ends; oneDNN
    /// takes those with a Winograd layer.
    private func makeChains(_ program: Program, shapes: [Shape]) -> [NativeChain] {
        var chains: [NativeChain] = []
        for run in program.linearRuns {
            var pieces: [[Int]] = [[]]
            for i in run {
                if bypassesNative(program.instructions[i], shapes) {
                    pieces.append([])
                } else {
                    pieces[pieces.count - 1].append(i)
                }
            }
            for piece in pieces {
                func isConv(_ i: Int) -> Bool { if case .conv = program.instructions[i].step { true } else { false } }
                let layers = piece.drop { !isConv($0) }.reversed().drop { !isConv($0) }.reversed()
                if layers.count >= 2, let chain = NativeChain(program, layers: Array(layers), shapes: shapes) { chains.append(chain) }
            }
        }
        return chains
    }

    /// True when `instruction` is a convolution that makes no oneDNN primitive at these shapes
    /// (`ConvKernel.bypassesNative`).
    private func bypassesNative(_ instruction: Program.Instruction, _ shapes: [Shape]) -> Bool {
        guard case .conv(let k) = instruction.step else { return false }
        let outShape = shapes[instruction.output]
        return k.bypassesNative(k.window(shapes[instruction.inputs[0]], outShape), rows: outShape[0] * outShape[1] * outShape[2])
    }

    /// How many oneDNN chains run the fused program at `batch` (for tests and reports).
    func chainCount(batch: Int) -> Int {
        lock.lock()
        defer { lock.unlock() }
        return chainsByBatch[batch]?.chains.count ?? 0
    }

    /// The implementations of each chain's layers at `batch`, as oneDNN names them, joined by
    /// " > " (for tests).
    func chainImplementations(batch: Int) -> [String] {
        lock.lock()
        defer { lock.unlock() }
        return chainsByBatch[batch]?.chains.map(\.implementation) ?? []
    }

    /// Every value's shape at `batch`, inferred once per batch size (inference over the
    /// whole graph was 8% of a batch-1 int8 run).
    private func shapes(batch: Int) throws(GraphError) -> [Shape] {
        if let known = shapesByBatch[batch] { return known }
        let inferred = try graph.inferShapes(batch: batch)
        var byValue = [Shape](repeating: Shape([]), count: valueIndex.count)
        for (name, v) in valueIndex { byValue[v] = inferred[name]! }
        shapesByBatch[batch] = byValue
        return byValue
    }

    private func unfused() -> Program {
        if let plainProgram { return plainProgram }
        let p = Program(graph: graph, steps: steps, valueIndex: valueIndex, shapes: shapes, fuse: false)
        plainProgram = p
        return p
    }

    private func execute(_ i: Int, _ instruction: Program.Instruction, lastUse: [Int], run: Run, keep: Set<Int>,
                         slot: Program.ConcatSlot?) {
        let ins = instruction.inputs
        let outShape = run.shapes[instruction.output]
        if case .alias = instruction.step {
            run.bind(instruction.output, run.buffers[ins[0]]!)
        } else if let slot {
            // The concat's buffer, taken by the first of its inputs written in place; this value
            // has no buffer of its own.
            let y: Buffer
            if let taken = run.buffers[slot.value] {
                y = taken
            } else {
                y = take(run.shapes[slot.value].elementCount!)
                run.bind(slot.value, y)
            }
            if run.computes {
                compute(instruction, y: y.pointer + slot.offset, outShape: outShape, run: run, slot: slot)
                inputsWrittenIntoConcats += 1
            }
        } else if case .concat = instruction.step, let y = run.buffers[instruction.output] {
            // Some of its inputs are in place already (`Program.ConcatSlot`).
            if run.computes { compute(instruction, y: y.pointer, outShape: outShape, run: run) }
        } else if let r = instruction.residual, run.nativeFloat, instruction.step.addsResidualInPlace(batch: outShape[0]), lastUse[r] == i, !keep.contains(r),
                  !ins.contains(r), run.soleHolder(r), run.buffers[r]!.isWritable, let y = run.unbind(r) {
            // The residual's last reader writes over it: oneDNN adds the destination's old
            // contents (the residual) in its sum post-op, so nothing is copied.
            run.forget(y) { memory.give($0) }
            if run.computes { compute(instruction, y: y.pointer, outShape: outShape, run: run, residualInPlace: y) }
            run.bind(instruction.output, y)
        } else {
            let y = take(outShape.elementCount!)
            if run.computes { compute(instruction, y: y.pointer, outShape: outShape, run: run) }
            run.bind(instruction.output, y)
        }
        // The values read here for the last time give their buffers back (each once).
        for (j, v) in ins.enumerated() where !ins[..<j].contains(v) { release(v, readAt: i, lastUse: lastUse, run: run, keep: keep) }
        if let r = instruction.residual, !ins.contains(r) { release(r, readAt: i, lastUse: lastUse, run: run, keep: keep) }
    }

    /// Gives value `v`'s buffer back if instruction `i` was its last reader.
    private func release(_ v: Int, readAt i: Int, lastUse: [Int], run: Run, keep: Set<Int>) {
        guard lastUse[v] == i, !keep.contains(v), let b = run.unbind(v) else { return }
        // Its converted copies go with it: the buffer will hold another value next.
        run.forget(b) { memory.give($0) }
        memory.give(b)
    }

    /// Runs a chain's instructions in one oneDNN call: its input is its first instruction's,
    /// its output its last one's; the values between are never materialized.
    private func execute(_ chain: NativeChain, program: Program, run: Run, keep: Set<Int>) {
        let first = chain.layers[0], last = program.instructions[chain.layers[chain.layers.count - 1]]
        let x = program.instructions[first].inputs[0]
        let y = take(run.shapes[last.output].elementCount!)
        // Its inner activations go through two buffers of their own, which the layers it
        // replaces would have used.
        let floats = chain.bufferFloats
        let inner = (take(floats.0), take(floats.1))
        func scratch(_ bytes: Int) -> UnsafeMutableRawPointer { run.scratch(bytes: bytes) }
        if run.computes { chain.run(input: run.buffers[x]!.pointer, output: y.pointer, buffers: inner, scratch: scratch) }
        memory.give(inner.0)
        memory.give(inner.1)
        run.bind(last.output, y)
        release(x, readAt: first, lastUse: program.lastUse, run: run, keep: keep)
    }

    /// A concat of the values `ins`: those without a buffer were written in place already
    /// (`Program.ConcatSlot`), and only the others are copied. Its range is its inputs' when
    /// each is known.
    private func concatenate(_ ins: [Int], axis: Int, into y: UnsafeMutablePointer<Float>, outShape: Shape, run: Run) {
        concat(count: ins.count, { (run.buffers[ins[$0]].map { UnsafePointer($0.pointer) }, run.shapes[ins[$0]]) }, axis: axis,
               into: y, outShape: outShape)
        guard trackRanges else { return }
        var lo = Float.infinity, hi = -Float.infinity
        for v in ins {
            let range = if let b = run.buffers[v] { run.ranges[UnsafeRawPointer(b.pointer)] } else { run.partRanges[v] }
            guard let r = range else { return }
            (lo, hi) = (min(lo, r.lo), max(hi, r.hi))
        }
        run.ranges[UnsafeRawPointer(y)] = (lo, hi)
    }

    private func compute(_ instruction: Program.Instruction, y: UnsafeMutablePointer<Float>, outShape: Shape, run: Run,
                         residualInPlace: Buffer? = nil, slot: Program.ConcatSlot? = nil) {
        let ins = instruction.inputs
        if case .concat(let axis) = instruction.step { return concatenate(ins, axis: axis, into: y, outShape: outShape, run: run) }
        let x = UnsafePointer(run.buffers[ins[0]]!.pointer)
        let inShape = run.shapes[ins[0]]
        let count = outShape.elementCount!
        let residual = residualInPlace.map { UnsafePointer($0.pointer) } ?? instruction.residual.map { UnsafePointer(run.buffers[$0]!.pointer) }
        // A local function, not a closure value: passed down without escaping, it is not boxed.
        func scratch(_ bytes: Int) -> UnsafeMutableRawPointer { run.scratch(bytes: bytes) }
        switch instruction.step {
        case .conv(let k):
            let range = k.run(input: x, inShape: inShape, output: y, outShape: outShape, outputStride: slot?.width, residual: residual,
                              scratch: scratch, nativeFloat: run.nativeFloat) {
                run.convert($0, count: $1, to: $2, trackRanges: trackRanges) { self.memory.takeUnplanned($0) }
            }
            if trackRanges, let range {
                if let slot { run.partRanges[slot.part] = range } else { run.ranges[UnsafeRawPointer(y)] = range }
            }
        case .depthwise(let k): k.run(input: x, inShape: inShape, output: y, outShape: outShape, residual: residual)
        case .dense(let k): k.run(input: x, rows: count / k.units, output: y, residual: residual, scratch: scratch)
        case .scaleShift(let s, let t): scaleShift(x, y, count: count, scale: s, shift: t)
        case .activation(let a): a.apply(x, into: y, count: count, channels: outShape.last)
        case .pool(let p, let isMax): windowPool(x, inShape: inShape, y, outShape: outShape, p, max: isMax)
        case .globalPool(let isMax): globalPool(x, inShape: inShape, y, max: isMax)
        case .concat: break  // `concatenate`, above: its inputs may have no buffer
        case .combine(let multiply):
            let parts = ins.map { (UnsafePointer(run.buffers[$0]!.pointer), run.shapes[$0]) }
            combine(parts, into: y, outShape: outShape, multiply: multiply)
        case .scale(let s): scaleValues(x, y, count: count, by: s)
        case .zeroPad(let top, let left): zeroPad(x, inShape: inShape, y, outShape: outShape, top: top, left: left)
        case .crop(let top, let left): crop(x, inShape: inShape, y, outShape: outShape, top: top, left: left)
        case .l2Normalize(let e): l2Normalize(x, y, count: count, channels: outShape.last, epsilon: e)
        case .layerNorm(let e, let gamma, let beta): layerNormalize(x, y, count: count, channels: outShape.last, epsilon: e, gamma: gamma, beta: beta)
        case .alias: break
        }
    }
}
