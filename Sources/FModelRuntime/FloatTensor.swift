import FModelCore

/// A dense float32 activation held in memory: a model's input or output.
public struct FloatTensor: Sendable, Equatable {
    public var shape: Shape
    public var values: [Float]

    /// Creates a tensor; `values.count` must equal the shape's element count.
    public init(shape: Shape, values: [Float]) {
        precondition(shape.elementCount == values.count, "shape \(shape) does not hold \(values.count) values")
        self.shape = shape
        self.values = values
    }
}

/// Why a model could not run.
public enum RuntimeError: Error, Equatable, Sendable, CustomStringConvertible {
    /// An input the model needs was not given.
    case missingInput(String)
    /// An input was given that the model does not have.
    case unknownInput(name: String, known: [String])
    /// An input's shape does not fit the model.
    case inputShape(name: String, expected: Shape, got: Shape)
    /// A requested value is not in the graph.
    case unknownValue(String)
    /// An input's values do not fill its shape (its fields were changed after it was made).
    case inputValueCount(name: String, shape: Shape, count: Int)
    /// A run's activations would need more memory than the executor may take
    /// (`Executor.activationLimit`: `Executor.memoryAvailable` unless set).
    case activationMemory(batch: Int, bytes: Int, limit: Int)
    /// Inputs were to be made up for a model input whose sizes besides the batch are not known.
    case unsizedInput(name: String, shape: Shape)

    public var description: String {
        switch self {
        case .missingInput(let n): "input '\(n)' was not given"
        case .unknownInput(let n, let known): "the model has no input '\(n)' (it has \(known.joined(separator: ", ")))"
        case .inputShape(let n, let e, let g): "input '\(n)' has shape \(g), the model takes \(e)"
        case .unknownValue(let n): "the model has no value '\(n)'"
        case .inputValueCount(let n, let s, let c): "input '\(n)' has \(c) values for shape \(s)"
        case .activationMemory(let b, let bytes, let limit):
            "a run of \(b) image\(b == 1 ? "" : "s") needs \(memoryText(bytes, .up)) of activation memory; at most \(memoryText(limit, .down)) may be taken (the machine's memory, its cgroup's limit or ulimit -v/-d)"
        case .unsizedInput(let n, let s): "input '\(n)' \(s) has unknown sizes besides the batch (only the batch may be unknown)"
        }
    }
}
