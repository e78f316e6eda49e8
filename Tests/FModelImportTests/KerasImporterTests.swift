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

    /// Weights are found by layer and role: under the full name, a shorter scope when only one
    /// weight has it, and a name with no scope under its group. tf-keras's DenseNet names a layer
    /// `conv1/conv`, whose `conv1/conv/kernel:0` was filed as `conv/kernel` alone: "layer
    /// 'conv1/conv' needs weight 'conv1/conv/kernel:0', which the file does not hold"; in one
    /// group, `conv2/conv/kernel` would have replaced it. Fixture `slashed_names` runs such a
    /// model against tf-keras.
    @Test func weightNamesAreMatchedByLayerAndRole() {
        let names = KerasWeights.names([("conv/kernel:0", "a"), ("outer/bn/moving_mean:0", "b"), ("conv1/conv/kernel:0", "c"),
                                        ("conv2/conv/kernel:0", "d"), ("mean:0", "e"), ("x/y/conv/kernel:0", "f")], group: "g")
        #expect(names["conv/kernel"] == "a" && names["outer/bn/moving_mean"] == "b" && names["bn/moving_mean"] == "b")
        #expect(names["conv1/conv/kernel"] == "c" && names["conv2/conv/kernel"] == "d" && names["g/mean"] == "e")
        #expect(names["x/y/conv/kernel"] == "f" && names["y/conv/kernel"] == "f")
    }

}
