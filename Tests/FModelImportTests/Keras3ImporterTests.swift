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

    /// A compressed entry (a `.keras` zipped again with `zip -r`: deflate) is named as such and
    /// the remedy given: it was reported as not in the archive ("'/' has no config.json (stored)
    /// in the .keras zip"). Here the central directory calls each entry deflated in turn.
    @Test func compressedEntriesAreNamedAsSuch() throws {
        let original = [UInt8](try #require(FileManager.default.contents(atPath: Fixtures.path("keras3_multitask.keras"))))
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for entry in ["config.json", "model.weights.h5"] {
            var bytes = original
            // The central directory entry (signature 50 4B 01 02) whose name is `entry`: method 8.
            let signature: [UInt8] = [0x50, 0x4B, 0x01, 0x02], name = Array(entry.utf8)
            func isEntry(_ o: Int) -> Bool {
                Array(bytes[o..<(o + 4)]) == signature && Array(bytes[(o + 46)..<(o + 46 + name.count)]) == name
            }
            let at = try #require((0..<(bytes.count - 46 - name.count)).first(where: isEntry))
            bytes[at + 10] = 8
            let path = "\(dir)/\(entry).keras"
            try #require(FileManager.default.createFile(atPath: path, contents: Data(bytes)))
            #expect(throws: ImportError.unknownFormat(path: path, reason: "\(entry) is compressed in the .keras zip (deflate, method 8); fmodel reads stored entries, as Keras writes them: zip it again with `zip -0 -r`")) {
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

    /// Records the CRC-32 of the stored `entry`'s bytes as they now are, in its central
    /// directory record (which the reader checks) and its local header.
    static func restampChecksum(_ data: inout Data, entry: String) throws {
        let name = try #require(data.range(of: Data(entry.utf8), options: .backwards), "no \(entry) in the archive")
        let record = name.lowerBound - 46
        func u32(_ o: Int) -> Int { Int(data[o]) | Int(data[o + 1]) << 8 | Int(data[o + 2]) << 16 | Int(data[o + 3]) << 24 }
        func u16(_ o: Int) -> Int { Int(data[o]) | Int(data[o + 1]) << 8 }
        try #require(u32(record) == 0x0201_4B50, "\(entry) is not named by a central directory record")
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
