import FModelCore
import FModelFormat
import Foundation

/// The fixtures made by `Tools/fixtures/make_fixtures.py` with real TensorFlow, and their manifest.
public enum Fixtures {
    /// `Tests/Fixtures`, found from this source file so tests run from any directory.
    public static let directory: String = {
        let here = URL(fileURLWithPath: #filePath)
        return here.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures").path
    }()

    /// Absolute path of a fixture file.
    public static func path(_ name: String) -> String { directory + "/" + name }

    /// One model with its seeded input and TensorFlow's outputs.
    public struct Entry: Decodable, Sendable {
        public var name: String
        public var model: String
        public var config: String?
        public var input: String
        public var inputName: String
        public var outputs: [String: String]

        enum CodingKeys: String, CodingKey {
            case name, model, config, input, outputs
            case inputName = "input_name"
        }

    }

    private struct Manifest: Decodable { var fixtures: [Entry] }

    /// A JPEG or PNG `Tools/fixtures/make_images.py` wrote with TensorFlow, with what its
    /// `decode_jpeg` or `decode_png` (channels: 3) makes of it and of its cuts (images.json).
    public struct Image: Decodable, Sendable {
        public var name: String
        public var file: String
        /// TensorFlow's pixels, float32 [H, W, 3].
        public var decoded: String
        public var shape: [Int]
        /// The lengths of the file's prefixes TensorFlow decodes (it refuses the others).
        public var tensorflowDecodesCuts: [Int]

        enum CodingKeys: String, CodingKey {
            case name, file, decoded, shape
            case tensorflowDecodesCuts = "tensorflow_decodes_cuts"
        }
    }

    private struct ImageList: Decodable { var images: [Image] }

    /// Every image in images.json.
    public static let images: [Image] = {
        let data = FileManager.default.contents(atPath: path("images.json")) ?? Data()
        return (try? JSONDecoder().decode(ImageList.self, from: data).images) ?? []
    }()

    /// Every fixture in the manifest.
    public static let all: [Entry] = {
        let data = FileManager.default.contents(atPath: path("manifest.json")) ?? Data()
        return (try? JSONDecoder().decode(Manifest.self, from: data).fixtures) ?? []
    }()

    /// The fixture called `name`.
    public static func entry(_ name: String) -> Entry { all.first { $0.name == name }! }

    /// A sparse file at `path`: the first `bytes` of the fixture `name`, then holes up to `size`
    /// bytes (what a hostile file of a terabyte costs to make).
    public static func sparseCopy(of name: String, keeping bytes: Int, size: UInt64, at path: String) throws {
        let head = FileManager.default.contents(atPath: Self.path(name))?.prefix(bytes) ?? Data()
        guard FileManager.default.createFile(atPath: path, contents: head),
              let handle = FileHandle(forWritingAtPath: path) else { throw CocoaError(.fileWriteUnknown) }
        try handle.truncate(atOffset: size)
        try handle.close()
    }

    /// A shell script at `path` with this body, executable: a stand-in for the import worker.
    /// Written through a descriptor closed on exec, so that no process the tests start meanwhile
    /// (in parallel) keeps it open for writing, which would make running the script fail with
    /// ETXTBSY ("text file busy") for as long as that process lives.
    public static func script(_ body: String, at path: String) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        guard fd >= 0 else { throw CocoaError(.fileWriteUnknown) }
        defer { close(fd) }
        let bytes = Array(("#!/bin/sh\n" + body).utf8)
        guard bytes.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) == bytes.count else { throw CocoaError(.fileWriteUnknown) }
    }

    /// A new, empty temporary directory; the caller removes it.
    public static func temporaryDirectory() -> String {
        let dir = NSTemporaryDirectory() + "fmodel-tests-" + UUID().uuidString
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }
}

