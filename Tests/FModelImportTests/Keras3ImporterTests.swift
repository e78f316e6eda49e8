import FModelCore
import FModelFormat
@testable import FModelImport
@testable import FModelKeras
import FModelRuntime
import FModelTestSupport
import Foundation
import Testing

/// Keras 3 `.keras` files made by the fixture script (Keras 3.15), against Keras 3's outputs.
@Suite struct Keras3ImporterTests {
    struct Entry: Decodable {
        var name, model, input: String
        var outputs: [String: String]
        /// The model config of a weights-only file (`--config`).
        var config: String?
        /// Keras-quantized models: the outputs of the float model with the int8 kernels
        /// dequantized (`kernel / kernel_scale`).
        var dequantized: [String: String]?
    }

    static func entry(_ name: String = "keras3_multitask") throws -> Entry {
        struct File: Decodable { var fixtures: [Entry] }
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("keras3.json")))
        return try #require(try JSONDecoder().decode(File.self, from: data).fixtures.first { $0.name == name })
    }

    /// Entry `e`'s model, imported in this process (with its config, for a weights-only file).
    static func load(_ e: Entry) throws -> Graph {
        var options = ImportOptions.inProcess
        options.configJSON = try e.config.map { try String(contentsOfFile: Fixtures.path($0), encoding: .utf8) }
        return try ModelLoader.load(path: Fixtures.path(e.model), options: options)
    }

    /// `graph`'s outputs on entry `e`'s input, each checked against the outputs Keras saved
    /// (`outputs`, by default `e.outputs`) within `tolerance`.
    static func runMatchingKeras(_ graph: Graph, _ e: Entry, outputs: [String: String]? = nil,
                                 tolerance: Tolerance = .tensorFlow) throws -> [String: FloatTensor] {
        let x = try NPY.read(path: Fixtures.path(e.input))
        let out = try Executor(graph: graph).run([graph.inputs[0].name: FloatTensor(shape: Shape(x.shape), values: x.values)])
        for (name, file) in outputs ?? e.outputs {
            let d = Difference(try #require(out[name]).values, try NPY.read(path: Fixtures.path(file)).values, tolerance: tolerance)
            #expect(d.isWithinTolerance, "\(e.name) \(name): max |Δ| \(d.maxAbsolute)")
        }
        return out
    }

    @Test func nestedMultiTaskModelMatchesKeras() throws {
        let e = try Self.entry()
        let g = try Self.load(e)
        #expect(g.metadata.sourceFormat == "keras3" && g.outputs == ["age", "gender", "ethnicity"])
        #expect(g.node(named: "Block35_1_ScaleSum")?.op == .scale(0.17))
        _ = try Self.runMatchingKeras(g, e)
    }

    /// A nested model naming a layer as one outside it is named (`fc` in both): each takes its
    /// own weights, found where Keras puts them. They were taken by the layer name Keras 3
    /// tags them with, one for both: "layer 'fc' weight 'kernel' has shape [4, 3], expected
    /// [-1, 5]" (tf-keras's `.keras` alike).
    @Test func aNestedModelMayReuseALayerName() throws {
        let e = try Self.entry("keras3_shadowed")
        #expect(try Self.runMatchingKeras(Self.load(e), e).keys.sorted() == ["head"])
    }

    /// A model whose Dense layers Keras quantized (`model.quantize("int8")`), as `.keras` and as
    /// the legacy `.h5`, keeps them int8 and computes with exactly Keras's int8 weights: as the
    /// float model holding them dequantized, and as Keras's int8 model up to its 8-bit
    /// activations. The int8 kernels were read as floats and `kernel_scale` ignored: outputs
    /// of 67822 for 0.97.
    @Test(arguments: ["keras3_int8", "keras3_int8_h5"])
    func kerasInt8DenseLayersStayInt8(_ name: String) throws {
        let e = try Self.entry(name)
        let g = try Self.load(e)
        for layer in ["fc1", "age", "gender", "ethnicity"] {
            let kernel = try #require(g.node(named: layer).flatMap { g.param("kernel", of: $0) })
            #expect(kernel.dtype == .int8PerChannel, "\(layer) is \(kernel.dtype)")
        }
        _ = try Self.runMatchingKeras(g, e, outputs: try #require(e.dequantized))
        _ = try Self.runMatchingKeras(g, e, tolerance: Tolerance(absolute: 0.005))
    }

    /// The quantizations fmodel does not read (int4, float8, GPTQ, AWQ, any on a layer other
    /// than Dense) are errors naming the layer and the mode.
    @Test func otherKerasQuantizationsAreErrors() throws {
        let zip = try ZipArchive(path: Fixtures.path("keras3_int8.keras"))
        let config = String(decoding: try zip.contents("config.json", maxBytes: 1 << 20), as: UTF8.self)
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try zip.extract("model.weights.h5", to: dir + "/model.weights.h5")
        for mode in ["int4", "float8", "gptq"] {
            let changed = config.replacingOccurrences(of: #""mode": "int8""#, with: "\"mode\": \"\(mode)\"")
            try #require(changed != config, "the fixture's config names no int8 mode")
            try changed.write(toFile: dir + "/config.json", atomically: false, encoding: .utf8)
            #expect(throws: ImportError.badConfig(path: dir, layer: "fc1", reason: "is quantized by Keras (\(mode)); fmodel reads Keras's "
                    + "quantization only for Dense layers in int8: import the float model and quantize it with `fmodel quantize`")) {
                try ModelLoader.load(path: dir, options: .inProcess)
            }
        }
    }

    /// Keras's int8 kernel and scales are checked before they become fmodel's.
    @Test func brokenKerasInt8WeightsAreErrors() throws {
        let c = LayerConfig(layer: KerasLayer(className: "Dense", name: "fc", config: .object([:]), inbound: [], nested: nil), path: "m.keras", keras3: true)
        let q = Tensor([1, -127, 127, 0, 5, -5], shape: [3, 2])
        let good = try c.int8Kernel(q, kerasScale: Tensor([127, 0.5], shape: [2]))
        #expect(good.floats() == [1 / 127, -254, 1, 0, 5 / 127, -10])
        func reason(_ q: Tensor, _ scale: [Float]) -> String? {
            do { _ = try c.int8Kernel(q, kerasScale: Tensor(scale, shape: Shape([scale.count]))) } catch { return error.description }
            return nil
        }
        #expect(reason(q, [1, 0])?.hasSuffix("kernel_scale of unit 1 is 0.0, expected a positive finite number") == true)
        #expect(reason(q, [.infinity, 1])?.hasSuffix("kernel_scale of unit 0 is inf, expected a positive finite number") == true)
        #expect(reason(q, [1e-45, 1])?.contains("kernel_scale of unit 0") == true)
        #expect(reason(q, [1, 2, 3]) == "m.keras: layer 'fc' weight 'kernel_scale' has shape [3], expected [2]")
        #expect(reason(Tensor([1, 1.5, 0, 0, 0, 0], shape: [3, 2]), [1, 1])?.hasSuffix("int8 kernel value 1 is 1.5, not an 8-bit integer") == true)
        #expect(reason(Tensor([1, 1, 0, 200, 0, 0], shape: [3, 2]), [1, 1])?.hasSuffix("int8 kernel value 3 is 200.0, not an 8-bit integer") == true)
    }

    /// Dense layers given `LeakyReLU(negative_slope=0.1)` or `ReLU(max_value=6)` as their
    /// activation, and "leaky_relu": such a layer was taken as linear.
    @Test func layersGivenAsActivationsMatchKeras() throws {
        let e = try Self.entry("keras3_activations")
        let g = try Self.load(e)
        #expect(g.node(named: "leaky_layer")?.op == .dense(activation: .leakyRelu(alpha: 0.1)))
        _ = try Self.runMatchingKeras(g, e)
    }

    /// bfloat16 weights (2-byte opaque data tagged `dtype: bfloat16`) and float16 ones read
    /// exactly: the model runs as its float32 twin holding the same weights. bfloat16 was
    /// "HDF5 object '/layers/conv2d/vars/0': is not numeric".
    @Test func halfPrecisionWeightsMatchTheirFloatTwin() throws {
        let e = try Self.entry("keras3_half")
        _ = try Self.runMatchingKeras(Self.load(e), e)
    }

    /// Outputs given by name (`Model(x, {"cat": …, "age": …})`), a nested model's too, as
    /// `.keras` and as the legacy `.h5`: listed in the order Keras flattens them, by key, and
    /// named so (`age`, the layer `age_head`'s output, through an identity node). Both were
    /// "model config: missing connection list".
    @Test(arguments: ["keras3_named", "keras3_named_h5"])
    func outputsGivenByNameMatchKeras(_ name: String) throws {
        let e = try Self.entry(name)
        let g = try Self.load(e)
        #expect(g.outputs == ["age", "cat"] && g.node(named: "age")?.op == .identity && g.node(named: "age")?.inputs == ["age_head"])
        _ = try Self.runMatchingKeras(g, e)
    }

    /// Rescaling layers with a scale and offset per channel, as a list and as Keras 3's
    /// serialised array: "layer 'imagenet' is a Rescaling, which fmodel does not support".
    @Test func perChannelRescalingMatchesKeras() throws {
        let e = try Self.entry("keras3_rescaling")
        _ = try Self.runMatchingKeras(Self.load(e), e)
    }

    /// Attention blocks' products and sums that broadcast: squeeze-and-excitation's
    /// `[N, 1, 1, C]` (after a Reshape, and with the gate first), its `[N, C]` vector straight
    /// into Multiply, and a `[N, H, W, 1]` spatial gate. Each was "inputs [?,6,6,8] and
    /// [?,1,1,8] differ".
    @Test func broadcastingProductsAndSumsMatchKeras() throws {
        let e = try Self.entry("keras3_attention")
        _ = try Self.runMatchingKeras(Self.load(e), e)
    }

    /// silu, swish, elu and gelu by name and an ELU layer; Keras 3's hard_silu and hard_swish;
    /// hard_sigmoid as Keras 3 defines it (`relu6(x + 3) / 6`; tf-keras's is `0.2 · x + 0.5`,
    /// fixture `hard_sigmoid`), also in the legacy `.h5` of a Sequential model, whose config has
    /// the Keras 2 form and whose `keras_version` attribute says Keras 3 wrote it. Each was
    /// "activation '…' is not supported".
    @Test(arguments: ["keras3_smooth_activations", "keras3_hard_swish", "keras3_hard_sigmoid", "keras3_hard_sigmoid_h5"])
    func smoothActivationsMatchKeras(_ name: String) throws {
        let e = try Self.entry(name)
        _ = try Self.runMatchingKeras(Self.load(e), e)
    }

    /// Normalization layers (adapted, given per channel with a variance of 0 that Keras clamps,
    /// inverted, over all axes) as affine nodes: "layer 'adapted' is a Normalization, which
    /// fmodel does not support". The clamp's channel is 0 where 0 · ∞ would be NaN.
    @Test(arguments: ["keras3_normalization", "keras3_normalization_h5"])
    func normalizationMatchesKeras(_ name: String) throws {
        let e = try Self.entry(name)
        _ = try Self.runMatchingKeras(Self.load(e), e)
    }

    /// SeparableConv2D (Xception's) as a depthwise node, then a 1×1 convolution with the bias
    /// and activation; InceptionResNetV2's CustomScaleLayer as a scale node, then a sum. Both
    /// were "… which fmodel does not support".
    @Test(arguments: ["keras3_separable_scaled", "keras3_separable_scaled_h5"])
    func separableConvolutionAndScaledSumMatchKeras(_ name: String) throws {
        let e = try Self.entry(name)
        let g = try Self.load(e)
        #expect(g.node(named: "sep_strided/depthwise")?.inputs == ["pixels"] && g.node(named: "sep_strided")?.inputs == ["sep_strided/depthwise"])
        #expect(g.node(named: "scaled_sum/scaled")?.op == .scale(0.17) && g.node(named: "scaled_sum")?.inputs == ["sep_strided", "scaled_sum/scaled"])
        _ = try Self.runMatchingKeras(g, e)
    }

    /// Arithmetic on Keras tensors, which Keras 3 writes as op layers (`keras.src.ops.numpy`):
    /// `t + 3.0` was taken as the Add merge layer ("needs at least 2 inputs"), `t / 4.0` was
    /// "a TrueDivide, which fmodel does not support". The legacy `.h5` (which Keras does not
    /// read back) omits the module; an op there takes two operands, a merge layer one list.
    @Test(arguments: ["keras3_tensor_arithmetic", "keras3_tensor_arithmetic_h5"])
    func arithmeticOnTensorsMatchesKeras(_ name: String) throws {
        let e = try Self.entry(name)
        let g = try Self.load(e)
        #expect(g.node(named: "true_divide")?.op == .scale(0.25) && g.node(named: "subtract_1")?.op == .affine)
        _ = try Self.runMatchingKeras(g, e)
    }

    /// A ConvNeXt block as Keras's applications build it: a Conv2D with one group a channel
    /// (a depthwise node), LayerNormalization, LayerScale (an affine node; its weight in the
    /// `.h5`, which Keras does not read back, is `variable`), StochasticDepth (an identity).
    /// Each was an error: "'groups' = 8 is not supported", "is a LayerNormalization, which
    /// fmodel does not support", …
    @Test(arguments: ["keras3_convnext_block", "keras3_convnext_block_h5"])
    func convNeXtBlockMatchesKeras(_ name: String) throws {
        let e = try Self.entry(name)
        let g = try Self.load(e)
        #expect(g.node(named: "depthwise_conv").map { if case .depthwiseConv2D = $0.op { true } else { false } } == true)
        #expect(g.node(named: "layernorm")?.op == .layerNorm(epsilon: 1e-6) && g.node(named: "plain_norm")?.params["beta"] == nil)
        _ = try Self.runMatchingKeras(g, e)
    }

    /// Cropping2D (NASNet's), uneven and even: "is a Cropping2D, which fmodel does not support".
    @Test(arguments: ["keras3_cropping", "keras3_cropping_h5"])
    func croppingMatchesKeras(_ name: String) throws {
        let e = try Self.entry(name)
        let g = try Self.load(e)
        #expect(g.node(named: "uneven")?.op == .crop(top: 1, bottom: 0, left: 0, right: 2))
        _ = try Self.runMatchingKeras(g, e)
    }

    /// A model whose input goes straight to a Rescaling or Normalization normalises its pixels itself, so its
    /// import records none (`predict` and `verify` then feed it pixels as they are); others
    /// keep FaceNet's prewhitening. A face prewhitened and then rescaled is not what such a
    /// model was trained on.
    @Test(arguments: [("rescaling.h5", Preprocess.none), ("keras3_rescaling.keras", .none), ("normalization.h5", .none),
                      ("keras3_normalization.keras", .none), ("keras3_multitask.keras", .prewhiten),
                      ("tiny_residual.h5", .prewhiten)])
    func aModelThatRescalesItsPixelsRecordsNoNormalisation(_ file: String, _ expected: Preprocess) throws {
        #expect(try ModelLoader.load(path: Fixtures.path(file), options: .inProcess).metadata.preprocess == expected)
    }

    /// A Rescaling's scale or offset that is not a number or one per channel is an error.
    @Test func rescalingOfTheWrongShapeIsAnError() throws {
        func values(_ v: JSONValue) throws(ImportError) -> [Float] {
            let c = LayerConfig(layer: KerasLayer(className: "Rescaling", name: "r", config: .object(["scale": v]), inbound: [], nested: nil), path: "m.keras", keras3: true)
            return try c.perChannel("scale", channels: 3, default: 1)
        }
        #expect(try values(.number(0.5)) == [0.5, 0.5, 0.5])
        #expect(try values(.array([.number(2)])) == [2, 2, 2])
        #expect(try values(.object(["class_name": .string("__numpy__"), "config": .object(["value": .array([.number(1), .number(2), .number(3)])])])) == [1, 2, 3])
        for bad: JSONValue in [.array([.number(1), .number(2)]), .string("0.5"), .array([.array([.number(1), .number(2), .number(3)])]),
                               .array([.number(1), .string("2"), .number(3)]), .null] {
            #expect(throws: ImportError.self, "\(bad.brief)") { try values(bad) }
        }
    }

    @Test func brokenZipsAreErrors() throws {
        let original = try #require(FileManager.default.contents(atPath: Fixtures.path("keras3_multitask.keras")))
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (i, data) in [original.prefix(4), original.prefix(original.count / 2), original.prefix(original.count - 10)].enumerated() {
            let p = "\(dir)/cut\(i).keras"
            try #require(FileManager.default.createFile(atPath: p, contents: Data(data)), "the test could not write its input")
            #expect(throws: ImportError.self) { try ModelLoader.load(path: p, options: .inProcess) }
        }
    }

    /// The archive zipped again with its entries deflated, as `zip -r` does; the model Keras
    /// reads from it saved unzipped, as a directory (`zipped=False`, as Keras puts models on the
    /// Hugging Face Hub); its weights alone (`save_weights`) with its config (`to_json`); and
    /// the legacy `.h5` Keras 3 writes. The fixture script checks that Keras reads each to the
    /// archive's outputs; each imports to the stored archive's outputs exactly. Before, the
    /// first was refused ("model.weights.h5 is compressed in the .keras zip (deflate, method
    /// 8)"), the second was "cannot open the file (not a regular file)", the third "'/' has no
    /// 'layer_names' attribute (not a Keras weights file)", the fourth "layer 'dw' needs weight
    /// 'dw/depthwise_kernel:0'" (Keras 3 calls it `kernel`).
    @Test(arguments: ["keras3_multitask_deflated", "keras3_multitask_dir", "keras3_multitask_weights", "keras3_multitask_h5",
                      "keras3_multitask_sharded"])
    func otherFormsMatchTheArchive(_ name: String) throws {
        let e = try Self.entry(name)
        if name.hasSuffix("deflated") {
            let zip = try ZipArchive(path: Fixtures.path(e.model))
            try #require(zip.entries.values.allSatisfy { $0.method == 8 } && zip.entries["model.weights.h5"] != nil, "the fixture is not deflated")
        } else if name.hasSuffix("dir") {
            try #require(ModelLoader.isDirectory(Fixtures.path(e.model)), "the fixture is not a directory")
        } else if name.hasSuffix("h5") {
            try #require(try ModelLoader.detect(path: Fixtures.path(e.model)) == .kerasH5)
        } else {
            try #require(e.config != nil, "a weights-only fixture without its config")
        }
        let out = try Self.runMatchingKeras(Self.load(e), e), stored = try Self.runMatchingKeras(Self.load(Self.entry()), Self.entry())
        for name in e.outputs.keys { #expect(out[name]?.values == stored[name]?.values, "\(name) differs from the stored archive's") }
    }

    /// Weights saved in shards are read from the index and the shards it names beside it, which
    /// also make up the model's digest and size; an index naming a file elsewhere, a shard
    /// that is not there or no config is an error naming the index or the shard. The index was
    /// "not an .fmodel, Keras HDF5 (.h5), Keras 3 (.keras) or TensorFlow GraphDef (.pb) file".
    @Test func shardIndexesAreReadAsKerasReadsThem() throws {
        let index = Fixtures.path("keras3_sharded.weights.json")
        let shards = (0..<3).map { Fixtures.path("keras3_sharded_0000\($0).weights.h5") }
        #expect(ModelLoader.sourceFiles(path: index) == [index] + shards)
        #expect(try ModelLoader.detect(path: index) == .keras3)
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for s in shards { try FileManager.default.copyItem(atPath: s, toPath: dir + "/" + (s as NSString).lastPathComponent) }
        var options = ImportOptions.inProcess
        options.configJSON = try String(contentsOfFile: Fixtures.path("keras3_multitask.weights.json"), encoding: .utf8)
        let text = try String(contentsOfFile: index, encoding: .utf8)
        func load(_ changed: String) throws {
            try changed.write(toFile: dir + "/x.weights.json", atomically: false, encoding: .utf8)
            _ = try ModelLoader.load(path: dir + "/x.weights.json", options: options)
        }
        try load(text)
        let p = dir + "/x.weights.json"
        #expect(throws: ImportError.badConfig(path: p, layer: nil, reason: "weight_map names '../keras3_sharded_00001.weights.h5' for '/layers/dense_1/vars', not a file beside the index")) {
            try load(text.replacingOccurrences(of: "\"keras3_sharded_00001", with: "\"../keras3_sharded_00001"))
        }
        #expect(throws: ImportError.unknownFormat(path: dir + "/gone.weights.h5", reason: "cannot open the file (No such file or directory)")) {
            try load(text.replacingOccurrences(of: "keras3_sharded_00002", with: "gone"))
        }
        #expect(throws: ImportError.badConfig(path: p, layer: nil, reason: "the shard index has no weight_map object")) {
            try load(#"{"weight_map": ["keras3_sharded_00000.weights.h5"]}"#)
        }
        options.configJSON = nil
        #expect(throws: ImportError.missing(path: p, object: "/", what: "model config: weights in shards need --config MODEL.json")) { try load(text) }
        // What is an index is told by content, in every place that asks: a `.keras` named
        // `.json` is a `.keras` (it was read as an index: "the shard index is not JSON").
        let zip = dir + "/model.json"
        try FileManager.default.copyItem(atPath: Fixtures.path("keras3_multitask.keras"), toPath: zip)
        #expect(ModelLoader.sourceFiles(path: zip) == [zip])
        #expect(try ModelLoader.load(path: zip, options: .inProcess).outputs == ["age", "gender", "ethnicity"])
    }

    /// A directory is a model when it holds a config.json, as Keras decides; without one, or
    /// without the weights, it is an error naming the directory.
    @Test func directoriesWithoutTheFilesAreErrors() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: ImportError.unknownFormat(path: dir, reason: "a directory, and not a Keras 3 model saved as one (it has no config.json)")) {
            try ModelLoader.load(path: dir, options: .inProcess)
        }
        try FileManager.default.copyItem(atPath: Fixtures.path("keras3_multitask_dir/config.json"), toPath: dir + "/config.json")
        #expect(throws: ImportError.missing(path: dir, object: "/", what: "model.weights.h5 in the directory")) {
            try ModelLoader.load(path: dir, options: .inProcess)
        }
        try FileManager.default.removeItem(atPath: dir + "/config.json")
        try FileManager.default.createDirectory(atPath: dir + "/config.json", withIntermediateDirectories: false)
        #expect(throws: ImportError.unknownFormat(path: dir, reason: "cannot read its config.json: not a regular file")) {
            try ModelLoader.load(path: dir, options: .inProcess)
        }
    }

    /// Inflated a few hundred bytes at a time (the weights are smaller than the megabyte the
    /// importer inflates at once), a deflated entry gives the stored one's bytes.
    @Test func inflatingPieceByPieceGivesTheStoredBytes() throws {
        var deflated = try ZipArchive(path: Fixtures.path("keras3_multitask_deflated.keras"))
        let stored = try ZipArchive(path: Fixtures.path("keras3_multitask.keras"))
        for name in ["config.json", "model.weights.h5"] {
            let expected = try stored.contents(name, maxBytes: .max)
            for chunk in [1 << 20, 333] {
                deflated.inflateChunk = chunk
                #expect(try deflated.contents(name, maxBytes: .max) == expected, "\(name), \(chunk) bytes at a time")
            }
        }
    }

    /// A deflated entry whose stream or records are wrong is an error naming the archive, the
    /// entry and the byte offset; nothing past the length the archive records is inflated.
    @Test func brokenDeflatedEntriesAreErrors() throws {
        let original = try #require(FileManager.default.contents(atPath: Fixtures.path("keras3_multitask_deflated.keras")))
        let zip = try ZipArchive(path: Fixtures.path("keras3_multitask_deflated.keras"))
        let w = try #require(zip.entries["model.weights.h5"]), c = try #require(zip.entries["config.json"])
        let record = try Self.centralRecord(original, entry: "model.weights.h5"), configRecord = try Self.centralRecord(original, entry: "config.json")
        func put32(_ data: inout Data, _ o: Int, _ value: Int) {
            for k in 0..<4 { data[o + k] = UInt8(truncatingIfNeeded: value >> (8 * k)) }
        }
        let weights = "zip: model.weights.h5"
        let cases: [(String, (inout Data) -> Void, (String) -> Bool)] = [
            ("cut short", { put32(&$0, record + 20, w.data.count - 100) },
             { $0 == "\(weights) ends before its deflate stream does at byte offset \(w.data.upperBound - 100)" }),
            ("followed by bytes", { put32(&$0, record + 20, w.data.count + 4) },
             { $0 == "\(weights) has 4 bytes after its deflate stream at byte offset \(w.data.upperBound)" }),
            ("recorded smaller", { put32(&$0, record + 24, w.size - 1) },
             { $0.hasPrefix("\(weights) inflates to more than the \(w.size - 1) bytes the archive records at byte offset ") }),
            ("recorded larger", { put32(&$0, record + 24, w.size + 1) },
             { $0 == "\(weights) inflates to \(w.size) bytes, the archive records \(w.size + 1) at byte offset \(w.data.upperBound)" }),
            ("a zip bomb's ratio", { put32(&$0, record + 24, ZipArchive.maxInflation.floor + 1) },
             { $0.hasPrefix("\(weights) records \(ZipArchive.maxInflation.floor + 1) bytes deflated to \(w.data.count), over the 64:1 fmodel inflates") }),
            ("another checksum", { put32(&$0, record + 16, Int(w.crc ^ 1)) },
             { $0.hasPrefix("\(weights) fails its CRC-32 (the archive records 0x") && $0.hasSuffix("at byte offset \(w.data.lowerBound)") }),
            ("changed stream", { $0[w.data.lowerBound + w.data.count / 2] ^= 0x5A }, { $0.hasPrefix(weights + " ") }),
            ("a config too large to read", { put32(&$0, configRecord + 24, MappedFile.maxConfigBytes + 1) },
             { $0 == "zip: config.json records \(MappedFile.maxConfigBytes + 1) bytes, over the \(MappedFile.maxConfigBytes) fmodel reads, at byte offset \(c.data.lowerBound)" }),
            ("encrypted", { $0[record + 8] |= 1 }, { $0 == "\(weights) is encrypted at byte offset \(record)" }),
            ("zip64", { put32(&$0, record + 24, 0xFFFF_FFFF) },
             { $0 == "\(weights) is in zip64 form (an archive or entry over 2 GiB, as Python writes it), which fmodel does not read at byte offset \(record)" }),
        ]
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (name, change, expected) in cases {
            var data = original
            change(&data)
            let p = "\(dir)/\(name).keras"
            try #require(FileManager.default.createFile(atPath: p, contents: data), "the test could not write its input")
            #expect {
                try ModelLoader.load(path: p, options: .inProcess)
            } throws: { error in
                guard case .unknownFormat(p, let reason) = error as? ImportError else { return false }
                return expected(reason)
            }
        }
    }

    /// An entry kept with a method other than stored and deflate (bzip2, LZMA: `zip -Z bzip2`)
    /// is named as such, with the remedy. Here the central directory says so of each in turn.
    @Test func otherCompressionMethodsAreNamed() throws {
        let original = try #require(FileManager.default.contents(atPath: Fixtures.path("keras3_multitask.keras")))
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (entry, method, kind) in [("config.json", 12, "bzip2, "), ("model.weights.h5", 14, "LZMA, "), ("model.weights.h5", 99, "")] {
            var bytes = original
            bytes[try Self.centralRecord(original, entry: entry) + 10] = UInt8(method)
            let path = "\(dir)/\(method).keras"
            try #require(FileManager.default.createFile(atPath: path, contents: bytes))
            #expect(throws: ImportError.unknownFormat(path: path, reason: "\(entry) is compressed in the .keras zip (\(kind)method \(method)); fmodel reads stored and deflated entries: zip it again with `zip -r`")) {
                try ModelLoader.load(path: path, options: .inProcess)
            }
        }
    }

    /// An error in the weights names the `.keras` file, not the temporary copy libhdf5 reads.
    @Test func weightErrorsNameTheArchive() throws {
        var data = try #require(FileManager.default.contents(atPath: Fixtures.path("keras3_multitask.keras")))
        let signature = Data([0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A])
        let at = try #require(data.range(of: signature), "no HDF5 file in the archive").lowerBound
        data[at + 1] = 0x58  // "\x89XDF…"
        try Self.restampChecksum(&data, entry: "model.weights.h5")
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = dir + "/bad.keras"
        try #require(FileManager.default.createFile(atPath: p, contents: data), "the test could not write its input")
        #expect(throws: ImportError.unknownFormat(path: p + " (its model.weights.h5)", reason: "not an HDF5 file (no HDF5 signature at byte offset 0)")) {
            try ModelLoader.load(path: p, options: .inProcess)
        }
    }

    /// The offset of the central directory record of `entry` (the last name in an archive).
    static func centralRecord(_ data: Data, entry: String) throws -> Int {
        let name = try #require(data.range(of: Data(entry.utf8), options: .backwards), "no \(entry) in the archive")
        let record = name.lowerBound - 46
        try #require(data[record..<(record + 4)].elementsEqual([0x50, 0x4B, 0x01, 0x02]), "\(entry) is not named by a central directory record")
        return record
    }

    /// Records the CRC-32 of the stored `entry`'s bytes as they now are, in its central
    /// directory record (which the reader checks) and its local header.
    static func restampChecksum(_ data: inout Data, entry: String) throws {
        let record = try centralRecord(data, entry: entry)
        func u32(_ o: Int) -> Int { Int(data[o]) | Int(data[o + 1]) << 8 | Int(data[o + 2]) << 16 | Int(data[o + 3]) << 24 }
        func u16(_ o: Int) -> Int { Int(data[o]) | Int(data[o + 1]) << 8 }
        let local = u32(record + 42), size = u32(record + 20)
        let start = local + 30 + u16(local + 26) + u16(local + 28)
        let crc = data[start..<(start + size)].withUnsafeBytes { CRC32.checksum($0) }
        for o in [record + 16, local + 14] {
            for k in 0..<4 { data[o + k] = UInt8(truncatingIfNeeded: crc >> (8 * k)) }
        }
    }

    /// A byte changed inside the stored weights fails the entry's CRC-32: it would otherwise
    /// import as a different weight, since HDF5 keeps no checksum of its data.
    @Test func changedWeightBytesFailTheirChecksum() throws {
        var data = try #require(FileManager.default.contents(atPath: Fixtures.path("keras3_multitask.keras")))
        let signature = Data([0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A])
        let at = try #require(data.range(of: signature), "no HDF5 file in the archive").lowerBound
        data[data.count - 4096] ^= 0x01
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = dir + "/flipped.keras"
        try #require(FileManager.default.createFile(atPath: p, contents: data), "the test could not write its input")
        #expect {
            try ModelLoader.load(path: p, options: .inProcess)
        } throws: { error in
            "\(error)".hasPrefix(p + ": zip: model.weights.h5 fails its CRC-32 (the archive records 0x")
                && "\(error)".hasSuffix("at byte offset \(at)")
        }
    }

    @Test func namedFunctionLambdaIsRecognisedOnlyAsScaling() throws {
        let scaling = JSONValue.object(["function": .object(["class_name": .string("function"), "config": .string("scaling")]),
                                        "arguments": .object(["scale": .number(0.1)])])
        #expect(try LambdaScaling.scale(config: scaling).get() == Float(0.1))
        let other = JSONValue.object(["function": .object(["class_name": .string("function"), "config": .string("swish")]),
                                      "arguments": .object(["scale": .number(0.1)])])
        #expect(throws: LambdaMismatch.self) { try LambdaScaling.scale(config: other).get() }
    }
}
