import CDNNL
import CKernels
#if canImport(Glibc)
import Glibc
#endif

/// The OpenMP thread team's size: oneDNN's, and fmodel's own loops'; at most the CPUs this
/// process may run on, and, unless OMP_NUM_THREADS says otherwise, the whole CPUs its cgroups'
/// CPU quota allows (`docker --cpus`).
/// An OMP_NUM_THREADS past the CPUs only has threads spin for the cores: on the 2-CPU machine,
/// 8 made the int8 multi-task model's batch 1 take 104 ms against 11, 1,000 took 6 s, and
/// 100,000 crashed (SIGSEGV). Two threads under a quota of one CPU are throttled in turn: batch
/// 32 of the multi-task model took 1,020–1,094 ms against one thread's 817–835, and 200 runs
/// at batch 1 8.4–9.4 s against 6.5–6.7 (their median was lower, 20–22 ms against 30, as a
/// run that starts with the period's quota unspent has both CPUs for it: one who runs a request
/// at a time may set OMP_NUM_THREADS for that).
let teamSize: Int = {
    let requested = Int(omp_get_max_threads()), cpus = teamCPUs(bind: omp_get_proc_bind(), places: openMPPlaces)
    let quota = getenv("OMP_NUM_THREADS") == nil ? cgroupCPUs() ?? 0 : 0
    // OMP_THREAD_LIMIT caps every team, and OMP_MAX_ACTIVE_LEVELS=0 runs every region on one
    // thread: on b7e707a each left `bench` saying 2 threads while it computed on one.
    let allowed = omp_get_max_active_levels() > 0 ? Int(omp_get_thread_limit()) : 1
    return [requested, cpus, quota, allowed].filter { $0 > 0 }.min() ?? 1
}()

/// The CPUs the team may run on: this process's (`taskset`, a cpuset), unless libgomp binds
/// the team's threads to `places` (OMP_PROC_BIND, OMP_PLACES, GOMP_CPU_AFFINITY; `bind` is
/// `omp_get_proc_bind()`). Then it has bound this thread, the initial one, to the first place
/// before `main`, and the thread's own mask says only that place: on aa8e8a0 any binding but
/// to one place of every CPU made a team of one, 1.7× the time at batch 1 and 1.9× at batch 32
/// (`OMP_PROC_BIND=close OMP_PLACES=cores`; `GOMP_CPU_AFFINITY=0-1` too). The team runs
/// on every place's CPUs, or, under `master`, every thread in the first place. Where that
/// binding did not take (a place of CPUs this process may not run on), the process's CPUs
/// count, as before, for `ProcessLimits` to name the setting.
func teamCPUs(bind: Int32, places: [[Int]]) -> Int {
    let own = Int(fm_available_cpus())
    guard bind != 0, let first = places.first,
          fm_thread_runs_on_exactly(first.map(Int32.init), first.count) != 0 else { return own }
    return bind == ompProcBindMaster ? Set(first).count : Set(places.joined()).count
}

/// `omp_proc_bind_master` (OpenMP 5.1's `primary`): every thread of a team in its parent's place.
let ompProcBindMaster: Int32 = 2

/// libgomp's places: the CPUs of each, in order.
var openMPPlaces: [[Int]] {
    (0..<omp_get_num_places()).map { place -> [Int] in
        var ids = [Int32](repeating: 0, count: Int(max(omp_get_place_num_procs(place), 0)))
        omp_get_place_proc_ids(place, &ids)
        return ids.map(Int.init)
    }
}

/// The whole CPUs the CPU quota of this process's cgroups allows, if one is set; `root` stands
/// for "/" in tests.
func cgroupCPUs(root: String = "/") -> Int? {
    let cpus = Int(fm_cgroup_cpus(root))
    return cpus > 0 ? cpus : nil
}

/// The threads the runtime computes on (`teamSize`).
public var runtimeThreads: Int { teamSize }

/// The CPUs libgomp binds the team's threads to: those of its places, from OMP_PLACES or
/// GOMP_CPU_AFFINITY as it took them; none when it binds them nowhere (OMP_PROC_BIND false, or
/// unset with neither variable).
public var openMPBinding: [Int] {
    omp_get_proc_bind() == 0 ? [] : Array(openMPPlaces.joined())
}

/// Holds the OpenMP regions the calling thread starts, oneDNN's too (which size themselves by
/// the thread's own setting, OMP_NUM_THREADS at first), to `teamSize`. Called where the runtime
/// starts computing (`Executor`, `GEMMRate`), on whichever thread that is.
func joinTeam() { omp_set_num_threads(Int32(teamSize)) }

/// The calling thread's number in the OpenMP team (0 outside a parallel region).
func threadNumber() -> Int { Int(omp_get_thread_num()) }

/// Splits `0..<count` into one contiguous range per thread and runs `body` on each, on the
/// OpenMP team oneDNN uses for GEMM. Sharing that team (rather than Dispatch) matters on a small
/// machine: OpenMP's threads spin for a while after each GEMM, and a second pool would fight
/// them for the cores. Runs inline when the work is smaller than `grain` items per thread.
func parallelFor(_ count: Int, grain: Int, _ body: (Range<Int>) -> Void) {
    let threads = min(teamSize, count / max(grain, 1))
    guard threads > 1 else {
        if count > 0 { body(0..<count) }
        return
    }
    withoutActuallyEscaping(body) { body in
        var job = ParallelJob(count: count, body: body)
        withUnsafeMutablePointer(to: &job) { pointer in
            GOMP_parallel({ raw in
                let job = raw!.assumingMemoryBound(to: ParallelJob.self).pointee
                let t = Int(omp_get_thread_num()), n = Int(omp_get_num_threads())
                let range = (job.count * t / n)..<(job.count * (t + 1) / n)
                if !range.isEmpty { job.body(range) }
            }, pointer, UInt32(threads), 0)
        }
    }
}

private struct ParallelJob {
    let count: Int
    let body: (Range<Int>) -> Void
}
