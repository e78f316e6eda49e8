@testable import FModelRuntime
import FModelTestSupport
import Foundation
import Testing

/// The cgroup CPU quota that holds the thread team, read from made-up `/proc/self/cgroup` and
/// `/sys/fs/cgroup` trees (v1 and v2, nested, unset, nonsense).
@Suite struct CPUQuotaTests {
    /// A tree under a temporary root: `files` by path below it.
    func root(_ files: [String: String]) throws -> String {
        let root = Fixtures.temporaryDirectory() + "/"
        for (path, text) in files {
            try FileManager.default.createDirectory(atPath: root + (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try text.write(toFile: root + path, atomically: false, encoding: .utf8)
        }
        return root
    }

    func cpus(_ files: [String: String]) throws -> Int? {
        let r = try root(files)
        defer { try? FileManager.default.removeItem(atPath: r) }
        return cgroupCPUs(root: r)
    }

    @Test func v1QuotaIsRoundedDown() throws {
        #expect(try cpus(["proc/self/cgroup": "4:memory:/x\n1:cpu:/docker/abc\n0::/\n",
                          "sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n", "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
                          "sys/fs/cgroup/cpu/docker/abc/cpu.cfs_quota_us": "250000\n", "sys/fs/cgroup/cpu/docker/abc/cpu.cfs_period_us": "100000\n"]) == 2)
    }

    /// A parent's tighter quota holds; a quota under one CPU still leaves one.
    @Test func parentsAndFractionsCount() throws {
        #expect(try cpus(["proc/self/cgroup": "2:cpu,cpuacct:/a/b\n",
                          "sys/fs/cgroup/cpu,cpuacct/a/cpu.cfs_quota_us": "200000", "sys/fs/cgroup/cpu,cpuacct/a/cpu.cfs_period_us": "100000",
                          "sys/fs/cgroup/cpu,cpuacct/a/b/cpu.cfs_quota_us": "300000", "sys/fs/cgroup/cpu,cpuacct/a/b/cpu.cfs_period_us": "100000"]) == 2)
        #expect(try cpus(["proc/self/cgroup": "0::/\n", "sys/fs/cgroup/cpu.max": "50000 100000\n"]) == 1)
    }

    /// A container without a cgroup namespace: its path names a cgroup not mounted inside, whose
    /// limit is at the mount's root.
    @Test func mountRootOfAContainerCounts() throws {
        #expect(try cpus(["proc/self/cgroup": "5:cpu,cpuacct:/docker/0123abcd\n",
                          "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "100000", "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000"]) == 1)
    }

    @Test func v2MaxIsNoLimit() throws {
        #expect(try cpus(["proc/self/cgroup": "0::/user.slice/s\n", "sys/fs/cgroup/user.slice/s/cpu.max": "max 100000\n"]) == nil)
        #expect(try cpus(["proc/self/cgroup": "0::/user.slice/s\n", "sys/fs/cgroup/user.slice/s/cpu.max": "max 100000\n",
                          "sys/fs/cgroup/user.slice/cpu.max": "300000 100000\n"]) == 3)
        #expect(try cpus(["proc/self/cgroup": "0::/s\n", "sys/fs/cgroup/unified/s/cpu.max": "100000 50000\n"]) == 2)
    }

    @Test func nothingReadableIsNoLimit() throws {
        #expect(try cpus([:]) == nil)
        #expect(try cpus(["proc/self/cgroup": "1:cpu:/\n"]) == nil)
        for bad in ["abc", "100000 0", "-5 100000", "0 100000", ""] {
            let limit = try cpus(["proc/self/cgroup": "0::/\n", "sys/fs/cgroup/cpu.max": bad])
            #expect(limit == nil, "\(bad): \(String(describing: limit))")
        }
        // A quota past what a number holds is read as the largest (glibc's strtoll saturates):
        // no limit that counts.
        #expect(try cpus(["proc/self/cgroup": "0::/\n", "sys/fs/cgroup/cpu.max": "99999999999999999999999 1"]) == Int(Int32.max))
        #expect(try cpus(["proc/self/cgroup": "1:cpu:/" + String(repeating: "d/", count: 5000) + "\n0::" + String(repeating: "x", count: 9000) + "\n"]) == nil)
    }
}
