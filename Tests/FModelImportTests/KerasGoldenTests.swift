import FModelCore
import FModelFormat
import FModelImport
@testable import FModelKeras
import FModelRuntime
import FModelTestSupport
import Foundation
import Testing

/// Every fixture, imported and run, against the outputs TensorFlow computed for it.
@Suite struct KerasGoldenTests {
    static func load(_ e: Fixtures.Entry) throws -> Graph {
        let config = try e.config.map { try String(contentsOfFile: Fixtures.path($0), encoding: .utf8) }
        return try ModelLoader.load(path: Fixtures.path(e.model), options: ImportOptions(configJSON: config, hdf5: KerasFiles()))
    }

    static func run(_ graph: Graph, _ e: Fixtures.Entry, engine: ConvolutionEngine = .native) throws -> [String: FloatTensor] {
        let x = try NPY.read(path: Fixtures.path(e.input))
        return try Executor(graph: graph, engine: engine)
            .run([graph.inputs[0].name: FloatTensor(shape: Shape(x.shape), values: x.values)])
    }

    /// Largest deviation from TensorFlow over all outputs (and a shape check).
    static func deviation(_ outputs: [String: FloatTensor], _ e: Fixtures.Entry) throws -> Float {
        var worst: Float = 0
        for (name, file) in e.outputs {
            let expected = try NPY.read(path: Fixtures.path(file))
            let got = try #require(outputs[name], "no output \(name)")
            #expect(got.shape.dims == expected.shape, "\(e.name)/\(name) shape")
            worst = max(worst, Difference(got.values, expected.values, tolerance: .tensorFlow).maxAbsolute)
        }
        return worst
    }

    @Test("matches TensorFlow within 1e-4", arguments: Fixtures.all)
    func matchesTensorFlow(_ e: Fixtures.Entry) throws {
        let graph = try Self.load(e)
        let outputs = try Self.run(graph, e)
        #expect(Set(outputs.keys) == Set(e.outputs.keys))
        let worst = try Self.deviation(outputs, e)
        #expect(worst <= Tolerance.tensorFlow.absolute, "\(e.name): max |Δ| \(worst)")
    }

    /// The other convolution path, im2col + GEMM, is held to the same standard.
    @Test("matches TensorFlow within 1e-4 without oneDNN's convolution", arguments: Fixtures.all)
    func matchesTensorFlowOnGEMM(_ e: Fixtures.Entry) throws {
        let worst = try Self.deviation(Self.run(Self.load(e), e, engine: .gemm), e)
        #expect(worst <= Tolerance.tensorFlow.absolute, "\(e.name): max |Δ| \(worst)")
    }

    /// tf-keras's own `.keras` files of four fixtures (`model.save("x.keras")` of the model
    /// tf-keras reads from the `.h5`, by the fixture script): their weights carry no layer names
    /// and are found where Keras puts them, and their configs write calls as Keras 2 does. Each
    /// runs to the `.h5`'s TensorFlow outputs, and to the `.h5` import's numbers exactly. On
    /// 8c117b7 the first weight was "not held by the file", and, found, the nested trunk's
    /// output "never produced".
    @Test(arguments: ["tiny_residual", "multitask_nested", "sequential_zoo", "functional_zoo"])
    func tfKerasKerasFilesMatchTensorFlow(_ name: String) throws {
        var e = Fixtures.entry(name)
        let fromH5 = try Self.run(Self.load(e), e)
        e.model = name + "_tfkeras.keras"
        let graph = try Self.load(e)
        #expect(graph.metadata.sourceFormat == "keras3")
        let outputs = try Self.run(graph, e)
        #expect(Set(outputs.keys) == Set(e.outputs.keys))
        let worst = try Self.deviation(outputs, e)
        #expect(worst <= Tolerance.tensorFlow.absolute, "\(e.name): max |Δ| \(worst)")
        #expect(outputs == fromH5)
    }

    /// A tf-keras `.keras` with a Sequential trunk inside a Functional model (its weights under
    /// `layers/sequential/layers/…`) and a Dense layer called twice among three others (one
    /// place, numbered in the config's order). Runs to tf-keras's outputs.
    @Test func tfKerasNestedSequentialAndSharedLayerMatchTensorFlow() throws {
        let name = "nested_shared_tfkeras"
        let graph = try ModelLoader.load(path: Fixtures.path(name + ".keras"), options: .inProcess)
        let x = try NPY.read(path: Fixtures.path(name + ".input.npy"))
        let outputs = try Executor(graph: graph).run([graph.inputs[0].name: FloatTensor(shape: Shape(x.shape), values: x.values)])
        #expect(Set(outputs.keys) == ["sum", "probs"])
        for output in ["sum", "probs"] {
            let d = Difference(try #require(outputs[output]).values, try NPY.read(path: Fixtures.path("\(name).out.\(output).npy")).values, tolerance: .tensorFlow)
            #expect(d.isWithinTolerance, "\(output): max |Δ| \(d.maxAbsolute)")
        }
    }

    /// tf-keras's `save_weights("x.weights.h5")` (the `.keras` weights' layout, unnamed) with its
    /// `to_json` config runs to the `.h5`'s numbers exactly.
    @Test func tfKerasWeightsFileWithItsConfigMatchesTensorFlow() throws {
        var e = Fixtures.entry("tiny_residual")
        let fromH5 = try Self.run(Self.load(e), e)
        (e.model, e.config) = ("tiny_residual_tfkeras.weights.h5", "tiny_residual_tfkeras.json")
        let outputs = try Self.run(Self.load(e), e)
        #expect(try Self.deviation(outputs, e) <= Tolerance.tensorFlow.absolute)
        #expect(outputs == fromH5)
    }

    /// The place Keras gives a layer's weights in a `.keras` file: its class, snake-cased.
    @Test func classNamesAreSnakeCasedAsKerasDoes() {
        for (name, snake) in [("Conv2D", "conv2d"), ("LeakyReLU", "leaky_re_lu"), ("BatchNormalization", "batch_normalization"),
                              ("GlobalAveragePooling2D", "global_average_pooling2d"), ("DepthwiseConv2D", "depthwise_conv2d"),
                              ("InputLayer", "input_layer"), ("PReLU", "p_re_lu"), ("ZeroPadding2D", "zero_padding2d"), ("_Hidden", "private__hidden")] {
            #expect(Keras3Weights.snakeCase(name) == snake, "\(name)")
        }
    }

    @Test("an imported .fmodel runs to the same numbers as its source", arguments: Fixtures.all)
    func fmodelRoundTrip(_ e: Fixtures.Entry) throws {
        let graph = try Self.load(e)
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let file = dir + "/m.fmodel"
        try FModelWriter.write(graph, to: file)
        let reread = try ModelLoader.load(path: file, options: .inProcess)
        #expect(try Self.run(reread, e) == Self.run(graph, e))
        // Nothing but the weights, the header and alignment: no copy, no stray bytes.
        let weights = graph.tensors.values.reduce(0) { $0 + $1.byteCount }
        let mapped = try MappedFile(path: file)
        let bytes = mapped.bytes
        let header = Int(UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
        #expect(bytes.count <= weights + 32 + header + 64 * (graph.tensors.count + 1), "file \(bytes.count) B for \(weights) B of weights")
        withExtendedLifetime(mapped) {}
    }

    // MARK: - The goldens catch real mistakes

    /// A wrong epsilon, a transposed kernel or padding on the wrong side each move the outputs
    /// past the tolerance, so the golden comparison above would catch them.
    @Test func wrongEpsilonIsCaught() throws {
        let e = Fixtures.entry("multitask_nested")
        var graph = try Self.load(e)
        for i in graph.nodes.indices { if case .batchNorm = graph.nodes[i].op { graph.nodes[i].op = .batchNorm(epsilon: 1e-5) } }
        #expect(try Self.deviation(Self.run(graph, e), e) > 1e-4)
    }

    @Test func transposedKernelIsCaught() throws {
        let e = Fixtures.entry("facenet_small")
        var graph = try Self.load(e)
        let name = try #require(graph.node(named: "Conv2d_2a_3x3")?.params["kernel"])
        let k = graph.tensors[name]!
        let v = k.floats()
        let (kh, kw, ci, co) = (k.shape[0], k.shape[1], k.shape[2], k.shape[3])
        var t = v
        for a in 0..<kh { for b in 0..<kw { for c in 0..<ci { for o in 0..<co {
            t[((b * kh + a) * ci + c) * co + o] = v[((a * kw + b) * ci + c) * co + o]  // swap kernel height and width
        } } } }
        graph.tensors[name] = Tensor(t, shape: k.shape)
        #expect(try Self.deviation(Self.run(graph, e), e) > 1e-4)
    }

    @Test func paddingOnTheWrongSideIsCaught() throws {
        let e = Fixtures.entry("sequential_zoo")
        var graph = try Self.load(e)
        let i = try #require(graph.nodes.firstIndex { $0.name == "pad" })
        graph.nodes[i].op = .zeroPad(top: 2, bottom: 1, left: 1, right: 2)
        #expect(try Self.deviation(Self.run(graph, e), e) > 1e-4)
    }
}
