import FModelFormat
import FModelImport

/// The stored (uncompressed) entries of a zip archive, as Keras 3 writes `.keras` files. Every
/// offset and size is checked against the file before it is used, and every stored entry
/// against its CRC-32.
struct ZipArchive {
    let file: MappedFile
    /// Entry name → byte range of its data in the file.
    private(set) var entries: [String: Range<Int>] = [:]
    /// Entry name → compression method, for the entries that are compressed (not read).
    private(set) var compressed: [String: Int] = [:]

    init(path: String) throws(ImportError) {
        do { file = try MappedFile(path: path) } catch { throw .unknownFormat(path: path, reason: error.description) }
        let b = file.bytes
        func u16(_ o: Int) -> Int { Int(UInt16(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt16.self))) }
        func u32(_ o: Int) -> Int { Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt32.self))) }
        func fail(_ o: Int, _ r: String) -> ImportError { .unknownFormat(path: path, reason: "zip: \(r) at byte offset \(o)") }
        // End of central directory: the last 22+ bytes, signature 0x06054b50.
        guard b.count >= 22 else { throw fail(0, "too short for a zip file") }
        var eocd = -1
        for o in stride(from: b.count - 22, through: max(0, b.count - 22 - 65535), by: -1) where u32(o) == 0x0605_4B50 {
            eocd = o
            break
        }
        guard eocd >= 0 else { throw fail(b.count, "no end-of-central-directory record") }
        let count = u16(eocd + 10), dirSize = u32(eocd + 12), dirStart = u32(eocd + 16)
        guard dirStart + dirSize <= eocd, count <= 65535 else { throw fail(eocd, "central directory out of the file") }
        var o = dirStart
        for _ in 0..<count {
            guard o + 46 <= eocd, u32(o) == 0x0201_4B50 else { throw fail(o, "bad central directory entry") }
            let method = u16(o + 10), size = u32(o + 20), nameLength = u16(o + 28), extra = u16(o + 30), comment = u16(o + 32)
            let local = u32(o + 42)
            guard o + 46 + nameLength <= eocd else { throw fail(o, "entry name runs past the directory") }
            let name = String(decoding: b[(o + 46)..<(o + 46 + nameLength)], as: UTF8.self)
            guard local + 30 <= b.count, u32(local) == 0x0403_4B50 else { throw fail(local, "bad local header for \(name)") }
            let start = local + 30 + u16(local + 26) + u16(local + 28)
            guard start + size <= b.count else { throw fail(start, "\(name) runs past the end of the file") }
            if method == 0 {
                // Stored bytes are checked as they are taken: a flipped bit in a weight would
                // otherwise import as a different weight.
                let (recorded, computed) = (UInt32(u32(o + 16)), CRC32.checksum(UnsafeRawBufferPointer(rebasing: b[start..<(start + size)])))
                guard computed == recorded else {
                    throw fail(start, "\(name) fails its CRC-32 (the archive records \(hex(recorded)), its bytes give \(hex(computed)))")
                }
                entries[name] = start..<(start + size)
                compressed[name] = nil
            } else {
                compressed[name] = method
                entries[name] = nil
            }
            o += 46 + nameLength + extra + comment
        }
    }

    /// The bytes of entry `name`, if it is present and stored uncompressed.
    func data(_ name: String) -> UnsafeRawBufferPointer? {
        entries[name].map { UnsafeRawBufferPointer(rebasing: file.bytes[$0]) }
    }

    /// The bytes of entry `name`, or an error naming `path` that says why there are none: not
    /// in the archive, or compressed (a `.keras` zipped again with `zip -r`, deflate), which
    /// was reported as not there.
    func stored(_ name: String, path: String) throws(ImportError) -> UnsafeRawBufferPointer {
        if let bytes = data(name) { return bytes }
        guard let method = compressed[name] else { throw .missing(path: path, object: "/", what: "\(name) in the .keras zip") }
        let kind = [8: "deflate", 12: "bzip2", 14: "LZMA"][method].map { "\($0), method \(method)" } ?? "method \(method)"
        throw .unknownFormat(path: path, reason: "\(name) is compressed in the .keras zip (\(kind)); fmodel reads stored entries, as Keras writes them: zip it again with `zip -0 -r`")
    }
}

private func hex(_ value: UInt32) -> String { "0x" + String(value, radix: 16, uppercase: true) }
