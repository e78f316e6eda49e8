import FModelCore
import FModelFormat
@testable import FModelImport
import FModelRuntime
import FModelTestSupport
import Foundation
import Testing

/// Frozen TensorFlow graphs made by the fixture script, against TensorFlow's outputs.
@Suite struct TensorFlowImporterTests {
    struct Entry: Decodable, CustomStringConvertible {
        var name, model, input: String
        var inputs: String?
        var outputs: [String: String]
        var description: String { name }
    }

    static let entries: [Entry] = {
        struct File: Decodable { var fixtures: [Entry] }
        let data = FileManager.default.contents(atPath: Fixtures.path("tensorflow.json")) ?? Data()
        return (try? JSONDecoder().decode(File.self, from: data).fixtures) ?? []
    }()

    func load(_ file: String, inputs: String? = nil, sets: [String] = []) throws -> (Graph, [String]) {
        var notes: [String] = []
        let cut = GraphCut(inputs: inputs.map { [$0] } ?? [], sets: sets)
        return (try TensorFlowImporter.importModel(path: Fixtures.path(file), cut: cut, notes: &notes), notes)
    }

    @Test(arguments: entries)
    func matchesTensorFlow(_ e: Entry) throws {
        let (g, _) = try load(e.model, inputs: e.inputs)
        let x = try NPY.read(path: Fixtures.path(e.input))
        let out = try Executor(graph: g).run([g.inputs[0].name: FloatTensor(shape: Shape(x.shape), values: x.values)])
        #expect(Set(g.outputs) == Set(e.outputs.keys))
        for (name, file) in e.outputs {
            let expected = try NPY.read(path: Fixtures.path(file))
            let d = Difference(try #require(out[name]).values, expected.values, tolerance: .tensorFlow)
            #expect(d.isWithinTolerance, "\(e.name)/\(name): max |Δ| \(d.maxAbsolute)")
        }
    }

    /// The TF1 graph: Switch/Merge resolved on phase_train=false, no identities left, one batch
    /// norm per layer, the node counts before and after recorded.
    @Test func condBatchNormIsResolved() throws {
        let (g, notes) = try load("tf1_facenet_small.pb", inputs: "input:?x64x64x3")
        #expect(notes.contains { $0.contains("phase_train") && $0.contains("false") })
        #expect(!g.nodes.contains { $0.op == .identity })
        #expect(g.nodes.filter { if case .batchNorm = $0.op { return true } else { return false } }.count == 17)
        #expect(g.nodes.contains { $0.op == .l2Normalize(epsilon: 1e-10) })
        #expect(g.metadata.sourceNodeCount == 572 && g.nodes.count < 100)
        #expect(g.inputs == [ValueInfo(name: "input", shape: [-1, 64, 64, 3])])
    }

    /// Read a node at a time, a GraphDef is the message swift-protobuf reads whole: the
    /// fixtures, and one with the other top-level fields (versions, a library) between nodes.
    @Test func nodeByNodeReadingIsTheWholeMessage() throws {
        for file in ["tf1_facenet_small.pb", "tf2_keras_frozen.pb"] {
            let whole = try Tensorflow_GraphDef(serializedBytes: try Data(contentsOf: URL(fileURLWithPath: Fixtures.path(file))))
            #expect(try TensorFlowImporter.frozenGraph(path: Fixtures.path(file)).message == whole, "\(file)")
        }
        var a = Tensorflow_NodeDef(), b = Tensorflow_NodeDef()
        (a.name, a.op, b.name, b.op, b.input) = ("a", "Placeholder", "b", "Relu", ["a"])
        func nodes(_ n: [Tensorflow_NodeDef]) throws -> Data { var h = Tensorflow_GraphDef(); h.node = n; return try h.serializedData() }
        // versions (field 4: producer 1087), the deprecated version (3: 21), an empty library (2).
        let others = Data([0x22, 0x03, 0x08, 0xBF, 0x08, 0x18, 0x15, 0x12, 0x00])
        let bytes = try nodes([a]) + others + nodes([b])
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try #require(FileManager.default.createFile(atPath: dir + "/g.pb", contents: bytes))
        let read = try TensorFlowImporter.frozenGraph(path: dir + "/g.pb").message
        #expect(read == (try Tensorflow_GraphDef(serializedBytes: bytes)) && read.node == [a, b] && !read.unknownFields.data.isEmpty)
    }

    /// A file of more nodes than the limit is refused where the first one past it starts.
    @Test func tooManyNodesAreRefused() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try #require(FileManager.default.createFile(atPath: dir + "/n.pb", contents: Data([UInt8](repeating: 0, count: 2 * 101).enumerated().map { $0.offset % 2 == 0 ? 0x0A : 0 })))
        #expect(try TensorFlowImporter.frozenGraph(path: dir + "/n.pb", maxNodes: 101).graphDef.node.count == 101)
        #expect(throws: ImportError.unknownFormat(path: dir + "/n.pb", reason: "not a valid GraphDef protobuf (byte offset 200: more than 100 nodes)")) {
            try TensorFlowImporter.frozenGraph(path: dir + "/n.pb", maxNodes: 100)
        }
    }

    /// A weight's bytes stay in the file, not in the parsed message, and are decoded from
    /// there into the tensor the graph keeps: the import never holds the weights twice, and
    /// the patterns that read small constants from the message still find them (l2Normalize's
    /// ε). Nor does the lowering keep the decoded weights past their last reader.
    @Test func weightsStayInTheFile() throws {
        let path = Fixtures.path("tf1_facenet_small.pb")
        let frozen = try TensorFlowImporter.frozenGraph(path: path)
        #expect(!frozen.weights.isEmpty)
        #expect(frozen.graphDef.node.allSatisfy { $0.attr["value"]?.tensor.tensorContent.count ?? 0 < FrozenGraph.weightBytes })
        var lowering = try TFLowering(frozen, path: path, cut: GraphCut(inputs: ["input:?x64x64x3"]))
        let g = try lowering.run()
        #expect(g.nodes.contains { $0.op == .l2Normalize(epsilon: 1e-10) })
        let kept = lowering.memo.filter { $0.value.contains { if case .const(let t) = $0 { t.count * 4 >= TFLowering.releasedConstantBytes } else { false } } }
            .keys.sorted()
        #expect(kept.isEmpty)
        #expect(lowering.released.count >= frozen.weights.count)
    }

    /// Where a file gives a weight's content in a way the walk to it does not follow (fields
    /// repeated, which a protobuf reader merges), the content stays in the message, which is
    /// still the one swift-protobuf reads whole; where the walk finds it, it is the one read.
    @Test func weightsRepeatedOrMergedAreReadAsTheWholeMessage() throws {
        let content = Data((0..<1024).flatMap { withUnsafeBytes(of: Float($0).bitPattern.littleEndian, Array.init) })
        func tensor(_ c: Data) -> Tensorflow_AttrValue {
            var t = Tensorflow_TensorProto()
            t.dtype = .dtFloat
            t.tensorShape.dim = [.with { $0.size = 1024 }]
            t.tensorContent = c
            return .with { $0.tensor = t }
        }
        /// Field `number` holding `bytes` (length-delimited).
        func field(_ number: UInt8, _ bytes: Data) -> Data {
            var out = Data([number << 3 | 2])
            var n = bytes.count
            while n >= 0x80 { out.append(UInt8(n & 0x7F | 0x80)); n >>= 7 }
            out.append(UInt8(n))
            return out + bytes
        }
        /// A NodeDef's `attr` entry (field 5: key 1, value 2) of serialized AttrValue bytes.
        func entry(_ key: String, _ value: Data) -> Data { field(5, field(1, Data(key.utf8)) + field(2, value)) }
        var node = Tensorflow_NodeDef()
        (node.name, node.op) = ("w", "Const")
        node.attr["dtype"] = .with { $0.type = .dtFloat }
        let base = try node.serializedData()
        let value = try tensor(content).serializedData(), other = try tensor(Data(content.reversed())).serializedData()
        let cases: [(String, Data, inFile: Bool)] = [
            ("plain", base + entry("value", value), true),
            // The map's last entry for a key wins: the walk takes the last.
            ("value twice", base + entry("value", other) + entry("value", value), true),
            // Two tensor fields in one value merge: the content is the first's, where the walk does not look.
            ("tensor merged", base + entry("value", value + (try Tensorflow_AttrValue.with { $0.tensor = .with { $0.dtype = .dtFloat } }.serializedData())), false),
        ]
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (name, bytes, inFile) in cases {
            let file = field(1, bytes)
            try #require(FileManager.default.createFile(atPath: "\(dir)/\(name).pb", contents: file))
            let whole = try Tensorflow_GraphDef(serializedBytes: file)
            let frozen = try TensorFlowImporter.frozenGraph(path: "\(dir)/\(name).pb")
            #expect(frozen.message == whole, "\(name)")
            #expect((frozen.weights[0] != nil) == inFile, "\(name)")
            #expect(whole.node[0].attr["value"]?.tensor.tensorContent == content, "\(name)")
            let value = try HostTensor(frozen.graphDef.node[0].attr["value"]!.tensor, content: frozen.content(0), node: "w", path: name)
            #expect(value.floats == (0..<1024).map(Float.init), "\(name)")
        }
        // Of two nodes of one name the lowering reads the last: its value, not the first's weight.
        var small = node
        small.attr["value"] = .with { $0.tensor = .with { $0.dtype = .dtFloat; $0.floatVal = [7] } }
        try #require(FileManager.default.createFile(atPath: dir + "/twice.pb", contents: field(1, base + entry("value", value)) + field(1, try small.serializedData())))
        let twice = try TensorFlowImporter.frozenGraph(path: dir + "/twice.pb")
        let twiceWhole = try Tensorflow_GraphDef(serializedBytes: Data(contentsOf: URL(fileURLWithPath: dir + "/twice.pb")))
        #expect(twice.weights.keys.sorted() == [0] && twice.message == twiceWhole)
        var lowering = try TFLowering(twice, path: dir + "/twice.pb", cut: GraphCut(outputs: ["w"]))
        guard case .const(let w) = try lowering.value(TFRef("w")) else { Issue.record("w is not a constant"); return }
        #expect(w.floats == [7])
    }

    /// `--inputs NODE:SHAPE` with an empty field is refused (they were dropped: "t:" kept the
    /// graph's shape, "?x48x48x3x" was taken as 4-D).
    @Test(arguments: ["input:", "input:?x64x64x3x", "input:?xx64x64x3", "input:,?x64x64x3"])
    func inputShapeWithAnEmptyFieldIsRefused(spec: String) {
        let path = Fixtures.path("tf1_facenet_small.pb")
        let shape = String(spec.dropFirst("input:".count))
        #expect(throws: ImportError.badGraph(path: path, node: nil, reason: "shape '\(shape)' is not like 1x160x160x3")) { try load("tf1_facenet_small.pb", inputs: spec) }
    }

    /// A node that does not fit its input is named once ("node 'X': node 'X': …" before).
    @Test func nodeThatDoesNotFitIsNamedOnce() throws {
        let path = Fixtures.path("tf1_facenet_small.pb")
        do {
            _ = try load("tf1_facenet_small.pb", inputs: "input:?x9223372036854775807x64x3")
            Issue.record("imported an input of 2^63 − 1 rows")
        } catch let error as ImportError {
            let text = error.description
            #expect(text.hasPrefix(path + ": node '") && text.components(separatedBy: "node '").count == 2, "\(text)")
        }
    }

    @Test func trainingBranchIsRefused() {
        #expect(throws: ImportError.self) { try load("tf1_facenet_small.pb", inputs: "input:?x64x64x3", sets: ["phase_train=true"]) }
    }

    /// BiasAdd, FusedBatchNorm and MaxPool over NCHW (`data_format`; graphs TensorFlow froze,
    /// [1, 4, 4, 4]) are errors naming the node. Taken as NHWC, the first two imported and ran,
    /// 0.77 and 2.78 away from TensorFlow's outputs.
    @Test(arguments: [("nchw_bias_add", "BiasAdd"), ("nchw_batch_norm", "FusedBatchNormV3"), ("nchw_max_pool", "MaxPool2d")])
    func nchwNodesAreErrors(_ file: String, _ node: String) throws {
        let path = Fixtures.path("bad/\(file).pb")
        #expect(throws: ImportError.badGraph(path: path, node: node, reason: "data_format NCHW is not supported (only NHWC)")) {
            var notes: [String] = []
            _ = try TensorFlowImporter.importModel(path: path, notes: &notes)
        }
    }

    /// A node of `op` reading `inputs`.
    static func node(_ name: String, _ op: String, _ inputs: [String]) -> Tensorflow_NodeDef {
        var n = Tensorflow_NodeDef()
        (n.name, n.op, n.input) = (name, op, inputs)
        return n
    }

    /// A Const node of float32 `values` (int64 with `int`) and `shape`.
    static func constant(_ name: String, _ values: [Float], shape: [Int64], int: Bool = false) -> Tensorflow_NodeDef {
        var t = Tensorflow_TensorProto()
        t.dtype = int ? .dtInt64 : .dtFloat
        t.tensorShape.dim = shape.map { var d = Tensorflow_TensorShapeProto.Dim(); d.size = $0; return d }
        if int { t.int64Val = values.map { Int64(exactly: $0) ?? ($0 > 0 ? .max : .min) } } else { t.floatVal = values }
        var n = node(name, "Const", []), v = Tensorflow_AttrValue()
        v.tensor = t
        n.attr["value"] = v
        return n
    }

    /// The graph input `x`, [?, 4].
    static let input = placeholder("x", shape: [-1, 4])

    /// A graph input of `shape` (-1 unknown).
    static func placeholder(_ name: String, shape: [Int64]) -> Tensorflow_NodeDef {
        var x = node(name, "Placeholder", []), attr = Tensorflow_AttrValue()
        attr.shape.dim = shape.map { var d = Tensorflow_TensorShapeProto.Dim(); d.size = $0; return d }
        x.attr["shape"] = attr
        return x
    }

    /// Imports a GraphDef of `nodes`, written to a temporary file.
    func importNodes(_ nodes: [Tensorflow_NodeDef], functions: [Tensorflow_FunctionDef] = []) throws -> Graph {
        var g = Tensorflow_GraphDef()
        g.node = nodes
        g.library.function = functions
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try #require(FileManager.default.createFile(atPath: dir + "/g.pb", contents: try g.serializedData()), "the test could not write its input")
        var notes: [String] = []
        return try TensorFlowImporter.importModel(path: dir + "/g.pb", notes: &notes)
    }

    /// Every unsupported op type is listed with its count and a node, not just the first met.
    @Test func unsupportedOpsAreAllListed() throws {
        let node = Self.node
        do {
            _ = try importNodes([Self.input, node("a", "Erf", ["x"]), node("b", "Erf", ["x"]), node("c", "Cumsum", ["x"]), node("out", "AddN", ["a", "b", "c"])])
            Issue.record("imported unsupported ops")
        } catch let ImportError.unsupportedOps(_, ops) {
            #expect(ops == ["AddN ×1 (e.g. out)", "Cumsum ×1 (e.g. c)", "Erf ×2 (e.g. a)"])
        }
    }

    /// gelu (exact and tanh form), an ELU's own alpha and swish, which TensorFlow writes out op
    /// by op, are one activation each (their values against TensorFlow's: `matchesTensorFlow`);
    /// on b2d5dc4 Erfc, Neg, Pow, Greater and SelectV2 were unsupported ops.
    @Test func spelledOutActivationsAreOneOp() throws {
        func activations(_ file: String) throws -> [Activation] {
            let g = try load(file).0
            #expect(!g.nodes.contains { $0.op == .mul || $0.op == .scale(1) }, "\(file)")
            return g.nodes.compactMap { if case .activation(let a) = $0.op { a } else { nil } }
        }
        #expect(try activations("smooth_frozen.pb") == [.swish, .elu(alpha: 1), .gelu(approximate: false), .elu(alpha: 0.5), .swish, .gelu(approximate: false)])
        #expect(try activations("tanh_gelu_frozen.pb") == [.gelu(approximate: true), .elu(alpha: 0.3), .gelu(approximate: true)])
    }

    /// Keras layers that a frozen graph writes out in TensorFlow's ops, each one IR op again:
    /// `Conv2D(groups=channels)`, which stays a call of a function holding its Conv2D (inlined,
    /// then a depthwise convolution); LayerNormalization as `moments` and `batch_normalization`
    /// (tf-keras's, Keras 3's) or as tf-keras's fused form (a FusedBatchNorm in training mode over
    /// a reshape); a Dense layer over pixels (`tf.tensordot`); Cropping2D (a StridedSlice). Their
    /// values against TensorFlow's: `matchesTensorFlow`. On fb61b9b none of the three imported
    /// (`Tools/keras_applications.py`: ConvNeXtTiny's and NASNetMobile's frozen graphs neither).
    @Test func kerasLayersComeBackFromTheirOps() throws {
        func kinds(_ file: String) throws -> [String] { try load(file).0.nodes.map(\.op.kind) }
        for file in ["convnext_frozen.pb", "keras3_convnext_frozen.pb"] {
            let k = try kinds(file)
            #expect(k.filter { $0 == "depthwise_conv2d" }.count == 1 && k.filter { $0 == "layer_norm" }.count == 2
                    && k.filter { $0 == "dense" }.count == 2 && !k.contains("conv2d"), "\(file): \(k)")
        }
        #expect(try load("cropping_frozen.pb").0.nodes.map(\.op).filter { $0.kind == "crop" }
                == [.crop(top: 1, bottom: 0, left: 0, right: 2), .crop(top: 1, bottom: 1, left: 1, right: 1)])
    }

    /// A function call whose function is missing, calls itself, or takes other inputs is an
    /// error naming the call; a grouped Conv2D of groups other than one a channel, and a
    /// StridedSlice of an activation that cuts its channels, are errors naming the node.
    @Test func callsAndSlicesOutsideTheirFormsAreErrors() throws {
        let node = Self.node
        func call(_ name: String, _ f: String, _ inputs: [String]) -> Tensorflow_NodeDef {
            var n = node(name, "PartitionedCall", inputs), attr = Tensorflow_AttrValue()
            attr.func.name = f
            n.attr["f"] = attr
            return n
        }
        func function(_ name: String, calling callee: String?) -> Tensorflow_FunctionDef {
            var f = Tensorflow_FunctionDef()
            f.signature.name = name
            var arg = Tensorflow_OpDef.ArgDef(), out = Tensorflow_OpDef.ArgDef()
            (arg.name, out.name) = ("inputs", "identity")
            (f.signature.inputArg, f.signature.outputArg) = ([arg], [out])
            f.nodeDef = [callee.map { call("inner", $0, ["inputs"]) } ?? node("inner", "Relu", ["inputs"])]
            f.ret = ["identity": callee == nil ? "inner:activations:0" : "inner:output:0"]
            return f
        }
        #expect(try importNodes([Self.input, call("c", "relu", ["x"])], functions: [function("relu", calling: nil)]).nodes.map(\.op) == [.activation(.relu)])
        // A node of a 1 MB name, inlined 100 times: 100 MB of names from a 1 MB file.
        var long = function("long", calling: nil)
        long.nodeDef[0].name = String(repeating: "n", count: 1 << 20)
        long.ret = ["identity": long.nodeDef[0].name + ":activations:0"]
        let cases: [(String, [Tensorflow_NodeDef], [Tensorflow_FunctionDef], String)] = [
            ("missing", [Self.input, call("c", "gone", ["x"])], [], "does not hold"),
            ("recursive", [Self.input, call("c", "loop", ["x"])], [function("loop", calling: "loop")], "deep"),
            ("two inputs", [Self.input, call("c", "relu", ["x", "x"])], [function("relu", calling: nil)], "takes 1"),
            ("long names", [Self.input] + (0..<100).map { call("c\($0)", "long", ["x"]) }, [long], "MB of node names"),
        ]
        for (what, nodes, functions, says) in cases {
            do {
                _ = try importNodes(nodes, functions: functions)
                Issue.record("\(what): imported")
            } catch let ImportError.badGraph(_, name, reason) {
                #expect(name?.hasPrefix("c") == true && reason.contains(says), "\(what): \(name ?? "") \(reason)")
            }
        }
        let image = Self.placeholder("image", shape: [-1, 4, 4, 4])
        var strides = Tensorflow_AttrValue(), padding = Tensorflow_AttrValue()
        (strides.list.i, padding.s) = ([1, 1, 1, 1], Data("SAME".utf8))
        var grouped = node("grouped", "Conv2D", ["image", "k"])
        (grouped.attr["strides"], grouped.attr["padding"]) = (strides, padding)
        var slice = node("slice", "StridedSlice", ["image", "b", "e", "s"]), wholeBatch = Tensorflow_AttrValue()
        wholeBatch.i = 1
        slice.attr["end_mask"] = wholeBatch
        let refused: [(String, [Tensorflow_NodeDef], String)] = [
            ("grouped", [image, Self.constant("k", [Float](repeating: 1, count: 32), shape: [1, 1, 2, 16]), grouped], "groups of 2"),
            ("slice", [image, Self.constant("b", [0, 0, 0, 1], shape: [4], int: true), Self.constant("e", [0, 0, 0, 3], shape: [4], int: true),
                       Self.constant("s", [1, 1, 1, 1], shape: [4], int: true), slice], "channels whole"),
        ]
        for (name, nodes, says) in refused {
            do {
                _ = try importNodes(nodes)
                Issue.record("\(name): imported")
            } catch let ImportError.badGraph(_, node, reason) {
                #expect(node == name && reason.contains(says), "\(name): \(node ?? "") \(reason)")
            }
        }
    }

    /// A subgraph shaped like gelu with another constant is not gelu: its ops stay unsupported.
    @Test func subgraphsMatchOnTheirConstants() throws {
        let node = Self.node
        func gelu(_ k: Float) -> [Tensorflow_NodeDef] {
            [Self.input, Self.constant("half", [0.5], shape: []), node("mul", "Mul", ["half", "x"]), node("neg", "Neg", ["x"]),
             Self.constant("k", [k], shape: []), node("mul_1", "Mul", ["neg", "k"]), node("erfc", "Erfc", ["mul_1"]), node("out", "Mul", ["mul", "erfc"])]
        }
        #expect(try importNodes(gelu(0.70710677)).nodes.map(\.op) == [.activation(.gelu(approximate: false))])
        do {
            _ = try importNodes(gelu(0.6))
            Issue.record("imported a gelu with another constant")
        } catch let ImportError.unsupportedOps(_, ops) {
            #expect(ops == ["Erfc ×1 (e.g. erfc)", "Neg ×1 (e.g. neg)"])
        }
        // A pattern over a constant is not lowered as the op on an activation: `c · Sigmoid(c)`
        // was taken as c itself (l2_normalize's matcher had done so since it was written).
        do {
            _ = try importNodes([Self.input, Self.constant("c", [1, 2, 3, 4], shape: [4]), node("s", "Sigmoid", ["c"]), node("m", "Mul", ["c", "s"]),
                                 node("out", "AddV2", ["x", "m"])])
            Issue.record("imported swish of a constant as the constant")
        } catch let ImportError.unsupportedOps(_, ops) {
            #expect(ops == ["Sigmoid ×1 (e.g. s)"])
        }
        // A MatMul between Reshapes is tf.tensordot's Dense over pixels only when the last
        // Reshape restores the pixels: [N·2·2, 3] reshaped to [N, 12] is not [N, 2, 2, 3].
        let image = Self.placeholder("image", shape: [-1, 2, 2, 4])
        do {
            _ = try importNodes([image, Self.constant("perm", [0, 1, 2, 3], shape: [4], int: true), node("t", "Transpose", ["image", "perm"]),
                                 Self.constant("rows", [-1, 4], shape: [2], int: true), node("flat", "Reshape", ["t", "rows"]),
                                 Self.constant("w", [Float](repeating: 1, count: 12), shape: [4, 3]), node("mm", "MatMul", ["flat", "w"]),
                                 Self.constant("back", [-1, 12], shape: [2], int: true), node("out", "Reshape", ["mm", "back"])])
            Issue.record("took a MatMul between Reshapes that does not restore the pixels for a Dense over them")
        } catch let ImportError.unsupportedOps(_, ops) {
            #expect(ops == ["Transpose ×1 (e.g. t)"])
        }
        // A matcher reading a constant through a node short of inputs (a Reshape of one) gets no
        // constant; the node is an error when lowered. Trapped in the folding before (fuzzing,
        // seed 38: SIGILL).
        do {
            _ = try importNodes([Self.input, Self.constant("c", [0.5], shape: []), node("r", "Reshape", ["c"]), node("half", "Mul", ["r", "x"]),
                                 node("out", "Mul", ["half", "x"])])
            Issue.record("imported a Reshape of one input")
        } catch let ImportError.badGraph(_, name, reason) {
            #expect(name == "r" && reason.contains("needs 2 inputs"), "\(name ?? "") \(reason)")
        }
    }

    /// A Reshape's target may hold the batch, unknown at import, as its first element, moved
    /// there from `Shape` by StridedSlice and Pack (a frozen Keras Reshape: `attention_frozen.pb`,
    /// which needed `--inputs` on ce9a911); arithmetic on it is an error naming the node and
    /// `--inputs`, not a computation with -1.
    @Test func unknownBatchReachesOnlyAReshapeTarget() throws {
        let node = Self.node
        func graph(_ batch: String, _ extra: [Tensorflow_NodeDef] = []) -> [Tensorflow_NodeDef] {
            var slice = node("batch", "StridedSlice", ["shape", "begin", "end", "step"]), shrink = Tensorflow_AttrValue()
            shrink.i = 1
            slice.attr["shrink_axis_mask"] = shrink
            return [Self.input, node("shape", "Shape", ["x"]), Self.constant("begin", [0], shape: [1], int: true), Self.constant("end", [1], shape: [1], int: true),
                    Self.constant("step", [1], shape: [1], int: true), slice, Self.constant("two", [2], shape: [], int: true)] + extra
                + [node("target", "Pack", [batch, "two", "two"]), node("out", "Reshape", ["x", "target"])]
        }
        #expect(try importNodes(graph("batch")).nodes.map(\.op) == [.reshape(shape: [2, 2])])
        do {
            _ = try importNodes(graph("twice", [node("twice", "Mul", ["batch", "two"])]))
            Issue.record("imported arithmetic on the unknown batch")
        } catch let ImportError.badGraph(_, node, reason) {
            #expect(node == "twice" && reason.contains("--inputs"), "\(node ?? "") \(reason)")
        }
    }

    /// A value list shorter than the shape repeats its last value, and an empty one is zeros,
    /// as TensorFlow fills a tensor: a frozen Keras Reshape's `strided_slice` begins at `[0]`
    /// stored as no values (`attention_frozen.pb`), which was refused as holding 0 values.
    @Test func emptyValueListsAreZeros() throws {
        func proto(_ dtype: Tensorflow_DataType, count: Int64, _ fill: (inout Tensorflow_TensorProto) -> Void = { _ in }) -> Tensorflow_TensorProto {
            var t = Tensorflow_TensorProto()
            t.dtype = dtype
            var d = Tensorflow_TensorShapeProto.Dim()
            d.size = count
            t.tensorShape.dim = [d]
            fill(&t)
            return t
        }
        #expect(try HostTensor(proto(.dtInt32, count: 1), node: "begin", path: "g.pb").ints == [0])
        #expect(try HostTensor(proto(.dtFloat, count: 3), node: "c", path: "g.pb").floats == [0, 0, 0])
        #expect(try HostTensor(proto(.dtInt64, count: 3) { $0.int64Val = [4, 5] }, node: "c", path: "g.pb").ints == [4, 5, 5])
        #expect(try HostTensor(proto(.dtInt64, count: 0) { $0.int64Val = [4, 5] }, node: "c", path: "g.pb").ints == [])
        #expect(throws: ImportError.self) { try HostTensor(proto(.dtInt32, count: 1) { $0.intVal = [1, 2] }, node: "c", path: "g.pb") }
    }

    /// TensorFlow broadcasts from the last axis, fmodel's sums and products after the batch
    /// (as Keras's merge layers): activations of different ranks are an error naming the node.
    @Test func productsOfDifferentRanksAreRefused() throws {
        var axis = Tensorflow_NodeDef()
        (axis.name, axis.op) = ("axis", "Const")
        var v = Tensorflow_AttrValue()
        v.tensor.dtype = .dtInt32
        v.tensor.intVal = [1]
        axis.attr["value"] = v
        let nodes = [Self.input, axis, Self.node("e", "ExpandDims", ["x", "axis"]), Self.node("out", "Mul", ["x", "e"])]
        do {
            _ = try importNodes(nodes)
            Issue.record("imported a product of [?,4] and [?,1,4]")
        } catch let ImportError.badGraph(_, node, reason) {
            #expect(node == "out" && reason.contains("[?,4] and [?,1,4]: shapes of different ranks"), "\(reason)")
        }
    }

    /// A chain of 20,000 ReLUs (a 0.7 MB file) imports whole: the lowering walked the graph by
    /// recursion, and a chain of 5,000 overflowed the stack (SIGSEGV) before its depth limit.
    @Test func longChainImports() throws {
        let n = 20_000
        let chain = (0..<n).map { Self.node("r\($0)", "Relu", [$0 == 0 ? "x" : "r\($0 - 1)"]) }
        let g = try importNodes([Self.input] + chain)
        #expect(g.nodes.count == n && g.outputs == ["r\(n - 1)"])
    }

    /// A cycle (a reads b, b reads a) is an error naming a node on it: it was imported as a
    /// graph of no nodes whose output named nothing.
    @Test func cycleIsAnError() {
        let node = Self.node
        do {
            _ = try importNodes([Self.input, node("a", "Add", ["x", "b"]), node("b", "Relu", ["a"]), node("out", "Relu", ["b"])])
            Issue.record("imported a cycle")
        } catch {
            #expect("\(error)".contains("node 'b': is on a cycle"), "\(error)")
        }
    }

    @Test(arguments: ["bad/truncated.pb", "bad/length_past_end.pb", "bad/tensor_content_mismatch.pb"])
    func malformedGraphsAreErrors(_ file: String) {
        #expect(throws: ImportError.self) { try load(file, inputs: "input:?x64x64x3") }
    }

    /// A TensorFlow SavedModel, as a directory or its `saved_model.pb` (which opens with its
    /// schema version, field 1 as a number: 08 01, then its meta graphs), is named as one with
    /// what to give instead. They were "not a Keras 3 model saved as one (it has no
    /// config.json)" and "the GraphDef has no nodes"; an empty GraphDef is still the latter.
    @Test func savedModelsAreNamedAsSuch() throws {
        let dir = Fixtures.temporaryDirectory(), model = dir + "/saved_model.pb"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let reason = "a TensorFlow SavedModel, which fmodel does not read: give it a frozen GraphDef (.pb; convert_variables_to_constants_v2), or the Keras model saved as .keras or .h5"
        try #require(FileManager.default.createFile(atPath: model, contents: Data([0x08, 0x01, 0x12, 0x00])))
        for path in [dir, model] {
            #expect(throws: ImportError.unknownFormat(path: path, reason: reason)) { try ModelLoader.load(path: path) }
        }
        try #require(FileManager.default.createFile(atPath: dir + "/empty.pb", contents: Data([0x1A, 0x00])))
        #expect(throws: ImportError.unknownFormat(path: dir + "/empty.pb", reason: "the GraphDef has no nodes")) {
            try ModelLoader.load(path: dir + "/empty.pb")
        }
    }

    @Test func tensorContentMismatchNamesTheNode() {
        do {
            _ = try load("bad/tensor_content_mismatch.pb", inputs: "input:?x64x64x3")
            Issue.record("the mismatched tensor_content imported")
        } catch let ImportError.badGraph(_, node, reason) {
            #expect(node != nil && reason.contains("tensor_content"))
        } catch {
            Issue.record("\(error)")
        }
    }

    @Test func referencesAndShapesParse() throws {
        #expect(TFRef("a/b:1") == TFRef("a/b:1") && TFRef("a/b:1").output == 1 && TFRef("^c").isControl && TFRef("x").node == "x")
        #expect(try TFLowering.shape("?x160x160x3", path: "p") == [-1, 160, 160, 3])
        #expect(throws: ImportError.self) { try TFLowering.shape("axb", path: "p") }
    }
}

/// Structurally damaged graphs (inputs dropped, ops swapped, attributes lost): an error or a
/// model, never a crash.
@Suite struct TensorFlowFuzzTests {
    @Test func damagedGraphsNeverCrash() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("tf1_facenet_small.pb")))
        let original = try Tensorflow_GraphDef(serializedBytes: data)
        var rng = SplitMix64(seed: 99)
        let ops = ["Identity", "Conv2D", "Reshape", "ConcatV2", "Mul", "Switch", "Merge", "StridedSlice", "Const", "MatMul", "FusedBatchNormV3", "Pad"]
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for i in 0..<60 {
            var g = original
            for _ in 0..<3 {
                let k = Int(rng.next() % UInt64(g.node.count))
                switch rng.next() % 4 {
                case 0: if !g.node[k].input.isEmpty { g.node[k].input.removeLast() }
                case 1: g.node[k].op = ops[Int(rng.next() % UInt64(ops.count))]
                case 2: g.node[k].attr.removeAll()
                default: g.node[k].input.append(g.node[Int(rng.next() % UInt64(g.node.count))].name)
                }
            }
            let p = "\(dir)/g\(i).pb"
            try #require(FileManager.default.createFile(atPath: p, contents: try g.serializedData()), "the test could not write its input")
            var notes: [String] = []
            _ = try? TensorFlowImporter.importModel(path: p, cut: GraphCut(inputs: ["input:?x64x64x3"]), notes: &notes)
        }
    }

    /// Bytes flipped, runs overwritten and cuts anywhere in the file: reading it node by node
    /// never crashes, and where swift-protobuf reads the whole message the two agree.
    @Test func corruptedBytesReadAsTheWholeMessageDoes() throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("tf1_facenet_small.pb")))
        var rng = SplitMix64(seed: 7)
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var agreed = 0
        for i in 0..<200 {
            var bytes = [UInt8](data)
            switch i % 3 {
            case 0: for _ in 0..<4 { bytes[Int(rng.next() % UInt64(bytes.count))] ^= UInt8(truncatingIfNeeded: rng.next() | 1) }
            case 1:
                let at = Int(rng.next() % UInt64(bytes.count - 16))
                for j in at..<at + 16 { bytes[j] = UInt8(truncatingIfNeeded: rng.next()) }
            default: bytes.removeLast(Int(rng.next() % UInt64(bytes.count)))
            }
            let p = "\(dir)/c\(i).pb"
            try #require(FileManager.default.createFile(atPath: p, contents: Data(bytes)), "the test could not write its input")
            let ours = try? TensorFlowImporter.frozenGraph(path: p).message
            if let whole = try? Tensorflow_GraphDef(serializedBytes: Data(bytes)), !whole.node.isEmpty, let ours {
                #expect(ours == whole, "case \(i)")
                agreed += 1
            }
        }
        #expect(agreed > 0)
    }

    /// Constants a few bytes long that ask for huge, overflowing, NaN or mismatched values:
    /// an error or a model, never a trap, a hang or a giant allocation.
    @Test func hostileConstantsAreErrors() throws {
        func node(_ name: String, _ op: String, _ inputs: [String] = []) -> Tensorflow_NodeDef { TensorFlowImporterTests.node(name, op, inputs) }
        func const(_ name: String, _ values: [Float], shape: [Int64], int: Bool = false) -> Tensorflow_NodeDef {
            TensorFlowImporterTests.constant(name, values, shape: shape, int: int)
        }
        let x = TensorFlowImporterTests.input
        let big = Float(1 << 40), cases: [(String, [Tensorflow_NodeDef])] = [
            ("Fill overflowing", [const("d", [big, big], shape: [2]), const("v", [0], shape: []), node("c", "Fill", ["d", "v"])]),
            ("Fill huge", [const("d", [Float(1 << 20), Float(1 << 20)], shape: [2]), const("v", [0], shape: []), node("c", "Fill", ["d", "v"])]),
            ("splat of 2^31", [const("c", [1], shape: [1 << 31])]),
            ("Reshape overflowing", [const("a", [1, 2, 3, 4], shape: [4]), const("s", [big, big, -1], shape: [3]), node("c", "Reshape", ["a", "s"])]),
            ("Reshape NaN", [const("a", [1, 2, 3, 4], shape: [4]), const("s", [.nan, -7], shape: [2]), node("c", "Reshape", ["a", "s"])]),
            ("ExpandDims NaN", [const("a", [1, 2, 3, 4], shape: [4]), const("k", [.nan], shape: []), node("c", "ExpandDims", ["a", "k"])]),
            ("ExpandDims infinite", [const("a", [1, 2, 3, 4], shape: [4]), const("k", [.infinity], shape: []), node("c", "ExpandDims", ["a", "k"])]),
            ("ConcatV2 mismatched", [const("a", [1, 2, 3, 4], shape: [2, 2]), const("b", [1, 2, 3], shape: [1, 3]), const("k", [0], shape: []),
                                     node("c", "ConcatV2", ["a", "b", "k"])]),
            ("ConcatV2 of scalars", [const("a", [1], shape: []), const("b", [2], shape: []), const("k", [0], shape: []), node("c", "ConcatV2", ["a", "b", "k"])]),
            ("Cast of 1e30 to int", [const("a", [1e30, -1e30], shape: [2]), node("c", "Cast", ["a"])]),
            ("StridedSlice to 2^62", [const("a", [1, 2, 3, 4], shape: [4]), const("b", [0], shape: [1], int: true), const("e", [Float(1 << 62)], shape: [1], int: true),
                                      const("st", [1], shape: [1], int: true), node("c", "StridedSlice", ["a", "b", "e", "st"])]),
            // 1 broadcast against 0 is 0: the product was made of one value read from none
            // (fuzzing, seed 40: a node turned NoOp, whose value is empty; SIGILL).
            ("scalar times empty", [const("a", [2], shape: []), const("e", [], shape: [0]), node("c", "Mul", ["a", "e"])]),
        ]
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for (i, (label, nodes)) in cases.enumerated() {
            var g = Tensorflow_GraphDef()
            g.node = [x] + nodes + [node("out", "AddV2", ["x", "c"])]
            let p = "\(dir)/h\(i).pb"
            try #require(FileManager.default.createFile(atPath: p, contents: try g.serializedData()), "the test could not write its input")
            var notes: [String] = []
            do { _ = try TensorFlowImporter.importModel(path: p, notes: &notes) } catch is ImportError {} catch { Issue.record("\(label): \(error)") }
        }
    }
}

extension FrozenGraph {
    /// The message with the weights put back from the file: what swift-protobuf reads whole.
    var message: Tensorflow_GraphDef {
        var g = graphDef
        for (i, range) in weights { g.node[i].attr["value"]!.tensor.tensorContent = Data(file.bytes[range]) }
        return g
    }
}
