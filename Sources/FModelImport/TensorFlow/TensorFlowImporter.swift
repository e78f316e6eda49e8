import FModelCore
import FModelFormat
import Foundation
import SwiftProtobuf

/// How to cut a frozen graph: which tensors are the inputs (with shapes), which the outputs,
/// and which placeholders are set to constants.
public struct GraphCut: Sendable {
    /// `NAME[:SHAPE]`, SHAPE like `1x160x160x3` or `?x160x160x3`.
    public var inputs: [String] = []
    public var outputs: [String] = []
    /// `NAME=VALUE` (`true`/`false` or a number).
    public var sets: [String] = []

    public init(inputs: [String] = [], outputs: [String] = [], sets: [String] = []) {
        (self.inputs, self.outputs, self.sets) = (inputs, outputs, sets)
    }
}

/// Imports TensorFlow frozen GraphDefs (`.pb`): TF1 graphs with `phase_train` and tf.cond batch
/// norm (Switch/Merge resolved on the constant predicate), and graphs frozen the TF2 way.
public enum TensorFlowImporter {
    /// Imports `path`; `notes` collects the choices made (defaults for bool placeholders).
    public static func importModel(path: String, cut: GraphCut = .init(), notes: inout [String]) throws -> Graph {
        var lowering = try TFLowering(try frozenGraph(path: path), path: path, cut: cut)
        let graph = try lowering.run()
        notes += lowering.notes
        return graph
    }

    /// The file at `path` parsed, a node at a time: the file is mapped and each `NodeDef` decoded
    /// from its own bytes, the pages behind it let go as the walk passes them. A weight's bytes
    /// (a Const's `tensor_content` of `FrozenGraph.weightBytes` or more) are not kept in the
    /// message but found in the file (`FrozenGraph.weights`), from which the lowering decodes
    /// them: the weights are never in memory twice (FaceNet: 94.6 MB of file, 93.7 of them
    /// weights). The other top-level fields (versions, library) are decoded together at the
    /// end. More than `maxNodes` nodes is refused: an empty node is two bytes of file and a
    /// hundred of memory, so a hostile file of them would ask for gigabytes (FaceNet has 572).
    static func frozenGraph(path: String, maxNodes: Int = 1 << 20) throws(ImportError) -> FrozenGraph {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch { throw .unknownFormat(path: path, reason: "cannot read the file (\(error))") }
        var options = BinaryDecodingOptions()
        options.messageDepthLimit = 63
        var graphDef = Tensorflow_GraphDef()
        var weights: [Int: Range<Int>] = [:]
        var others = Data()
        var wire = WireReader(bytes: file.bytes)
        var released = 0, start = 0
        do {
            while !wire.atEnd {
                start = wire.offset
                let (field, type) = try wire.tag()
                if field == 1 && type == 2 {
                    guard graphDef.node.count < maxNodes else {
                        throw WireReader.Malformed(offset: start, reason: "more than \(maxNodes) nodes")
                    }
                    let bytes = try wire.lengthDelimited()
                    // Each node's bytes copied (a few MB at most): the message keeps nothing of the mapping.
                    var node = try Tensorflow_NodeDef(serializedBytes: Data(bytes), options: options)
                    if let range = FrozenGraph.weight(of: node, in: bytes) {
                        node.attr["value"]!.tensor.tensorContent = Data()
                        let at = bytes.baseAddress! - file.bytes.baseAddress!
                        weights[graphDef.node.count] = at + range.lowerBound..<at + range.upperBound
                    }
                    graphDef.node.append(node)
                } else {
                    try wire.skip(type)
                    others.append(contentsOf: UnsafeRawBufferPointer(rebasing: file.bytes[start..<wire.offset]))
                }
                if wire.offset - released >= 4 << 20 {
                    file.releasePages(UnsafeRawBufferPointer(rebasing: file.bytes[released..<wire.offset]))
                    released = wire.offset
                }
            }
        } catch let e as WireReader.Malformed {
            throw .unknownFormat(path: path, reason: "not a valid GraphDef protobuf (byte offset \(e.offset): \(e.reason))")
        } catch {
            throw .unknownFormat(path: path, reason: "not a valid GraphDef protobuf (the node at byte offset \(start): \(error))")
        }
        do {
            if !others.isEmpty { try graphDef.merge(serializedBytes: others, options: options) }
        } catch {
            throw .unknownFormat(path: path, reason: "not a valid GraphDef protobuf (its fields besides the nodes: \(error))")
        }
        guard !graphDef.node.isEmpty else {
            // A SavedModel's saved_model.pb opens with field 1 as a number, its schema version
            // (a GraphDef's field 1 is a node): it parsed as a GraphDef without nodes.
            if file.bytes.first == 0x08 { throw .unknownFormat(path: path, reason: ModelLoader.savedModel) }
            throw .unknownFormat(path: path, reason: "the GraphDef has no nodes")
        }
        return FrozenGraph(graphDef: graphDef, file: file, weights: weights)
    }
}

/// A parsed GraphDef whose weights stay in the mapped file.
struct FrozenGraph {
    /// The message, without the `tensor_content` of the nodes in `weights`.
    var graphDef: Tensorflow_GraphDef
    let file: MappedFile
    /// By the node's index in `graphDef.node`, the bytes of its value's `tensor_content` in `file`.
    let weights: [Int: Range<Int>]

    /// Contents of this many bytes or more stay in the file.
    static let weightBytes = 4096

    /// The content of node `index` where it was left in the file (nil: the message has it).
    func content(_ index: Int) -> UnsafeRawBufferPointer? {
        weights[index].map { UnsafeRawBufferPointer(rebasing: file.bytes[$0]) }
    }

    /// Where in `bytes` (the serialized `node`) its value's `tensor_content` is, when it has
    /// `weightBytes` or more: the last `value` attr's last tensor's last content, the one a
    /// protobuf reader keeps, and only if it holds exactly the decoded bytes (a file that
    /// repeats or merges these fields in other ways keeps its content in the message).
    static func weight(of node: Tensorflow_NodeDef, in bytes: UnsafeRawBufferPointer) -> Range<Int>? {
        guard node.op == "Const", let decoded = node.attr["value"]?.tensor.tensorContent, decoded.count >= weightBytes else { return nil }
        /// The last length-delimited field `number` of `message` (a range of `bytes`) that `accept` takes.
        func last(_ number: UInt64, in message: Range<Int>, where accept: (Range<Int>) -> Bool = { _ in true }) -> Range<Int>? {
            var wire = WireReader(bytes: UnsafeRawBufferPointer(rebasing: bytes[message]))
            var found: Range<Int>?
            while !wire.atEnd {
                guard let (field, type) = try? wire.tag() else { return nil }
                if field == number && type == 2 {
                    guard let value = try? wire.lengthDelimited() else { return nil }
                    let at = value.baseAddress.map { $0 - bytes.baseAddress! } ?? message.lowerBound
                    let range = at..<at + value.count
                    if accept(range) { found = range }
                } else if (try? wire.skip(type)) == nil {
                    return nil
                }
            }
            return found
        }
        let isValue: (Range<Int>) -> Bool = { entry in
            last(1, in: entry).map { bytes[$0].elementsEqual("value".utf8) } ?? false
        }
        guard let entry = last(5, in: 0..<bytes.count, where: isValue), let attr = last(2, in: entry),
              let tensor = last(8, in: attr), let content = last(4, in: tensor), content.count == decoded.count,
              decoded.withUnsafeBytes({ memcmp($0.baseAddress!, bytes.baseAddress! + content.lowerBound, content.count) == 0 }) else { return nil }
        return content
    }
}

/// A tensor reference in a NodeDef input: `name`, `name:k` or `^name` (control).
struct TFRef: Hashable {
    var node: String
    var output: Int
    var isControl: Bool

    init(_ s: String) {
        isControl = s.hasPrefix("^")
        let body = isControl ? String(s.dropFirst()) : s
        if let colon = body.lastIndex(of: ":"), let k = Int(body[body.index(after: colon)...]) {
            node = String(body[..<colon])
            output = k
        } else {
            node = body
            output = 0
        }
    }
}

/// What a tensor is at import time.
enum TFValue {
    case const(HostTensor)
    /// An IR value (graph input or node output).
    case dynamic(String)
    /// Produced by the branch of a Switch that is not taken.
    case dead
    /// Depends on an op fmodel cannot lower (recorded, reported at the end).
    case unsupported
}

/// The protobuf wire format's top level, read with every length checked against the bytes.
struct WireReader {
    struct Malformed: Error {
        var offset: Int
        var reason: String
    }

    let bytes: UnsafeRawBufferPointer
    private(set) var offset = 0

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var atEnd: Bool { offset >= bytes.count }

    mutating func varint() throws(Malformed) -> UInt64 {
        let start = offset
        var value: UInt64 = 0
        for shift in stride(from: UInt64(0), to: 70, by: 7) {
            guard offset < bytes.count else { throw Malformed(offset: start, reason: "truncated varint") }
            let byte = bytes[offset]
            offset += 1
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
        }
        throw Malformed(offset: start, reason: "varint longer than 10 bytes")
    }

    /// A field's number and wire type.
    mutating func tag() throws(Malformed) -> (field: UInt64, type: UInt64) {
        let start = offset
        let tag = try varint()
        guard tag >> 3 > 0 else { throw Malformed(offset: start, reason: "field number 0") }
        return (tag >> 3, tag & 7)
    }

    /// The bytes of a length-delimited field, after its tag.
    mutating func lengthDelimited() throws(Malformed) -> UnsafeRawBufferPointer {
        let start = offset
        let length = try varint()
        guard length <= UInt64(bytes.count - offset) else {
            throw Malformed(offset: start, reason: "length \(length) runs past the end of the file (\(bytes.count - offset) bytes left)")
        }
        defer { offset += Int(length) }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<offset + Int(length)])
    }

    /// Steps over a field's value, after its tag.
    mutating func skip(_ type: UInt64) throws(Malformed) {
        let start = offset
        switch type {
        case 0: _ = try varint()
        case 1, 5:
            let size = type == 1 ? 8 : 4
            guard bytes.count - offset >= size else { throw Malformed(offset: start, reason: "truncated fixed-width field") }
            offset += size
        case 2: _ = try lengthDelimited()
        default: throw Malformed(offset: start, reason: "wire type \(type) is not supported")
        }
    }
}
