import FModelCompress
import FModelCore
import FModelFormat
import FModelImport
import FModelKeras
import FModelRuntime
import FModelTestSupport
import Testing

@Suite struct StripTests {
    func facenet() throws -> Graph { try ModelLoader.load(path: Fixtures.path("facenet_small.h5"), options: .inProcess) }

    func run(_ g: Graph) throws -> FloatTensor {
        let x = try NPY.read(path: Fixtures.path("facenet_small.input.npy"))
        return try Executor(graph: g).run([g.inputs[0].name: FloatTensor(shape: Shape(x.shape), values: x.values)])[g.outputs[0]]!
    }

    /// Dropping FaceNet's bottleneck, its batch norm and dropout leaves the average pool as the
    /// output: the same graph and numbers as cutting after `AvgPool`.
    @Test func faceNetLosesItsBottleneck() throws {
        let g = try facenet()
        let stripped = try g.stripping(layers: ["Bottleneck", "Bottleneck_BatchNorm", "Dropout"])
        #expect(stripped.outputs == ["AvgPool"])
        #expect(stripped.nodes.count == g.nodes.count - 3)
        #expect(try stripped.inferShapes()["AvgPool"]?.dims.count == 2)
        #expect(stripped.parameterBytes < g.parameterBytes)
        let cut = try g.cutting(after: "AvgPool")
        #expect(cut.nodes == stripped.nodes)
        #expect(try run(cut) == run(stripped))
    }

    @Test func errorsNameTheLayer() throws {
        let g = try facenet()
        #expect(throws: StripError.unknownLayer("Bottlenek", known: g.nodes.count)) { try g.stripping(layers: ["Bottlenek"]) }
        #expect(throws: StripError.self) { try g.cutting(after: "nope") }
        // Removing a layer that changes the width breaks the next one: an error, not a bad file.
        #expect(throws: StripError.self) { try g.stripping(layers: ["Bottleneck"]) }
    }
}
