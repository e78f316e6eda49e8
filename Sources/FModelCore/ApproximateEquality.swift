/// How far apart two float arrays may be: `|a - b| <= atol + rtol * |b|` element-wise, the rule
/// numpy's `allclose` uses with `b` as the reference. Used by the tests and by comparisons
/// against TensorFlow alike.
public struct Tolerance: Sendable, Hashable, CustomStringConvertible {
    public var absolute: Float
    public var relative: Float

    public init(absolute: Float, relative: Float = 0) {
        self.absolute = absolute
        self.relative = relative
    }

    /// The project's standard for matching TensorFlow: 1e-4 absolute.
    public static let tensorFlow = Tolerance(absolute: 1e-4)

    public var description: String { "atol \(absolute), rtol \(relative)" }
}

/// How two arrays differ.
public struct Difference: Sendable, Hashable {
    /// Largest `|a - b|`.
    public var maxAbsolute: Float
    /// Mean `|a - b|`.
    public var meanAbsolute: Float
    /// Index of the first element outside the tolerance, if any.
    public var firstViolation: Int?

    /// Compares `actual` with `expected`; arrays of different lengths never match.
    public init(_ actual: [Float], _ expected: [Float], tolerance: Tolerance) {
        guard actual.count == expected.count else {
            self.init(maxAbsolute: .infinity, meanAbsolute: .infinity, firstViolation: 0)
            return
        }
        var maxAbs: Float = 0
        var sum: Double = 0
        var first: Int?
        for i in 0..<actual.count {
            let d = abs(actual[i] - expected[i])
            if !(d <= tolerance.absolute + tolerance.relative * abs(expected[i])), first == nil { first = i }
            maxAbs = d.isNaN ? .nan : max(maxAbs, d)
            sum += Double(d)
        }
        self.init(maxAbsolute: maxAbs, meanAbsolute: actual.isEmpty ? 0 : Float(sum / Double(actual.count)), firstViolation: first)
    }

    private init(maxAbsolute: Float, meanAbsolute: Float, firstViolation: Int?) {
        self.maxAbsolute = maxAbsolute
        self.meanAbsolute = meanAbsolute
        self.firstViolation = firstViolation
    }

    /// True when every element is within the tolerance.
    public var isWithinTolerance: Bool { firstViolation == nil }
}
