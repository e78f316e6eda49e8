import CCleanup

/// What this process removes, or ends, if SIGINT, SIGTERM or SIGHUP ends it (Ctrl-C, `timeout`, a
/// closed terminal): the temporary files it writes before renaming them into place, its
/// temporary directories, and the import worker it waits on. Without it, an interrupted
/// `fmodel import` of the 478 MB `.h5` left a hidden `.out.fmodel.…` file of its size beside the
/// output. And the files it reads through mappings: one cut short under it (SIGBUS) is an error
/// naming it, not a crash. The executables call `install()`; the libraries remember and forget
/// (`CCleanup` holds the slots and the handlers, which may call only async-signal-safe
/// functions).
public enum Cleanup {
    /// Catches the three signals (not those the process was started ignoring), and ignores
    /// SIGXFSZ and SIGPIPE: a write past the file size limit (`ulimit -f`) fails as an error like
    /// any other (exit 2, the temporary file removed), and a closed standard output (`| head`)
    /// loses the reports, not the file being written. And first opens placeholders on the
    /// standard descriptors (0–2) the process was started without, so that no file it opens
    /// takes their numbers (`fmodel … >&-` gave its temporary output descriptor 1, where any
    /// line printed would have gone). Call first in `main`.
    public static func install() {
        fm_reserve_standard_descriptors()
        fm_cleanup_install()
    }

    /// What one call remembered, until it is forgotten: by `forget()` (a local's owner calls it,
    /// in a `defer` or where the path stops being temporary) or when the ticket goes.
    public final class Ticket {
        private var slot: Int32

        fileprivate init(slot: Int32) { self.slot = slot }

        /// Forgets it: the file has been renamed into place or removed, the child has ended.
        public func forget() {
            fm_cleanup_forget(slot)
            slot = -1
        }

        /// Removes the file or (empty) directory now, as a signal would have, and forgets it.
        public func removeNow() {
            fm_cleanup_remove_now(slot)
            slot = -1
        }

        deinit { fm_cleanup_forget(slot) }
    }

    /// Remembers a file to remove. (Past 32 at once, a file is not covered.)
    public static func remember(file path: String) -> Ticket { Ticket(slot: fm_cleanup_remember_file(path)) }

    /// Remembers an empty directory to remove, after the files (up to 8 at once).
    public static func remember(directory path: String) -> Ticket { Ticket(slot: fm_cleanup_remember_directory(path)) }

    /// Starts a child with `start`, which returns its pid, and remembers it, to end and wait for
    /// before the paths are removed (it may be writing one of them; up to 4 at once). There is no
    /// moment between the two in which a signal would end this process and leave the child
    /// running (`fm_cleanup_starting_child`: one that comes meanwhile is handled once the pid
    /// is known).
    public static func remember(childStartedBy start: () throws -> Int32) rethrows -> Ticket {
        let slot = fm_cleanup_starting_child()
        let pid: Int32
        do { pid = try start() } catch {
            fm_cleanup_started_child(slot, 0)
            throw error
        }
        fm_cleanup_started_child(slot, pid)
        return Ticket(slot: slot)
    }

    /// Remembers a file's read-only mapping: if reading it faults (SIGBUS: the file shrank under
    /// it, written over in place by another program), the process says so, naming `path`,
    /// cleans up and exits with code 2, instead of crashing with "Bus error".
    public static func remember(mapping bytes: UnsafeRawBufferPointer, path: String) -> Ticket {
        Ticket(slot: fm_cleanup_remember_mapping(bytes.baseAddress, bytes.count, path))
    }

    /// Ends the process with exit code `code` at once, after the cleanup a signal would do:
    /// for a failure nothing can recover from (memory that cannot be had).
    public static func exit(_ code: Int32) -> Never { fm_cleanup_exit(code) }

    /// Whether `path` is remembered, as a file or a directory.
    public static func remembers(_ path: String) -> Bool { fm_cleanup_remembers(path) != 0 }
}
