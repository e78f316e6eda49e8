@testable import FModelCLI
import FModelCore
import FModelFormat
import FModelImport
import FModelKeras
import FModelRuntime
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
        // The table says which were left out, and why (it gave the counts alone).
        let table = try JSONDecoder().decode(VerifyReport.self, from: Data(contentsOf: URL(fileURLWithPath: json))).table()
        #expect(table.contains("\n  skipped: not_a_face_name.jpg: age 'not' is not 0–116\n"), "\(table)")
        #expect(table.contains("\n  unreadable: \(faces)/30_1_2_20170199.jpg: not a JPEG or PNG image\n"), "\(table)")
    }

    /// A report that cannot be written is refused before the faces are read and the models
    /// run (here the candidate does not even exist): on bcbce0b it was refused after the whole
    /// evaluation, minutes for UTKFace's 24,000 faces.
    @Test func unwritableReportsAreRefusedFirst() throws {
        let faces = try makeFaces()
        for option in ["--report", "--junit"] {
            let report = dir + "/no-such-folder/" + option.dropFirst(2)
            expectRefused(["verify", "--candidate", dir + "/missing.fmodel", "--data", faces, option, report],
                          naming: report + ": cannot create a temporary file: No such file or directory")
        }
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

    /// `--precision` is the candidate's and the reference multiplies in float32, so verify shows
    /// what bf16 costs: with both in bf16 (as before) the fidelity figures compared bf16 with
    /// itself. Where oneDNN has bf16 convolutions the two models' probabilities differ; elsewhere
    /// bf16 runs float32 and they agree exactly.
    @Test func precisionIsTheCandidates() throws {
        let faces = try makeFaces(count: 4), json = dir + "/bf16.json"
        #expect(FModelCommand.main(arguments: ["verify", "--reference", reference, "--candidate", reference, "--data", faces,
                                               "--precision", "bf16", "--report", json]) == 0)
        let report = try JSONDecoder().decode(VerifyReport.self, from: Data(contentsOf: URL(fileURLWithPath: json)))
        #expect(report.reference?.precision == "f32" && report.candidate.precision == ComputePrecision.bf16.effective.rawValue)
        let difference = try #require(report.fidelity).maxProbabilityDifference
        #expect((difference > 0) == ComputePrecision.bf16Available, "max |Δp| \(difference)")
        let shown = ComputePrecision.bf16.effective.rawValue.padding(toLength: 12, withPad: " ", startingAt: 0)
        #expect(report.table().contains("\nprecision             f32         \(shown)\n"), "\(report.table())")

        let both = dir + "/both.json"
        #expect(FModelCommand.main(arguments: ["verify", "--reference", reference, "--candidate", reference, "--data", faces,
                                               "--precision", "bf16", "--reference-precision", "bf16", "--report", both]) == 0)
        let same = try JSONDecoder().decode(VerifyReport.self, from: Data(contentsOf: URL(fileURLWithPath: both)))
        #expect(same.reference?.precision == same.candidate.precision && same.fidelity?.maxProbabilityDifference == 0)
    }

    @Test func candidateAloneIsEvaluated() throws {
        #expect(FModelCommand.main(arguments: ["verify", "--candidate", reference, "--data", try makeFaces(count: 3), "--json"]) == 0)
    }

    @Test func badInputsExitTwo() throws {
        let empty = dir + "/empty"
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        expectRefused(["verify", "--candidate", reference, "--data", empty], naming: empty, "no labelled .jpg or .png images")
        expectRefused(["verify", "--candidate", reference, "--data", dir + "/missing"], naming: dir + "/missing", "not a folder")
        // The compression commands' --data says the same (it said "no labelled … images").
        expectRefused(["shrink", reference, "--target-mb", "1", "--data", dir + "/missing", "-o", dir + "/s.fmodel"], naming: dir + "/missing", "not a folder")
        let faces = try makeFaces(count: 2)
        expectRefused(["verify", "--candidate", Fixtures.path("functional_zoo.h5"), "--data", faces], naming: "the model's input 'pixels' [?,12,12,4] is not an RGB image")
        expectRefused(["verify", "--candidate", Fixtures.path("facenet_small.h5"), "--data", faces], naming: "no age (117), gender (2) and ethnicity (5) outputs")
        expectRefused(["verify", "--candidate", reference, "--data", faces, "--strict"], naming: faces, "not UTKFace names (first: not_a_face_name.jpg", "--strict")
    }

    /// Two images that cost far more than they decode, done right: a JPEG that declares
    /// 16384×10000 pixels (491 MB of RGB; 197 KB of comments make that plausible for its size)
    /// and whose data stops in its first row, which `preprocess` refuses; and a 64×64 face
    /// followed by 400 MB of nothing (a sparse file), which it decodes. Neither process grows
    /// more than one decoding a small face: the pixels are fresh pages written row by row (they
    /// were zeroed first: 491 MB for nothing), and the file is decoded from its mapping (it was
    /// copied whole: 400 MB).
    ///
    /// A spawned child's peak (wait4) starts from the tests' own while it is spawned (it shares
    /// their memory until exec), and that only grows: so the small face is decoded last, and
    /// its peak is at least the tests' at the first spawn; the files are decoded in this
    /// process only after the spawns.
    @Test func imagesAreResidentOnlyAsFarAsTheyAreRead() throws {
        let executable = try #require(fmodelExecutable(), "no fmodel beside the test bundle")
        var rng = SplitMix64(seed: 5)
        let face = try #require(ImageEncoder.jpeg(RGBImage(width: 64, height: 64, pixels: (0..<(64 * 64 * 3)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })))
        let cut = dir + "/30_1_2_20170101.jpg", sparse = dir + "/30_1_2_20170103.jpg"
        let declared = ImageBytes.padded(ImageBytes.declaring(face, width: 16384, height: 10000), comments: 3)
        try #require(FileManager.default.createFile(atPath: cut, contents: Data(declared.dropLast(64))), "the test could not write its input")
        try #require(FileManager.default.createFile(atPath: sparse, contents: Data(face)) && truncate(sparse, 400 << 20) == 0,
                     "the test could not write its input")
        let runs = try [cut, sparse, Fixtures.path("images/gradient.jpg")].map { image in
            try #require(runMeasured(executable, ["preprocess", image, "-o", dir + "/x.npy"]))
        }
        #expect(runs.map(\.exitCode) == [2, 0, 0])
        for (name, run) in zip(["the cut file", "the sparse file"], runs) {
            #expect(run.peakKiB < runs[2].peakKiB + 64 << 10, "fmodel preprocess of \(name) reached \(run.peakKiB) KiB resident, \(runs[2].peakKiB) on a small face")
        }
        expectRefused(["preprocess", cut, "-o", dir + "/x.npy"], naming: cut, "the file ends before the image does")
        #expect(try ImageDecoder.decode(path: sparse).width == 64)
    }

    /// A face whose header declares 8000×8000 pixels in 1.5 KB is refused before any pixel is
    /// allocated, saying what it holds at most.
    @Test func anImageDeclaringMoreThanItsBytesHoldIsRefused() throws {
        let face = RGBImage(width: 32, height: 32, pixels: (0..<(32 * 32 * 3)).map { UInt8($0 % 251) })
        let bytes = ImageBytes.declaring(try #require(ImageEncoder.jpeg(face)), width: 8000, height: 8000)
        let path = dir + "/30_1_2_20170102.jpg"
        try #require(FileManager.default.createFile(atPath: path, contents: Data(bytes)), "the test could not write its input")
        expectRefused(["preprocess", path, "-o", dir + "/x.npy"], naming: path,
                      "its header declares 8000×8000 pixels, more than a \(bytes.count)-byte file can encode (at most 4194304: 2048² or 1024 a byte)")
    }

    @Test func predictPrintsEachFace() throws {
        let faces = try makeFaces(count: 2)
        let images = try FileManager.default.contentsOfDirectory(atPath: faces).filter { $0.hasPrefix("0") || $0.first!.isNumber }.sorted()
            .filter { !$0.hasPrefix("30_1_2_20170199") }.map { faces + "/" + $0 }
        #expect(images.count == 2)
        #expect(FModelCommand.main(arguments: ["predict", reference] + images + ["--json"]) == 0)
        expectRefused(["predict", reference, faces + "/30_1_2_20170199.jpg"], naming: "1 of 1 images failed")
    }

    /// A candidate without face heads is refused naming it: "the model has no age … outputs"
    /// did not say which of the two models.
    @Test func modelWithoutHeadsIsNamed() throws {
        let faces = try makeFaces(count: 1)
        let trunk = Fixtures.path("facenet_small.h5")
        expectRefused(["verify", "--reference", reference, "--candidate", trunk, "--data", faces],
                      naming: trunk + ": the model has no age (117), gender (2) and ethnicity (5) outputs")
        expectRefused(["predict", trunk, faces + "/30_1_2_20170199.jpg"], naming: trunk + ": the model has no age")
    }

    /// A model whose outputs are NaN (its age head's weights are) gets its answers said, in
    /// JSON as the string "nan", as `verify`'s report writes it: `predict --json` printed the
    /// encoder's error for each image, then that the images "could not be read", exit 2.
    @Test func predictWritesNaNAsAString() throws {
        let fmodel = try #require(fmodelExecutable(), "no fmodel beside the test bundle")
        var g = try ModelLoader.load(path: reference, options: .inProcess)
        let kernel = try #require(g.node(named: "age")?.params["kernel"])
        g.tensors[kernel] = Tensor(g.tensors[kernel]!.floats().map { _ in .nan }, shape: g.tensors[kernel]!.shape)
        let model = dir + "/nan.fmodel", out = dir + "/nan.out"
        try FModelWriter.write(g, to: model)
        let faces = try makeFaces(count: 1)
        let face = try #require(try FileManager.default.contentsOfDirectory(atPath: faces).first { $0.hasSuffix("_20170100.jpg") })
        let fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        try #require(fd >= 0)
        let pid = try #require(spawn(fmodel, ["predict", model, faces + "/" + face, "--json"], standardOutput: fd))
        close(fd)
        #expect(try #require(waitForExit(pid)) == 0)
        let line = try JSONSerialization.jsonObject(with: try Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any]
        #expect(line?["age"] as? String == "nan", "\(String(describing: line))")
    }
}
