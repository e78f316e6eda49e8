import CZlib
import FModelFormat
import FModelImport

/// The entries of a zip archive: stored, as Keras 3 writes `.keras` files, or deflated, as `zip
/// -r` zips one again (Keras reads both). Every offset and size is checked against the file
/// before it is used, and every entry's bytes against the CRC-32 the archive records: a stored
/// entry's as the archive is opened, a deflated one's as it is inflated.
struct ZipArchive {
    /// Where an entry's bytes are and how they are kept.
    struct Entry {
        /// Its bytes as the file holds them (compressed, for a method other than 0).
        var data: Range<Int>
        /// 0 stored, 8 deflate; other methods (bzip2, LZMA, …) are named, not read.
        var method: Int
        /// Its length and CRC-32 once inflated, as the archive records them.
        var size: Int
        var crc: UInt32
    }

    let file: MappedFile
    /// The archive's path, for errors.
    let path: String
    /// Entry name → entry; of two with one name, the later (as Python's zipfile reads them).
    private(set) var entries: [String: Entry] = [:]
    /// How many bytes a deflated entry is inflated at a time.
    var inflateChunk = 1 << 20
    /// The most a deflated entry may inflate to: 64 times its compressed bytes, or 64 MiB.
    /// Weights deflate about 1.1:1 (`Benchmarks/deflate_ratio.py`: the trained model in
    /// `../shared`, 1.12; the seeded full-size one, 1.10), the tiny fixture's HDF5 metadata 5:1; deflate's 1032:1 comes from runs of
    /// one byte, a zip bomb's, which would write 1 GB to the scratch directory (memory, where
    /// it is a tmpfs) for each MB of the archive.
    static let maxInflation = (ratio: 64, floor: 64 << 20)

    init(path: String) throws(ImportError) {
        self.path = path
        do { file = try MappedFile(path: path) } catch { throw .unknownFormat(path: path, reason: error.description) }
        let b = file.bytes
        func u16(_ o: Int) -> Int { Int(UInt16(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt16.self))) }
        func u32(_ o: Int) -> Int { Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: o, as: UInt32.self))) }
        func fail(_ o: Int, _ r: String) -> ImportError { .unknownFormat(path: path, reason: "zip: \(r) at byte offset \(o)") }
        let zip64 = "in zip64 form (an archive or entry over 2 GiB, as Python writes it), which fmodel does not read"
        // End of central directory: the last 22+ bytes, signature 0x06054b50.
        guard b.count >= 22 else { throw fail(0, "too short for a zip file") }
        var eocd = -1
        for o in stride(from: b.count - 22, through: max(0, b.count - 22 - 65535), by: -1) where u32(o) == 0x0605_4B50 {
            eocd = o
            break
        }
        guard eocd >= 0 else { throw fail(b.count, "no end-of-central-directory record") }
        let count = u16(eocd + 10), dirSize = u32(eocd + 12), dirStart = u32(eocd + 16)
        guard count != 0xFFFF, dirSize != 0xFFFF_FFFF, dirStart != 0xFFFF_FFFF else { throw fail(eocd, "the central directory is \(zip64)") }
        guard dirStart + dirSize <= eocd else { throw fail(eocd, "central directory out of the file") }
        var o = dirStart
        for _ in 0..<count {
            guard o + 46 <= eocd, u32(o) == 0x0201_4B50 else { throw fail(o, "bad central directory entry") }
            let flags = u16(o + 8), method = u16(o + 10), crc = UInt32(u32(o + 16)), stored = u32(o + 20), size = u32(o + 24)
            let nameLength = u16(o + 28), extra = u16(o + 30), comment = u16(o + 32), local = u32(o + 42)
            guard o + 46 + nameLength <= eocd else { throw fail(o, "entry name runs past the directory") }
            let name = String(decoding: b[(o + 46)..<(o + 46 + nameLength)], as: UTF8.self)
            guard ![stored, size, local].contains(0xFFFF_FFFF) else { throw fail(o, "\(name) is \(zip64)") }
            guard flags & 1 == 0 else { throw fail(o, "\(name) is encrypted") }
            guard local + 30 <= b.count, u32(local) == 0x0403_4B50 else { throw fail(local, "bad local header for \(name)") }
            let start = local + 30 + u16(local + 26) + u16(local + 28)
            guard start + stored <= b.count else { throw fail(start, "\(name) runs past the end of the file") }
            let entry = Entry(data: start..<(start + stored), method: method, size: size, crc: crc)
            if method == 0 {
                // Stored bytes are checked as they are taken: a flipped bit in a weight would
                // otherwise import as a different weight.
                guard stored == size else { throw fail(o, "\(name) is stored, yet its sizes differ (\(stored) bytes, \(size) recorded)") }
                let computed = CRC32.checksum(UnsafeRawBufferPointer(rebasing: b[entry.data]))
                guard computed == crc else {
                    throw fail(start, "\(name) fails its CRC-32 (the archive records \(hex(crc)), its bytes give \(hex(computed)))")
                }
            }
            entries[name] = entry
            o += 46 + nameLength + extra + comment
        }
    }

    /// Entry `name`'s bytes, inflated if need be, refused unread when it records more than
    /// `maxBytes` of them.
    func contents(_ name: String, maxBytes: Int) throws(ImportError) -> [UInt8] {
        let entry = try self.entry(name)
        guard entry.size <= maxBytes else {
            throw .unknownFormat(path: path, reason: "zip: \(name) records \(entry.size) bytes, over the \(maxBytes) fmodel reads, at byte offset \(entry.data.lowerBound)")
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(entry.size)
        try read(name, entry) { bytes += $0 }
        return bytes
    }

    /// Writes entry `name`'s bytes, inflated if need be, to a new scratch file `destination`
    /// (`TemporaryDirectory.writeFile`: nothing is left there on an error).
    func extract(_ name: String, to destination: String) throws(ImportError) {
        let entry = try self.entry(name)
        do { try TemporaryDirectory.writeFile(to: destination) { write in try read(name, entry, into: write) } } catch let error as ImportError {
            throw error
        } catch {
            throw cannotCopy(name, error)
        }
    }

    /// Entry `name`, or an error naming the archive that says why it cannot be read: not in it,
    /// or kept with a method other than stored or deflate.
    private func entry(_ name: String) throws(ImportError) -> Entry {
        guard let entry = entries[name] else { throw .missing(path: path, object: "/", what: "\(name) in the .keras zip") }
        guard entry.method == 0 || entry.method == 8 else {
            let kind = [12: "bzip2, ", 14: "LZMA, ", 93: "Zstandard, "][entry.method] ?? ""
            throw .unknownFormat(path: path, reason: "\(name) is compressed in the .keras zip (\(kind)method \(entry.method)); fmodel reads stored and deflated entries: zip it again with `zip -r`")
        }
        return entry
    }

    /// Hands `entry`'s bytes to `sink` in order: at once if stored; if deflated, `inflateChunk`
    /// at a time as they are inflated, never more than the archive records, then checked against
    /// its length and CRC-32. A deflate stream that is cut short, invalid, or followed by other
    /// bytes is an error naming the byte offset in the archive where zlib stopped.
    private func read(_ name: String, _ entry: Entry, into sink: (UnsafeRawBufferPointer) throws(FormatError) -> Void) throws(ImportError) {
        func give(_ bytes: UnsafeRawBufferPointer) throws(ImportError) {
            do { try sink(bytes) } catch { throw cannotCopy(name, error) }
        }
        let input = UnsafeRawBufferPointer(rebasing: file.bytes[entry.data])
        guard entry.method == 8 else { return try give(input) }
        func fail(_ reason: String, at offset: Int) -> ImportError {
            .unknownFormat(path: path, reason: "zip: \(name) \(reason) at byte offset \(entry.data.lowerBound + offset)")
        }
        guard entry.size <= max(Self.maxInflation.floor, Self.maxInflation.ratio * input.count) else {
            throw fail("records \(entry.size) bytes deflated to \(input.count), over the \(Self.maxInflation.ratio):1 fmodel inflates (weights deflate about 1.1:1; zip it again with `zip -0 -r` if it is real)", at: 0)
        }
        var stream = z_stream()
        guard fm_inflate_init_raw(&stream) == Z_OK else { throw fail("could not be inflated (zlib could not start)", at: 0) }
        defer { inflateEnd(&stream) }
        let chunk = inflateChunk
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 64)
        defer { out.deallocate() }
        var fed = 0, produced = 0, crc: UInt32 = 0, status = Z_OK
        while status != Z_STREAM_END {
            if stream.avail_in == 0, fed < input.count {
                let n = min(input.count - fed, 1 << 30)
                stream.next_in = UnsafeMutablePointer(mutating: (input.baseAddress! + fed).assumingMemoryBound(to: Bytef.self))
                stream.avail_in = uInt(n)
                fed += n
            }
            stream.next_out = out.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.avail_out = uInt(chunk)
            status = inflate(&stream, Z_NO_FLUSH)
            let consumed = Int(stream.total_in)
            switch status {
            case Z_OK, Z_STREAM_END: break
            case Z_BUF_ERROR: throw fail("ends before its deflate stream does", at: consumed)
            case Z_DATA_ERROR: throw fail("is not valid deflate data (zlib: \(stream.msg.map { String(cString: $0) } ?? "no reason"))", at: consumed)
            default: throw fail("could not be inflated (zlib error \(status))", at: consumed)
            }
            let piece = UnsafeRawBufferPointer(rebasing: out[0..<(chunk - Int(stream.avail_out))])
            produced += piece.count
            guard produced <= entry.size else { throw fail("inflates to more than the \(entry.size) bytes the archive records", at: consumed) }
            crc = CRC32.checksum(piece, continuing: crc)
            try give(piece)
        }
        let consumed = Int(stream.total_in)
        guard consumed == input.count else { throw fail("has \(input.count - consumed) bytes after its deflate stream", at: consumed) }
        guard produced == entry.size else { throw fail("inflates to \(produced) bytes, the archive records \(entry.size)", at: consumed) }
        guard crc == entry.crc else {
            throw fail("fails its CRC-32 (the archive records \(hex(entry.crc)), its inflated bytes give \(hex(crc)))", at: 0)
        }
    }

    /// A scratch copy of entry `name` that could not be written (a full disk, `ulimit -f`).
    private func cannotCopy(_ name: String, _ error: any Error) -> ImportError {
        .unknownFormat(path: path, reason: "cannot write a temporary copy of its \(name): \(error)")
    }
}

private func hex(_ value: UInt32) -> String { "0x" + String(value, radix: 16, uppercase: true) }
