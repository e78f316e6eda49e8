import FModelCore

/// The graph lowered to a list of instructions, each a step with the values it reads and the
/// value it writes. Values are numbered: the model inputs first, then one per node.
///
/// With `fuse`, a conv, depthwise or dense step absorbs the nodes that only transform its output
/// (a `scale`, a residual `add`, an activation) into its epilogue, as long as nothing else reads
/// what they replace; the absorbed nodes then have no instruction and their values don't exist.
struct Program {
    /// A class, so that a run reading one takes one reference rather than copying its fields.
    final class Instruction {
        let step: Step
        /// The node whose inputs the step reads (for a fused group, its first node).
        let node: Node
        /// The name of the value written (for a fused group, its last node's).
        let outputName: String
        let inputs: [Int]
        let output: Int
        /// The value a fused residual `add` adds, if any.
        let residual: Int?
        /// The ops it runs, `+`-joined for a fused group (`conv2d+scale+add+activation`).
        let ops: String

        init(step: Step, node: Node, outputName: String, inputs: [Int], output: Int, residual: Int?, ops: String) {
            (self.step, self.node, self.outputName, self.inputs) = (step, node, outputName, inputs)
            (self.output, self.residual, self.ops) = (output, residual, ops)
        }
    }

    let instructions: [Instruction]
    /// Made with fusion.
    let fused: Bool
    /// The values no instruction writes (fused away).
    let missing: Set<Int>
    /// For each value, the index of the last instruction that reads it (-1: none).
    let lastUse: [Int]
    /// Maximal sequences of two or more instructions (indices, in order; not always adjacent)
    /// that oneDNN could run as one chain (`NativeChain`): float32 native convolutions without
    /// a residual, and max pools, each reading only what the one before wrote, which nothing
    /// else reads and is no model output. All but the first depend on nothing else, so the
    /// sequence can run where its first instruction stands.
    let linearRuns: [[Int]]
    /// By instruction: where it writes its output straight into the concat that alone reads it,
    /// so that the concat copies nothing of it (`ConcatSlot`); nil for most.
    let concatSlots: [ConcatSlot?]

    /// A concat input's place in the concat's output: its channels, `offset` on in each pixel
    /// of `width`. Only int8 convolutions write there (their epilogue writes any stride), and
    /// only values nothing else reads and no one asks for. The concat's buffer is taken when
    /// its first such input is written, and the concat then copies only its other inputs.
    struct ConcatSlot {
        /// The concat's instruction and its output value.
        let concat: Int
        let value: Int
        let offset: Int
        let width: Int
        /// The input value written there.
        let part: Int
    }

    init(graph: Graph, steps: [Step], valueIndex: [String: Int], shapes: [String: Shape], fuse: Bool) {
        var consumers: [String: [Int]] = [:]
        for (i, node) in graph.nodes.enumerated() { for name in Set(node.inputs) { consumers[name, default: []].append(i) } }
        let outputs = Set(graph.outputs)
        let producer = Dictionary(uniqueKeysWithValues: graph.nodes.enumerated().map { ($1.name, $0) })

        var instructions: [Instruction] = []
        var absorbed = Set<Int>()
        var missing = Set<Int>()
        for (i, node) in graph.nodes.enumerated() where !absorbed.contains(i) {
            var step = steps[i], last = node, residual: Int?
            var ops = [node.op.kind]
            if fuse, var epilogue = step.epilogue {
                // Follow the chain while each link is the only reader of the one before.
                chain: while !outputs.contains(last.name), let readers = consumers[last.name], readers.count == 1 {
                    let j = readers[0], next = graph.nodes[j]
                    guard shapes[next.name] == shapes[last.name] else { break chain }
                    switch next.op {
                    case .scale(let s) where epilogue.activation == .linear && !epilogue.addsResidual:
                        epilogue.scale *= s
                    case .add where next.inputs.count == 2 && epilogue.activation == .linear && !epilogue.addsResidual:
                        let other = next.inputs[0] == last.name ? next.inputs[1] : next.inputs[0]
                        // The residual must exist when this step runs: a model input or an
                        // earlier node's value that was not itself fused away.
                        guard other != last.name, shapes[other] == shapes[next.name], (producer[other] ?? -1) < i,
                              !missing.contains(valueIndex[other]!) else { break chain }
                        epilogue.addsResidual = true
                        residual = valueIndex[other]
                    case .activation(let a) where epilogue.activation == .linear:
                        epilogue.activation = a
                    default:
                        break chain
                    }
                    absorbed.insert(j)
                    ops.append(next.op.kind)
                    missing.insert(valueIndex[last.name]!)
                    last = next
                }
                // Only a step that absorbed something gets a new epilogue (and new primitives):
                // the others share theirs with the unfused program.
                if last.name != node.name { step = step.with(epilogue) }
            }
            instructions.append(Instruction(step: step, node: node, outputName: last.name,
                                            inputs: node.inputs.map { valueIndex[$0]! }, output: valueIndex[last.name]!,
                                            residual: residual, ops: ops.joined(separator: "+")))
        }
        self.instructions = instructions
        self.fused = fuse
        self.missing = missing
        var last = [Int](repeating: -1, count: valueIndex.count)
        for (i, instruction) in instructions.enumerated() {
            for v in instruction.inputs { last[v] = i }
            if let r = instruction.residual { last[r] = i }
        }
        lastUse = last
        var readers = [[Int]](repeating: [], count: valueIndex.count)
        for (i, instruction) in instructions.enumerated() {
            for v in Set(instruction.inputs + (instruction.residual.map { [$0] } ?? [])) { readers[v].append(i) }
        }
        let outputValues = Set(graph.outputs.compactMap { valueIndex[$0] })
        func chainable(_ i: Int) -> Bool {
            switch instructions[i].step {
            case .conv(let k):
                k.native != nil && !k.nativeFromFirstRun && !k.bf16 && instructions[i].residual == nil
                    && k.epilogue.activation.nativeCode != nil
            case .pool(_, let isMax): isMax
            default: false
            }
        }
        /// The instruction that alone reads what `i` writes, if it can follow `i` in a chain.
        func follower(_ i: Int) -> Int? {
            let v = instructions[i].output
            guard readers[v].count == 1, !outputValues.contains(v), let j = readers[v].first, chainable(j),
                  instructions[j].inputs == [v] else { return nil }
            return j
        }
        var followed = Set<Int>()
        for i in instructions.indices where chainable(i) { if let j = follower(i) { followed.insert(j) } }
        var runs: [[Int]] = []
        for i in instructions.indices where chainable(i) && !followed.contains(i) {
            var run = [i]
            while let j = follower(run.last!) { run.append(j) }
            if run.count >= 2 { runs.append(run) }
        }
        linearRuns = runs
        concatSlots = Program.concatSlots(instructions, readers: readers, outputs: outputValues, shapes: shapes)
    }

    /// The concat inputs that int8 convolutions can write in place (`ConcatSlot`), by writer.
    private static func concatSlots(_ instructions: [Instruction], readers: [[Int]], outputs: Set<Int>,
                                    shapes: [String: Shape]) -> [ConcatSlot?] {
        var writer: [Int: Int] = [:]
        for (i, instruction) in instructions.enumerated() { writer[instruction.output] = i }
        var slots = [ConcatSlot?](repeating: nil, count: instructions.count)
        for (c, concat) in instructions.enumerated() {
            guard case .concat(let axis) = concat.step, let outShape = shapes[concat.outputName],
                  axis == outShape.rank - 1, Set(concat.inputs).count == concat.inputs.count else { continue }
            var offset = 0
            // A concat absorbs nothing, so its inputs are its node's, in order.
            for (name, v) in zip(concat.node.inputs, concat.inputs) {
                guard let channels = shapes[name]?.dims.last else { break }
                defer { offset += channels }
                guard let w = writer[v], w < c, readers[v] == [c], !outputs.contains(v), instructions[w].residual == nil,
                      case .conv(let k) = instructions[w].step, case .int8 = k.weights else { continue }
                slots[w] = ConcatSlot(concat: c, value: concat.output, offset: offset, width: outShape.dims.last!, part: v)
            }
        }
        return slots
    }
}
