#if canImport(Glibc)
import Glibc
#endif

/// Seconds on CLOCK_MONOTONIC: durations that a change of the system's time (NTP, `date -s`)
/// does not bend, as `Date` differences are. Also the clock Python's `time.monotonic()` reads,
/// so that a benchmark can time a process from before it started.
public enum MonotonicClock {
    public static var seconds: Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }
}
