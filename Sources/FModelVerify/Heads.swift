import FModelCore

/// Which outputs of a model are the age, gender and ethnicity heads.
public struct FaceHeads: Sendable, Hashable, Codable {
    public var age: String
    public var gender: String
    public var ethnicity: String

    public init(age: String, gender: String, ethnicity: String) { (self.age, self.gender, self.ethnicity) = (age, gender, ethnicity) }

    /// Finds the heads by name (`age`, `gender`, `ethnicity` or `race`), else by width
    /// (117, 2, 5); explicit names win.
    /// - Throws: `VerifyError.noHeads` naming what the model has.
    public static func find(in graph: Graph, age: String? = nil, gender: String? = nil, ethnicity: String? = nil) throws(VerifyError) -> FaceHeads {
        let shapes = (try? graph.inferShapes()) ?? [:]
        let outputs = graph.outputs.map { ($0, shapes[$0]?.dims.last ?? -1) }
        func pick(_ explicit: String?, names: [String], width: Int) -> String? {
            if let explicit { return outputs.contains { $0.0 == explicit } ? explicit : nil }
            if let byName = outputs.first(where: { names.contains($0.0.lowercased()) && $0.1 == width }) { return byName.0 }
            let bySize = outputs.filter { $0.1 == width }
            return bySize.count == 1 ? bySize[0].0 : nil
        }
        guard let a = pick(age, names: ["age"], width: 117), let g = pick(gender, names: ["gender"], width: 2),
              let e = pick(ethnicity, names: ["ethnicity", "race"], width: 5) else {
            throw .noHeads(has: outputs.map { "\($0.0) [\($0.1)]" })
        }
        return FaceHeads(age: a, gender: g, ethnicity: e)
    }
}

/// Why a verification could not run.
public enum VerifyError: Error, Equatable, Sendable, CustomStringConvertible {
    case noHeads(has: [String])
    case inputNotAnImage(name: String, shape: Shape)

    public var description: String {
        switch self {
        case .noHeads(let has): "the model has no age (117), gender (2) and ethnicity (5) outputs; it has \(has.joined(separator: ", ")) (name them with --age-output, --gender-output, --ethnicity-output)"
        case .inputNotAnImage(let n, let s): "the model's input '\(n)' \(s) is not an RGB image [?,H,W,3] of sides up to \(ImagePreprocessor.maxSide)"
        }
    }
}
