import Dispatch
import FModelCore

/// Limits the reader holds a file to before it trusts a number in it.
public struct FModelReadOptions: Sendable {
    /// Largest JSON header accepted.
    public var maxHeaderBytes = 64 << 20
    /// Largest tensor rank accepted.
    public var maxRank = 8
    /// Check every tensor's CRC-32C while loading.
    public var verifyChecksums = true

    public init() {}
}

/// Reads `.fmodel` files. Tensors are used in place from the memory map: nothing is copied.
public enum FModelReader {
    /// True when `bytes` start with the `.fmodel` magic.
    public static func hasMagic(_ bytes: UnsafeRawBufferPointer) -> Bool {
        bytes.count >= 8 && Array(bytes[0..<8]) == FModelLayout.magic
    }

    /// Maps and reads the model at `path`.
    /// - Throws: `FormatError` naming the byte offset of what is wrong (a graph that is not well
    ///   formed, at the header's).
    public static func read(path: String, options: FModelReadOptions = .init()) throws -> Graph {
        let file = try MappedFile(path: path)
        return try read(file, options: options)
    }

    /// Reads a model from an already mapped file; the tensors keep `file` alive.
    public static func read(_ file: MappedFile, options: FModelReadOptions = .init()) throws -> Graph {
        do {
            return try readGraph(file, options: options)
        } catch let error as GraphError {
            // A header whose sizes and checksums hold but whose graph does not (a hostile file):
            // named by the file and where its header starts.
            throw FormatError.corrupt(path: file.path, offset: FModelLayout.preambleSize, reason: "header: \(error)")
        }
    }

    private static func readGraph(_ file: MappedFile, options: FModelReadOptions) throws -> Graph {
        let (header, dataStart) = try readHeader(file, options: options)
        var tensors: [String: Tensor] = [:]
        for entry in header.tensors {
            guard tensors[entry.name] == nil else {
                throw FormatError.corrupt(path: file.path, offset: FModelLayout.preambleSize, reason: "tensor '\(entry.name)' is listed twice")
            }
            tensors[entry.name] = try tensor(entry, file: file, dataStart: dataStart, options: options)
        }
        // The file ends where its data does: bytes past it (a file appended to, or two
        // concatenated) mean it is not the file that was written.
        let dataEnd = header.tensors.flatMap(\.regions).reduce(dataStart) { max($0, dataStart + $1.offset + $1.length) }
        guard file.bytes.count <= dataEnd else {
            throw FormatError.corrupt(path: file.path, offset: dataEnd,
                                      reason: "\(file.bytes.count - dataEnd) bytes after the end of the last tensor's data")
        }
        // The regions are in bounds; their checksums all at once, on every core.
        if options.verifyChecksums { try verifyChecksums(header.tensors, file: file, dataStart: dataStart) }
        let graph = Graph(inputs: header.graph.inputs, outputs: header.graph.outputs, nodes: header.graph.nodes,
                          tensors: tensors, metadata: header.metadata)
        try graph.validate()
        // The graph holds what the header said: its pages need not stay resident (they fault
        // back in from the file if read again).
        file.releasePages(UnsafeRawBufferPointer(rebasing: file.bytes[0..<min(dataStart, file.bytes.count)]))
        return graph
    }

    // MARK: - Header

    static func readHeader(_ file: MappedFile, options: FModelReadOptions) throws(FormatError) -> (FileHeader, Int) {
        let b = file.bytes
        let path = file.path
        guard hasMagic(b) else { throw .notThisFormat(path: path, expected: "an .fmodel file (bad magic at byte offset 0)") }
        guard b.count >= FModelLayout.preambleSize else { throw .truncated(path: path, offset: 0, needed: FModelLayout.preambleSize) }
        let version = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
        guard version == FModelLayout.version else { throw .unsupportedVersion(path: path, version: version) }
        let flags = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 12, as: UInt32.self))
        guard flags == 0 else { throw .corrupt(path: path, offset: 12, reason: "unknown flags \(flags)") }
        let declared = UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        guard declared <= UInt64(options.maxHeaderBytes) else {
            throw .limitExceeded(path: path, what: "header length at byte offset 16", value: Int(clamping: declared), limit: options.maxHeaderBytes)
        }
        let length = Int(declared)
        let start = FModelLayout.preambleSize
        guard b.count - start >= length else { throw .truncated(path: path, offset: start, needed: length) }
        let json = UnsafeRawBufferPointer(rebasing: b[start..<start + length])
        let crc = UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 24, as: UInt32.self))
        guard CRC32C.checksum(json) == crc else { throw .corrupt(path: path, offset: start, reason: "header fails its CRC-32C checksum") }
        let reserved = b.loadUnaligned(fromByteOffset: 28, as: UInt32.self)
        guard reserved == 0 else { throw .corrupt(path: path, offset: 28, reason: "reserved field is \(reserved), not 0") }
        let header = try decodeHeader(json, path: path)
        let dataStart = FModelLayout.aligned(start + length)
        for i in (start + length)..<min(dataStart, b.count) where b[i] != 0 {
            throw .corrupt(path: path, offset: i, reason: "padding before the data section is not zero")
        }
        return (header, dataStart)
    }

    static func decodeHeader(_ json: UnsafeRawBufferPointer, path: String) throws(FormatError) -> FileHeader {
        let header: FileHeader
        do {
            header = try HeaderJSON.decode(FileHeader.self, from: json, fileOffset: FModelLayout.preambleSize)
        } catch let e as HeaderJSON.SyntaxError {
            throw .corrupt(path: path, offset: FModelLayout.preambleSize + e.offset, reason: "header JSON: \(e.reason)")
        } catch {
            throw .corrupt(path: path, offset: FModelLayout.preambleSize, reason: "header JSON: \(describe(error))")
        }
        guard header.format == "fmodel", header.byteOrder == "little" else {
            throw .corrupt(path: path, offset: FModelLayout.preambleSize, reason: "header names format '\(header.format)', byte order '\(header.byteOrder)'")
        }
        return header
    }

    // MARK: - Tensors

    /// Checks every region's CRC-32C (the regions were bounds-checked), largest first across
    /// the cores; throws for the mismatch at the lowest offset.
    static func verifyChecksums(_ entries: [TensorEntry], file: MappedFile, dataStart: Int) throws(FormatError) {
        let regions = entries.flatMap { e in e.regions.map { (name: e.name, region: $0) } }
            .sorted { $0.region.length > $1.region.length }
        nonisolated(unsafe) let failed = UnsafeMutableBufferPointer<Bool>.allocate(capacity: regions.count)
        failed.initialize(repeating: false)
        defer { failed.deallocate() }
        DispatchQueue.concurrentPerform(iterations: regions.count) { i in
            let start = dataStart + regions[i].region.offset
            let bytes = UnsafeRawBufferPointer(rebasing: file.bytes[start..<start + regions[i].region.length])
            failed[i] = CRC32C.checksum(bytes) != regions[i].region.crc32c
        }
        if let bad = regions.indices.filter({ failed[$0] }).min(by: { regions[$0].region.offset < regions[$1].region.offset }) {
            throw .checksumMismatch(path: file.path, tensor: regions[bad].name, offset: dataStart + regions[bad].region.offset)
        }
    }

    static func tensor(_ e: TensorEntry, file: MappedFile, dataStart: Int, options: FModelReadOptions) throws -> Tensor {
        let path = file.path
        guard e.shape.rank <= options.maxRank, e.shape.dims.allSatisfy({ $0 >= 0 }) else {
            throw FormatError.corrupt(path: path, offset: FModelLayout.preambleSize, reason: "tensor '\(e.name)' has shape \(e.shape)")
        }
        let values = try slice(e.data, of: e.name, file: file, dataStart: dataStart)
        let scales = try e.scales.map { try slice($0, of: e.name, file: file, dataStart: dataStart) }
        let t = Tensor(dtype: e.dtype, shape: e.shape, storage: values, scales: scales, groupSize: e.groupSize)
        try t.validate(name: e.name)
        return t
    }

    /// The bytes of region `r`, checked to lie inside the file (`verifyChecksums` checks their
    /// contents).
    static func slice(_ r: Region, of name: String, file: MappedFile, dataStart: Int) throws(FormatError) -> TensorStorage {
        let path = file.path
        guard r.offset >= 0, r.length >= 0, r.offset % FModelLayout.alignment == 0 else {
            throw .corrupt(path: path, offset: FModelLayout.preambleSize, reason: "tensor '\(name)' has region offset \(r.offset), length \(r.length)")
        }
        let (start, o1) = dataStart.addingReportingOverflow(r.offset)
        let (end, o2) = start.addingReportingOverflow(r.length)
        guard !o1, !o2, end <= file.bytes.count else {
            throw .truncated(path: path, offset: o1 ? Int.max : start, needed: r.length)
        }
        return TensorStorage(borrowing: UnsafeRawBufferPointer(rebasing: file.bytes[start..<end]), owner: file)
    }
}

/// A short description of a decoding error, with its coding path.
func describe(_ error: any Error) -> String {
    switch error {
    case DecodingError.dataCorrupted(let c), DecodingError.keyNotFound(_, let c),
         DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
        let path = c.codingPath.map { $0.intValue.map(String.init) ?? $0.stringValue }.joined(separator: ".")
        return path.isEmpty ? c.debugDescription : "\(path): \(c.debugDescription)"
    default:
        return "\(error)"
    }
}
