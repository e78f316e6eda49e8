import Foundation

/// How much worse a candidate may be than the reference before `verify` fails.
public struct VerifyBounds: Sendable, Hashable, Codable {
    /// Years of age RMSE the candidate may add.
    public var maxAgeRMSEIncrease = 0.25
    /// Percentage points of gender accuracy the candidate may lose.
    public var maxGenderDrop = 0.5
    /// Percentage points of ethnicity accuracy the candidate may lose.
    public var maxEthnicityDrop = 1.5

    enum CodingKeys: String, CodingKey {
        case maxAgeRMSEIncrease = "max_age_rmse_increase", maxGenderDrop = "max_gender_drop", maxEthnicityDrop = "max_ethnicity_drop"
    }

    public init() {}
}

/// A model as the report names it.
public struct ModelEntry: Sendable, Codable {
    public var path: String
    public var sha256: String
    public var sizeBytes: Int
    /// What its float32 convolutions multiplied in (`f32`, or `bf16` where the CPU has it);
    /// reports written before there was a choice read as `f32`.
    public var precision: String
    public var metrics: FaceMetrics
    public var details: ModelEvaluation

    public init(path: String, sha256: String, sizeBytes: Int, precision: String = "f32", evaluation: ModelEvaluation) {
        (self.path, self.sha256, self.sizeBytes, self.precision) = (path, sha256, sizeBytes, precision)
        (metrics, details) = (evaluation.overall, evaluation)
    }

    enum CodingKeys: String, CodingKey { case path, sha256, sizeBytes = "size_bytes", precision, details }

    public func encode(to encoder: any Encoder) throws {
        try metrics.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(path, forKey: .path)
        try c.encode(sha256, forKey: .sha256)
        try c.encode(sizeBytes, forKey: .sizeBytes)
        try c.encode(precision, forKey: .precision)
        try c.encode(details, forKey: .details)
    }

    public init(from decoder: any Decoder) throws {
        metrics = try FaceMetrics(from: decoder)
        let c = try decoder.container(keyedBy: CodingKeys.self)
        path = try c.decode(String.self, forKey: .path)
        sha256 = try c.decode(String.self, forKey: .sha256)
        sizeBytes = try c.decode(Int.self, forKey: .sizeBytes)
        precision = try c.decodeIfPresent(String.self, forKey: .precision) ?? "f32"
        details = try c.decode(ModelEvaluation.self, forKey: .details)
    }
}

/// One bound checked: the change seen and whether it holds.
public struct BoundCheck: Sendable, Codable, Hashable {
    public var name: String
    /// The candidate's change against the reference, in the bound's unit (worse is positive).
    public var change: Double
    public var bound: Double
    public var passed: Bool
}

/// Everything `verify` measured and decided.
public struct VerifyReport: Sendable, Codable {
    public var passed: Bool
    public var images: Int
    public var reference: ModelEntry?
    public var candidate: ModelEntry
    public var bounds: VerifyBounds
    public var checks: [BoundCheck]
    public var fidelity: Fidelity?
    public var dataset: String
    public var skippedNames: [SkippedName]
    public var unreadableImages: [SkippedName]
    public var seconds: Double
    public var imagesPerSecond: Double

    public init(passed: Bool, images: Int, reference: ModelEntry?, candidate: ModelEntry, bounds: VerifyBounds, checks: [BoundCheck],
                fidelity: Fidelity?, dataset: String, skippedNames: [SkippedName], unreadableImages: [SkippedName],
                seconds: Double, imagesPerSecond: Double) {
        (self.passed, self.images, self.reference, self.candidate, self.bounds, self.checks) = (passed, images, reference, candidate, bounds, checks)
        (self.fidelity, self.dataset, self.skippedNames, self.unreadableImages) = (fidelity, dataset, skippedNames, unreadableImages)
        (self.seconds, self.imagesPerSecond) = (seconds, imagesPerSecond)
    }

    enum CodingKeys: String, CodingKey {
        case passed, images, reference, candidate, bounds, checks, fidelity, dataset, seconds
        case skippedNames = "skipped_names", unreadableImages = "unreadable_images", imagesPerSecond = "images_per_second"
    }

    /// Applies `bounds` to a candidate against a reference (no reference: nothing to bound).
    public static func checks(reference: FaceMetrics?, candidate: FaceMetrics, bounds: VerifyBounds) -> [BoundCheck] {
        guard let r = reference else { return [] }
        func check(_ name: String, _ change: Double, _ bound: Double) -> BoundCheck {
            BoundCheck(name: name, change: change, bound: bound, passed: change <= bound + 1e-12)
        }
        return [
            check("age_rmse_increase", candidate.ageRMSE - r.ageRMSE, bounds.maxAgeRMSEIncrease),
            check("gender_accuracy_drop", (r.genderAccuracy - candidate.genderAccuracy) * 100, bounds.maxGenderDrop),
            check("ethnicity_accuracy_drop", (r.ethnicityAccuracy - candidate.ethnicityAccuracy) * 100, bounds.maxEthnicityDrop),
        ]
    }

    /// The JSON report.
    public func json() throws -> Data {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return try e.encode(self)
    }

    /// A JUnit XML report: one test case per bound.
    public func junit() -> String {
        let failures = checks.filter { !$0.passed }.count
        var xml = #"<?xml version="1.0" encoding="UTF-8"?>"# + "\n"
        xml += #"<testsuite name="fmodel verify" tests="\#(checks.count)" failures="\#(failures)" time="\#(String(format: "%.3f", seconds))">"# + "\n"
        for c in checks {
            xml += #"  <testcase classname="fmodel.verify" name="\#(escape(c.name))">"#
            if !c.passed {
                xml += #"<failure message="\#(escape(String(format: "%@ changed by %.4f, bound %.4f", c.name, c.change, c.bound)))"/>"#
            }
            xml += "</testcase>\n"
        }
        return xml + "</testsuite>\n"
    }

    private func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// The side-by-side table printed to the terminal.
    public func table() -> String {
        var lines = [pad("metric", 22) + pad("reference", 12) + pad("candidate", 12) + pad("delta", 10) + pad("bound", 9) + "result"]
        let c = candidate.metrics, r = reference?.metrics
        let rows: [(String, Double?, Double, String?)] = [
            ("age RMSE (years)", r?.ageRMSE, c.ageRMSE, "age_rmse_increase"),
            ("age MAE (years)", r?.ageMAE, c.ageMAE, nil),
            ("gender accuracy %", r.map { $0.genderAccuracy * 100 }, c.genderAccuracy * 100, "gender_accuracy_drop"),
            ("ethnicity accuracy %", r.map { $0.ethnicityAccuracy * 100 }, c.ethnicityAccuracy * 100, "ethnicity_accuracy_drop"),
        ]
        for (name, ref, cand, bound) in rows {
            let check = bound.flatMap { b in checks.first { $0.name == b } }
            lines.append(pad(name, 22) + pad(ref.map { String(format: "%.3f", $0) } ?? "-", 12) + pad(String(format: "%.3f", cand), 12)
                         + pad(ref.map { String(format: "%+.3f", cand - $0) } ?? "-", 10)
                         + pad(check.map { String(format: "%.2f", $0.bound) } ?? "-", 9) + (check.map { $0.passed ? "pass" : "FAIL" } ?? ""))
        }
        lines.append(pad("size", 22) + pad(reference.map { String($0.sizeBytes) } ?? "-", 12) + pad(String(candidate.sizeBytes), 12))
        lines.append(pad("precision", 22) + pad(reference?.precision ?? "-", 12) + pad(candidate.precision, 12))
        if let f = fidelity {
            lines.append(String(format: "fidelity: gender agreement %.2f%%, ethnicity agreement %.2f%%, age RMSE between models %.3f, max |Δp| %.4f",
                                f.genderAgreement * 100, f.ethnicityAgreement * 100, f.ageRMSE, f.maxProbabilityDifference))
        }
        lines.append("\(images) images in \(String(format: "%.1f", seconds)) s (\(String(format: "%.1f", imagesPerSecond)) images/s); \(skippedNames.count) names skipped, \(unreadableImages.count) images unreadable")
        // Which, and why: the first few of each (only the counts were printed; the reasons were
        // in the JSON report alone). An unreadable image's reason names it already.
        for (kind, list) in [("skipped", skippedNames.map { "\($0.name): \($0.reason)" }), ("unreadable", unreadableImages.map(\.reason))] where !list.isEmpty {
            lines += list.prefix(Self.listed).map { "  \(kind): \($0)" }
            if list.count > Self.listed { lines.append("  … \(list.count - Self.listed) more \(kind) (all in --report or --json)") }
        }
        lines.append(passed ? "PASSED" : "FAILED: " + checks.filter { !$0.passed }.map(\.name).joined(separator: ", "))
        return lines.joined(separator: "\n")
    }

    /// Skipped names and unreadable images the table lists, of each.
    static let listed = 3

    private func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s + " " : s.padding(toLength: n, withPad: " ", startingAt: 0) }
}
