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
enum ProcessMemory {
    static func available() -> Int {
        var least = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
        let status = fields(of: "/proc/self/status", kibibytes: true)
        for (resource, used) in [(RLIMIT_AS, "VmSize"), (RLIMIT_DATA, "VmData")] {
            var limit = rlimit()
            guard getrlimit(__rlimit_resource_t(resource.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max else { continue }
            least = min(least, Int(clamping: limit.rlim_cur) - (status[used] ?? 0))
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

    /// `NAME: value` lines of a /proc file, values in bytes (`kibibytes`: given in kB).
    static func fields(of path: String, kibibytes: Bool) -> [String: Int] {
        var out: [String: Int] = [:]
        for line in (text(of: path) ?? "").split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            // "VmSize:\t  215416 kB": a tab, then spaces.
            guard parts.count == 2, let value = Int(parts[1].split(whereSeparator: { $0 == " " || $0 == "\t" }).first ?? "") else { continue }
            out[String(parts[0])] = kibibytes ? value * 1024 : value
        }
        return out
    }

    /// A small text file's contents (at most 8 KiB: /proc/self/status is under 2), without the
    /// whitespace around them; nil when it cannot be read. POSIX calls and bytes, not
    /// Foundation: this runs on the way to a model's first output, and Foundation's text code
    /// would be paged in for it.
    static func text(of path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        // Read to the end: the kernel gives a /proc file a page at a time.
        var bytes = [UInt8](repeating: 0, count: 8192), n = 0
        while n < bytes.count {
            let got = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + n, $0.count - n) }
            if got < 0 && errno == EINTR { continue }
            guard got >= 0 else { return nil }
            if got == 0 { break }
            n += got
        }
        let isSpace = { (b: UInt8) in b == 0x20 || (0x09...0x0D).contains(b) }
        let text = bytes[..<n].drop(while: isSpace)
        return String(decoding: text.reversed().drop(while: isSpace).reversed(), as: UTF8.self)
    }
}
