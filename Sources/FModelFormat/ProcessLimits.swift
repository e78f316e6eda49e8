import CCleanup
#if canImport(Glibc)
import Glibc
#endif

/// What a process needs of its limits before it starts work. Past them the libraries fmodel
/// runs on do not fail with an error: with few files allowed open (`ulimit -n`) Dispatch and
/// Foundation's run loop crash (SIGILL), and with few threads allowed (`ulimit -u`) Dispatch
/// waits for one for ever and OpenMP exits with code 1. The executables check first, in `main`.
public enum ProcessLimits {
    /// Makes sure the process may have `needed` files open at once, and one past the highest
    /// descriptor it has open, raising its soft limit to the hard one where it is lower. Returns
    /// nil, or the hard limit when even that is lower than `needed` (nothing changed).
    public static func ensureOpenFiles(_ needed: Int) -> Int? {
        let hard = fm_ensure_open_files(needed)
        return hard == 0 ? nil : hard
    }

    /// Starts `count` threads beside the calling one, all alive at once, and ends them: nil, or
    /// the error to say when they could not all start, naming `program` (which runs up to
    /// `count` + 1 threads).
    public static func threadsUnavailable(_ count: Int, program: String) -> String? {
        let failure = fm_probe_threads(Int32(count))
        guard failure != 0 else { return nil }
        return "error: \(program) runs up to \(count + 1) threads, and could not start them: \(String(cString: strerror(failure))) (ulimit -u: processes and threads)"
    }
}
