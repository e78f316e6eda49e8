import FModelCore
import FModelImport
import FModelTestSupport
import Foundation
import Testing

/// Hostile, broken and unsupported files end in an `ImportError` that names what is wrong.
@Suite struct BadInputTests {
    func importError(_ file: String) -> ImportError? {
        do {
            _ = try ModelLoader.load(path: Fixtures.path(file))
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

    @Test func missingWeight() {
        #expect(importError("bad/missing_weight.h5") == .missingWeight(path: Fixtures.path("bad/missing_weight.h5"), layer: "Conv2d_2a_3x3", weight: "Conv2d_2a_3x3/kernel:0"))
    }

    @Test func emptyAndMissingFiles() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        FileManager.default.createFile(atPath: dir + "/empty.h5", contents: Data())
        #expect(throws: ImportError.self) { try ModelLoader.load(path: dir + "/empty.h5") }
        #expect(throws: ImportError.self) { try ModelLoader.load(path: dir + "/absent.h5") }
    }

    /// Every tenth of the file cut off: HDF5 checks its end-of-file address before parsing,
    /// so each prefix is an error, in process.
    @Test func truncationsAreErrors() throws {
        let original = try #require(FileManager.default.contents(atPath: Fixtures.path("tiny_residual.h5")))
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for cut in stride(from: 0, to: original.count, by: max(original.count / 10, 1)) {
            let p = dir + "/cut\(cut).h5"
            FileManager.default.createFile(atPath: p, contents: original.prefix(cut))
            #expect(throws: ImportError.self) { try ModelLoader.load(path: p) }
        }
    }
}

