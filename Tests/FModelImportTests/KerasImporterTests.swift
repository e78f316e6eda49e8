import FModelCore
@testable import FModelImport
@testable import FModelKeras
import FModelTestSupport
import Foundation
import Testing

@Suite struct KerasImporterTests {
    @Test func nestedModelIsInlinedWithItsLayerNames() throws {
        let g = try ModelLoader.load(path: Fixtures.path("multitask_nested.h5"), options: .inProcess)
        #expect(g.inputs.map(\.name) == ["image"])
        #expect(g.outputs == ["age", "gender", "ethnicity"])
        #expect(g.node(named: "Block35_1_ScaleSum")?.op == .scale(0.17))
        #expect(g.node(named: "AvgPool")?.op == .globalAvgPool(keepDims: false))
    }

    @Test func batchNormWithoutScaleHasNoGamma() throws {
        let g = try ModelLoader.load(path: Fixtures.path("facenet_small.h5"), options: .inProcess)
        let bn = try #require(g.node(named: "Conv2d_1a_3x3_BatchNorm"))
        #expect(bn.params["gamma"] == nil)
        #expect(bn.params["beta"] != nil && bn.params["mean"] != nil && bn.params["variance"] != nil)
    }

    @Test func optimizerStateIsCountedNotImported() throws {
        let g = try ModelLoader.load(path: Fixtures.path("facenet_small.h5"), options: .inProcess)
        let tensors = try #require(g.metadata.sourceOptimizerTensors)
        #expect(tensors > 2 * g.tensors.count / 2)  // Adam keeps two moments per trainable weight
        #expect((g.metadata.sourceOptimizerBytes ?? 0) > 0)
        #expect(!g.tensors.keys.contains { $0.contains("Adam") })
        let plain = try ModelLoader.load(path: Fixtures.path("functional_zoo.h5"), options: .inProcess)
        #expect(plain.metadata.sourceOptimizerTensors == 0)
    }

    @Test func metadataRecordsTheSource() throws {
        let g = try ModelLoader.load(path: Fixtures.path("tiny_residual.h5"), options: .inProcess)
        #expect(g.metadata.sourceFile == "tiny_residual.h5")
        #expect(g.metadata.sourceSHA256?.count == 64)
        #expect(g.metadata.sourceFormat == "keras-h5")
        #expect(g.metadata.preprocess == .prewhiten)
        let none = try ModelLoader.load(path: Fixtures.path("tiny_residual.h5"), options: ImportOptions(preprocess: Preprocess.none, hdf5: KerasFiles()))
        #expect(none.metadata.preprocess == Preprocess.none)
    }

    @Test func weightsOnlyFileNeedsAConfig() {
        #expect {
            try ModelLoader.load(path: Fixtures.path("multitask_nested_weights.h5"), options: .inProcess)
        } throws: { error in
            guard case ImportError.missing(_, _, let what) = error else { return false }
            return what.contains("--config")
        }
    }

    @Test func weightNamesAreMatchedByLayerAndRole() {
        #expect(KerasWeights.key("conv/kernel:0") == "conv/kernel")
        #expect(KerasWeights.key("outer/conv/moving_mean:0") == "conv/moving_mean")
    }
}
