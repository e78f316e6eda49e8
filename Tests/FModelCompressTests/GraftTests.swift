import FModelCompress
import FModelCore
import FModelFormat
import FModelImport
import FModelKeras
import FModelRuntime
import FModelTestSupport
import Foundation
import Testing

/// A stripped FaceNet with separately saved heads grafted on, against TensorFlow's outputs of
/// the same composition (made by the fixture script).
@Suite struct GraftTests {
    struct Spec: Decodable { var base, at, heads, input: String; var outputs: [String: String] }

    func spec() throws -> Spec {
        try JSONDecoder().decode(Spec.self, from: Data(contentsOf: URL(fileURLWithPath: Fixtures.path("graft.json"))))
    }

    @Test func graftedModelMatchesTensorFlow() throws {
        let s = try spec()
        let base = try ModelLoader.load(path: Fixtures.path(s.base), options: .inProcess).stripping(layers: ["Bottleneck", "Bottleneck_BatchNorm", "Dropout"])
        let heads = try ModelLoader.load(path: Fixtures.path(s.heads), options: .inProcess)
        let g = try base.grafting(heads, at: s.at)
        #expect(g.outputs == ["age", "gender", "ethnicity"])
        let x = try NPY.read(path: Fixtures.path(s.input))
        let out = try Executor(graph: g).run([g.inputs[0].name: FloatTensor(shape: Shape(x.shape), values: x.values)])
        for (name, file) in s.outputs {
            let expected = try NPY.read(path: Fixtures.path(file))
            let d = Difference(try #require(out[name]).values, expected.values, tolerance: .tensorFlow)
            #expect(d.isWithinTolerance, "\(name): max |Δ| \(d.maxAbsolute)")
        }
    }

    @Test func misfitsAreErrors() throws {
        let s = try spec()
        let base = try ModelLoader.load(path: Fixtures.path(s.base), options: .inProcess)
        let heads = try ModelLoader.load(path: Fixtures.path(s.heads), options: .inProcess)
        #expect(throws: GraftError.unknownNode("nope")) { try base.grafting(heads, at: "nope") }
        #expect(throws: GraftError.self) { try base.grafting(heads, at: "Bottleneck") }
    }
}
