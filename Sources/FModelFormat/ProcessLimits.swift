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

    /// Makes sure the main thread's stack may grow to 8 MiB (Linux's usual limit) where the
    /// hard limit allows, and that threads start with 2 MiB (glibc's size when the limit is
    /// unlimited): nil, or the error to say when the hard limit is below 256 KiB, naming
    /// `program`. (Debug builds ran every command tried in 128 KiB, and crashed in 64 KiB.)
    public static func stackUnavailable(program: String) -> String? {
        let hard = fm_ensure_stack(256 << 10, 8 << 20, 2 << 20)
        guard hard != 0 else { return nil }
        return "error: \(program) needs a stack of at least 256 KiB, and the limit (ulimit -s) is \(hard / 1024) KiB: raise it"
    }

    /// Nil, or the error to say when OMP_STACKSIZE (or GOMP_STACKSIZE) gives OpenMP's threads
    /// stacks below 256 KiB: oneDNN's JIT kernels ran off one of 18 KiB (SIGSEGV; 20 KiB ran).
    /// libgomp reads the variable as it is loaded, before `main`, so it cannot be mended here.
    /// (Below 16 KiB libgomp itself keeps its default, and says so.)
    public static func openMPStackTooSmall() -> String? {
        // libgomp takes the first of the two that it can read.
        for (name, suffixes) in [("OMP_STACKSIZE", true), ("GOMP_STACKSIZE", false)] {
            guard let raw = getenv(name) else { continue }
            let value = String(cString: raw)
            guard let bytes = stackBytes(value, suffixes: suffixes) else { continue }
            guard bytes >= 16 << 10, bytes < 256 << 10 else { return nil }
            return "error: \(name) gives OpenMP's threads stacks of \(bytes >> 10) KiB, and fmodel needs at least 256 KiB: raise it or unset it"
        }
        return nil
    }

    /// A stack size as libgomp reads it: kilobytes, or with `suffixes` a B, K, M or G after the
    /// number; spaces around each. Nil when libgomp would not take it.
    static func stackBytes(_ text: String, suffixes: Bool) -> Int? {
        func trimmed(_ s: Substring) -> Substring {
            var s = s
            while s.first?.isWhitespace == true { s.removeFirst() }
            while s.last?.isWhitespace == true { s.removeLast() }
            return s
        }
        var digits = trimmed(Substring(text)), scale = 1 << 10
        let scales: [Character: Int] = ["b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30]
        if suffixes, let last = digits.last, let s = scales[Character(last.lowercased())] {
            (digits, scale) = (trimmed(digits.dropLast()), s)
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(digits) else { return nil }
        let (bytes, overflow) = n.multipliedReportingOverflow(by: scale)
        return overflow ? nil : bytes
    }

    /// Nil, or the error to say, naming `program`, when /proc is not mounted (a chroot, a
    /// sandbox). Without it the libraries fmodel runs on fail without an error: Swift's
    /// `CommandLine` reads the arguments from /proc/self/cmdline and saw none (every command
    /// trapped, "Range requires lowerBound <= upperBound"), Foundation's Process failed to start
    /// the import worker (EBADF), and Dispatch traps when it cannot read a thread's state there.
    public static func procUnavailable(program: String) -> String? {
        guard access("/proc/self/stat", R_OK) != 0 else { return nil }
        return "error: \(program) needs /proc, and it is not mounted here (mount -t proc proc /proc): Swift reads the command line there, and Dispatch its threads' states"
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
