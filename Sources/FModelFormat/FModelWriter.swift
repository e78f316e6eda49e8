import FModelCore
import Foundation

/// Writes a graph as a `.fmodel` file, atomically.
public enum FModelWriter {
    /// Writes `graph` to `path`; on any failure no file is left at `path`.
    /// - Throws: `GraphError` when the graph is not well formed, `FormatError` on I/O failure.
    public static func write(_ graph: Graph, to path: String) throws {
        try write(graph, into: AtomicFileWriter(path: path))
    }

    /// Writes `graph` into `staged` and commits it: a command that works a while before it
    /// writes stages its output first, so that an output that cannot be written (a missing
    /// folder, no permission) is refused before the work, not after it.
    public static func write(_ graph: Graph, into staged: consuming AtomicFileWriter) throws {
        try graph.validate()
        try write(graph, with: staged)
    }

    /// Writes `graph` into the file another writer staged, which that writer commits: the
    /// import worker into the output `fmodel` staged (`AtomicFileWriter.stagedPath`). `path`
    /// names it in errors.
    public static func write(_ graph: Graph, into stagedPath: String, naming path: String) throws {
        try graph.validate()
        try write(graph, with: AtomicFileWriter(into: stagedPath, path: path))
    }

    private static func write(_ graph: Graph, with out: consuming AtomicFileWriter) throws {
        let (header, regions) = layout(graph)
        let json = try encodeHeader(header)
        try out.write(preamble(headerLength: json.count, headerCRC: CRC32C.checksum(json)))
        try out.write(json)
        let headerEnd = FModelLayout.preambleSize + json.count
        try out.writeZeros(FModelLayout.aligned(headerEnd) - headerEnd)
        var position = 0
        for (region, storage) in regions {
            try out.writeZeros(region.offset - position)
            try out.write(storage.bytes)
            position = region.offset + region.length
        }
        try out.commit()
    }

    /// Encodes the header JSON with sorted keys, so the same graph gives the same bytes.
    static func encodeHeader(_ header: FileHeader) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(header))
    }

    /// Assigns every tensor (and its scales) an aligned region, in name order.
    static func layout(_ graph: Graph) -> (FileHeader, [(Region, TensorStorage)]) {
        var entries: [TensorEntry] = []
        var regions: [(Region, TensorStorage)] = []
        var offset = 0
        func place(_ s: TensorStorage) -> Region {
            let r = Region(offset: offset, length: s.bytes.count, crc32c: CRC32C.checksum(s.bytes))
            regions.append((r, s))
            offset = FModelLayout.aligned(offset + s.bytes.count)
            return r
        }
        for name in graph.tensors.keys.sorted() {
            let t = graph.tensors[name]!
            let data = place(t.storage)
            let scales = t.scales.map(place)
            entries.append(TensorEntry(name: name, dtype: t.dtype, shape: t.shape, data: data, scales: scales, groupSize: t.groupSize))
        }
        let g = GraphEntry(inputs: graph.inputs, outputs: graph.outputs, nodes: graph.nodes)
        let header = FileHeader(format: "fmodel", version: FModelLayout.version, byteOrder: "little",
                                graph: g, tensors: entries, metadata: graph.metadata)
        return (header, regions)
    }

    /// The fixed 32-byte preamble: magic, version, flags, header length, header CRC, reserved.
    static func preamble(headerLength: Int, headerCRC: UInt32) -> [UInt8] {
        var bytes = FModelLayout.magic
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
        put(FModelLayout.version)
        put(UInt32(0))  // flags
        put(UInt64(headerLength))
        put(headerCRC)
        put(UInt32(0))  // reserved
        return bytes
    }
}

extension FModelWriter {
    /// The exact size in bytes `write` would produce for `graph`, without writing.
    public static func fileSize(of graph: Graph) throws -> Int {
        let (header, regions) = layout(graph)
        let json = try encodeHeader(header)
        let dataEnd = regions.last.map { $0.0.offset + $0.0.length } ?? 0
        return FModelLayout.aligned(FModelLayout.preambleSize + json.count) + dataEnd
    }
}
