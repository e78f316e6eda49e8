/// Element encodings a stored tensor can have.
///
/// Compute is float32 throughout; the compact encodings are dequantized when a model is loaded
/// for execution. The byte layout of each is specified in `Formats/fmodel.md`.
public enum DType: String, Codable, Sendable, CaseIterable {
    /// IEEE 754 binary32, little endian.
    case f32
    /// IEEE 754 binary16, little endian.
    case f16
    /// Signed 8-bit values with one float32 scale per output channel (the last axis).
    case int8PerChannel = "int8_per_channel"
    /// Signed 4-bit values packed two per byte with one float16 scale per group along the first axis.
    case int4PerGroup = "int4_per_group"
}

extension DType {
    /// Bits one value takes (its scales aside).
    public var bitsPerValue: Int {
        switch self {
        case .f32: 32
        case .f16: 16
        case .int8PerChannel: 8
        case .int4PerGroup: 4
        }
    }

    /// Number of bytes the values (not the scales) of `count` elements take, or nil when that
    /// overflows (a hostile shape: a file's header may declare up to `Int.max` elements).
    package func valueBytes(count: Int) -> Int? {
        switch self {
        case .f32: return count.multipliedOrNil(by: 4)
        case .f16: return count.multipliedOrNil(by: 2)
        case .int8PerChannel: return count
        case .int4PerGroup: return count / 2 + count % 2
        }
    }
}
