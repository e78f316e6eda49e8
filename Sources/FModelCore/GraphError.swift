/// Why a graph is not well formed. Each case names the node and says what is wrong.
public enum GraphError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Two nodes or inputs share a name.
    case duplicateName(String)
    /// `node` consumes a value no earlier node or input produces.
    case unknownValue(node: String, value: String)
    /// `node` lacks the parameter tensor for `role`.
    case missingParameter(node: String, role: String)
    /// A tensor's bytes disagree with its dtype and shape.
    case invalidTensor(name: String, reason: String)
    /// Shapes or attributes do not fit the op.
    case invalidNode(node: String, reason: String)
    /// A model input's shape cannot be run.
    case invalidInput(name: String, reason: String)
    /// An output names no value.
    case unknownOutput(String)

    public var description: String {
        switch self {
        case .duplicateName(let n): "name '\(n)' is used twice"
        case .unknownValue(let node, let v): "node '\(node)' reads '\(v)', which nothing before it produces"
        case .missingParameter(let node, let role): "node '\(node)' has no '\(role)' tensor"
        case .invalidTensor(let n, let r): "tensor '\(n)': \(r)"
        case .invalidNode(let node, let r): "node '\(node)': \(r)"
        case .invalidInput(let n, let r): "input '\(n)': \(r)"
        case .unknownOutput(let o): "output '\(o)' names no value"
        }
    }

    /// The description, without the node's name when it is `node`'s: for a message that names
    /// the node already (it said "node 'X': node 'X': …").
    public func reason(at node: String) -> String {
        if case .invalidNode(node, let r) = self { return r }
        return description
    }
}
