import FModelCore
import Foundation

/// A float32 array read from or written to NumPy's `.npy` format (version 1.0–3.0,
/// little-endian `<f4`, C order).
public struct NPYArray: Sendable, Equatable {
    public var shape: [Int]
    public var values: [Float]

    public init(shape: [Int], values: [Float]) {
        self.shape = shape
        self.values = values
    }
}

/// Reader and writer for `.npy` files.
public enum NPY {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]  // \x93NUMPY

    /// Reads a float32 (or float64, converted) array.
    /// - Throws: `FormatError` naming the file and byte offset.
    public static func read(path: String) throws(FormatError) -> NPYArray {
        try MappedFile(path: path).withBytes { b throws(FormatError) in try parse(b, path: path) }
    }

    /// Parses `.npy` bytes.
    public static func parse(_ b: UnsafeRawBufferPointer, path: String) throws(FormatError) -> NPYArray {
        guard b.count >= 10, Array(b[0..<6]) == magic else { throw .notThisFormat(path: path, expected: "a .npy file (bad magic at byte offset 0)") }
        let major = b[6]
        let (lenSize, start) = major == 1 ? (2, 10) : (4, 12)
        guard major >= 1, major <= 3, b.count >= start else { throw .corrupt(path: path, offset: 6, reason: "npy version \(major)") }
        let headerLength = lenSize == 2 ? Int(UInt16(littleEndian: b.loadUnaligned(fromByteOffset: 8, as: UInt16.self)))
                                        : Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: 8, as: UInt32.self)))
        guard headerLength <= 1 << 20 else { throw .limitExceeded(path: path, what: "npy header length", value: headerLength, limit: 1 << 20) }
        guard b.count - start >= headerLength else { throw .truncated(path: path, offset: start, needed: headerLength) }
        let header = String(decoding: b[start..<start + headerLength], as: UTF8.self)
        let (descr, fortran, shape) = try parseHeader(header, path: path, offset: start)
        guard !fortran else { throw .corrupt(path: path, offset: start, reason: "Fortran-ordered arrays are not supported") }
        guard let count = Shape(shape).elementCount else { throw .corrupt(path: path, offset: start, reason: "shape \(shape)") }
        let itemSize = descr == "<f4" ? 4 : descr == "<f8" ? 8 : 0
        guard itemSize > 0 else { throw .corrupt(path: path, offset: start, reason: "dtype '\(descr)' (need <f4 or <f8)") }
        let dataStart = start + headerLength
        let (needed, overflow) = count.multipliedReportingOverflow(by: itemSize)
        guard !overflow, b.count - dataStart >= needed else { throw .truncated(path: path, offset: dataStart, needed: overflow ? Int.max : needed) }
        let values = [Float](unsafeUninitializedCapacity: count) { out, n in
            for i in 0..<count {
                out[i] = itemSize == 4 ? b.loadUnaligned(fromByteOffset: dataStart + 4 * i, as: Float.self)
                                       : Float(b.loadUnaligned(fromByteOffset: dataStart + 8 * i, as: Double.self))
            }
            n = count
        }
        return NPYArray(shape: shape, values: values)
    }

    /// Parses the Python-literal header dict: `{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }`.
    static func parseHeader(_ h: String, path: String, offset: Int) throws(FormatError) -> (String, Bool, [Int]) {
        func field(_ key: String) -> Substring? {
            guard let r = h.range(of: "'\(key)':") else { return nil }
            return h[r.upperBound...].drop { $0 == " " }
        }
        guard let d = field("descr"), d.first == "'", let close = d.dropFirst().firstIndex(of: "'"),
              let f = field("fortran_order"), let s = field("shape"), s.first == "(", let sEnd = s.firstIndex(of: ")")
        else { throw .corrupt(path: path, offset: offset, reason: "npy header '\(h.prefix(120))'") }
        let descr = String(d[d.index(after: d.startIndex)..<close])
        var dims: [Int] = []
        for part in s[s.index(after: s.startIndex)..<sEnd].split(separator: ",") {
            let t = part.trimmingCharacters(in: .whitespaces)
            guard let v = Int(t), v >= 0 else { throw .corrupt(path: path, offset: offset, reason: "npy shape entry '\(t)'") }
            guard dims.count < maxRank else { throw .corrupt(path: path, offset: offset, reason: "npy shape of more than \(maxRank) dimensions") }
            dims.append(v)
        }
        return (descr, f.hasPrefix("True"), dims)
    }

    /// NumPy's own limit on dimensions (`NPY_MAXDIMS`: 64 in NumPy 2, 32 before): a header of
    /// more is hostile. (Long header text in a message is cut where messages are printed.)
    static let maxRank = 64

    /// The bytes of a version 1.0 `.npy` file holding `array` as `<f4`.
    public static func encode(_ array: NPYArray) -> [UInt8] {
        let dims = array.shape.map(String.init).joined(separator: ", ") + (array.shape.count == 1 ? "," : "")
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (\(dims)), }"
        let unpadded = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - unpadded % 64) % 64) + "\n"
        var out = magic + [1, 0]
        let n = UInt16(header.utf8.count)
        out += [UInt8(n & 0xFF), UInt8(n >> 8)]
        out += Array(header.utf8)
        array.values.withUnsafeBytes { out.append(contentsOf: $0) }
        return out
    }

    /// Writes `array` to `path` atomically.
    public static func write(_ array: NPYArray, to path: String) throws(FormatError) {
        try AtomicFileWriter(path: path).commit(writing: encode(array))
    }
}
