import FModelCompress
import FModelCore
import FModelImport
import FModelKeras
@testable import FModelRuntime
import FModelTestSupport
import Testing

/// The activation arena (`ActivationMemory`, `ArenaPlan`): buffers alive at once never share a
/// byte, runs take their planned buffers, and a plan that does not fit its run costs memory,
/// never an answer.
@Suite struct ActivationMemoryTests {
    /// Three buffers, A and C never alive together: they share a place, beside B.
    @Test func buffersApartInTimeShareMemory() {
        // Events: take A, take B, give A, take C, give B, give C.
        let plan = ArenaPlan([(floats: 10, taken: 0, given: 2), (floats: 20, taken: 1, given: 4), (floats: 16, taken: 3, given: 5)])
        #expect(plan.sizes == [16, 32, 16], "rounded to 64 bytes")
        #expect(plan.offsets[1] == 0 && plan.offsets[0] == 32 && plan.offsets[2] == 32)
        #expect(plan.floats == 48, "the most alive at once")
    }

    /// Random lifetimes: no two buffers alive at the same time overlap, and the region lies
    /// between the most alive at once and the sum of all.
    @Test func randomLifetimesNeverOverlap() {
        var g = SplitMix64(seed: 7)
        for _ in 0..<50 {
            let n = 1 + Int(g.next() % 60)
            var buffers: [(floats: Int, taken: Int, given: Int)] = []
            for i in 0..<n {
                let taken = 2 * i, life = 1 + Int(g.next() % 40)
                let given = g.next() % 8 == 0 ? Int.max : taken + life
                buffers.append((1 + Int(g.next() % 5000), taken, given))
            }
            let plan = ArenaPlan(buffers)
            for i in 0..<n {
                for j in (i + 1)..<n where buffers[i].taken < buffers[j].given && buffers[j].taken < buffers[i].given {
                    let a = plan.offsets[i]..<(plan.offsets[i] + plan.sizes[i]), b = plan.offsets[j]..<(plan.offsets[j] + plan.sizes[j])
                    #expect(!a.overlaps(b), "buffers \(i) and \(j)")
                }
                #expect(plan.offsets[i] % 16 == 0 && plan.sizes[i] >= buffers[i].floats)
            }
            let mostAlive = buffers.map { b in buffers.indices.filter { buffers[$0].taken <= b.taken && b.taken < buffers[$0].given }
                .reduce(0) { $0 + plan.sizes[$1] } }.max()!
            #expect(plan.floats >= mostAlive && plan.floats <= plan.sizes.reduce(0, +))
        }
    }

    /// The plan is the greedy placement's, found by comparing each buffer with every one placed
    /// before it (as the planner did until its meetings were found by a sweep), on random
    /// lifetimes, some of them empty or never given back.
    @Test func sweepPlansAsComparingEveryPairDid() {
        var g = SplitMix64(seed: 11)
        for _ in 0..<50 {
            let n = 1 + Int(g.next() % 80)
            let buffers: [(floats: Int, taken: Int, given: Int)] = (0..<n).map { _ in
                let taken = Int(g.next() % 100), life = Int(g.next() % 30)
                return (1 + Int(g.next() % 3000), taken, g.next() % 10 == 0 ? Int.max : taken + life)
            }
            let sizes = buffers.map { ($0.floats + 15) / 16 * 16 }
            var offsets = [Int](repeating: 0, count: n), placed: [Int] = []
            for i in buffers.indices.sorted(by: { sizes[$0] != sizes[$1] ? sizes[$0] > sizes[$1] : $0 < $1 }) {
                var offset = 0
                for j in placed.filter({ buffers[$0].taken < buffers[i].given && buffers[i].taken < buffers[$0].given })
                    .sorted(by: { offsets[$0] < offsets[$1] }) {
                    if offsets[j] - offset >= sizes[i] { break }
                    offset = max(offset, offsets[j] + sizes[j])
                }
                offsets[i] = offset
                placed.append(i)
            }
            #expect(ArenaPlan(buffers).offsets == offsets)
        }
    }

    /// A chain of 200,000 activations (an 18 MB `.fmodel` of ReLUs) plans in two places: each
    /// buffer meets only its neighbours. Comparing every buffer with every one placed, this ran
    /// for hours.
    @Test func longChainPlansInTwoPlaces() throws {
        let n = 200_000
        let meets = try #require(ArenaPlan.meetings((0..<n).map { (floats: 16, taken: $0, given: $0 + 2) }))
        #expect(meets.indices.allSatisfy { i in meets[i].sorted() == [i - 1, i + 1].filter { (0..<n).contains($0) } })
        let plan = ArenaPlan((0..<n).map { (floats: 16, taken: $0, given: $0 + 2) })
        #expect(plan.floats == 32 && Set(plan.offsets) == [0, 16])
    }

    /// Past `maxMeetings` pairs alive together (3,000 buffers alive at once), each buffer has
    /// a place of its own, one after another: what they need anyway.
    @Test func crowdedLifetimesGetPlacesOfTheirOwn() {
        let n = 3000
        #expect(n * (n - 1) / 2 > ArenaPlan.maxMeetings)
        let plan = ArenaPlan((0..<n).map { (floats: 1 + $0 % 40, taken: $0, given: Int.max) })
        #expect(plan.floats == plan.sizes.reduce(0, +))
        #expect(plan.offsets == plan.sizes.indices.map { plan.sizes[..<$0].reduce(0, +) })
    }

    func model() throws -> Graph { try ModelLoader.load(path: Fixtures.path("multitask_flat.h5"), options: .inProcess) }

    /// Every request of every run after the first walk comes from its plan — on the GEMM engine
    /// and on the tiered one (its GEMM first run, its trial run, oneDNN chains and residuals
    /// written in place after), float32 or int8 (whose quantized copies are pooled) — the answers
    /// are the pooled executor's, the arena holds less, and a run of a kind that ran before
    /// makes no buffer objects.
    @Test(arguments: [ConvolutionEngine.gemm, .tiered], [false, true])
    func runsTakeTheirPlannedBuffers(engine: ConvolutionEngine, int8: Bool) throws {
        let g = int8 ? try model().quantizing(LayerSelection(), .int8PerChannel) : try model()
        let x = try g.syntheticInputs(batch: 2)
        let planned = try Executor(graph: g, engine: engine), pooled = try Executor(graph: g, engine: engine)
        pooled.plansActivations = false
        // The same paths in both (a timed trial could pick differently), so the same answers.
        for e in [planned, pooled] { e.forceTrialVerdict(.native) }
        var made: [Int] = []
        for _ in 0..<4 {
            let a = try planned.run(x), b = try pooled.run(x)
            for name in g.outputs { #expect(a[name]!.values.elementsEqual(b[name]!.values), "\(name)") }
            made.append(planned.memory.buffersMade)
        }
        #expect(made[0] > 0 && made[2] == made[3], "\(made)")
        #expect(planned.memory.misses == 0)
        #expect(planned.workspaceBytes < pooled.workspaceBytes, "\(planned.workspaceBytes) against \(pooled.workspaceBytes) bytes")
    }

    /// With every planned buffer at offset 0, the arena serves one buffer at a time and the
    /// rest come from the pool: the answers do not change.
    @Test func aPlanThatDoesNotFitCostsNoAnswer() throws {
        let g = try model()
        let x = try g.syntheticInputs(batch: 2)
        let e = try Executor(graph: g, engine: .gemm), pooled = try Executor(graph: g, engine: .gemm)
        pooled.plansActivations = false
        let expected = try pooled.run(x)
        _ = try e.run(x)
        e.memory.collapsePlansForTests()
        let got = try e.run(x)
        #expect(e.memory.misses > 0)
        for name in g.outputs { #expect(got[name]!.values.elementsEqual(expected[name]!.values), "\(name)") }
    }

    /// A model may state values of up to 2^31 floats an image (8.6 GB): a run whose activations
    /// would need more memory than the executor may take is an error before any is allocated.
    @Test(arguments: [ConvolutionEngine.gemm, .tiered]) func activationsPastTheLimitAreAnError(engine: ConvolutionEngine) throws {
        let channels = 1 << 19
        let wide = Graph(inputs: [ValueInfo(name: "x", shape: [-1, 64, 64, 1])], outputs: ["wide"],
                         nodes: [Node(name: "wide", op: .conv2D(ConvAttributes()), inputs: ["x"], params: ["kernel": "k"])],
                         tensors: ["k": Tensor([Float](repeating: 0.5, count: channels), shape: [1, 1, 1, channels])])
        let e = try Executor(graph: wide, engine: engine)
        #expect(e.activationLimit > 1 << 28, "the machine's memory")
        e.activationLimit = 4 << 30
        #expect(throws: RuntimeError.activationMemory(batch: 1, bytes: 64 * 64 * channels * 4, limit: 4 << 30)) {
            try e.run(wide.syntheticInputs(batch: 1))
        }
        #expect("\(RuntimeError.activationMemory(batch: 1, bytes: 64 * 64 * channels * 4, limit: 4 << 30))"
            == "a run of 1 image needs 8.6 GB of activation memory; at most 4.2 GB may be taken (the machine's memory, its cgroup's limit or ulimit -v/-d)")
        // Values each within the limit, together past it: the plan's region is what counts.
        let small = try Executor(graph: model(), engine: engine)
        let x = try model().syntheticInputs(batch: 2)
        let planned = try Executor(graph: model(), engine: engine)
        _ = try planned.run(x)
        let region = planned.memory.capacity * MemoryLayout<Float>.stride
        small.activationLimit = region - 64
        #expect(throws: RuntimeError.activationMemory(batch: 2, bytes: region, limit: region - 64)) { try small.run(x) }
    }
}
