#if canImport(Glibc)
import Glibc
#endif
import FModelRuntime

/// This process's resident memory by kind of mapping, from `/proc/self/smaps`, in MB of 10⁶
/// bytes (as the weights are counted): where `bench` reports what loading and the first run
/// added (the kinds of `Benchmarks/resident_memory.py`, which samples another process).
///
/// Reads with `read(2)` and parses bytes, without Foundation: Foundation code the sampler ran
/// for the first time after the baseline was paged in between the samples and counted as
/// loading's (0.5-1 MB, measured).
enum ResidentSet {
    /// MB resident per kind; `modelPath` is the mapped model file. One pass over the bytes:
    /// the baseline is sampled between process start and the first output, so its time counts
    /// in `first_output_at` (6-9 ms with the text split into lines and fields, 4-6 now, most of
    /// it the kernel's reading of /proc).
    static func sample(modelPath: String) -> [String: Double] {
        let model = realpath(modelPath, nil).map { p in defer { free(p) }; return String(cString: p) } ?? modelPath
        return parse(smaps: ProcessMemory.procFile("/proc/self/smaps", chunk: 1 << 16), model: model)
    }

    /// The `Rss:` lines of an smaps text summed by the kind of their mapping, MB.
    static func parse(smaps bytes: [UInt8], model: String) -> [String: Double] {
        var kB: [String: Int] = [:]
        var current = ""
        bytes.withUnsafeBufferPointer { b in
            var i = 0
            while i < b.count {
                var end = i
                while end < b.count, b[end] != UInt8(ascii: "\n") { end += 1 }
                if end - i > 4, b[i] == UInt8(ascii: "R"), b[i + 1] == UInt8(ascii: "s"), b[i + 2] == UInt8(ascii: "s"), b[i + 3] == UInt8(ascii: ":") {
                    // "Rss:        1234 kB"
                    var j = i + 4, value = 0
                    while j < end, b[j] == UInt8(ascii: " ") { j += 1 }
                    while j < end, (0x30...0x39).contains(b[j]) { value = value * 10 + Int(b[j] - 0x30); j += 1 }
                    kB[current, default: 0] += value
                } else if let header = mappingHeader(b, i, end) {
                    current = kind(header.name, perms: header.perms, model: model)
                }
                i = end + 1
            }
        }
        return kB.mapValues { Double($0) * 1024 / 1e6 }
    }

    /// For a line "start-end perms offset dev inode   path" (hex range first), its path and
    /// permissions; nil for the field lines ("Rss:", "VmFlags:" and the rest).
    private static func mappingHeader(_ b: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) -> (name: String, perms: String)? {
        var j = start
        while j < end, isHex(b[j]) { j += 1 }
        guard j > start, j < end, b[j] == UInt8(ascii: "-") else { return nil }
        // Five space-separated fields, then spaces, then the path (which may hold spaces).
        var field = 0, permsStart = 0, permsEnd = 0
        while j < end, field < 5 {
            if b[j] == UInt8(ascii: " ") {
                field += 1
                if field == 1 { permsStart = j + 1 } else if field == 2 { permsEnd = j }
            }
            j += 1
        }
        while j < end, b[j] == UInt8(ascii: " ") { j += 1 }
        let perms = String(decoding: UnsafeBufferPointer(rebasing: b[permsStart..<max(permsStart, permsEnd)]), as: UTF8.self)
        return (String(decoding: UnsafeBufferPointer(rebasing: b[j..<end]), as: UTF8.self), perms)
    }

    /// The `kB` fields of `/proc/self/status` in MB, by name (`VmRSS`, `RssFile`, …), from one
    /// read. For the peak, `VmHWM`: `getrusage`'s ru_maxrss would do, but Linux carries it
    /// across exec, so a process started by a big parent reports the parent's size.
    static func status() -> [String: Double] {
        ProcessMemory.status().mapValues { Double($0) / 1e6 }
    }

    static func isHex(_ c: UInt8) -> Bool { (0x30...0x39).contains(c) || (0x61...0x66).contains(c) }

    static func kind(_ name: String, perms: String, model: String) -> String {
        if name == model { return "model_file" }
        if name.isEmpty || name.hasPrefix("[") {
            if name == "[stack]" || name.hasPrefix("[v") { return "stacks_vdso" }
            return perms.utf8.contains(UInt8(ascii: "x")) ? "jit_code" : "heap_anonymous"
        }
        let base = name.split(separator: "/").last.map(String.init) ?? name
        if base.hasPrefix("libdnnl") { return "libdnnl" }
        if base.hasPrefix("libFoundation") { return "foundation" }
        return base == "fmodel" ? "fmodel_code" : "other_libraries"
    }
}
