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
        var model, input: String
        var outputs: [String: String]
    }

    static func entry() throws -> Entry {
        struct File: Decodable { var fixtures: [Entry] }
        let data = try Data(contentsOf: URL(fileURLWithPath: Fixtures.path("keras3.json")))
        return try JSONDecoder().decode(File.self, from: data).fixtures[0]
    }

    @Test func nestedMultiTaskModelMatchesKeras() throws {
        let e = try Self.entry()
        let g = try ModelLoader.load(path: Fixtures.path(e.model), options: .inProcess)
        #expect(g.metadata.sourceFormat == "keras3" && g.outputs == ["age", "gender", "ethnicity"])
        #expect(g.node(named: "Block35_1_ScaleSum")?.op == .scale(0.17))
        let x = try NPY.read(path: Fixtures.path(e.input))
        let out = try Executor(graph: g).run([g.inputs[0].name: FloatTensor(shape: Shape(x.shape), values: x.values)])
        for (name, file) in e.outputs {
            let d = Difference(try #require(out[name]).values, try NPY.read(path: Fixtures.path(file)).values, tolerance: .tensorFlow)
            #expect(d.isWithinTolerance, "\(name): max |Δ| \(d.maxAbsolute)")
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

    /// An error in the weights names the `.keras` file, not the temporary copy libhdf5 reads.
    @Test func weightErrorsNameTheArchive() throws {
        var data = try #require(FileManager.default.contents(atPath: Fixtures.path("keras3_multitask.keras")))
        let signature = Data([0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A])
        let at = try #require(data.range(of: signature), "no HDF5 file in the archive").lowerBound
        data[at + 1] = 0x58  // "\x89XDF…"
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = dir + "/bad.keras"
        try #require(FileManager.default.createFile(atPath: p, contents: data), "the test could not write its input")
        #expect(throws: ImportError.unknownFormat(path: p + " (its model.weights.h5)", reason: "not an HDF5 file (no HDF5 signature at byte offset 0)")) {
            try ModelLoader.load(path: p, options: .inProcess)
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
