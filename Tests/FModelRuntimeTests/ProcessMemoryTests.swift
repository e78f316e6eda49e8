@testable import FModelRuntime
import Foundation
import Testing

/// What the process may take (`ProcessMemory`), which bounds a run's activations.
@Suite struct ProcessMemoryTests {
    /// /proc/self/status's sizes are read: "VmSize:\t  215416 kB" has a tab before its spaces.
    /// A second parser written for `ProcessMemory` split at spaces alone and read no size, so
    /// the room `ulimit -v` leaves was taken for the whole limit; `bench`'s parser, which
    /// handled the tab, is now the only one.
    @Test func statusSizesAreRead() throws {
        let status = ProcessMemory.status()
        let size = try #require(status["VmSize"]), data = try #require(status["VmData"])
        #expect(size > 1 << 20 && data > 1 << 20 && size % 1024 == 0, "\(size), \(data)")
    }

    /// Both layouts of /proc/self/cgroup give the memory cgroup and those above it, with the
    /// files of their limit and usage; other controllers' lines are not read.
    @Test func cgroupLinesGiveTheMemoryHierarchy() {
        let v1 = ProcessMemory.cgroups("9:name=systemd:/\n4:memory:/process_api/a17b\n3:cpuset:/\n")
        #expect(v1.map(\.directory) == ["/sys/fs/cgroup/memory", "/sys/fs/cgroup/memory/process_api", "/sys/fs/cgroup/memory/process_api/a17b"])
        #expect(v1.allSatisfy { $0.limit == "/memory.limit_in_bytes" && $0.usage == "/memory.usage_in_bytes" })
        let v2 = ProcessMemory.cgroups("0::/user.slice/session-2.scope\n")
        #expect(v2.map(\.directory) == ["/sys/fs/cgroup", "/sys/fs/cgroup/user.slice", "/sys/fs/cgroup/user.slice/session-2.scope"])
        #expect(v2.allSatisfy { $0.limit == "/memory.max" && $0.usage == "/memory.current" })
        #expect(ProcessMemory.cgroups("3:cpu,cpuacct:/x\n").isEmpty)
        #expect(ProcessMemory.cgroups("5:cpu,memory:/y\n").map(\.directory) == ["/sys/fs/cgroup/memory", "/sys/fs/cgroup/memory/y"])
    }

    /// What is available is within the machine's memory and above nothing here.
    @Test func availableIsWithinTheMachine() {
        let physical = Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
        let available = ProcessMemory.available()
        #expect(available > 0 && available <= physical)
    }

    /// Memory that cannot be had goes to the failure handler with what was asked for (fmodel's
    /// says it and exits 2), not to Swift's allocator, which trapped ("Fatal error: failed to
    /// allocate 58720256 bytes" under `ulimit -v 600000`, `bench --batch 64` of the full model).
    /// 2^52 bytes are more than any address space. The handler may not return: it runs on a
    /// thread of its own, which it ends. (It is passed, not set: `MemoryExhaustion.handler` is
    /// the process's, which the CLI tests running meanwhile set.)
    @Test func memoryThatCannotBeHadGoesToTheHandler() {
        final class Told: @unchecked Sendable { var message = ""; let done = DispatchSemaphore(value: 0) }
        let told = Told()
        Thread {
            _ = MemoryExhaustion.allocate(bytes: 1 << 52) { message in
                told.message = message
                told.done.signal()
                Thread.exit()
                fatalError("unreachable")
            }
        }.start()
        #expect(told.done.wait(timeout: .now() + 30) == .success)
        #expect(told.message.hasPrefix("out of memory: 4503599.7 GB could not be allocated, with at most "), "\(told.message)")
    }
}
