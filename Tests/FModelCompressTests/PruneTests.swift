import FModelCompress
import FModelCore
import FModelImport
import FModelKeras
import FModelRuntime
import FModelTestSupport
import Testing

@Suite struct PruneTests {
    func model() throws -> Graph { try ModelLoader.load(path: Fixtures.path("multitask_flat.h5"), options: .inProcess) }

    @Test func keepingEveryUnitIsTheIdentity() throws {
        let g = try model()
        let (pruned, report) = try DensePruner(graph: g, layer: "fc1").prune(keep: 24)
        let x = try g.syntheticInputs(batch: 2)
        #expect(try Executor(graph: pruned).run(x) == Executor(graph: g).run(x))
        #expect(report.bytesSaved == 0 && report.consumers == ["fc2"])
    }

    @Test func pruningShrinksEveryReader() throws {
        let g = try model()
        let (pruned, report) = try DensePruner(graph: g, layer: "fc2").prune(keep: 4)
        #expect(report.consumers.sorted() == ["age_fc", "ethnicity_fc", "gender_fc"])
        #expect(pruned.param("kernel", of: pruned.node(named: "fc2")!)?.shape == [24, 4])
        #expect(pruned.param("kernel", of: pruned.node(named: "age_fc")!)?.shape == [4, 8])
        #expect(report.bytesSaved == (24 + 1 + 3 * 8) * 12 * 4)
        try pruned.validate()
    }

    /// With data, the readers are refitted: their outputs move less than without refitting.
    @Test func refittingOnDataMovesOutputsLess() throws {
        let g = try model()
        let x = try g.syntheticInputs(batch: 24, seed: 5)
        let plain = try DensePruner(graph: g, layer: "fc1").prune(keep: 12).0
        let (refit, report) = try DensePruner(graph: g, layer: "fc1").prune(keep: 12, inputs: x)
        #expect(report.refitted)
        let before = try Executor(graph: g).run(x, outputs: ["fc2"])["fc2"]!.values
        func error(_ m: Graph) throws -> Float {
            let after = try Executor(graph: m).run(x, outputs: ["fc2"])["fc2"]!.values
            return zip(before, after).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }
        }
        #expect(try error(refit) < error(plain))
    }

    @Test func unprunableLayersAreErrors() throws {
        let g = try model()
        #expect(throws: PruneError.notADenseLayer("Conv2d_1a_3x3")) { try DensePruner(graph: g, layer: "Conv2d_1a_3x3") }
        #expect(throws: PruneError.isAnOutput("age")) { try DensePruner(graph: g, layer: "age") }
        #expect(throws: PruneError.self) { try DensePruner(graph: g, layer: "fc1").prune(keep: 0) }
    }
}
