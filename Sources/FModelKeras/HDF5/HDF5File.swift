import CHDF5
import FModelCore
import FModelFormat
import FModelImport
import Foundation

/// A read-only HDF5 file. Every call into libhdf5 goes through this file, and a negative
/// status becomes an `ImportError` in `check` only.
final class HDF5File {
    /// The file as errors name it: its path, or for a copy, what it is a copy of.
    let path: String
    private let id: hid_t
    /// Size of the file on disk, the bound for any size the file declares.
    let fileSize: Int

    /// Debian's libhdf5 is the serial (not thread-safe) build: every use of it, from opening a
    /// file to closing it, runs under this one lock.
    private static let libraryLock = NSRecursiveLock()

    /// Runs `body` holding the library lock; files opened inside must be closed inside.
    static func withLibrary<T>(_ body: () throws -> T) rethrows -> T {
        libraryLock.lock()
        defer { libraryLock.unlock() }
        return try body()
    }

    /// Opens `path` read-only (`H5Fopen`), after checking the signature so that libhdf5 is only
    /// ever handed files that claim to be HDF5. Errors name it `name` (e.g. the `.keras` archive
    /// a temporary copy came from), else `path`.
    init(path: String, name: String? = nil) throws(ImportError) {
        self.path = name ?? path
        let prefix: [UInt8]
        do { (prefix, fileSize) = try MappedFile(path: path).withBytes { (Array($0.prefix(2056)), $0.count) } } catch {
            throw .unknownFormat(path: self.path, reason: "cannot open the file (\(error.detail))")
        }
        guard ModelLoader.hasHDF5Signature(prefix) else {
            throw .unknownFormat(path: self.path, reason: "not an HDF5 file (no HDF5 signature at byte offset 0)")
        }
        fm_H5_silence_errors()
        id = H5Fopen(path, fm_H5F_ACC_RDONLY(), fm_H5P_DEFAULT())
        guard id >= 0 else { throw .hdf5(path: self.path, object: "/", reason: "cannot open (truncated or corrupt HDF5 file)") }
    }

    deinit { H5Fclose(id) }

    // MARK: - Errors

    /// Turns a libhdf5 status into an error naming `object`.
    @discardableResult
    private func check<T: BinaryInteger>(_ status: T, _ object: String, _ what: String) throws(ImportError) -> T {
        guard status >= 0 else { throw .hdf5(path: path, object: object, reason: "\(what) failed") }
        return status
    }

    // MARK: - Structure

    /// True when a link at `object` exists (every component checked with `H5Lexists`).
    func exists(_ object: String) -> Bool {
        var prefix = ""
        for part in object.split(separator: "/") {
            prefix += "/" + part
            guard H5Lexists(id, prefix, fm_H5P_DEFAULT()) > 0 else { return false }
        }
        return true
    }

    /// Kind of the object at `object`: group, dataset, or nil.
    func kind(_ object: String) -> H5I_type_t? {
        guard exists(object) else { return nil }
        let o = H5Oopen(id, object, fm_H5P_DEFAULT())
        guard o >= 0 else { return nil }
        defer { H5Oclose(o) }
        return H5Iget_type(o)
    }

    /// Names of the links in group `object` (`H5Gget_info`, `H5Lget_name_by_idx`).
    func children(_ object: String) throws(ImportError) -> [String] {
        let g = try check(H5Gopen2(id, object, fm_H5P_DEFAULT()), object, "H5Gopen2")
        defer { H5Gclose(g) }
        var info = H5G_info_t()
        try check(H5Gget_info(g, &info), object, "H5Gget_info")
        var names: [String] = []
        for i in 0..<info.nlinks {
            let n = try check(H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, nil, 0, fm_H5P_DEFAULT()), object, "H5Lget_name_by_idx")
            var buf = [CChar](repeating: 0, count: Int(n) + 1)
            try check(H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, &buf, buf.count, fm_H5P_DEFAULT()), object, "H5Lget_name_by_idx")
            names.append(String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return names
    }

    // MARK: - Attributes

    /// The string(s) of attribute `name` on `object`, fixed- or variable-length, scalar or 1-D;
    /// nil when absent.
    func strings(_ name: String, of object: String) throws(ImportError) -> [String]? {
        guard exists(object) || object == "/", H5Aexists_by_name(id, object, name, fm_H5P_DEFAULT()) > 0 else { return nil }
        let where_ = "\(object)@\(name)"
        let a = try check(H5Aopen_by_name(id, object, name, fm_H5P_DEFAULT(), fm_H5P_DEFAULT()), where_, "H5Aopen_by_name")
        defer { H5Aclose(a) }
        let type = try check(H5Aget_type(a), where_, "H5Aget_type")
        defer { H5Tclose(type) }
        let space = try check(H5Aget_space(a), where_, "H5Aget_space")
        defer { H5Sclose(space) }
        let count = Int(try check(H5Sget_simple_extent_npoints(space), where_, "H5Sget_simple_extent_npoints"))
        // Keras writes an empty name list as an empty float array.
        if count == 0 { return [] }
        guard H5Tget_class(type) == H5T_STRING else { throw .hdf5(path: path, object: where_, reason: "is not a string attribute") }
        let size = H5Tget_size(type)
        let (declared, overflow) = count.multipliedReportingOverflow(by: max(size, 8))
        guard !overflow, declared <= fileSize + 4096 else {
            throw .limitExceeded(path: path, object: where_, reason: "declares \(count) strings of \(size) bytes in a \(fileSize)-byte file")
        }
        return H5Tis_variable_str(type) > 0
            ? try variableStrings(a, count: count, space: space, cset: H5Tget_cset(type), object: where_)
            : try fixedStrings(a, type: type, count: count, size: size, object: where_)
    }

    private func variableStrings(_ a: hid_t, count: Int, space: hid_t, cset: H5T_cset_t, object: String) throws(ImportError) -> [String] {
        let mem = H5Tcopy(fm_H5T_C_S1())
        defer { H5Tclose(mem) }
        H5Tset_size(mem, fm_H5T_VARIABLE())
        H5Tset_cset(mem, cset)  // HDF5 converts no character sets: read as stored
        var ptrs = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
        try check(H5Aread(a, mem, &ptrs), object, "H5Aread")
        defer { H5Dvlen_reclaim(mem, space, fm_H5P_DEFAULT(), &ptrs) }
        return ptrs.map { $0.map { String(cString: $0) } ?? "" }
    }

    private func fixedStrings(_ a: hid_t, type: hid_t, count: Int, size: Int, object: String) throws(ImportError) -> [String] {
        var buf = [UInt8](repeating: 0, count: count * size + 1)
        try check(H5Aread(a, type, &buf), object, "H5Aread")
        return (0..<count).map { i in
            let bytes = buf[i * size..<(i + 1) * size]
            return String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    // MARK: - Datasets

    /// Shape and stored byte count of dataset `object`, without reading it.
    func datasetInfo(_ object: String) throws(ImportError) -> (shape: [Int], bytes: Int) {
        let d = try check(H5Dopen2(id, object, fm_H5P_DEFAULT()), object, "H5Dopen2")
        defer { H5Dclose(d) }
        let shape = try dims(d, object)
        return (shape, Int(H5Dget_storage_size(d)))
    }

    /// Reads a numeric dataset as float32 (`H5Dread` with `H5T_NATIVE_FLOAT`) straight into
    /// tensor storage: no intermediate array, so the largest tensor is never held twice.
    func floatStorage(_ object: String) throws(ImportError) -> (shape: [Int], storage: TensorStorage) {
        let d = try check(H5Dopen2(id, object, fm_H5P_DEFAULT()), object, "H5Dopen2")
        defer { H5Dclose(d) }
        let type = try check(H5Dget_type(d), object, "H5Dget_type")
        defer { H5Tclose(type) }
        let (cls, size) = (H5Tget_class(type), H5Tget_size(type))
        // Keras 3 writes bfloat16 weights as 2-byte opaque data with a `dtype` attribute.
        let bfloat16 = cls == H5T_OPAQUE && size == 2 ? try strings("dtype", of: object) == ["bfloat16"] : false
        guard cls == H5T_FLOAT || cls == H5T_INTEGER || bfloat16 else { throw .hdf5(path: path, object: object, reason: "is not numeric") }
        // libhdf5 would allocate a conversion buffer of such elements.
        guard (1...8).contains(size) else {
            throw .limitExceeded(path: path, object: object, reason: "declares \(size)-byte numbers (at most 8)")
        }
        let shape = try dims(d, object)
        var count = 1
        for s in shape {
            let (p, o) = count.multipliedReportingOverflow(by: s)
            guard !o else { throw .limitExceeded(path: path, object: object, reason: "shape \(shape) overflows") }
            count = p
        }
        // A Keras file stores weights uncompressed: a dataset larger than the file is a lie.
        guard count <= max(fileSize, 1 << 16) else {
            throw .limitExceeded(path: path, object: object, reason: "declares \(count) values in a \(fileSize)-byte file")
        }
        let storage = try TensorStorage(floatCount: count) { (values: UnsafeMutableBufferPointer<Float>) throws(ImportError) in
            guard count > 0 else { return }
            if bfloat16 {
                // Read as stored into the buffer's second half, then widened in order (float i
                // overwrites only values already read): a bfloat16 is a float's top 16 bits.
                let raw = UnsafeMutableRawPointer(values.baseAddress!)
                try check(H5Dread(d, type, fm_H5S_ALL(), fm_H5S_ALL(), fm_H5P_DEFAULT(), raw + count * 2), object, "H5Dread")
                for i in 0..<count { values[i] = Float(bitPattern: UInt32(raw.load(fromByteOffset: count * 2 + i * 2, as: UInt16.self)) << 16) }
            } else {
                try check(H5Dread(d, fm_H5T_NATIVE_FLOAT(), fm_H5S_ALL(), fm_H5S_ALL(), fm_H5P_DEFAULT(), values.baseAddress), object, "H5Dread")
            }
        }
        return (shape, storage)
    }

    private func dims(_ d: hid_t, _ object: String) throws(ImportError) -> [Int] {
        let space = try check(H5Dget_space(d), object, "H5Dget_space")
        defer { H5Sclose(space) }
        let rank = Int(try check(H5Sget_simple_extent_ndims(space), object, "H5Sget_simple_extent_ndims"))
        guard rank <= 8 else { throw .limitExceeded(path: path, object: object, reason: "rank \(rank)") }
        var dims = [hsize_t](repeating: 0, count: max(rank, 1))
        try check(H5Sget_simple_extent_dims(space, &dims, nil), object, "H5Sget_simple_extent_dims")
        return dims.prefix(rank).map { Int(clamping: $0) }
    }
}
