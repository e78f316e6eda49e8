import FModelCore
@testable import FModelFormat
import FModelTestSupport
import Foundation
import Testing

/// The reader's own JSON decoder against Foundation's, which wrote the headers: the same values
/// from every header, and a syntax error with its byte offset for everything that is not JSON.
@Suite struct HeaderJSONTests {
    /// A header with every op and attribute the format has, escapes and non-ASCII names.
    static func header() -> FileHeader {
        let conv = ConvAttributes(strides: [2, 1], dilations: [1, 2], padding: .valid, activation: .leakyRelu(alpha: 0.1))
        let ops: [Op] = [
            .conv2D(conv), .depthwiseConv2D(ConvAttributes(padding: .same, activation: .relu6)), .dense(activation: .softmax),
            .batchNorm(epsilon: 1.001e-5), .activation(.sigmoid), .activation(.tanh),
            .maxPool(PoolAttributes(size: [3, 3], strides: [2, 2], padding: .valid)), .avgPool(PoolAttributes(size: [2, 2], strides: [1, 1], padding: .same)),
            .globalAvgPool(keepDims: true), .globalMaxPool(keepDims: false), .concat(axis: -1), .add, .affine, .mul,
            .scale(0.17), .reshape(shape: [-1, 7]), .flatten, .zeroPad(top: 1, bottom: 2, left: 3, right: 4), .dropout(rate: 0.2), .identity,
            .l2Normalize(epsilon: 1e-10),
        ]
        let names = ["conv/é", "a \"quoted\" name", "tab\there", "slash/back\\slash", "emoji 😀", "ctl \u{1}"]
        let nodes = ops.enumerated().map { i, op in
            Node(name: names[i % names.count] + "_\(i)", op: op, inputs: i == 0 ? ["x"] : ["n\(i - 1)"], params: i % 3 == 0 ? ["kernel": "k\(i)"] : [:])
        }
        var graph = Graph(inputs: [ValueInfo(name: "x", shape: [-1, 160, 160, 3])], outputs: ["n\(ops.count - 1)"], nodes: nodes,
                          tensors: ["k0": Tensor([Float](repeating: 0.5, count: 6), shape: [1, 1, 2, 3]),
                                    "k3": Tensor(dtype: .int8PerChannel, shape: [3, 2], storage: TensorStorage(values: [Int8](repeating: 1, count: 6)),
                                                 scales: TensorStorage(values: [Float(0.25), 0.5]))],
                          metadata: ModelMetadata(sourceFile: "ü.h5", sourceFormat: "keras-h5", preprocess: .scale01, passes: ["a", "b"], producer: "fmodel test"))
        graph.metadata.sourceOptimizerBytes = Int.max
        graph.metadata.sourceNodeCount = 0
        return FModelWriter.layout(graph).0
    }

    static func decodeWithFoundation(_ json: [UInt8]) throws -> FileHeader {
        try JSONDecoder().decode(FileHeader.self, from: Data(json))
    }

    static func decode(_ json: [UInt8]) throws -> FileHeader {
        try json.withUnsafeBytes { try HeaderJSON.decode(FileHeader.self, from: $0, fileOffset: 32) }
    }

    static func syntaxError(_ text: String) -> HeaderJSON.SyntaxError? { syntaxError(Array(text.utf8)) }

    static func syntaxError(_ bytes: [UInt8]) -> HeaderJSON.SyntaxError? {
        do {
            _ = try decode(bytes)
            return nil
        } catch let e as HeaderJSON.SyntaxError {
            return e
        } catch {
            return nil
        }
    }

    /// Decoded and written again, a header gives back its bytes; Foundation's decoder agrees.
    @Test func roundTripMatchesFoundation() throws {
        let json = try FModelWriter.encodeHeader(Self.header())
        #expect(try FModelWriter.encodeHeader(Self.decode(json)) == json)
        #expect(try FModelWriter.encodeHeader(Self.decodeWithFoundation(json)) == json)
    }

    /// Floats come back bit for bit: the text JSONEncoder printed, read by a correctly rounded
    /// conversion to the type asked for (not through Double).
    @Test func floatsComeBackExactly() throws {
        var rng = SplitMix64(seed: 7)
        var checked = 0
        while checked < 2000 {
            let f = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next()))
            guard f.isFinite else { continue }
            checked += 1
            let text = Array(try JSONEncoder().encode([f]))
            let back = try text.withUnsafeBytes { try HeaderJSON.decode([Float].self, from: $0) }
            #expect(back[0].bitPattern == f.bitPattern, "\(f)")
        }
    }

    @Test(arguments: [
        ("", 0, "ends early"), ("{", 1, "ends early"), ("[1,]", 3, "unexpected character"), ("[1 2]", 3, "expected ','"),
        ("{\"a\" 1}", 5, "expected ':'"), ("{1:2}", 1, "expected a key"), ("tru", 0, "expected 'true'"), ("[01]", 1, "leading zero"),
        ("[1.]", 3, "digit after '.'"), ("[1e+]", 4, "exponent"), ("[-]", 2, "expected a digit"), ("[\"a\\x\"]", 3, "unknown escape"),
        ("[\"\\ud800\"]", 2, "unpaired surrogate"), ("[\"\\udc00x\"]", 2, "unpaired surrogate"), ("[\"\\u12g4\"]", 2, "bad \\u escape"),
        ("[\"a\u{1}\"]", 3, "control character"), ("{} x", 3, "after the value"), ("[NaN]", 1, "unexpected character"),
    ])
    func syntaxErrorsNameTheirOffset(text: String, offset: Int, reason: String) {
        let e = Self.syntaxError(text)
        #expect(e?.offset == offset, "\(text): \(String(describing: e))")
        #expect(e?.reason.contains(reason) == true, "\(text): \(String(describing: e))")
    }

    @Test func invalidUTF8IsRejected() {
        for bad: [UInt8] in [[0xC0, 0x80], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xFF], [0xC3]] {
            let text: [UInt8] = Array("[\"".utf8) + bad + Array("\"]".utf8)
            let e = text.withUnsafeBytes { b in Result { try HeaderJSON.decode([String].self, from: b) } }
            guard case .failure(let error as HeaderJSON.SyntaxError) = e else { Issue.record("\(bad): \(e)"); continue }
            #expect(error.offset == 2 && error.reason.contains("UTF-8"), "\(bad): \(error)")
        }
    }

    /// Nesting past the limit is an error, not a stack overflow.
    @Test func deepNestingIsRefused() {
        let e = Self.syntaxError(String(repeating: "[", count: 100_000))
        #expect(e?.offset == HeaderJSON.maxDepth && e?.reason.contains("nested") == true, "\(String(describing: e))")
        let ok = String(repeating: "[", count: HeaderJSON.maxDepth) + String(repeating: "]", count: HeaderJSON.maxDepth)
        #expect(Self.syntaxError(ok) == nil)
    }

    /// A text of more values than the table takes is refused where the first one too many starts.
    @Test func tooManyValuesAreRefused() {
        let n = HeaderJSON.maxValues
        let e = Self.syntaxError("[" + String(repeating: "0,", count: n) + "0]")
        #expect(e?.offset == 1 + 2 * (n - 1) && e?.reason.contains("more than") == true, "\(String(describing: e))")
        #expect(Self.syntaxError("[" + String(repeating: "0,", count: n - 2) + "0]") == nil)
    }

    /// Numbers that do not fit the type asked for, and values of the wrong kind, are decoding
    /// errors naming the file offset of the value.
    @Test func valuesThatDoNotFitAreErrors() {
        func message<T: Decodable>(_ type: T.Type, _ text: String) -> String? {
            do {
                _ = try Array(text.utf8).withUnsafeBytes { try HeaderJSON.decode(type, from: $0, fileOffset: 100) }
                return nil
            } catch {
                return describe(error)
            }
        }
        #expect(message([Int].self, "[1, 9223372036854775808]")?.contains("9223372036854775808 at byte offset 104 does not fit in Int") == true)
        #expect(message([Int].self, "[1.5]")?.contains("does not fit in Int") == true)
        #expect(message([UInt32].self, "[-1]")?.contains("does not fit in UInt32") == true)
        #expect(message([Float].self, "[1e39]")?.contains("does not fit in Float") == true)
        #expect(message([Float].self, "[1e-60]")?.contains("does not fit in Float") == true)
        #expect(message([Float].self, "[0.0e-60, 1e-40]") == nil)
        #expect(message([Float].self, "[\"1\"]")?.contains("expected a number, found a string at byte offset 101") == true)
        #expect(message(Region.self, "{\"offset\": 0, \"length\": 1}")?.contains("no 'crc32c'") == true)
        #expect(message([Int].self, "{}")?.contains("expected an array, found an object") == true)
        #expect(message(Shape.self, "[1, null]")?.hasPrefix("1:") == true)
        #expect(message([Int?].self, "[1, null]") == nil)
    }

    /// Escapes decode as Foundation decodes them, keys included.
    @Test func escapesMatchFoundation() throws {
        let text = #"{"a\u00e9\/": "x\n\t\"\\\/\b\f\r\u0000\ud83d\ude00é", "b": ""}"#
        let mine = try Array(text.utf8).withUnsafeBytes { try HeaderJSON.decode([String: String].self, from: $0) }
        #expect(mine == (try JSONDecoder().decode([String: String].self, from: Data(text.utf8))))
        #expect(mine["aé/"] == "x\n\t\"\\/\u{8}\u{C}\r\u{0}😀é")
    }

    /// A large object read whole (as a node's params are) decodes as Foundation decodes it, the
    /// first of a repeated key included, through the by-name table that keeps it linear.
    @Test func largeObjectsMatchFoundation() throws {
        for count in [3, 17, 20_000] {
            let members = (0..<count).map { #""k\#($0 % (count - 1))": "v\#($0)""# }
            let text = Array(("{" + members.joined(separator: ",") + "}").utf8)
            let mine = try text.withUnsafeBytes { try HeaderJSON.decode([String: String].self, from: $0) }
            #expect(mine == (try JSONDecoder().decode([String: String].self, from: Data(text))), "\(count) members")
            #expect(mine.count == count - 1 && mine["k0"] == "v0", "\(count) members")
        }
    }

    /// Single-byte changes to a header: whatever the reader accepts, Foundation accepts and
    /// reads as the same header. (Where only Foundation accepts, the reader is the stricter.)
    @Test func mutatedHeadersAgreeWithFoundation() throws {
        let json = try FModelWriter.encodeHeader(Self.header())
        let replacements = Array("{}[]\",:0123456789-+.eE \\tfnu".utf8) + [0, 0x80, 0xC3]
        var rng = SplitMix64(seed: 11)
        var accepted = 0
        for _ in 0..<3000 {
            var b = json
            b[Int(rng.next() % UInt64(b.count))] = replacements[Int(rng.next() % UInt64(replacements.count))]
            guard let mine = try? Self.decode(b) else { continue }
            accepted += 1
            let theirs = try? Self.decodeWithFoundation(b)
            #expect(theirs != nil, "accepted only by HeaderJSON: \(String(decoding: b, as: UTF8.self))")
            if let theirs { #expect(try FModelWriter.encodeHeader(mine) == FModelWriter.encodeHeader(theirs)) }
        }
        #expect(accepted > 100)
        // Every prefix is an error (cut as bytes: some fall inside a multibyte character).
        for cut in 0..<json.count { #expect(Self.syntaxError(Array(json.prefix(cut))) != nil, "prefix \(cut)") }
    }
}
