import FModelCore

/// A frozen graph may keep function calls: tf-keras's `Conv2D(groups=)` compiles its product
/// in a function (`__inference__jit_compiled_convolution_op_…`) that freezing leaves behind a
/// `PartitionedCall`, and graphs frozen with their functions kept call them
/// (`StatefulPartitionedCall`). Each call is replaced by its function's body, renamed under
/// the call (`call/node`): an `Identity` for each argument (`call/arg`) reads the call's input,
/// and the call itself becomes an `IdentityN` of the function's results, so that `call:k`
/// reads output k as before. Calls inside a body are inlined in turn.
enum FunctionInlining {
    static let callOps: Set<String> = ["PartitionedCall", "StatefulPartitionedCall"]
    /// Calls nested deeper than this are refused: a function that calls itself would never end.
    static let maxDepth = 32
    /// The most bytes of names and inputs the inlined nodes may add: each is renamed under its
    /// call, so a hostile file of long names called many times over would otherwise ask for
    /// any amount of memory (`maxNodes` bounds their number, not their size).
    static let maxAddedBytes = 1 << 26

    /// Output arguments of ops that have more than one, in order: a body reads output
    /// `node:arg:k`, which is the node's output (the arguments before `arg`) + k. Every other
    /// op has one output argument (a tensor, or a list as IdentityN's), read at k.
    static let outputArguments: [String: [String]] = {
        var table: [String: [String]] = ["Switch": ["output_false", "output_true"], "Merge": ["output", "value_index"]]
        for op in ["FusedBatchNorm", "FusedBatchNormV2", "FusedBatchNormV3"] {
            table[op] = ["y", "batch_mean", "batch_variance", "reserve_space_1", "reserve_space_2", "reserve_space_3"]
        }
        return table
    }()

    /// Inlines every call in `nodes` (by name), at most `maxNodes` nodes in all.
    static func inline(_ nodes: inout [String: Tensorflow_NodeDef], library: [Tensorflow_FunctionDef], maxNodes: Int,
                       path: String) throws(ImportError) {
        var functions: [String: Tensorflow_FunctionDef] = [:]
        for f in library { functions[f.signature.name] = f }
        var calls = nodes.values.filter { callOps.contains($0.op) }.map { ($0.name, 1) }.sorted { $0.0 > $1.0 }  // by name, first popped first
        var addedBytes = 0
        while let (name, depth) = calls.popLast() {
            let call = nodes[name]!
            func fail(_ reason: String) -> ImportError { .badGraph(path: path, node: name, reason: reason) }
            let f = call.attr["f"]?.func.name ?? ""
            guard let function = functions[f] else { throw fail("\(call.op) of function '\(f)', which the graph's library does not hold") }
            guard depth <= maxDepth else { throw fail("calls nested more than \(maxDepth) deep (a function that calls itself?)") }
            let args = function.signature.inputArg.map(\.name), inputs = call.input.filter { !$0.hasPrefix("^") }
            guard args.count == inputs.count else { throw fail("calls '\(f)' with \(inputs.count) inputs; it takes \(args.count)") }
            guard nodes.count + args.count + function.nodeDef.count <= maxNodes else {
                throw fail("inlining '\(f)' makes more than \(maxNodes) nodes")
            }
            let body = Dictionary(function.nodeDef.map { ($0.name, $0.op) }, uniquingKeysWith: { a, _ in a })
            /// A reference inside the body, as one in the graph.
            func outer(_ ref: String) throws(ImportError) -> String {
                if ref.hasPrefix("^") { return "^\(name)/\(ref.dropFirst())" }
                let parts = ref.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
                switch parts.count {
                case 1: return "\(name)/\(ref)"  // an argument
                case 3:
                    guard let op = body[parts[0]], let k = Int(parts[2]), k >= 0 else { throw fail("'\(f)' reads '\(ref)', which it does not define") }
                    var index = k
                    if let outputs = outputArguments[op] {
                        guard let at = outputs.firstIndex(of: parts[1]) else { throw fail("'\(f)' reads output '\(parts[1])' of a \(op)") }
                        index += at
                    }
                    return "\(name)/\(parts[0]):\(index)"
                default: throw fail("'\(f)' reads '\(ref)', which is not like node:output:index")
                }
            }
            var added: [Tensorflow_NodeDef] = []
            for (arg, input) in zip(args, inputs) {
                var identity = Tensorflow_NodeDef()
                (identity.name, identity.op, identity.input) = ("\(name)/\(arg)", "Identity", [input])
                added.append(identity)
            }
            for n in function.nodeDef {
                var inner = n
                inner.name = "\(name)/\(n.name)"
                inner.input = try n.input.map(outer)
                added.append(inner)
                if callOps.contains(n.op) { calls.append((inner.name, depth + 1)) }
            }
            addedBytes += added.reduce(0) { $0 + $1.name.utf8.count + $1.input.reduce(0) { $0 + $1.utf8.count } }
            guard addedBytes <= maxAddedBytes else { throw fail("inlining '\(f)' makes more than \(maxAddedBytes >> 20) MB of node names") }
            for n in added {
                guard nodes[n.name] == nil else { throw fail("inlining '\(f)' makes a node '\(n.name)', which the graph already has") }
                nodes[n.name] = n
            }
            var results = Tensorflow_NodeDef()
            (results.name, results.op) = (name, "IdentityN")
            for arg in function.signature.outputArg {
                guard let ref = function.ret[arg.name] else { throw fail("'\(f)' does not return its output '\(arg.name)'") }
                results.input.append(try outer(ref))
            }
            nodes[name] = results
        }
    }
}
