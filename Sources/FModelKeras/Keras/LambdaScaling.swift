import FModelImport
import Foundation

/// Recognises the residual scaling Lambda of Keras FaceNet models, `def scaling(x, scale):
/// return x * scale` with `arguments: {"scale": s}`, by reading — never running — the
/// marshalled CPython code object that Keras stores as base64.
enum LambdaScaling {
    /// The scale of a recognised scaling Lambda, or a description of what was seen instead.
    static func scale(config: JSONValue) -> Result<Float, LambdaMismatch> {
        guard let args = config["arguments"]?.object, args.count == 1, let arg = args["scale"] else {
            return .failure(.init("arguments are \(config["arguments"]?.brief ?? "missing"), expected {\"scale\": number}"))
        }
        guard let scale = arg.double else { return .failure(.init("argument 'scale' is \(arg.brief), not a number")) }
        let function = config["function"]
        // Keras 3 saves a named function by name only: keras-facenet's `scaling` is the one known.
        if function?["class_name"]?.string == "function" {
            let name = function?["config"]?.string ?? "?"
            return name == "scaling" ? .success(Float(scale)) : .failure(.init("it calls the function '\(name)', not keras-facenet's 'scaling'"))
        }
        let encoded = function?[0]?.string ?? function?["config"]?["code"]?.string ?? function?.string
        guard let encoded, let code = Data(base64Encoded: encoded, options: .ignoreUnknownCharacters) else {
            return .failure(.init("the function is not base64 of a marshalled code object"))
        }
        switch bytecodeMultipliesArguments([UInt8](code)) {
        case .success: return .success(Float(scale))
        case .failure(let e): return .failure(e)
        }
    }

    /// Checks that a marshalled code object takes two arguments and returns their product.
    static func bytecodeMultipliesArguments(_ m: [UInt8]) -> Result<Void, LambdaMismatch> {
        guard m.first.map({ $0 & 0x7F }) == 0x63 else { return .failure(.init("the function is not a marshalled code object")) }
        func int32(_ o: Int) -> Int? { o + 4 <= m.count ? Int(Int32(littleEndian: m[o..<o + 4].withUnsafeBytes { $0.loadUnaligned(as: Int32.self) })) : nil }
        guard let argc = int32(1) else { return .failure(.init("the code object is truncated")) }
        guard argc == 2 else { return .failure(.init("the function takes \(argc) argument(s), expected (x, scale)")) }
        // CPython 3.11+ stores 5 header ints before co_code, 3.8–3.10 store 6.
        for ints in [5, 6] {
            let at = 1 + 4 * ints
            guard at + 5 <= m.count, m[at] & 0x7F == 0x73, let n = int32(at + 1), n >= 0, at + 5 + n <= m.count else { continue }
            let ops = Array(m[at + 5..<at + 5 + n])
            return isReturnProductOfArguments(ops)
                ? .success(()) : .failure(.init("its bytecode \(hex(ops)) is not `return x * scale`"))
        }
        return .failure(.init("no bytecode found in the code object"))
    }

    /// `LOAD_FAST 0; LOAD_FAST 1; multiply; RETURN_VALUE`, ignoring RESUME, NOP and inline caches.
    static func isReturnProductOfArguments(_ code: [UInt8]) -> Bool {
        var ops: [(UInt8, UInt8)] = []
        var i = 0
        while i + 1 < code.count {
            let (op, arg) = (code[i], code[i + 1])
            if op != 0 && op != 9 && op != 151 { ops.append((op, arg)) }  // CACHE, NOP, RESUME
            i += 2
        }
        guard ops.count == 4, ops[0].0 == 124, ops[1].0 == 124, Set([ops[0].1, ops[1].1]) == [0, 1], ops[3].0 == 83 else { return false }
        let multiply = ops[2].0 == 20 || (ops[2].0 == 122 && (ops[2].1 == 5 || ops[2].1 == 18))  // BINARY_MULTIPLY / BINARY_OP *
        return multiply
    }

    private static func hex(_ b: [UInt8]) -> String { b.prefix(24).map { String(format: "%02x", $0) }.joined() }
}

/// What a Lambda was, when it is not the recognised scaling.
struct LambdaMismatch: Error {
    let saw: String
    init(_ saw: String) { self.saw = saw }
}
