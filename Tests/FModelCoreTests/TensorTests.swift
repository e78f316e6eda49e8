import FModelCore
import Testing

@Suite struct TensorTests {
    @Test func float16Decodes() {
        let values: [Float] = [0, 1, -2.5, 65504, 0.000061035156]
        let bits = values.map { Float16($0).bitPattern }
        let t = Tensor(dtype: .f16, shape: [5], storage: TensorStorage(values: bits))
        #expect(t.floats() == values)
    }

    /// int8 per channel: value × scale of its last-axis channel.
    @Test func int8PerChannelDecodes() throws {
        let q: [Int8] = [1, -2, 127, -128]
        let t = Tensor(dtype: .int8PerChannel, shape: [2, 2], storage: TensorStorage(values: q),
                       scales: TensorStorage(values: [Float(0.5), Float(0.25)]))
        try t.validate(name: "t")
        #expect(t.floats() == [0.5, -0.5, 63.5, -32])
    }

    /// int4 per group: two signed nibbles a byte, low first; one f16 scale per group.
    @Test func int4PerGroupDecodes() throws {
        let packed: [UInt8] = [0x1F, 0x87, 0x07]  // -1, 1 | 7, -8 | 7, 0
        let scales = [Float16(2), Float16(0.5), Float16(1)].map(\.bitPattern)
        let t = Tensor(dtype: .int4PerGroup, shape: [5], storage: TensorStorage(values: packed),
                       scales: TensorStorage(values: scales), groupSize: 2)
        try t.validate(name: "t")
        #expect(t.floats() == [-2, 2, 3.5, -4, 7])
    }

    @Test func sizesThatDisagreeAreRejected() {
        let t = Tensor(dtype: .f32, shape: [3], storage: TensorStorage(values: [Float(1), 2]))
        #expect(throws: GraphError.self) { try t.validate(name: "t") }
        let noScales = Tensor(dtype: .int8PerChannel, shape: [2], storage: TensorStorage(values: [Int8(1), 2]))
        #expect(throws: GraphError.self) { try noScales.validate(name: "t") }
    }

    /// Shapes whose byte counts overflow (a hostile `.fmodel` header may declare any dims up to
    /// `Int.max`) are errors, not traps: found by `Tools/fuzz_inputs.py`'s resealed headers.
    @Test(arguments: [(DType.f32, [Int.max]), (.f16, [Int.max / 2 + 1]), (.f32, [1 << 31, 1 << 31]),
                      (.int8PerChannel, [1, Int.max]), (.int4PerGroup, [Int.max])])
    func overflowingShapesAreRejected(dtype: DType, dims: [Int]) {
        let t = Tensor(dtype: dtype, shape: Shape(dims), storage: TensorStorage(values: [Float(1)]),
                       scales: dtype == .f32 || dtype == .f16 ? nil : TensorStorage(values: [Float(1)]), groupSize: 1)
        #expect(throws: GraphError.self) { try t.validate(name: "t") }
    }

    @Test func toleranceFollowsAllclose() {
        let d = Difference([1.0, 2.00005], [1.0, 2.0], tolerance: Tolerance(absolute: 1e-4))
        #expect(d.isWithinTolerance && d.maxAbsolute > 0)
        #expect(!Difference([1.0, 2.001], [1.0, 2.0], tolerance: .tensorFlow).isWithinTolerance)
        #expect(Difference([100.01], [100], tolerance: Tolerance(absolute: 0, relative: 1e-3)).isWithinTolerance)
        #expect(!Difference([1], [1, 2], tolerance: .tensorFlow).isWithinTolerance)
        #expect(!Difference([.nan], [1], tolerance: .tensorFlow).isWithinTolerance)
    }
}
