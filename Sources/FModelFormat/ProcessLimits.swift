import CCleanup
import FModelCore
#if canImport(Glibc)
import Glibc
#endif

/// What a process needs of its limits before it starts work. Past them the libraries fmodel
/// runs on do not fail with an error: with few files allowed open (`ulimit -n`) Dispatch and
/// Foundation's run loop crash (SIGILL), and with few threads allowed (`ulimit -u`) Dispatch
/// waits for one for ever and OpenMP exits with code 1. The executables check first, in `main`.
public enum ProcessLimits {
    /// Every check a program makes as it starts, in order (/proc first: the others read it),
    /// raising what it may: nil, or the first error to say, naming `program`. `threads`: the
    /// threads it starts beside its main one; `openFiles`: the files it may have open at once;
    /// `openMPTeam`: the threads of the OpenMP team it computes on (0: none) and the CPUs
    /// libgomp binds them to (none: unbound), asked once the stack is checked (under `ulimit -s
    /// 24` its code crashed before).
    public static func refusal(program: String, threads: Int, openFiles: Int? = nil,
                               openMPTeam: () -> (threads: Int, boundTo: [Int]) = { (0, []) }) -> String? {
        if let message = procUnavailable(program: program) ?? stackUnavailable(program: program) { return message }
        let team = openMPTeam(), stack = team.threads > 0 ? openMPStack() : nil
        return stack.flatMap(openMPStackTooSmall)
            ?? openFiles.flatMap { openFilesUnavailable($0, program: program) } ?? threadsUnavailable(threads, program: program)
            ?? (team.threads > 1 ? openMPAffinityUnusable(team.boundTo) : nil)
            ?? (team.threads > 1 ? stack.flatMap { openMPStackUnavailable($0, threads: team.threads - 1) } : nil)
    }

    /// Makes sure the process may have `needed` files open at once, and one past the highest
    /// descriptor it has open, raising its soft limit to the hard one where it is lower: nil, or
    /// the error to say when even the hard limit is lower than `needed` (nothing changed).
    static func openFilesUnavailable(_ needed: Int, program: String) -> String? {
        let hard = fm_ensure_open_files(needed)
        guard hard != 0 else { return nil }
        return "error: \(program) needs to have up to \(needed) files open at once, and the limit (ulimit -n) is \(hard): raise it"
    }

    /// The least stack, the main thread's or an OpenMP thread's, fmodel runs with. Debug builds
    /// ran every command tried in a main stack of 128 KiB, and crashed in 64 KiB.
    static let leastStack = 256 << 10

    /// Makes sure the main thread's stack may grow to 8 MiB (Linux's usual limit) where the
    /// hard limit allows, and that threads start with 2 MiB (glibc's size when the limit is
    /// unlimited): nil, or the error to say when the hard limit is below `leastStack`, naming
    /// `program`.
    static func stackUnavailable(program: String) -> String? {
        let hard = fm_ensure_stack(leastStack, 8 << 20, 2 << 20)
        guard hard != 0 else { return nil }
        return "error: \(program) needs a stack of at least \(leastStack >> 10) KiB, and the limit (ulimit -s) is \(hard >> 10) KiB: raise it"
    }

    /// OpenMP's threads' stack size as libgomp reads it as it is loaded, before `main` (so it
    /// cannot be mended here): the variable, and the size, of the first of OMP_STACKSIZE and
    /// GOMP_STACKSIZE that it can read.
    static func openMPStack() -> (variable: String, bytes: Int)? {
        for (name, suffixes) in [("OMP_STACKSIZE", true), ("GOMP_STACKSIZE", false)] {
            guard let raw = getenv(name), let bytes = stackBytes(String(cString: raw), suffixes: suffixes) else { continue }
            return (name, bytes)
        }
        return nil
    }

    /// Nil, or the error to say when OpenMP's threads get stacks below `leastStack`: oneDNN's
    /// JIT kernels ran off one of 18 KiB (SIGSEGV; 20 KiB ran). (Below 16 KiB libgomp itself
    /// keeps its default, and says so.)
    static func openMPStackTooSmall(_ stack: (variable: String, bytes: Int)) -> String? {
        guard stack.bytes >= 16 << 10, stack.bytes < leastStack else { return nil }
        return "error: \(stack.variable) gives OpenMP's threads stacks of \(stack.bytes >> 10) KiB, and fmodel needs at least \(leastStack >> 10) KiB: raise it or unset it"
    }

    /// Nil, or the error to say when `threads` threads with OpenMP's stacks cannot start (more
    /// than the memory there is: `OMP_STACKSIZE=100G`), which libgomp would end the process for,
    /// exit code 1 ("libgomp: Thread creation failed: Resource temporarily unavailable").
    static func openMPStackUnavailable(_ stack: (variable: String, bytes: Int), threads: Int) -> String? {
        guard stack.bytes > 8 << 20 else { return nil }  // as large as a main thread's: no probe
        let failure = fm_probe_threads(Int32(threads), stack.bytes)
        guard failure != 0 else { return nil }
        let size = stack.bytes >= 1 << 30 ? "\(stack.bytes >> 30) GiB" : "\(stack.bytes >> 20) MiB"
        return "error: \(stack.variable) gives OpenMP's threads stacks of \(size), and the \(threads == 1 ? "thread" : "\(threads) threads") OpenMP starts for fmodel could not start with such stacks: \(String(cString: strerror(failure))): lower it or unset it"
    }

    /// Nil, or the error to say when `cpus`, those libgomp binds its threads to, hold none this
    /// process may run on (`fm_openmp_affinity_unusable`), which libgomp would end the process
    /// for, exit code 1 ("libgomp: Thread creation failed: Invalid argument"): a
    /// GOMP_CPU_AFFINITY set for another machine, or for CPUs a container does not have. (libgomp
    /// keeps only such CPUs of OMP_PLACES, and takes GOMP_CPU_AFFINITY when it refuses those:
    /// the check read the variables and took an OMP_PLACES set at all, `garbage` too, for one.)
    static func openMPAffinityUnusable(_ cpus: [Int]) -> String? {
        var allowed = [CChar](repeating: 0, count: 256)
        let ids = cpus.map { Int32(clamping: $0) }
        guard fm_openmp_affinity_unusable(ids, ids.count, &allowed, allowed.count) != 0 else { return nil }
        let cpusAllowed = String(decoding: allowed.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let source = getenv("GOMP_CPU_AFFINITY").map { "GOMP_CPU_AFFINITY (\(String(cString: $0).terminalSafe))" }
            ?? "OpenMP's places (CPUs \(cpus.map(String.init).joined(separator: ",")))"
        let refused = getenv("OMP_PLACES") == nil ? "" : ", which libgomp took as OMP_PLACES is not one it accepts,"
        return "error: \(source)\(refused) names no CPU this process may run on (it may run on \(cpusAllowed)), and OpenMP cannot start its threads there: name some of those, or unset it"
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
    static func procUnavailable(program: String) -> String? {
        guard access("/proc/self/stat", R_OK) != 0 else { return nil }
        return "error: \(program) needs /proc, and it is not mounted here (mount -t proc proc /proc): Swift reads the command line there, and Dispatch its threads' states"
    }

    /// Starts `count` threads beside the calling one, all alive at once, and ends them: nil, or
    /// the error to say when they could not all start, naming `program` (which runs up to
    /// `count` + 1 threads).
    static func threadsUnavailable(_ count: Int, program: String) -> String? {
        let failure = fm_probe_threads(Int32(count), 0)
        guard failure != 0 else { return nil }
        return "error: \(program) runs up to \(count + 1) threads, and could not start them: \(String(cString: strerror(failure))) (ulimit -u: processes and threads)"
    }
}
