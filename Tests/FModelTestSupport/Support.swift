import Foundation

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
