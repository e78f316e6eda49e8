import FModelCore

/// Constants and header types of the `.fmodel` format, version 1 (see `Formats/fmodel.md`).
public enum FModelLayout {
    /// `0x89 'F' 'M' 'O' 'D' 'E' 'L' 0x0A`.
    public static let magic: [UInt8] = [0x89, 0x46, 0x4D, 0x4F, 0x44, 0x45, 0x4C, 0x0A]
    /// The version this code reads and writes.
    public static let version: UInt32 = 1
    /// Size of the fixed preamble before the JSON header.
    public static let preambleSize = 32
    /// Alignment of the data section and of every region in it.
    public static let alignment = 64

    /// Rounds `n` up to the alignment.
    package static func aligned(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }
}

/// A byte range in the data section, with its CRC-32C.
struct Region: Codable, Equatable {
    /// Offset from the start of the data section; a multiple of 64.
    var offset: Int
    var length: Int
    var crc32c: UInt32
}

/// One entry of the tensor table.
struct TensorEntry: Codable {
    var name: String
    var dtype: DType
    var shape: Shape
    var data: Region
    var scales: Region?
    var groupSize: Int?
}

extension TensorEntry {
    /// The regions it takes in the data section: its values, then its scales if any.
    var regions: [Region] { [data] + (scales.map { [$0] } ?? []) }
}

/// The graph part of the header.
struct GraphEntry: Codable {
    var inputs: [ValueInfo]
    var outputs: [String]
    var nodes: [Node]
}

/// The JSON header.
struct FileHeader: Codable {
    var format: String
    var version: UInt32
    var byteOrder: String
    var graph: GraphEntry
    var tensors: [TensorEntry]
    var metadata: ModelMetadata
}
