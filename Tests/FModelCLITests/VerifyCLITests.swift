@testable import FModelCLI
import FModelCore
import FModelFormat
import FModelImport
import FModelKeras
import FModelTestSupport
import FModelVerify
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing

/// `verify` and `predict` on faces the test makes itself: random JPEGs named with the labels the
/// reference model gives them, so the reference is right on every one and a damaged candidate
/// is clearly worse.
@Suite final class VerifyCLITests {
    let dir = Fixtures.temporaryDirectory()

    deinit { try? FileManager.default.removeItem(atPath: dir) }
    let reference = Fixtures.path("multitask_flat.h5")

    func makeFaces(count: Int = 10) throws -> String {
        let faces = dir + "/faces"
        try FileManager.default.createDirectory(atPath: faces, withIntermediateDirectories: true)
        let model = try FaceModel(graph: ModelLoader.load(path: reference, options: .inProcess))
        var rng = SplitMix64(seed: 11)
        for i in 0..<count {
            let image = RGBImage(width: 40, height: 48, pixels: (0..<(40 * 48 * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            let bytes = try #require(i % 2 == 0 ? ImageEncoder.jpeg(image) : ImageEncoder.png(image))
            let decoded = try ImageDecoder.decode(bytes, path: "made")
            let p = try model.predict([model.preprocessor(decoded)])[0]
            let name = "\(min(max(Int(p.age.rounded()), 0), 116))_\(p.genderClass)_\(p.ethnicityClass)_2017010\(i).\(i % 2 == 0 ? "jpg" : "png")"
            try #require(FileManager.default.createFile(atPath: faces + "/" + name, contents: Data(bytes)), "the test could not write its input")
        }
        try #require(FileManager.default.createFile(atPath: faces + "/not_a_face_name.jpg", contents: Data([0xFF, 0xD8])), "the test could not write its input")
        try #require(FileManager.default.createFile(atPath: faces + "/30_1_2_20170199.jpg", contents: Data("not an image".utf8)), "the test could not write its input")
        return faces
    }

    /// The reference with its gender and ethnicity logits negated: every argmax moves.
    func damagedCandidate() throws -> String {
        var g = try ModelLoader.load(path: reference, options: .inProcess)
        for head in ["gender", "ethnicity"] {
            let node = try #require(g.node(named: head))
            for role in ["kernel", "bias"] {
                let name = node.params[role]!
                g.tensors[name] = Tensor(g.tensors[name]!.floats().map { -$0 }, shape: g.tensors[name]!.shape)
            }
        }
        let path = dir + "/damaged.fmodel"
        try FModelWriter.write(g, to: path)
        return path
    }

    @Test func referenceAgainstItselfPassesWithReports() throws {
        let faces = try makeFaces()
        let (json, xml) = (dir + "/report.json", dir + "/junit.xml")
        #expect(FModelCommand.main(arguments: ["verify", "--reference", reference, "--candidate", reference, "--data", faces,
                                               "--report", json, "--junit", xml, "--batch", "4"]) == 0)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
        #expect(report["passed"] as? Bool == true)
        #expect(report["images"] as? Int == 10)
        let candidate = try #require(report["candidate"] as? [String: Any])
        for key in ["age_rmse", "age_mae", "gender_accuracy", "ethnicity_accuracy", "size_bytes"] { #expect(candidate[key] != nil, "\(key)") }
        #expect(candidate["gender_accuracy"] as? Double == 1 && candidate["ethnicity_accuracy"] as? Double == 1)
        #expect((report["skipped_names"] as? [[String: Any]])?.count == 1)
        #expect((report["unreadable_images"] as? [[String: Any]])?.count == 1)
        let parser = XMLParser(data: try Data(contentsOf: URL(fileURLWithPath: xml)))
        #expect(parser.parse())
    }

    @Test func clearlyWorseCandidateFails() throws {
        let faces = try makeFaces()
        let json = dir + "/report.json"
        #expect(FModelCommand.main(arguments: ["verify", "--reference", reference, "--candidate", try damagedCandidate(),
                                               "--data", faces, "--report", json, "--junit", dir + "/j.xml"]) == 1)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
        #expect(report["passed"] as? Bool == false)
        let checks = try #require(report["checks"] as? [[String: Any]])
        #expect(checks.filter { $0["passed"] as? Bool == false }.compactMap { $0["name"] as? String } == ["gender_accuracy_drop", "ethnicity_accuracy_drop"])
        let xml = try String(contentsOfFile: dir + "/j.xml", encoding: .utf8)
        #expect(xml.contains(#"failures="2""#))
    }

    /// A FIFO named like a face is an unreadable image, not a wait: verify goes on without it.
    @Test func aFIFOAmongTheFacesIsUnreadable() throws {
        let faces = try makeFaces(count: 2)
        let fifo = faces + "/40_0_1_20170105.jpg"
        try #require(mkfifo(fifo, 0o600) == 0, "the test could not make its FIFO")
        let json = dir + "/fifo.json", arguments = ["verify", "--candidate", reference, "--data", faces, "--report", json]
        let code = promptly(unblocking: [fifo], { FModelCommand.main(arguments: arguments) })
        #expect(code == 0)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: json))) as? [String: Any])
        let unreadable = try #require(report["unreadable_images"] as? [[String: Any]])
        #expect(unreadable.count == 2 && unreadable.contains { "\($0)".contains("40_0_1_20170105.jpg") && "\($0)".contains("not a regular file") })
    }

    @Test func candidateAloneIsEvaluated() throws {
        #expect(FModelCommand.main(arguments: ["verify", "--candidate", reference, "--data", try makeFaces(count: 3), "--json"]) == 0)
    }

    @Test func badInputsExitTwo() throws {
        let empty = dir + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        expectRefused(["verify", "--candidate", reference, "--data", empty], naming: empty, "no labelled .jpg or .png images")
        expectRefused(["verify", "--candidate", reference, "--data", dir + "/missing"], naming: dir + "/missing", "not a folder")
        let faces = try makeFaces(count: 2)
        expectRefused(["verify", "--candidate", Fixtures.path("functional_zoo.h5"), "--data", faces], naming: "the model's input 'pixels' [?,12,12,4] is not an RGB image")
        expectRefused(["verify", "--candidate", Fixtures.path("facenet_small.h5"), "--data", faces], naming: "no age (117), gender (2) and ethnicity (5) outputs")
        expectRefused(["verify", "--candidate", reference, "--data", faces, "--strict"], naming: faces, "not UTKFace names (first: not_a_face_name.jpg", "--strict")
    }

    @Test func predictPrintsEachFace() throws {
        let faces = try makeFaces(count: 2)
        let images = try FileManager.default.contentsOfDirectory(atPath: faces).filter { $0.hasPrefix("0") || $0.first!.isNumber }.sorted()
            .filter { !$0.hasPrefix("30_1_2_20170199") }.map { faces + "/" + $0 }
        #expect(images.count == 2)
        #expect(FModelCommand.main(arguments: ["predict", reference] + images + ["--json"]) == 0)
        expectRefused(["predict", reference, faces + "/30_1_2_20170199.jpg"], naming: "1 of 1 images could not be read")
    }
}
