import CDNNL

/// The OpenMP thread team's size: oneDNN's, and fmodel's own loops'.
let teamSize = Int(omp_get_max_threads())

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
