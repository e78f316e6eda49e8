import FModelCore
import Foundation
import Testing

@Suite struct OpCodingTests {
    static let ops: [Op] = [
        .conv2D(ConvAttributes(strides: [2, 1], dilations: [1, 2], padding: .same, activation: .leakyRelu(alpha: 0.1))),
        .depthwiseConv2D(ConvAttributes(activation: .relu6)), .dense(activation: .softmax), .batchNorm(epsilon: 0.001),
        .activation(.sigmoid), .activation(.tanh), .activation(.relu), .activation(.linear),
        .activation(.swish), .activation(.elu(alpha: 0.5)), .activation(.gelu(approximate: false)), .dense(activation: .gelu(approximate: true)), .activation(.hardSwish), .activation(.hardSigmoid(slope: 0.2)),
        .maxPool(PoolAttributes(size: [3, 3], strides: [2, 2], padding: .valid)),
        .avgPool(PoolAttributes(size: [2, 2], strides: [1, 1], padding: .same)), .globalAvgPool(keepDims: true),
        .globalMaxPool(keepDims: false), .concat(axis: -1), .add, .mul, .scale(0.17), .reshape(shape: [-1, 4]),
        .flatten, .affine, .zeroPad(top: 1, bottom: 2, left: 3, right: 4), .l2Normalize(epsilon: 1e-10), .dropout(rate: 0.2), .identity,
        .layerNorm(epsilon: 1e-6), .crop(top: 1, bottom: 0, left: 2, right: 3),
    ]

    @Test(arguments: ops)
    func roundTripsThroughJSON(_ op: Op) throws {
        let data = try JSONEncoder().encode(op)
        #expect(try JSONDecoder().decode(Op.self, from: data) == op)
    }

    @Test func unknownOpsAndMissingAttributesAreErrors() {
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Op.self, from: Data(#"{"type":"warp"}"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(Op.self, from: Data(#"{"type":"conv2d"}"#.utf8)) }
        // Unknown, and slopes that are not numbers (a NaN slope made every output NaN).
        for activation in ["mish", "elu", "leaky_relu(nan)", "elu(inf)", "leaky_relu()", "elu(1"] {
            let json = #"{"type":"activation","activation":"\#(activation)"}"#
            #expect(throws: DecodingError.self, "\(activation)") { try JSONDecoder().decode(Op.self, from: Data(json.utf8)) }
        }
    }
}
