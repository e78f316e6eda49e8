#if canImport(Glibc)
import Glibc
#endif

/// How much more memory this process may take, in bytes: the least of the machine's physical
/// memory, what its memory cgroup and each cgroup above it may still be charged (its limit
/// less its usage), and the room its address-space and data limits (`ulimit -v`,
/// `ulimit -d`) leave beside what it has mapped (`VmSize`, `VmData`). A run planned past it is
/// an error before anything is allocated: under `ulimit -v 4000000`, a run needing 8.6 GB of
/// activations ended in Swift's allocator ("failed to allocate 8589934592 bytes", SIGABRT), as
/// the machine's 23 GB were the only bound; in a container, the kernel's out-of-memory killer
/// would end it instead. (Other allocations are not bounded so: under a limit far below the
/// model's needs, one of them still fails first.)
package enum ProcessMemory {
    package static func available() -> Int {
        var least = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
        let used = status()
        for (resource, field) in [(RLIMIT_AS, "VmSize"), (RLIMIT_DATA, "VmData")] {
            var limit = rlimit()
            guard getrlimit(__rlimit_resource_t(resource.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { continue }
            least = min(least, Int(clamping: limit.rlim_cur) - (used[field] ?? 0))
        }
        for (group, limitFile, usageFile) in cgroups(text(of: "/proc/self/cgroup") ?? "") {
            guard let limit = Int(text(of: group + limitFile) ?? ""), let usage = Int(text(of: group + usageFile) ?? "") else { continue }
            least = min(least, limit - usage)
        }
        return Swift.max(least, 0)
    }

    /// The memory cgroup directories of /proc/self/cgroup's `lines`, the process's and those
    /// above it, with the files of their limit and usage: `0::/path` (v2: `memory.max`, "max"
    /// when none) or `N:memory:/path` (v1, as on this machine: `memory.limit_in_bytes`).
    static func cgroups(_ lines: String) -> [(directory: String, limit: String, usage: String)] {
        var out: [(String, String, String)] = []
        for line in lines.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let files: (String, String, String)? = switch (fields[0], fields[1]) {
            case ("0", ""): ("/sys/fs/cgroup", "/memory.max", "/memory.current")
            case (_, let controllers) where controllers.split(separator: ",").contains("memory"):
                ("/sys/fs/cgroup/memory", "/memory.limit_in_bytes", "/memory.usage_in_bytes")
            default: nil
            }
            guard let (root, limit, usage) = files else { continue }
            var path = root
            out.append((path, limit, usage))
            for part in fields[2].split(separator: "/") {
                path += "/" + part
                out.append((path, limit, usage))
            }
        }
        return out
    }

    /// The `kB` fields of `/proc/self/status` in bytes, by name (`VmSize`, `VmRSS`, `VmHWM`, …).
    package static func status() -> [String: Int] {
        var fields: [String: Int] = [:]
        for line in procFile("/proc/self/status").split(separator: UInt8(ascii: "\n")) {
            // "VmRSS:\t    2060 kB": a tab after the name, spaces before the number.
            let parts = line.split { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
            guard parts.count == 3, parts[2].elementsEqual("kB".utf8), parts[0].last == UInt8(ascii: ":"),
                  let kB = Int(String(decoding: parts[1], as: UTF8.self)) else { continue }
            fields[String(decoding: parts[0].dropLast(), as: UTF8.self)] = kB * 1024
        }
        return fields
    }

    /// The whole of a /proc or /sys file, read to its end: they report a size of 0, and the
    /// kernel gives a page or so a read (Foundation's `String(contentsOfFile:)` stops after one
    /// read: 4,017 of a process's 15,564 bytes of maps). POSIX calls and bytes, not Foundation:
    /// this runs on the way to a model's first output, and `bench` samples with it. `chunk` is
    /// the read size (`smaps` is tens of kB; the small files are read in a page).
    package static func procFile(_ path: String, chunk size: Int = 4096) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var bytes: [UInt8] = [], chunk = [UInt8](repeating: 0, count: size)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return bytes }
            bytes += chunk[..<n]
        }
    }

    /// A small file's text without the whitespace around it; nil when it cannot be read or is
    /// empty.
    static func text(of path: String) -> String? {
        let isSpace = { (b: UInt8) in b == 0x20 || (0x09...0x0D).contains(b) }
        let text = procFile(path).drop(while: isSpace)
        guard !text.isEmpty else { return nil }
        return String(decoding: text.reversed().drop(while: isSpace).reversed(), as: UTF8.self)
    }
}
