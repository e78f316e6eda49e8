import Foundation
@testable import FModelImport
@testable import FModelKeras
import Testing

@Suite struct LambdaScalingTests {
    /// `def scaling(x, scale): return x * scale` marshalled by CPython 3.11 (from a real tf-keras file).
    static let py311 = "4wIAAAAAAAAAAAAAAAIAAAADAAAA8wwAAACXAHwAfAF6BQAAUwApAU6pACkC2gF42gVzY2FsZXMC\nAAAAICB6EGZhY2VuZXRfa2VyYXMucHnaCF9zY2FsaW5ncgUAAAAIAAAAcwwAAACAANgLDIh1iTnQ\nBBTzAAAAAA==\n"

    func config(function: String, arguments: JSONValue) -> JSONValue {
        .object(["function": .array([.string(function), .null, .null]), "arguments": arguments])
    }

    @Test func recognisesFaceNetScaling() throws {
        let result = LambdaScaling.scale(config: config(function: Self.py311, arguments: .object(["scale": .number(0.17)])))
        #expect(try result.get() == Float(0.17))
    }

    @Test func recognisesPython38Bytecode() {
        // LOAD_FAST 0, LOAD_FAST 1, BINARY_MULTIPLY, RETURN_VALUE
        #expect(LambdaScaling.isReturnProductOfArguments([124, 0, 124, 1, 20, 0, 83, 0]))
    }

    @Test func rejectsOtherArithmetic() {
        // x + scale (BINARY_OP 0) and x * x
        #expect(!LambdaScaling.isReturnProductOfArguments([151, 0, 124, 0, 124, 1, 122, 0, 0, 0, 83, 0]))
        #expect(!LambdaScaling.isReturnProductOfArguments([151, 0, 124, 0, 124, 0, 122, 5, 0, 0, 83, 0]))
    }

    @Test func rejectsMissingOrExtraArguments() {
        #expect(throws: LambdaMismatch.self) { try LambdaScaling.scale(config: config(function: Self.py311, arguments: .object([:]))).get() }
        #expect(throws: LambdaMismatch.self) {
            try LambdaScaling.scale(config: config(function: Self.py311, arguments: .object(["scale": .number(1), "bias": .number(0)]))).get()
        }
        #expect(throws: LambdaMismatch.self) { try LambdaScaling.scale(config: config(function: "AAAA", arguments: .object(["scale": .number(1)]))).get() }
    }
}
