#if canImport(Glibc)
import Glibc
#endif

/// This process's resident memory by kind of mapping, from `/proc/self/smaps`, in MB of 10⁶
/// bytes (as the weights are counted): where `bench` reports what loading and the first run
/// added (the kinds of `Benchmarks/resident_memory.py`, which samples another process).
///
/// Reads with `read(2)` and parses bytes, without Foundation: Foundation code the sampler ran
/// for the first time after the baseline was paged in between the samples and counted as
/// loading's (0.5-1 MB, measured).
enum ResidentSet {
    /// MB resident per kind; `modelPath` is the mapped model file.
    static func sample(modelPath: String) -> [String: Double] {
        let bytes = procFile("/proc/self/smaps")
        let model = realpath(modelPath, nil).map { p in defer { free(p) }; return String(cString: p) } ?? modelPath
        var parts: [String: Double] = [:]
        var current = ""
        for line in bytes.split(separator: UInt8(ascii: "\n")) {
            let fields = line.split(separator: UInt8(ascii: " "), maxSplits: 5)
            guard let first = fields.first else { continue }
            if first.elementsEqual("Rss:".utf8), fields.count > 1 {
                parts[current, default: 0] += Double(String(decoding: fields[1], as: UTF8.self)).map { $0 * 1024 / 1e6 } ?? 0
            } else if first.contains(UInt8(ascii: "-")), first.allSatisfy({ $0 == UInt8(ascii: "-") || Self.isHex($0) }) {
                // "start-end perms offset dev inode   path": the path after the spaces.
                let name = fields.count > 5 ? String(decoding: fields[5].drop { $0 == UInt8(ascii: " ") }, as: UTF8.self) : ""
                current = kind(name, perms: fields.count > 1 ? String(decoding: fields[1], as: UTF8.self) : "", model: model)
            }
        }
        return parts
    }

    /// The `kB` fields of `/proc/self/status` in MB, by name (`VmRSS`, `RssFile`, …), from one
    /// read. For the peak, `VmHWM`: `getrusage`'s ru_maxrss would do, but Linux carries it
    /// across exec, so a process started by a big parent reports the parent's size.
    static func status() -> [String: Double] {
        var fields: [String: Double] = [:]
        for line in procFile("/proc/self/status").split(separator: UInt8(ascii: "\n")) {
            // "VmRSS:\t    2060 kB": a tab after the name, spaces before the number.
            let parts = line.split { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
            guard parts.count == 3, parts[2].elementsEqual("kB".utf8), parts[0].last == UInt8(ascii: ":"),
                  let kb = Double(String(decoding: parts[1], as: UTF8.self)) else { continue }
            fields[String(decoding: parts[0].dropLast(), as: UTF8.self)] = kb * 1024 / 1e6
        }
        return fields
    }

    /// The whole of a /proc file (they report a size of 0, so read to the end).
    static func procFile(_ path: String) -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { return bytes }
            bytes += chunk[0..<n]
        }
    }

    static func isHex(_ c: UInt8) -> Bool { (0x30...0x39).contains(c) || (0x61...0x66).contains(c) }

    static func kind(_ name: String, perms: String, model: String) -> String {
        if name == model { return "model_file" }
        if name.isEmpty || name.hasPrefix("[") {
            if name == "[stack]" || name.hasPrefix("[v") { return "stacks_vdso" }
            return perms.contains("x") ? "jit_code" : "heap_anonymous"
        }
        let base = name.split(separator: "/").last.map(String.init) ?? name
        if base.hasPrefix("libdnnl") { return "libdnnl" }
        if base.hasPrefix("libFoundation") { return "foundation" }
        return base == "fmodel" ? "fmodel_code" : "other_libraries"
    }
}
