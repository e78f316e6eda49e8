import FModelCore
import FModelImport
import FModelKeras
import FModelTestSupport
import FModelVerify
import Foundation
import Testing

@Suite struct MetricsTests {
    func oneHot(_ i: Int, _ n: Int) -> [Float] { (0..<n).map { $0 == i ? 1 : 0 } }

    func prediction(age: Int, gender: Int, race: Int) -> FacePrediction {
        FacePrediction(age: oneHot(age, 117), gender: oneHot(gender, 2), ethnicity: oneHot(race, 5))
    }

    @Test func ageIsTheExpectedValue() {
        var p = [Float](repeating: 0, count: 117)
        (p[20], p[40]) = (0.5, 0.5)
        #expect(FacePrediction(age: p, gender: [1, 0], ethnicity: oneHot(0, 5)).age == 30)
    }

    @Test func metricsByHand() {
        let pairs = [
            (prediction(age: 30, gender: 0, race: 1), FaceLabels(age: 33, gender: 0, race: 1)),
            (prediction(age: 50, gender: 1, race: 2), FaceLabels(age: 46, gender: 0, race: 2)),
        ]
        let m = FaceMetrics(pairs)
        #expect(m.images == 2 && abs(m.ageRMSE - (12.5).squareRoot()) < 1e-12 && m.ageMAE == 3.5)
        #expect(m.genderAccuracy == 0.5 && m.ethnicityAccuracy == 1)
        let e = ModelEvaluation(pairs)
        #expect(e.genderConfusion == [[1, 1], [0, 0]])
        #expect(e.byGender["male"]?.images == 2 && e.byGender["female"]?.images == 0)
        #expect(e.byRace["Asian"]?.ageMAE == 4)
    }

    @Test func fidelityComparesImageByImage() {
        let a = [prediction(age: 30, gender: 0, race: 1), prediction(age: 40, gender: 1, race: 1)]
        let b = [prediction(age: 34, gender: 0, race: 1), prediction(age: 40, gender: 0, race: 1)]
        let f = Fidelity(reference: a, candidate: b)
        #expect(f.genderAgreement == 0.5 && f.ethnicityAgreement == 1 && f.ageRMSE == (8.0).squareRoot() && f.maxProbabilityDifference == 1)
    }

    @Test func boundsDecide() {
        let r = FaceMetrics([(prediction(age: 30, gender: 0, race: 1), FaceLabels(age: 30, gender: 0, race: 1))])
        let worse = FaceMetrics([(prediction(age: 31, gender: 1, race: 1), FaceLabels(age: 30, gender: 0, race: 1))])
        let same = VerifyReport.checks(reference: r, candidate: r, bounds: VerifyBounds())
        #expect(same.filter { !$0.passed }.isEmpty && same.count == 3)
        let checks = VerifyReport.checks(reference: r, candidate: worse, bounds: VerifyBounds())
        #expect(checks.map(\.passed) == [false, false, true])
        #expect(checks[1].change == 100)
    }

    @Test func headsAreFoundByNameOrSize() throws {
        let g = try ModelLoader.load(path: Fixtures.path("multitask_flat.h5"), options: .inProcess)
        #expect(try FaceHeads.find(in: g) == FaceHeads(age: "age", gender: "gender", ethnicity: "ethnicity"))
        var renamed = g
        renamed.outputs = g.outputs.map { "out_" + $0 }
        for i in renamed.nodes.indices where g.outputs.contains(renamed.nodes[i].name) { renamed.nodes[i].name = "out_" + renamed.nodes[i].name }
        #expect(try FaceHeads.find(in: renamed) == FaceHeads(age: "out_age", gender: "out_gender", ethnicity: "out_ethnicity"))
        let other = try ModelLoader.load(path: Fixtures.path("functional_zoo.h5"), options: .inProcess)
        #expect(throws: VerifyError.noHeads(has: ["probs [3]", "embedding [5]"])) { try FaceHeads.find(in: other) }
    }
}
