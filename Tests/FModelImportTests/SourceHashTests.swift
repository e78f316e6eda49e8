import FModelFormat
@testable import FModelImport
import FModelKeras
import FModelTestSupport
import Foundation
import Testing

/// The source's SHA-256 is hashed on another thread while the importer reads the file; what is
/// recorded must still be the whole file's digest, and a hash no longer wanted must stop.
@Suite final class SourceHashTests {
    let dir = Fixtures.temporaryDirectory()

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    func digest(of path: String) throws -> String {
        let data = try #require(FileManager.default.contents(atPath: path))
        return data.withUnsafeBytes { SHA256.hex($0) }
    }

    /// A Keras `.h5` (imported in this process) and a GraphDef `.pb` record their files' digests.
    @Test(arguments: ["tiny_residual.h5", "tf1_facenet_small.pb"])
    func importsRecordTheWholeFilesDigest(_ name: String) throws {
        let path = Fixtures.path(name)
        var options = ImportOptions.inProcess
        options.graphCut = GraphCut(inputs: ["input:?x64x64x3"])
        let graph = try ModelLoader.load(path: path, options: options)
        #expect(graph.metadata.sourceSHA256 == (try digest(of: path)))
    }

    /// A Keras 3 model saved as a directory records the digest of its config.json followed by
    /// its model.weights.h5 (`cat … | sha256sum`); its budget counts both files.
    @Test func aModelDirectoryRecordsItsFilesDigest() throws {
        let path = Fixtures.path("keras3_multitask_dir")
        let graph = try ModelLoader.load(path: path, options: .inProcess)
        let config = try #require(FileManager.default.contents(atPath: path + "/config.json"))
        let weights = try #require(FileManager.default.contents(atPath: path + "/model.weights.h5"))
        #expect(graph.metadata.sourceSHA256 == (config + weights).withUnsafeBytes { SHA256.hex($0) })
        #expect(graph.metadata.sourceFile == "keras3_multitask_dir")
        #expect(IsolatedImport.Budget(file: path) == IsolatedImport.Budget(sourceBytes: config.count + weights.count))
    }

    /// A file of several reads (2.5 MiB: two whole reads and a part) hashed on another thread
    /// gives the one-pass digest; asked twice, the same.
    @Test func aFileOfSeveralReadsIsHashedWhole() throws {
        let path = dir + "/big.bin"
        var rng = SplitMix64(seed: 3)
        let bytes = (0..<(5 << 19)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let hash = SourceHash(path: path)
        let expected = try digest(of: path)
        #expect(try hash.value() == expected)
        #expect(try hash.value() == expected)
    }

    /// Told to stop, the hashing ends at its next read with an error naming the file; a
    /// `SourceHash` cancelled at once still answers (the digest if it had finished, else that
    /// error), never hangs.
    @Test func aStoppedHashEndsWithAnError() throws {
        let path = dir + "/big.bin"
        try Data(count: 3 << 20).write(to: URL(fileURLWithPath: path))
        var reads = 0
        #expect(throws: FormatError.io(path: path, reason: "hashing stopped")) {
            try ModelLoader.sha256(path: path, continuing: { reads += 1; return reads < 2 })
        }
        #expect(reads == 2)
        let hash = SourceHash(path: path)
        hash.cancel()
        switch Result(catching: { try hash.value() }) {
        case .success(let hex): #expect(hex == (try digest(of: path)))
        case .failure(let error): #expect(error as? FormatError == .io(path: path, reason: "hashing stopped"))
        }
    }
}
