import Foundation

/// This process's resident memory by kind of mapping, from `/proc/self/smaps`, in MB of 10⁶
/// bytes (as the weights are counted): where `bench` reports what loading and the first run
/// added (the kinds of `Benchmarks/resident_memory.py`, which samples another process).
enum ResidentSet {
    /// MB resident per kind; `modelPath` is the mapped model file.
    static func sample(modelPath: String) -> [String: Double] {
        // Read to the end: /proc files report a size of 0, and a read by size stops early.
        guard let data = try? FileHandle(forReadingFrom: URL(fileURLWithPath: "/proc/self/smaps")).readToEnd() else { return [:] }
        let smaps = String(decoding: data, as: UTF8.self)
        let model = URL(fileURLWithPath: modelPath).standardizedFileURL.path
        var parts: [String: Double] = [:]
        var current = ""
        for line in smaps.split(separator: "\n") {
            if line.hasPrefix("Rss:") {
                let kb = Double(line.split(separator: " ").dropFirst().first ?? "") ?? 0
                parts[current, default: 0] += kb * 1024 / 1e6
            } else if let range = line.split(separator: " ", maxSplits: 1).first, range.contains("-"),
                      range.allSatisfy({ $0 == "-" || $0.isHexDigit }) {
                // "start-end perms offset dev inode   path"
                let fields = line.split(separator: " ", maxSplits: 5, omittingEmptySubsequences: true)
                let name = fields.count > 5 ? fields[5].trimmingCharacters(in: .whitespaces) : ""
                current = kind(name, perms: fields.count > 1 ? String(fields[1]) : "", model: model)
            }
        }
        return parts
    }

    static func kind(_ name: String, perms: String, model: String) -> String {
        if name == model { return "model_file" }
        if name.isEmpty || name.hasPrefix("[") {
            if name == "[stack]" || name.hasPrefix("[v") { return "stacks_vdso" }
            return perms.contains("x") ? "jit_code" : "heap_anonymous"
        }
        let base = (name as NSString).lastPathComponent
        if base.hasPrefix("libdnnl") { return "libdnnl" }
        if base.hasPrefix("libFoundation") { return "foundation" }
        return base == "fmodel" ? "fmodel_code" : "other_libraries"
    }
}
