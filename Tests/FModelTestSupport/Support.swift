import Foundation
import FModelRuntime

/// How many of the pages under `bytes` this process has mapped (`/proc/self/pagemap`'s present
/// bit): what counts in its resident set. Nil where the file cannot be read.
public func residentPages(_ bytes: UnsafeRawBufferPointer) -> Int? {
    guard let base = bytes.baseAddress, bytes.count > 0, let f = fopen("/proc/self/pagemap", "rb") else { return nil }
    defer { fclose(f) }
    let page = Int(sysconf(Int32(_SC_PAGESIZE)))
    let first = Int(bitPattern: base) / page, last = (Int(bitPattern: base) + bytes.count - 1) / page
    var entries = [UInt64](repeating: 0, count: last - first + 1)
    guard fseek(f, first * 8, SEEK_SET) == 0,
          entries.withUnsafeMutableBytes({ fread($0.baseAddress, 8, $0.count / 8, f) }) == entries.count else { return nil }
    return entries.filter { $0 >> 63 == 1 }.count
}

/// The whole text of a /proc file (`/proc/PID/maps`, `/proc/cpuinfo`), read to its end
/// (`ProcessMemory.procFile`). Foundation's `String(contentsOfFile:)` reads such a file once:
/// it had the first 4,017 of 15,564 bytes of a `bench` process's maps, so whether the model's
/// mapping was among them depended on where it was placed, and a test that looked for it
/// failed now and then (3 runs in 15 of the optimised tests).
public func procText(_ path: String) -> String {
    String(decoding: ProcessMemory.procFile(path), as: UTF8.self)
}
