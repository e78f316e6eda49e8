import FModelCore
import FModelImport
import FModelKeras
import FModelRuntime
import FModelTestSupport
import Foundation
import Testing

/// Hostile, broken and unsupported files end in an `ImportError` that names what is wrong.
@Suite struct BadInputTests {
    func importError(_ file: String) -> ImportError? {
        do {
            _ = try ModelLoader.load(path: Fixtures.path(file), options: .inProcess)
            return nil
        } catch let e as ImportError {
            return e
        } catch {
            Issue.record("unexpected error type: \(error)")
            return nil
        }
    }

    @Test func notHDF5() {
        guard case .unknownFormat(_, let reason)? = importError("bad/not_hdf5.h5") else { Issue.record("no unknownFormat"); return }
        #expect(reason.contains("not an"))
    }

    @Test func truncated() {
        guard case .hdf5(let path, _, let reason)? = importError("bad/truncated.h5") else { Issue.record("no hdf5 error"); return }
        #expect(path.hasSuffix("truncated.h5") && reason.contains("truncated"))
    }

    @Test func unknownLayerClass() {
        #expect(importError("bad/unknown_layer.h5") == .unsupportedLayer(path: Fixtures.path("bad/unknown_layer.h5"), layer: "Conv2d_1a_3x3_BatchNorm", className: "FancyNorm"))
    }

    @Test func lambdaThatIsNotAScaling() {
        guard case .unsupportedLambda(_, let layer, let saw)? = importError("bad/unknown_lambda.h5") else { Issue.record("no lambda error"); return }
        #expect(layer == "ScaleSum")
        #expect(saw.contains("arguments"))
    }

    @Test func lambdaWithANonNumericScale() {
        guard case .unsupportedLambda(_, "ScaleSum", let saw)? = importError("bad/lambda_bad_argument.h5") else { Issue.record("no lambda error"); return }
        #expect(saw.contains("not a number"))
    }

    /// A layer computing over channels_first after a channels_last conv (models tf-keras saved)
    /// is an error naming it. The global pooling and the Flatten imported and ran, 0.36 and
    /// 2.62 from tf-keras's outputs; the pooling and the padding imported.
    @Test(arguments: ["global_average_pooling", "flatten", "max_pooling", "zero_padding"])
    func channelsFirstLayersAreErrors(_ kind: String) {
        let file = "bad/channels_first_\(kind).h5"
        #expect(importError(file) == .badConfig(path: Fixtures.path(file), layer: "cf",
                                                reason: "'data_format' = channels_first is not supported (only channels_last)"))
    }

    /// A Dense layer whose activation is a lambda is an error naming it: it was taken as linear.
    @Test func lambdaActivation() {
        guard case .badConfig(_, "doubled", let reason)? = importError("bad/lambda_activation.h5") else { Issue.record("no config error"); return }
        #expect(reason.hasPrefix("activation {\"value\": [") && reason.hasSuffix("is not supported (a lambda's code?)"), "\(reason)")
    }

    /// A number divided by a tensor (tf-keras's TFOpLambda `1.0 / t`) is an error naming the
    /// layer and the op.
    @Test func numberDividedByATensor() {
        guard case .badConfig(_, let layer?, let reason)? = importError("bad/divided_by_tensor.h5") else { Issue.record("no config error"); return }
        #expect(layer.hasPrefix("tf.math.truediv") && reason == "tf.math.truediv: a number divided by a tensor is not supported", "\(reason)")
    }

    /// A product of tensors of different ranks written as an op layer (NumPy aligns them from
    /// the last axis) is an error naming the layer and the shapes; it had been broadcast after the
    /// batch, as a merge layer is.
    @Test func opOfDifferentRanks() {
        guard case .badConfig(_, let layer?, let reason)? = importError("bad/keras3_op_ranks.keras") else { Issue.record("no config error"); return }
        #expect(layer.hasPrefix("multiply") && reason == "ops.Multiply of [?,4,4,3] and [?,3]: shapes of different ranks are not supported", "\(reason)")
    }

    /// A Conv2D of two groups over four channels is an error naming the layer (one group a
    /// channel is a depthwise convolution; other grouped convolutions are not supported).
    @Test func groupedConvolution() {
        #expect(importError("bad/grouped_conv.h5") == .badConfig(path: Fixtures.path("bad/grouped_conv.h5"), layer: "grouped",
                                                                 reason: "'groups' = 2 is not supported (only 1, or one group an input channel)"))
    }

    @Test func missingWeight() {
        #expect(importError("bad/missing_weight.h5") == .missingWeight(path: Fixtures.path("bad/missing_weight.h5"), layer: "Conv2d_2a_3x3", weight: "Conv2d_2a_3x3/kernel:0"))
    }

    @Test func emptyAndMissingFiles() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try #require(FileManager.default.createFile(atPath: dir + "/empty.h5", contents: Data()), "the test could not write its input")
        #expect(throws: ImportError.self) { try ModelLoader.load(path: dir + "/empty.h5", options: .inProcess) }
        #expect(throws: ImportError.self) { try ModelLoader.load(path: dir + "/absent.h5", options: .inProcess) }
    }

    /// A Keras file with neither a worker nor an in-process importer is an error that says
    /// what is missing, not an attempt: the importer that links libhdf5 is FModelKeras's.
    @Test func kerasFileNeedsItsImporter() {
        #expect(throws: ImportError.noWorker(path: Fixtures.path("tiny_residual.h5"))) {
            try ModelLoader.load(path: Fixtures.path("tiny_residual.h5"))
        }
        #expect((try? ModelLoader.load(path: Fixtures.path("tiny_residual.h5"), options: .inProcess)) != nil)
    }

    /// Every tenth of the file cut off: HDF5 checks its end-of-file address before parsing,
    /// so each prefix is an error, in process.
    @Test func truncationsAreErrors() throws {
        let original = try #require(FileManager.default.contents(atPath: Fixtures.path("tiny_residual.h5")))
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for cut in stride(from: 0, to: original.count, by: max(original.count / 10, 1)) {
            let p = dir + "/cut\(cut).h5"
            try #require(FileManager.default.createFile(atPath: p, contents: original.prefix(cut)), "the test could not write its input")
            #expect(throws: ImportError.self) { try ModelLoader.load(path: p, options: .inProcess) }
        }
    }
}


/// Damaged model configs (calls dropped or rewired, layer classes swapped, numbers made absurd):
/// an error or a model that runs, never a crash.
@Suite struct KerasConfigFuzzTests {
    @Test func damagedConfigsNeverCrash() throws {
        let text = try String(contentsOfFile: Fixtures.path("multitask_nested.json"), encoding: .utf8)
        let original = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        var rng = SplitMix64(seed: 5)
        let classes = ["Conv2D", "Dense", "Add", "Concatenate", "BatchNormalization", "Flatten", "Reshape", "MaxPooling2D", "Lambda", "ZeroPadding2D"]
        let numbers: [Any] = [0, -1, 1 << 40, [0, 0], [-3, 2], NSNull(), "x"]
        for _ in 0..<40 {
            var model = original
            var config = model["config"] as! [String: Any]
            var facenet = (config["layers"] as! [[String: Any]])[1]
            var inner = facenet["config"] as! [String: Any]
            var layers = inner["layers"] as! [[String: Any]]
            for _ in 0..<3 {
                let k = Int(rng.next() % UInt64(layers.count - 1)) + 1
                var layer = layers[k]
                switch rng.next() % 4 {
                case 0: layer["inbound_nodes"] = [[Any]]()
                case 1: layer["class_name"] = classes[Int(rng.next() % UInt64(classes.count))]
                case 2:
                    var c = layer["config"] as! [String: Any]
                    for key in ["filters", "kernel_size", "strides", "pool_size", "padding", "units", "axis", "target_shape"] where c[key] != nil {
                        c[key] = numbers[Int(rng.next() % UInt64(numbers.count))]
                    }
                    layer["config"] = c
                default:
                    let other = layers[Int(rng.next() % UInt64(layers.count))]["name"] as! String
                    layer["inbound_nodes"] = [[[other, 0, 0, [String: Any]()]]]
                }
                layers[k] = layer
            }
            inner["layers"] = layers
            facenet["config"] = inner
            var outer = config["layers"] as! [[String: Any]]
            outer[1] = facenet
            config["layers"] = outer
            model["config"] = config
            let json = String(decoding: try JSONSerialization.data(withJSONObject: model), as: UTF8.self)
            guard let graph = try? ModelLoader.load(path: Fixtures.path("multitask_nested_weights.h5"), options: ImportOptions(configJSON: json, hdf5: KerasFiles())) else { continue }
            let x = FloatTensor(shape: graph.inputs[0].shape.withBatch(1), values: [Float](repeating: 0.5, count: graph.inputs[0].shape.withBatch(1).elementCount ?? 0))
            _ = try? Executor(graph: graph).run([graph.inputs[0].name: x])
        }
    }
}
