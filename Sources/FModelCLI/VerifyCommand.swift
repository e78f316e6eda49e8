import ArgumentParser
import FModelCore
import FModelFormat
import FModelImport
import FModelRuntime
import FModelVerify
import Foundation

/// `fmodel verify --reference A --candidate B --data DIR`: the CI gate.
struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Judge a candidate model against a reference on labelled faces; exit 1 when a bound breaks.")

    @Option(help: "The reference model (leave out to evaluate the candidate alone).")
    var reference: String?

    @Option(help: "The candidate model.")
    var candidate: String

    @OptionGroup var data: DataOptions

    @Option(help: "Years of age RMSE the candidate may add.")
    var maxAgeRmseIncrease = 0.25

    @Option(help: "Percentage points of gender accuracy the candidate may lose.")
    var maxGenderDrop = 0.5

    @Option(help: "Percentage points of ethnicity accuracy the candidate may lose.")
    var maxEthnicityDrop = 1.5

    @Option(help: "Write every figure as JSON here.")
    var report: String?

    @Option(help: "Write a JUnit XML report (one test case per bound) here.")
    var junit: String?

    @Flag(help: "Print the JSON report instead of the table.")
    var json = false

    @OptionGroup var heads: HeadOptions
    @OptionGroup var options: ModelOptions

    /// `--precision` is the candidate's: the reference is the standard it is judged by, so it
    /// multiplies in float32 unless told otherwise (with both in bf16, `verify --precision bf16`
    /// compared bf16 with itself and could not show what bf16 costs).
    @OptionGroup var runtime: RuntimeOptions

    @Option(help: "What the reference's float32 convolutions multiply in (--precision is the candidate's).")
    var referencePrecision: ComputePrecision = .f32

    func validate() throws {
        // A NaN bound fails every check: a typing mistake would read as a worse candidate (exit 1).
        guard [maxAgeRmseIncrease, maxGenderDrop, maxEthnicityDrop].allSatisfy(\.isFinite) else {
            throw ValidationError("--max-age-rmse-increase, --max-gender-drop and --max-ethnicity-drop must be finite numbers")
        }
    }

    func run() throws {
        // The reports' files staged first: one that cannot be written (a missing folder, no
        // permission) is refused before the evaluation, not after it (minutes, for the 24,000
        // faces of UTKFace).
        let reportFile = try report.map { try AtomicFileWriter(path: $0) }, junitFile = try junit.map { try AtomicFileWriter(path: $0) }
        let dataset = try data.load()
        let runs = [reference.map { ($0, referencePrecision.checked()) },
                    (candidate, runtime.precision.checked())].compactMap { $0 }
        let models = try runs.map { path, precision in
            try naming(path) { try FaceModel(graph: options.load(path), preprocess: options.preprocess, heads: heads.explicit, precision: precision) }
        }
        let evaluation = try Evaluation(models: models, samples: dataset.samples, batchSize: data.batch, progress: Progress(label: "verify").update)
        var bounds = VerifyBounds()
        (bounds.maxAgeRMSEIncrease, bounds.maxGenderDrop, bounds.maxEthnicityDrop) = (maxAgeRmseIncrease, maxGenderDrop, maxEthnicityDrop)
        let entries = try runs.indices.map { try entry(runs[$0].0, runs[$0].1, ModelEvaluation(evaluation.pairs($0))) }
        let candidateEntry = entries.last!, referenceEntry = entries.count == 2 ? entries[0] : nil
        let checks = VerifyReport.checks(reference: referenceEntry?.metrics, candidate: candidateEntry.metrics, bounds: bounds)
        let readable = evaluation.pairs(0).count
        let report = VerifyReport(
            passed: checks.allSatisfy(\.passed), images: readable, reference: referenceEntry, candidate: candidateEntry,
            bounds: bounds, checks: checks,
            fidelity: referenceEntry == nil ? nil : Fidelity(reference: evaluation.readable(0), candidate: evaluation.readable(1)),
            dataset: data.data, skippedNames: dataset.skipped, unreadableImages: evaluation.unreadable,
            seconds: evaluation.seconds, imagesPerSecond: Double(dataset.samples.count) / max(evaluation.seconds, 1e-9))
        try write(report, reportFile, junitFile)
        guard report.passed else { throw CheckFailed(message: "verify failed: " + checks.filter { !$0.passed }.map(\.name).joined(separator: ", ")) }
    }

    func entry(_ path: String, _ precision: ComputePrecision, _ evaluation: ModelEvaluation) throws -> ModelEntry {
        let size = ModelLoader.sourceBytes(path: path)
        return ModelEntry(path: path, sha256: try ModelLoader.sha256(path: path), sizeBytes: size, precision: precision.rawValue,
                          evaluation: evaluation)
    }

    /// Writes the report into the files staged for it, and shows it.
    func write(_ report: VerifyReport, _ reportFile: consuming AtomicFileWriter?, _ junitFile: consuming AtomicFileWriter?) throws {
        let json = try report.json()
        try reportFile.take()?.commit(writing: Array(json))
        try junitFile.take()?.commit(writing: Array(report.junit().utf8))
        show(self.json ? String(decoding: json, as: UTF8.self) : report.table())
    }
}

/// Where the labelled faces are and how to read them.
struct DataOptions: ParsableArguments {
    @Option(help: "Folder of faces named age_gender_race_datetime.jpg (searched recursively).")
    var data: String

    @Option(help: "Use only the first N images (in sorted order).")
    var limit: Int?

    @Flag(help: "Fail when a file name does not parse (default: count and list it).")
    var strict = false

    @Option(help: "CSV of file,age,gender,race to use instead of the file names.")
    var labels: String?

    @Option(help: "Images per inference batch.")
    var batch = 32

    func validate() throws {
        guard batch > 0, batch <= 1024 else { throw ValidationError("--batch must be 1...1024") }
        if let limit, limit <= 0 { throw ValidationError("--limit must be positive") }
    }

    func load() throws -> FaceDataset { try FaceDataset(folder: data, limit: limit, strict: strict, labels: labels) }
}

/// Explicit output names for the heads.
struct HeadOptions: ParsableArguments {
    @Option(help: "The age output (117-way softmax).") var ageOutput: String?
    @Option(help: "The gender output (2-way).") var genderOutput: String?
    @Option(help: "The ethnicity output (5-way).") var ethnicityOutput: String?

    var explicit: FaceHeads? {
        guard ageOutput != nil || genderOutput != nil || ethnicityOutput != nil else { return nil }
        return FaceHeads(age: ageOutput ?? "age", gender: genderOutput ?? "gender", ethnicity: ethnicityOutput ?? "ethnicity")
    }
}

/// Progress on standard error: a bar on a terminal, a line every tenth otherwise.
final class Progress {
    let label: String
    let isTerminal = isatty(2) != 0
    var lastTenth = -1
    let start = MonotonicClock.seconds

    init(label: String) { self.label = label }

    func update(_ done: Int, _ total: Int) {
        let rate = Double(done) / max(MonotonicClock.seconds - start, 1e-9)
        if isTerminal {
            let filled = total == 0 ? 30 : done * 30 / total
            // Up a line and clear it: the bar's own terminal commands, which printError would escape.
            StandardStream.error.write("\u{1B}[1A\u{1B}[2K\(label) [" + String(repeating: "#", count: filled)
                                       + String(repeating: " ", count: 30 - filled)
                                       + "] \(done)/\(total) \(String(format: "%.1f", rate)) images/s\n")
        } else if done * 10 / max(total, 1) > lastTenth {
            lastTenth = done * 10 / max(total, 1)
            printError("\(label): \(done)/\(total) images, \(String(format: "%.1f", rate)) images/s")
        }
    }
}

