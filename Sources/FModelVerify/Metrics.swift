/// One model's answer for one face.
public struct FacePrediction: Sendable, Hashable {
    /// Expected value Σ p·i over the 117-way age softmax.
    public var age: Double
    public var gender: [Float]
    public var ethnicity: [Float]

    public init(age: [Float], gender: [Float], ethnicity: [Float]) {
        var expected = 0.0
        for (i, p) in age.enumerated() { expected += Double(p) * Double(i) }
        self.age = expected
        self.gender = gender
        self.ethnicity = ethnicity
    }

    public var genderClass: Int { argmax(gender) }
    public var ethnicityClass: Int { argmax(ethnicity) }
}

func argmax(_ v: [Float]) -> Int { v.indices.max { v[$0] < v[$1] } ?? 0 }

/// Accuracy figures over a set of faces.
public struct FaceMetrics: Sendable, Hashable, Codable {
    public var images: Int
    public var ageRMSE: Double
    public var ageMAE: Double
    /// Fractions 0–1.
    public var genderAccuracy: Double
    public var ethnicityAccuracy: Double

    enum CodingKeys: String, CodingKey {
        case images, ageRMSE = "age_rmse", ageMAE = "age_mae", genderAccuracy = "gender_accuracy", ethnicityAccuracy = "ethnicity_accuracy"
    }

    /// Computes the metrics of `pairs` (prediction, truth).
    public init(_ pairs: [(FacePrediction, FaceLabels)]) {
        images = pairs.count
        let n = Double(max(pairs.count, 1))
        ageRMSE = (pairs.reduce(0.0) { $0 + ($1.0.age - Double($1.1.age)) * ($1.0.age - Double($1.1.age)) } / n).squareRoot()
        ageMAE = pairs.reduce(0.0) { $0 + abs($1.0.age - Double($1.1.age)) } / n
        genderAccuracy = Double(pairs.filter { $0.0.genderClass == $0.1.gender }.count) / n
        ethnicityAccuracy = Double(pairs.filter { $0.0.ethnicityClass == $0.1.race }.count) / n
    }
}

/// Metrics of one model with confusion matrices and breakdowns by gender and race.
public struct ModelEvaluation: Sendable, Codable {
    public var overall: FaceMetrics
    /// `[truth][predicted]` counts.
    public var genderConfusion: [[Int]]
    public var ethnicityConfusion: [[Int]]
    public var byGender: [String: FaceMetrics]
    public var byRace: [String: FaceMetrics]

    enum CodingKeys: String, CodingKey {
        case overall, genderConfusion = "gender_confusion", ethnicityConfusion = "ethnicity_confusion", byGender = "by_gender", byRace = "by_race"
    }

    public init(_ pairs: [(FacePrediction, FaceLabels)]) {
        overall = FaceMetrics(pairs)
        var g = [[Int]](repeating: [0, 0], count: 2), e = [[Int]](repeating: [Int](repeating: 0, count: 5), count: 5)
        for (p, t) in pairs {
            g[t.gender][p.genderClass] += 1
            e[t.race][p.ethnicityClass] += 1
        }
        genderConfusion = g
        ethnicityConfusion = e
        byGender = Dictionary(uniqueKeysWithValues: FaceLabels.genders.enumerated().map { i, name in (name, FaceMetrics(pairs.filter { $0.1.gender == i })) })
        byRace = Dictionary(uniqueKeysWithValues: FaceLabels.races.enumerated().map { i, name in (name, FaceMetrics(pairs.filter { $0.1.race == i })) })
    }
}

/// How closely a candidate follows the reference, image by image.
public struct Fidelity: Sendable, Hashable, Codable {
    public var genderAgreement: Double
    public var ethnicityAgreement: Double
    /// RMSE between the two models' ages, in years.
    public var ageRMSE: Double
    /// Largest absolute difference of any probability of any head.
    public var maxProbabilityDifference: Double

    enum CodingKeys: String, CodingKey {
        case genderAgreement = "gender_agreement", ethnicityAgreement = "ethnicity_agreement", ageRMSE = "age_rmse", maxProbabilityDifference = "max_probability_difference"
    }

    public init(reference: [FacePrediction], candidate: [FacePrediction]) {
        let n = Double(max(reference.count, 1))
        var g = 0, e = 0, sq = 0.0, worst: Float = 0
        for (r, c) in zip(reference, candidate) {
            if r.genderClass == c.genderClass { g += 1 }
            if r.ethnicityClass == c.ethnicityClass { e += 1 }
            sq += (r.age - c.age) * (r.age - c.age)
            for (a, b) in zip(r.gender + r.ethnicity, c.gender + c.ethnicity) { worst = max(worst, abs(a - b)) }
        }
        genderAgreement = Double(g) / n
        ethnicityAgreement = Double(e) / n
        ageRMSE = (sq / n).squareRoot()
        maxProbabilityDifference = Double(worst)
    }
}
