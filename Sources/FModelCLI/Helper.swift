#if canImport(Glibc)
import Glibc
#endif

/// Where the Keras import worker is: `FMODEL_HELPER` when set, else the `fmodel-keras` beside
/// this process's executable (as `swift build` and an install lay them out). `fmodel` runs it for
/// every Keras file (`IsolatedImport`): libhdf5 is linked there only.
enum Helper {
    /// The worker executable's name.
    static let name = "fmodel-keras"

    /// From POSIX calls, not `ProcessInfo`, `FileManager` and `NSString`: every command that
    /// loads a model asks, and that Foundation code (0.4 MB of pages, measured with `bench
    /// --json`) would be paged in on the way to an `.fmodel`'s first output.
    static var path: String? {
        if let p = getenv("FMODEL_HELPER") { return String(cString: p) }
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX))
        let n = buffer.withUnsafeMutableBytes { readlink("/proc/self/exe", $0.baseAddress!, $0.count) }
        let me = n > 0 ? String(decoding: buffer[0..<n], as: UTF8.self) : CommandLine.arguments[0]
        var parts = me.split(separator: "/", omittingEmptySubsequences: false)
        parts[parts.count - 1] = Substring(name)
        let sibling = parts.joined(separator: "/")
        return access(sibling, X_OK) == 0 ? sibling : nil
    }
}
