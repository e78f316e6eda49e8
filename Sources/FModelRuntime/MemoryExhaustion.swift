#if canImport(Glibc)
import Glibc
#endif

/// Where the runtime's own large allocations come from (activation and scratch buffers, packed
/// weights), and what happens when one cannot be had. Under a tight `ulimit -v` or memory
/// cgroup, a run that passed the activation check (`ProcessMemory`) could still fail one of them,
/// and Swift's allocator ended the process with "Fatal error: failed to allocate 58720256
/// bytes" and a stack trace (`ulimit -v 600000`, `bench --batch 64` of the full model). Such a
/// failure now goes to `handler`, which the executable sets: fmodel says why, cleans up and
/// exits with code 2.
public enum MemoryExhaustion {
    /// Told what could not be allocated; never returns. The default traps with that message.
    nonisolated(unsafe) public static var handler: (String) -> Never = { fatalError($0) }

    /// `bytes` (at least 1), aligned to `alignment` (a power of two, at least the pointer's),
    /// for `free`; `fail` (`handler` unless given) is told when they cannot be had.
    static func allocate(bytes: Int, alignment: Int = 64, failing fail: (String) -> Never = { handler($0) }) -> UnsafeMutableRawPointer {
        var pointer: UnsafeMutableRawPointer?
        if posix_memalign(&pointer, alignment, max(bytes, 1)) == 0, let pointer { return pointer }
        fail("out of memory: \(memoryText(bytes, .up)) could not be allocated, with at most \(memoryText(ProcessMemory.available(), .down)) more to be had (the machine's memory, its cgroup's limit or ulimit -v/-d)")
    }
}

/// `bytes` in MB below a GB, else GB, to a tenth, rounded `rule`: up for what is needed, down for
/// what may be taken, so that the one never reads as fitting the other.
func memoryText(_ bytes: Int, _ rule: FloatingPointRoundingRule) -> String {
    let (unit, name) = bytes < 1_000_000_000 ? (1e5, "MB") : (1e8, "GB")
    let tenths = Int((Double(bytes) / unit).rounded(rule))
    return "\(tenths / 10).\(tenths % 10) \(name)"
}
