import FModelCompress
import FModelCore
import FModelFormat
import FModelImport
import FModelKeras
import FModelRuntime
import FModelTestSupport
import Foundation
import Testing

@Suite struct QuantizeTests {
    static func weights(_ shape: Shape, seed: UInt64) -> Tensor {
        var rng = SplitMix64(seed: seed)
        let n = shape.elementCount!
        return Tensor((0..<n).map { _ in Float(Int64(bitPattern: rng.next()) % 10_000) / 3_000 }, shape: shape)
    }

    static let shapes: [Shape] = [[3, 3, 4, 8], [64, 10], [1, 1, 7, 5], [33]]

    /// int8: every value within half a step of its channel's scale (max|w| / 127).
    @Test(arguments: shapes)
    func int8ErrorIsHalfAStep(_ shape: Shape) throws {
        let t = Self.weights(shape, seed: 1)
        let q = t.quantized(.int8PerChannel)
        try q.validate(name: "q")
        #expect(q.dtype == .int8PerChannel && q.byteCount == t.count + shape.last * 4)
        let (w, d, c) = (t.floats(), q.floats(), shape.last)
        var maxAbs = [Float](repeating: 0, count: c)
        for (i, v) in w.enumerated() { maxAbs[i % c] = max(maxAbs[i % c], abs(v)) }
        for i in w.indices { #expect(abs(w[i] - d[i]) <= maxAbs[i % c] / 127 / 2 * 1.0001 + 1e-7) }
    }

    /// int4: every value within half a step of its group's float16 scale (max|w| / 7).
    @Test(arguments: shapes)
    func int4ErrorIsHalfAStep(_ shape: Shape) throws {
        let t = Self.weights(shape, seed: 2)
        let q = t.quantized(.int4PerGroup(groupSize: 8))
        try q.validate(name: "q")
        let (w, d) = (t.floats(), q.floats())
        for g in stride(from: 0, to: w.count, by: 8) {
            let group = g..<min(g + 8, w.count)
            let scale = Float(Float16(w[group].reduce(0) { max($0, abs($1)) } / 7))
            for i in group { #expect(abs(w[i] - d[i]) <= scale / 2 * 1.001 + 1e-6, "element \(i)") }
        }
    }

    /// A group past the element count is one group, up to the largest even one (which crashed,
    /// overflowing, from `quantize --group 9223372036854775806`).
    @Test(arguments: [1 << 20, Int.max - 1])
    func hugeGroupIsOneGroup(_ group: Int) throws {
        let t = Self.weights([3, 3, 4, 6], seed: 4)
        let q = t.quantized(.int4PerGroup(groupSize: group))
        try q.validate(name: "q")
        #expect(q.scales?.bytes.count == 2)
        #expect(q.floats() == t.quantized(.int4PerGroup(groupSize: 216)).floats())
    }

    @Test(arguments: shapes)
    func f16KeepsElevenBits(_ shape: Shape) {
        let t = Self.weights(shape, seed: 3)
        let (w, d) = (t.floats(), t.quantized(.f16).floats())
        for i in w.indices { #expect(abs(w[i] - d[i]) <= abs(w[i]) / 2048 + 1e-7) }
    }

    @Test func zerosStayZero() {
        let zero = Tensor([Float](repeating: 0, count: 16), shape: [4, 4])
        #expect(zero.quantized(.int8PerChannel).floats() == zero.floats())
        #expect(zero.quantized(.int4PerGroup(groupSize: 4)).floats() == zero.floats())
    }

    @Test func globsSelectLayers() throws {
        let g = try ModelLoader.load(path: Fixtures.path("multitask_flat.h5"), options: .inProcess)
        let block35 = LayerSelection(include: ["Block35_*"]).nodes(in: g)
        #expect(!block35.isEmpty && block35.allSatisfy { $0.name.hasPrefix("Block35_") })
        #expect(!LayerSelection(exclude: ["age*", "gender*", "ethnicity*"]).nodes(in: g).contains { $0.name == "age" })
        #expect(LayerSelection().nodes(in: g).count == g.nodes.filter { $0.op.hasKernel }.count)
    }

    /// A chain of 10,000 dense layers quantizes whole, each kernel as it would alone. (A copy
    /// of the graph per layer copied the table of tensors each time: 50,000 layers took 266 s,
    /// 2.0 s now, release builds. That is speed, which this test does not time: with 20,000
    /// layers in a debug build it took 25.6 s before the fix and 4.9 s after.)
    @Test func longChainQuantizes() {
        let n = 10_000
        let nodes = (0..<n).map { Node(name: "d\($0)", op: .dense(activation: .linear), inputs: [$0 == 0 ? "x" : "d\($0 - 1)"], params: ["kernel": "k\($0)"]) }
        let g = Graph(inputs: [ValueInfo(name: "x", shape: [-1, 4])], outputs: ["d\(n - 1)"], nodes: nodes,
                      tensors: Dictionary(uniqueKeysWithValues: (0..<n).map { ("k\($0)", Tensor((0..<16).map { Float($0) / 16 }, shape: [4, 4])) }))
        let q = g.quantizing(LayerSelection(), .int8PerChannel)
        #expect(q.tensors.count == n && q.tensors.values.allSatisfy { $0.dtype == .int8PerChannel })
        #expect(q.tensors["k7"]?.floats() == g.tensors["k7"]!.quantized(.int8PerChannel).floats())
    }

    /// A kernel already as compact as the scheme or more stays as it is: the Dense layers Keras
    /// quantized to int8 (`keras3_int8`) grew to f16 under `quantize --dtype f16` (a model of
    /// 8.0 KiB became 7.3 KiB, not 5.8).
    @Test func compactKernelsAreNotWidened() throws {
        let g = try ModelLoader.load(path: Fixtures.path("keras3_int8.keras"), options: .inProcess)
        let int8 = Set(g.nodes.filter { g.param("kernel", of: $0)?.dtype == .int8PerChannel }.map(\.name))
        #expect(int8 == ["fc1", "age", "gender", "ethnicity"])
        for scheme in [QuantizationScheme.f16, .int8PerChannel] {
            let q = g.quantizing(LayerSelection(), scheme)
            #expect(Set(g.shrinkable(LayerSelection(), to: scheme).map(\.name)).isDisjoint(with: int8))
            for name in int8 { #expect(q.param("kernel", of: q.node(named: name)!)?.floats() == g.param("kernel", of: g.node(named: name)!)?.floats()) }
            #expect(q.parameterBytes < g.parameterBytes, "\(scheme)")
        }
        #expect(g.shrinkable(LayerSelection(), to: .int4PerGroup(groupSize: 32)).count == LayerSelection().nodes(in: g).count)
    }

    /// int8 everywhere: stored as int8 in the file, read back as int8, and close to float.
    @Test func int8ModelRoundTripsAndStaysClose() throws {
        let g = try ModelLoader.load(path: Fixtures.path("multitask_flat.h5"), options: .inProcess)
        let q = g.quantizing(LayerSelection(), .int8PerChannel)
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FModelWriter.write(q, to: dir + "/q.fmodel")
        let back = try FModelReader.read(path: dir + "/q.fmodel")
        #expect(back.tensors.values.filter { $0.dtype == .int8PerChannel }.count == LayerSelection().nodes(in: g).count)
        #expect(back.metadata.passes.last == "quantize_int8")
        let inputs = try g.syntheticInputs(batch: 2)
        #expect(try g.maxOutputChange(candidate: back, inputs: inputs) < 0.05)
        let errors = try g.layerErrors(candidate: back, nodes: ["Conv2d_1a_3x3", "age"], inputs: inputs)
        #expect(errors.allSatisfy { $0.sqnrDB > 20 && $0.cosine > 0.99 })
    }
}
