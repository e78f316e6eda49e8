@testable import FModelCLI
import CKernels
import FModelCompress
import FModelCore
import FModelFormat
import FModelImport
import FModelKeras
import FModelRuntime
import FModelTestSupport
import Foundation
import Testing

/// The commands as a user runs them, through `FModelCommand.main(arguments:)` or, where the
/// message matters, `outcome(arguments:)`: exit codes and what a refusal says.
@Suite final class CLITests {
    let dir = Fixtures.temporaryDirectory()

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    func fixture(_ name: String) -> String { Fixtures.path(name) }

    /// What `fmodel bench ARGUMENTS --json` printed, run with `environment` (`NAME=value`s)
    /// after the shell commands `before`; an issue unless it exits 0.
    func benchJSON(_ arguments: [String], environment: [String] = [], before: String = "") throws -> [String: Any] {
        let fmodel = try #require(fmodelExecutable(), "no fmodel beside the test bundle")
        let report = dir + "/bench-\(UUID().uuidString).json"
        defer { unlink(report) }
        let run = try #require(runMeasured("/bin/sh", ["-c", before + "exec \"$0\" bench \"$@\" --json > \"\(report)\"", fmodel] + arguments,
                                           environment: environment))
        #expect(run.exitCode == 0, "\(arguments) \(environment): \(run.standardError)")
        return try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [String: Any])
    }

    /// `fmodel` itself does not link libhdf5 (nor the libraries it brings): it imports Keras
    /// files through the `fmodel-keras` worker beside it, which does.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/ldd")))
    func onlyTheKerasWorkerLinksHDF5() throws {
        let worker = try #require(Helper.path, "no fmodel-keras beside the test bundle")
        let folder = String(worker.dropLast(Helper.name.count))
        for (executable, links) in [("fmodel", false), (Helper.name, true)] {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/ldd")
            process.arguments = [folder + executable]
            let out = Pipe()
            process.standardOutput = out
            try process.run()
            let text = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            #expect(text.contains("libhdf5") == links, "\(executable): \(text)")
        }
    }

    /// The worker exits as fmodel does: 2 for a usage error (not ArgumentParser's 64), such as
    /// half a budget, which it would have ignored before; 0 for --help.
    @Test func theKerasWorkerRefusesUsageErrorsWithExitTwo() throws {
        let worker = try #require(Helper.path, "no fmodel-keras beside the test bundle")
        let source = fixture("tiny_residual.h5"), out = dir + "/w.fmodel"
        for arguments in [["--bogus"], [source, "--output", out, "--cpu-seconds", "5"], [source, "--output", out, "--memory-bytes", "1000000000"]] {
            #expect(runMeasured(worker, arguments)?.exitCode == 2, "\(arguments)")
        }
        #expect(runMeasured(worker, ["--help"])?.exitCode == 0)
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(runMeasured(worker, [source, "--output", out, "--cpu-seconds", "5", "--memory-bytes", "1000000000"])?.exitCode == 0)
    }

    /// Started by fmodel (`--scratch`), the worker makes its scratch directory itself, once it
    /// will end with fmodel, and removes it once it has written into the output fmodel staged
    /// (`--into`): fmodel killed by SIGKILL before the worker had started left the directory it
    /// had made, with the config in it; after the worker had ended and before fmodel removed it,
    /// likewise (8 of 8 `kill -9`s the moment the worker of an import of the 478 MB `.h5` ended,
    /// with the hidden output). The file it wrote is whole.
    @Test func theKerasWorkerMakesItsScratchAndRemovesIt() throws {
        let worker = try #require(Helper.path, "no fmodel-keras beside the test bundle")
        let scratch = dir + "/scratch", out = dir + "/staged.fmodel"
        let staged = try AtomicFileWriter(path: out)
        let run = runMeasured(worker, [fixture("multitask_nested_weights.h5"), "--output", out, "--into", staged.stagedPath,
                                       "--config", fixture("multitask_nested.json"), "--scratch", scratch,
                                       "--cpu-seconds", "30", "--memory-bytes", "1000000000"],
                              environment: ["FMODEL_PARENT=\(getpid())"])
        #expect(run?.exitCode == 0, "\(run?.standardError ?? "")")
        #expect(!FileManager.default.fileExists(atPath: scratch), "the scratch is left: \((try? FileManager.default.contentsOfDirectory(atPath: scratch)) ?? [])")
        let written = try FModelReader.read(path: staged.stagedPath)
        try staged.commit()
        #expect(try FModelReader.read(path: out).nodes.map(\.name) == written.nodes.map(\.name))
        // A scratch it cannot make (one that exists) is an error, not another's directory used.
        try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        let taken = runMeasured(worker, [fixture("multitask_flat.h5"), "--output", dir + "/taken.fmodel", "--scratch", scratch])
        #expect(taken?.exitCode == 2 && taken?.standardError == "error: \(scratch): cannot make a temporary directory in TMPDIR (\(dir)/): File exists\n",
                "\(taken?.standardError ?? "")")
        #expect(FileManager.default.fileExists(atPath: scratch), "a directory it did not make is not removed")
    }

    @Test func importThenRunMatchesRunningTheSource() throws {
        let out = dir + "/m.fmodel"
        #expect(FModelCommand.main(arguments: ["import", fixture("multitask_nested.h5"), "-o", out]) == 0)
        #expect(FModelCommand.main(arguments: ["run", out, "--input", fixture("multitask_nested.input.npy"), "--out", dir + "/a"]) == 0)
        #expect(FModelCommand.main(arguments: ["run", fixture("multitask_nested.h5"), "--input", "image=" + fixture("multitask_nested.input.npy"), "--out", dir + "/b"]) == 0)
        for name in ["age", "gender", "ethnicity"] {
            let a = try NPY.read(path: "\(dir)/a/\(name).npy"), b = try NPY.read(path: "\(dir)/b/\(name).npy")
            #expect(a == b)
        }
    }

    /// The Keras 3 forms the worker imports beside the stored `.keras` (a deflated archive, a
    /// model directory, `save_weights` with `--config`) run to the stored archive's outputs; a
    /// directory that is no model is an error, exit 2.
    @Test func keras3FormsImportThroughTheWorker() throws {
        let input = fixture("keras3_multitask.input.npy")
        #expect(FModelCommand.main(arguments: ["run", fixture("keras3_multitask.keras"), "--input", input, "--out", dir + "/stored"]) == 0)
        for (form, options) in [("keras3_multitask_deflated.keras", []), ("keras3_multitask_dir", []),
                                ("keras3_multitask.weights.h5", ["--config", fixture("keras3_multitask.weights.json")]),
                                ("keras3_sharded.weights.json", ["--config", fixture("keras3_multitask.weights.json")])] {
            let model = dir + "/" + form + ".fmodel"
            #expect(FModelCommand.main(arguments: ["import", fixture(form), "-o", model] + options) == 0, "\(form)")
            #expect(FModelCommand.main(arguments: ["run", model, "--input", input, "--out", dir + "/" + form]) == 0, "\(form)")
            for name in ["age", "gender", "ethnicity"] {
                #expect(try NPY.read(path: "\(dir)/\(form)/\(name).npy") == NPY.read(path: "\(dir)/stored/\(name).npy"), "\(form): \(name)")
            }
        }
        let outcome = FModelCommand.outcome(arguments: ["import", dir + "/stored", "-o", dir + "/x.fmodel"])
        #expect(outcome.code == 2 && outcome.message == "error: \(dir)/stored: a directory, and not a Keras 3 model saved as one (it has no config.json)", "\(outcome)")
    }

    /// The worker writes the optimized file itself; it equals the passes run in this process,
    /// and `--preprocess` is recorded.
    @Test func workerImportWithOptimizeMatchesInProcess() throws {
        let out = dir + "/opt.fmodel"
        #expect(FModelCommand.main(arguments: ["import", fixture("facenet_small.h5"), "--optimize", "--preprocess", "scale01", "-o", out]) == 0)
        let written = try FModelReader.read(path: out)
        var local = try ModelLoader.load(path: fixture("facenet_small.h5"), options: .inProcess)
        _ = GraphPass.runLossless(&local)
        #expect(written.metadata.passes == local.metadata.passes && !local.metadata.passes.isEmpty)
        #expect(written.metadata.preprocess == .scale01)
        #expect(written.nodes == local.nodes)
        #expect(Set(written.tensors.keys) == Set(local.tensors.keys))
        for (name, t) in local.tensors { #expect(written.tensors[name]?.floats() == t.floats(), "\(name)") }
        #expect((try FileManager.default.contentsOfDirectory(atPath: dir)) == ["opt.fmodel"], "nothing staged is left")
    }

    /// An output may have the longest name a file may have (255 bytes), in-process (`.pb`) and
    /// through the worker (`.h5`, whose staged file the worker writes through a temporary file
    /// of its own): the hidden temporary names are cut to fit. Both failed before with "File
    /// name too long", the `.h5` naming the staged file, not the output.
    @Test func longestOutputNamesAreWritten() throws {
        for (source, initial) in [("tf2_keras_frozen.pb", "p"), ("multitask_flat.h5", "h")] {
            let name = initial + "_" + String(repeating: "é", count: 123) + ".fmodel"  // 255 bytes of UTF-8
            try #require(name.utf8.count == Int(NAME_MAX))
            #expect(FModelCommand.main(arguments: ["import", fixture(source), "-o", dir + "/" + name]) == 0, "\(source)")
            _ = try FModelReader.read(path: dir + "/" + name)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).count == 2, "nothing but the two outputs")
    }

    /// A Keras import, whose worker's file this process renames into place, treats its output
    /// as every writer does: through a link, the link kept; a FIFO refused before the worker
    /// runs, and left a FIFO (it was replaced by a regular file before).
    @Test func kerasImportWritesThroughLinksAndOnlyToFiles() throws {
        try FileManager.default.createSymbolicLink(atPath: dir + "/link", withDestinationPath: "target.fmodel")
        #expect(FModelCommand.main(arguments: ["import", fixture("multitask_flat.h5"), "-o", dir + "/link"]) == 0)
        _ = try FModelReader.read(path: dir + "/target.fmodel")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: dir + "/link") == "target.fmodel")
        try #require(mkfifo(dir + "/fifo", 0o600) == 0, "the test could not make its FIFO")
        expectRefused(["import", fixture("multitask_flat.h5"), "-o", dir + "/fifo"], naming: dir + "/fifo", "not a regular file")
        var info = stat()
        #expect(lstat(dir + "/fifo", &info) == 0 && info.st_mode & S_IFMT == S_IFIFO, "the FIFO is still one")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).sorted() == ["fifo", "link", "target.fmodel"])
    }

    /// An unusable `TMPDIR` or `FMODEL_HELPER` is an error that names it in the system's words;
    /// a `TMPDIR` that does not exist is not made. Before: a dump of Foundation's error
    /// (`Error Domain=NSCocoaErrorDomain Code=512 "(null)"UserInfo={…}`), and the missing
    /// directories made and left.
    @Test func unusableEnvironmentIsNamed() throws {
        let fmodel = try #require(fmodelExecutable(), "no fmodel beside the test bundle")
        let file = dir + "/file", missing = dir + "/missing/deeper", out = dir + "/out.fmodel"
        try #require(FileManager.default.createFile(atPath: file, contents: Data()))
        for (variable, message) in [("TMPDIR=" + file, "TMPDIR (\(file)/): Not a directory"), ("TMPDIR=" + missing, "TMPDIR (\(missing)/): No such file or directory"),
                                    ("FMODEL_HELPER=" + file, "cannot start the import worker \(file): Permission denied")] {
            let run = try #require(runMeasured(fmodel, ["import", fixture("multitask_flat.h5"), "-o", out], environment: [variable]))
            #expect(run.exitCode == 2 && run.standardError.hasPrefix("error: ") && run.standardError.contains(message), "\(variable): \(run.standardError)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["file"])
    }

    /// A `TMPDIR` that is not UTF-8 is named as such: decoded with U+FFFD, it named another
    /// directory, and the error said "No such file or directory" of one that exists.
    @Test func temporaryDirectoryThatIsNotUTF8IsNamed() throws {
        let fmodel = try #require(fmodelExecutable(), "no fmodel beside the test bundle")
        try #require(mkdir((Array((dir + "/tmp").utf8) + [0xFF, 0]).map { CChar(bitPattern: $0) }, 0o700) == 0)
        let run = try #require(runMeasured("/bin/sh", ["-c", #"TMPDIR="$(printf '%s/tmp\377' "$1")" exec "$0" import "$2" -o "$1/out.fmodel""#,
                                                       fmodel, dir, fixture("multitask_flat.h5")]))
        #expect(run.exitCode == 2, "exit code \(String(describing: run.exitCode))")
        #expect(run.standardError == "error: \(dir)/tmp\u{FFFD}: TMPDIR is not UTF-8, which fmodel cannot name files in\n", "\(run.standardError)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/out.fmodel"))
    }

    /// With few files allowed open (`ulimit -n`), a Keras import crashed (SIGILL: Dispatch's
    /// event loop or Foundation's run loop could not open their descriptors; at 12 and 16 its
    /// worker did not start, "Bad file descriptor" in a dump of Foundation's error, as it did
    /// under any limit with a descriptor past it inherited from the parent). A low soft limit is
    /// raised to the hard one, and a hard limit below fmodel's needs is said at once. A
    /// descriptor inherited past even the hard limit is closed (it failed the worker the same way).
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/bin/bash")),
          arguments: [("ulimit -n 8", false), ("ulimit -Sn 8", true), ("exec 300</dev/null; ulimit -Sn 100", true),
                      ("exec 300</dev/null; ulimit -n 100", true)])
    func fewOpenFilesAreRaisedOrRefused(limit: String, imports: Bool) throws {
        let fmodel = try #require(fmodelExecutable(), "no fmodel beside the test bundle")
        let out = dir + "/limited.fmodel"
        let run = try #require(runMeasured("/bin/bash", ["-c", "\(limit) && exec \"$0\" \"$@\"", fmodel, "import", fixture("multitask_flat.h5"), "-o", out]))
        if imports {
            #expect(run.exitCode == 0 && FileManager.default.fileExists(atPath: out), "exit code \(String(describing: run.exitCode)): \(run.standardError)")
        } else {
            #expect(run.exitCode == 2, "exit code \(String(describing: run.exitCode))")
            #expect(run.standardError == "error: fmodel needs to have up to 64 files open at once, and the limit (ulimit -n) is 8: raise it\n", "\(run.standardError)")
            #expect(!FileManager.default.fileExists(atPath: out))
        }
    }

    /// With a small stack (`ulimit -s`) fmodel crashed (SIGSEGV) parsing its arguments, in the
    /// Swift runtime, at 48 KiB and below (debug builds at 64 KiB; a Keras import's worker then
    /// said the file was corrupt). A low soft limit is raised, and threads get stacks of their
    /// own size; a hard limit below 256 KiB is said at once.
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/bin/bash")),
          arguments: [("ulimit -s 48", false), ("ulimit -Ss 24", true)])
    func smallStacksAreRaisedOrRefused(limit: String, runs: Bool) throws {
        let fmodel = try #require(fmodelExecutable(), "no fmodel beside the test bundle")
        let out = dir + "/stack.fmodel"
        for arguments in [["import", fixture("multitask_flat.h5"), "-o", out], ["bench", out, "--batch", "4", "--iterations", "1"]] {
            let run = try #require(runMeasured("/bin/bash", ["-c", "\(limit) && exec \"$0\" \"$@\"", fmodel] + arguments))
            if runs {
                #expect(run.exitCode == 0, "\(arguments[0]): exit code \(String(describing: run.exitCode)): \(run.standardError)")
            } else {
                #expect(run.exitCode == 2, "exit code \(String(describing: run.exitCode))")
                #expect(run.standardError == "error: fmodel needs a stack of at least 256 KiB, and the limit (ulimit -s) is 48 KiB: raise it\n", "\(run.standardError)")
            }
        }
        #expect(FileManager.default.fileExists(atPath: out) == runs)
    }

    /// Without /proc (a chroot, a sandbox that does not mount it) every command ended with
    /// SIGILL: Swift's `CommandLine` read no arguments ("Range requires lowerBound <=
    /// upperBound"), and past that Foundation's Process could not start the import worker and
    /// Dispatch trapped reading a thread's state. fmodel and its worker say so at once.
    @Test(.enabled(if: NoProc.available, "no mount namespace of its own without /proc here (needs root and unshare)"),
          arguments: [("fmodel", ["inspect", "multitask_flat.h5"]), (Helper.name, ["multitask_flat.h5", "--output", "/nonexistent/w.fmodel"])])
    func withoutProcItSaysSo(executable: String, arguments: [String]) throws {
        let fmodel = try #require(fmodelExecutable(), "no fmodel beside the test bundle")
        let path = String(fmodel.dropLast("fmodel".count)) + executable
        let run = try #require(runMeasured("/usr/bin/unshare", ["-m", "/bin/sh", "-c", "umount -l /proc && exec \"$0\" \"$@\"", path]
                                           + arguments.map { $0.hasSuffix(".h5") ? fixture($0) : $0 }))
        #expect(run.exitCode == 2, "exit code \(String(describing: run.exitCode)): \(run.standardError)")
        let program = executable == "fmodel" ? "fmodel" : "the import worker"
        #expect(run.standardError == "error: \(program) needs /proc, and it is not mounted here (mount -t proc proc /proc): Swift reads the command line there, and Dispatch its threads' states\n",
                "\(run.standardError)")
    }

    /// OMP_STACKSIZE below 256 KiB: oneDNN's JIT kernels ran off OpenMP's threads' stacks
    /// (SIGSEGV at 16 and 18 KiB with the full-size multi-task model, not with the fixtures'
    /// small kernels). libgomp reads it before `main`, so fmodel refuses; below 16 KiB libgomp
    /// keeps its default, and an OMP_STACKSIZE it cannot read leaves GOMP_STACKSIZE to count.
    @Test(arguments: [(["OMP_STACKSIZE=16K"], "OMP_STACKSIZE", 16), (["OMP_STACKSIZE=abc", "GOMP_STACKSIZE=64"], "GOMP_STACKSIZE", 64),
                      (["OMP_STACKSIZE=1K"], nil, 0), (["OMP_STACKSIZE=256K"], nil, 0)])
    func smallOpenMPStacksAreRefused(environment: [String], refusedBy: String?, kib: Int) throws {
        let fmodel = try #require(fmodelExecutable(), "no fmodel beside the test bundle")
        let run = try #require(runMeasured(fmodel, ["bench", fixture("multitask_flat.h5"), "--iterations", "1"], environment: environment))
        if let refusedBy {
            #expect(run.exitCode == 2, "exit code \(String(describing: run.exitCode))")
            #expect(run.standardError.hasSuffix("error: \(refusedBy) gives OpenMP's threads stacks of \(kib) KiB, and fmodel needs at least 256 KiB: raise it or unset it\n"),
                    "\(run.standardError)")
        } else {
            #expect(run.exitCode == 0, "\(run.standardError)")
        }
    }

    /// Past `ulimit -u` (processes and threads), `bench` hung: Dispatch waited, a second at a
    /// time, for a thread it could start, and OpenMP ended it with exit code 1 ("libgomp:
    /// Thread creation failed"); and a Keras import's worker, whose threads share the limit
    /// with fmodel's, hung the same way until fmodel's 600 s limit. Each starts the threads it
    /// may run first, and says so when it cannot. Root is not held to the limit: as root, the
    /// test runs them as nobody. (Killed after 20 s here.)
    @Test(.enabled(if: Unprivileged.command != nil, "neither a user held to ulimit -u, nor setpriv to become one"),
          arguments: [("fmodel", ["bench", "tf1_facenet_small.pb", "--inputs", "input:?x64x64x3", "--iterations", "1"], "fmodel runs up to 5 threads"),
                      (Helper.name, ["multitask_flat.h5", "--output", "/nonexistent/w.fmodel"], "the import worker runs up to 3 threads")])
    func threadsThatCannotStartAreRefused(executable: String, arguments: [String], says: String) throws {
        let fmodel = try #require(fmodelExecutable(), "no fmodel beside the test bundle")
        let path = String(fmodel.dropLast("fmodel".count)) + executable
        let run = try #require(runMeasured(Unprivileged.command![0], Array(Unprivileged.command!.dropFirst()) + [
            "/usr/bin/timeout", "-s", "KILL", "20", "/usr/bin/prlimit", "--nproc=1", path]
            + arguments.map { $0.hasSuffix(".pb") || $0.hasSuffix(".h5") ? fixture($0) : $0 }))
        #expect(run.exitCode == 2, "exit code \(String(describing: run.exitCode)): \(run.standardError)")
        #expect(run.standardError == "error: \(says), and could not start them: Resource temporarily unavailable (ulimit -u: processes and threads)\n",
                "\(run.standardError)")
    }

    /// A umask that takes the owner's write (0222: new files read-only) failed a Keras import
    /// ("Permission denied": the worker could not open the file fmodel had staged for it), any
    /// command given a Keras file (its scratch folder was made 0500) and a `run` into a folder
    /// it made (which it could not write in). Now the outputs are written, with the umask's
    /// modes. Root is not held to modes: as root, the test runs them as nobody.
    @Test(.enabled(if: Unprivileged.command != nil, "neither a user held to file modes, nor setpriv to become one"))
    func aUmaskTakingTheOwnersWriteIsHonouredNotFatal() throws {
        let fmodel = try #require(fmodelExecutable(), "no fmodel beside the test bundle")
        let work = dir + "/umask"
        try #require(mkdir(work, 0o777) == 0 && chmod(dir, 0o711) == 0 && chmod(work, 0o777) == 0)
        let model = work + "/m.fmodel", out = work + "/made/deeper"
        let script = #"umask 0222 && export TMPDIR="$5" && "$0" import "$1" -o "$2" && "$0" import "$4" -o "$2.keras.fmodel""#
            + #" && "$0" run "$1" --input "$3" --out "$5/made/deeper""#
        let run = try #require(runMeasured(Unprivileged.command![0], Array(Unprivileged.command!.dropFirst()) + [
            "/bin/sh", "-c", script, fmodel, fixture("multitask_flat.h5"), model, fixture("multitask_flat.input.npy"),
            fixture("keras3_multitask.keras"), work]))
        #expect(run.exitCode == 0, "exit code \(String(describing: run.exitCode)): \(run.standardError)")
        for written in [model, model + ".keras.fmodel"] {
            #expect(try FileManager.default.attributesOfItem(atPath: written)[.posixPermissions] as? Int == 0o444)
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: out).sorted() == ["age.npy", "ethnicity.npy", "gender.npy"])
        let age = try NPY.read(path: out + "/age.npy"), expected = try NPY.read(path: fixture("multitask_flat.out.age.npy"))
        #expect(age.values.count == expected.values.count && zip(age.values, expected.values).allSatisfy { abs($0 - $1) <= 1e-4 })
    }

    /// An OMP_NUM_THREADS past the CPUs the process may run on is held to them: 100,000 crashed
    /// `bench` (SIGSEGV) and had `run` ask for 26.3 GB of per-thread scratch ("out of memory",
    /// exit 2); on the 2-CPU machine 8 made the int8 model's batch 1 take 104 ms against 11.
    @Test func threadCountsPastTheCPUsAreHeldToThem() throws {
        let fmodel = try #require(fmodelExecutable(), "no fmodel beside the test bundle")
        let out = dir + "/omp"
        for arguments in [["bench", fixture("tf1_facenet_small.pb"), "--inputs", "input:?x64x64x3", "--iterations", "1"],
                          ["run", fixture("multitask_flat.h5"), "--input", fixture("multitask_flat.input.npy"), "--out", out]] {
            let run = try #require(runMeasured(fmodel, arguments, environment: ["OMP_NUM_THREADS=100000"]))
            #expect(run.exitCode == 0, "\(arguments[0]): exit code \(String(describing: run.exitCode)): \(run.standardError)")
        }
        let age = try NPY.read(path: out + "/age.npy"), expected = try NPY.read(path: fixture("multitask_flat.out.age.npy"))
        #expect(age.values.count == expected.values.count && zip(age.values, expected.values).allSatisfy { abs($0 - $1) <= 1e-4 })
    }

    /// OpenMP settings libgomp reads before `main` and ends the process for as it starts its
    /// threads (exit code 1, "libgomp: Thread creation failed: …"): a GOMP_CPU_AFFINITY naming
    /// only CPUs this process may not run on (set for another machine, or for CPUs a container
    /// lacks) and an OMP_STACKSIZE no thread can have (past the address space). Each is an
    /// error that names it, exit 2, where the team has threads to start, also when libgomp
    /// took GOMP_CPU_AFFINITY for an OMP_PLACES it refused (that was exit 1); a
    /// GOMP_CPU_AFFINITY naming one it may run on, or set aside for a good OMP_PLACES, is fine.
    @Test(.enabled(if: Self.cpuNotAllowed != nil, "every CPU below 64 is this process's"))
    func openMPSettingsNoThreadCanStartWithAreNamed() throws {
        let fmodel = try #require(fmodelExecutable(), "no fmodel beside the test bundle")
        let arguments = ["bench", fixture("tf1_facenet_small.pb"), "--inputs", "input:?x64x64x3", "--iterations", "1"]
        let team = runtimeThreads > 1
        let cpu = Self.cpuNotAllowed!
        for (variables, says) in [(["GOMP_CPU_AFFINITY=\(cpu)"], "error: GOMP_CPU_AFFINITY (\(cpu)) names no CPU this process may run on (it may run on "),
                                  (["GOMP_CPU_AFFINITY=\(cpu)", "OMP_PLACES=garbage"],
                                   "error: GOMP_CPU_AFFINITY (\(cpu)), which libgomp took as OMP_PLACES is not one it accepts, names no CPU this process may run on (it may run on "),
                                  (["OMP_STACKSIZE=1000000G"], "error: OMP_STACKSIZE gives OpenMP's threads stacks of 1000000 GiB, and the thread")] {
            let run = try #require(runMeasured(fmodel, arguments, environment: variables))
            #expect(run.exitCode == (team ? 2 : 0), "\(variables): exit code \(String(describing: run.exitCode)): \(run.standardError)")
            // libgomp's own complaint about OMP_PLACES comes first.
            #expect(!team || run.standardError.split(separator: "\n").last?.hasPrefix(says) == true, "\(variables): \(run.standardError)")
        }
        for variables in [["GOMP_CPU_AFFINITY=\(cpu),\(Self.cpusAllowed.first!)"], ["GOMP_CPU_AFFINITY=\(cpu)", "OMP_PLACES=cores"]] {
            let allowed = try #require(runMeasured(fmodel, arguments, environment: variables))
            #expect(allowed.exitCode == 0, "\(variables): \(allowed.standardError)")
        }
    }

    /// The CPUs this process may run on (/proc/self/status), and the first below 64 it may not.
    static let cpusAllowed: [Int] = {
        let status = procText("/proc/self/status")
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") }) else { return [] }
        return line.dropFirst("Cpus_allowed_list:".count).split(separator: ",").flatMap { range -> [Int] in
            let ends = range.split(separator: "-").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
            return ends.count == 2 ? Array(ends[0]...ends[1]) : ends
        }
    }()
    static let cpuNotAllowed: Int? = cpusAllowed.isEmpty ? nil : (0..<64).first { !cpusAllowed.contains($0) }

    /// Under a cgroup CPU quota of one CPU (`docker --cpus 1`), `bench` computes on one thread;
    /// two were throttled in turn (batch 32 of the multi-task model 1,020–1,094 ms against one
    /// thread's 817–835). OMP_NUM_THREADS, when set, says otherwise (up to the CPUs). Needs a
    /// cgroup this process may make (root, here).
    @Test(.enabled(if: QuotaCgroup.available, "no cgroup with a CPU quota can be made here"),
          .enabled(if: ProcessInfo.processInfo.activeProcessorCount > 1, "one CPU: a quota of one changes nothing"))
    func aCPUQuotaHoldsTheTeam() throws {
        let cgroup = try #require(QuotaCgroup.make())
        defer { rmdir(cgroup) }
        func threads(inQuota: Bool, ompThreads: Int?) throws -> Int {
            let join = (inQuota ? "echo $$ > '\(cgroup)/cgroup.procs' && " : "")
                + (ompThreads.map { "export OMP_NUM_THREADS=\($0) && " } ?? "unset OMP_NUM_THREADS && ")
            return try #require(try benchJSON([fixture("multitask_flat.h5"), "--iterations", "1"], before: join)["threads"] as? Int)
        }
        let cpus = ProcessInfo.processInfo.activeProcessorCount
        #expect(try threads(inQuota: true, ompThreads: nil) == 1)
        #expect(try threads(inQuota: true, ompThreads: cpus) == cpus)
    }

    /// OpenMP binding (OMP_PROC_BIND, OMP_PLACES, GOMP_CPU_AFFINITY) keeps the team: libgomp
    /// binds the initial thread to the first place before `main`, and on aa8e8a0 the team was
    /// sized by that thread's mask, one CPU (`bench` reported 1 thread, and took 1.9× the time
    /// at batch 32). Every place's CPUs count, or under `master` the first place's. A thread
    /// limit of one, or no active parallel levels, is a team of one.
    @Test(.enabled(if: runtimeThreads > 1 && Self.cpusAllowed.count > 1, "one CPU: binding cannot shrink the team"))
    func openMPBindingAndLimitsSizeTheTeam() throws {
        func threads(_ variables: [String]) throws -> Int {
            let arguments = [fixture("tf1_facenet_small.pb"), "--inputs", "input:?x64x64x3", "--iterations", "1"]
            return try #require(try benchJSON(arguments, environment: variables)["threads"] as? Int)
        }
        let unbound = try threads([])
        let list = Self.cpusAllowed.map(String.init).joined(separator: ",")
        for variables in [["OMP_PROC_BIND=close", "OMP_PLACES=threads"], ["OMP_PROC_BIND=spread", "OMP_PLACES=threads"],
                          ["OMP_PROC_BIND=true"], ["GOMP_CPU_AFFINITY=\(list)"], ["OMP_PLACES={\(list)}"]] {
            #expect(try threads(variables) == unbound, "\(variables)")
        }
        // Every thread in the initial thread's place: one CPU there.
        #expect(try threads(["OMP_PROC_BIND=master", "OMP_PLACES=threads"]) == 1)
        #expect(try threads(["GOMP_CPU_AFFINITY=\(Self.cpusAllowed[0])"]) == 1)
        // Teams of one thread, said as such (b7e707a said 2 and computed on one).
        #expect(try threads(["OMP_THREAD_LIMIT=1"]) == 1)
        #expect(try threads(["OMP_MAX_ACTIVE_LEVELS=0"]) == 1)
    }

    /// `bench --json` says what the convolutions multiplied in, which `Benchmarks/peers.py`
    /// reads to leave its bf16 rows out where bf16 falls back to float32.
    @Test func benchReportsThePrecisionItRan() throws {
        for asked in ComputePrecision.allCases {
            let json = try benchJSON([fixture("facenet_small.h5"), "--iterations", "1", "--precision", asked.rawValue])
            let ran = asked == .bf16 && !ComputePrecision.bf16Available ? "f32" : asked.rawValue
            #expect(json["precision"] as? String == ran)
        }
    }

    /// `bench --gemm --json` gives the GEMM's rate and the multiply-add peak it is held to
    /// (the benchmarks' ceiling), each a rate; the peak is left out without AVX2 + FMA.
    @Test func benchGEMMReportsTheMultiplyAddPeak() throws {
        let json = try benchJSON(["--gemm"])
        #expect((json["gemm_gflops"] as? Double ?? 0) > 0)
        let peak = json["fma_peak_gflops"] as? Double
        #expect(fm_fma_lanes() > 0 ? (peak ?? 0) > 0 : json["fma_peak_gflops"] == nil, "\(json)")
    }

    @Test func weightsOnlyImportTakesAConfig() {
        let out = dir + "/w.fmodel"
        expectRefused(["import", fixture("multitask_nested_weights.h5"), "-o", out],
                      naming: fixture("multitask_nested_weights.h5"), "'model_config'", "--config")
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect(FModelCommand.main(arguments: ["import", fixture("multitask_nested_weights.h5"), "--config", fixture("multitask_nested.json"), "-o", out]) == 0)
    }

    /// A config past 64 MiB is refused by its size before it is read: a 3 GB one (sparse zeros)
    /// took 40 s and 6.3 GB of memory to be refused as not JSON. The worker holds `--config` to
    /// the same limit.
    @Test func oversizedConfigIsRefusedUnread() throws {
        let config = dir + "/huge.json"
        try #require(FileManager.default.createFile(atPath: config, contents: Data()) && truncate(config, off_t(MappedFile.maxConfigBytes + 1)) == 0)
        let refusal = "\(config): cannot read the config file (its size is \(MappedFile.maxConfigBytes + 1), over the limit of \(MappedFile.maxConfigBytes))"
        expectRefused(["import", fixture("multitask_nested_weights.h5"), "--config", config, "-o", dir + "/w.fmodel"], naming: refusal)
        let worker = try #require(Helper.path, "no fmodel-keras beside the test bundle")
        let run = runMeasured(worker, [fixture("multitask_nested_weights.h5"), "--output", dir + "/w.fmodel", "--config", config])
        #expect(run?.exitCode == 2 && run?.standardError == "error: \(config): its size is \(MappedFile.maxConfigBytes + 1), over the limit of \(MappedFile.maxConfigBytes)\n",
                "\(run?.standardError ?? "")")
    }

    /// A hostile config's class name of 100,000 characters, or a hostile input's header: the
    /// message keeps the file, what failed and the end of the reason, and leaves out the middle
    /// (each was printed whole).
    @Test func hostileTextIsCutFromMessages() throws {
        let text = try String(contentsOfFile: fixture("multitask_nested.json"), encoding: .utf8)
        let long = String(repeating: "Z", count: 100_000)
        let config = dir + "/long.json"
        try text.replacingOccurrences(of: "\"class_name\": \"Functional\", \"config\": {\"name\": \"facenet\"",
                                      with: "\"class_name\": \"\(long)\", \"config\": {\"name\": \"facenet\"")
            .write(toFile: config, atomically: true, encoding: .utf8)
        let outcome = FModelCommand.outcome(arguments: ["import", fixture("multitask_nested_weights.h5"), "--config", config,
                                                        "-o", dir + "/w.fmodel"])
        expectRefusal(outcome, naming: [fixture("multitask_nested_weights.h5"), "layer 'facenet' is a ZZZ", "characters left out"])
        #expect((outcome.message ?? "").count < 1300)
        #expect(FModelCommand.clipped("short") == "short")
        // An input whose .npy shape entry is 5,000 parentheses (its whole entry was printed).
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + String(repeating: "(", count: 5000) + "), }\n"
        let npy = dir + "/long.npy"
        try #require(FileManager.default.createFile(atPath: npy, contents: Data([0x93] + Array("NUMPY".utf8)
            + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)] + Array(header.utf8))))
        let run = FModelCommand.outcome(arguments: ["run", fixture("tiny_residual.h5"), "--input", npy, "--out", dir])
        expectRefusal(run, naming: [npy, "npy shape entry '(((", "characters left out"])
        #expect((run.message ?? "").count < 1300)
    }

    /// Control characters in a file's names are shown escaped (`\u001B`), on standard error and
    /// standard output, as the `fmodel` process writes them: a config whose class name cleared
    /// the terminal and set its title (ESC [2J, ESC ]0; … BEL; and C1's CSI) through `import`'s
    /// error, an image of such a name through `predict`'s error for that image, and a model with
    /// such a node name through `inspect`'s listing. All three were written raw.
    @Test func controlCharactersFromFilesAreEscaped() throws {
        let hostile = "Dense\u{1B}[2J\u{1B}]0;pwned\u{7}\u{9B}31m", shown = #"Dense\u001B[2J\u001B]0;pwned\u0007\u009B31m"#
        func isControl(_ c: Unicode.Scalar) -> Bool { (c.value < 0x20 && c != "\n" && c != "\t") || (0x7F...0x9F).contains(c.value) }
        let fmodel = try #require(fmodelExecutable(), "no fmodel beside the test bundle")
        let text = try String(contentsOfFile: fixture("multitask_nested.json"), encoding: .utf8)
        let config = dir + "/hostile.json"
        try text.replacingOccurrences(of: "\"class_name\": \"Functional\", \"config\": {\"name\": \"facenet\"",
                                      with: "\"class_name\": \"\(shown)\", \"config\": {\"name\": \"facenet\"")  // JSON's escapes
            .write(toFile: config, atomically: true, encoding: .utf8)
        let imported = try #require(runMeasured(fmodel, ["import", fixture("multitask_nested_weights.h5"), "--config", config, "-o", dir + "/w.fmodel"]))
        #expect(imported.exitCode == 2 && imported.standardError.contains("layer 'facenet' is a " + shown), "\(imported.standardError)")
        #expect(!imported.standardError.unicodeScalars.contains(where: isControl))
        let predicted = try #require(runMeasured(fmodel, ["predict", fixture("multitask_flat.h5"), dir + "/" + hostile + ".jpg"]))
        #expect(predicted.standardError.contains(shown + ".jpg") && !predicted.standardError.unicodeScalars.contains(where: isControl),
                "\(predicted.standardError)")

        let model = dir + "/named.fmodel", listing = dir + "/inspect.txt"
        try FModelWriter.write(Graph(inputs: [ValueInfo(name: "x", shape: [-1, 4])], outputs: [hostile],
                                     nodes: [Node(name: hostile, op: .dense(activation: .linear), inputs: ["x"], params: ["kernel": "k"])],
                                     tensors: ["k": Tensor([Float](repeating: 0.5, count: 8), shape: [4, 2])]), to: model)
        let fd = open(listing, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        try #require(fd >= 0)
        let pid = try #require(spawn(fmodel, ["inspect", model], standardOutput: fd))
        close(fd)
        var status: Int32 = 0
        try #require(waitpid(pid, &status, 0) == pid && status == 0, "inspect: wait status \(status)")
        let printed = try String(contentsOfFile: listing, encoding: .utf8)
        #expect(printed.contains(shown) && !printed.unicodeScalars.contains(where: isControl), "\(printed)")
    }

    /// Each bad file's message names the file and what is wrong with it: the layer, the weight
    /// or the Lambda argument.
    @Test(arguments: [("bad/not_hdf5.h5", "not an .fmodel, Keras HDF5"), ("bad/truncated.h5", "truncated or corrupt HDF5"),
                      ("bad/unknown_layer.h5", "layer 'Conv2d_1a_3x3_BatchNorm' is a FancyNorm"),
                      ("bad/unknown_lambda.h5", "Lambda layer 'ScaleSum' is not a residual scaling"),
                      ("bad/lambda_bad_argument.h5", "argument 'scale' is \"0.17\", not a number"),
                      ("bad/missing_weight.h5", "layer 'Conv2d_2a_3x3' needs weight 'Conv2d_2a_3x3/kernel:0'"),
                      ("bad/huge_element.h5", "'/model_weights/Conv2d_1a_3x3/Conv2d_1a_3x3/kernel:0': declares 4294967295-byte numbers"),
                      ("no/such/file.h5", "cannot open the file")])
    func badInputExitsTwoAndWritesNothing(_ file: String, what: String) {
        let out = dir + "/bad.fmodel"
        expectRefused(["import", fixture(file), "-o", out], naming: fixture(file), what)
        #expect(!FileManager.default.fileExists(atPath: out))
        #expect((try? FileManager.default.contentsOfDirectory(atPath: dir))?.isEmpty ?? true, "no temporary file left")
    }

    /// Files on which libhdf5 itself misbehaves (found by fuzzing the importer) end in an
    /// error within the import worker's budget: on one it loops for ever, on the other it
    /// allocates 2 GB for one weight name (which imported, before the budget, in 24 s with
    /// 4.2 GB resident). `fmodel import` of the second, worker included (wait4 counts the
    /// children it waited for), grows less than 512 MB past an import of the good file it was
    /// made from, spawned after it (`runMeasured`: a spawned process starts from the tests' own
    /// peak, so it is compared, not bounded outright).
    @Test func libhdf5MisbehavingEndsWithinTheWorkersBudget() throws {
        let out = dir + "/bad.fmodel"
        let fmodel = try #require(fmodelExecutable(), "no fmodel beside the test bundle")
        let bad = try #require(runMeasured(fmodel, ["import", fixture("bad/vlen_length.h5"), "-o", out]))
        let good = try #require(runMeasured(fmodel, ["import", fixture("tiny_residual.h5"), "-o", dir + "/good.fmodel"]))
        #expect(good.exitCode == 0)
        #expect(bad.peakKiB < good.peakKiB + 512 << 10, "the import reached \(bad.peakKiB) KiB resident, \(good.peakKiB) for the good file")
        expectRefusal(FModelCommand.Outcome(code: bad.exitCode ?? -1, message: bad.standardError),
                      naming: [fixture("bad/vlen_length.h5"), "'/model_weights/Conv2d_1a_3x3@weight_names': H5Aread failed"])
        expectRefused(["import", fixture("bad/global_heap_loop.h5"), "-o", out],
                      naming: fixture("bad/global_heap_loop.h5"), "still reading after the import's 5 s of CPU time")
        #expect(!FileManager.default.fileExists(atPath: out))
    }

    /// A FIFO where a file is expected (a model of any format, a config, an input) is refused at
    /// once: opening one for reading waits for a writer, and `inspect` of one hung before.
    @Test func fifosAreRefusedNotWaitedOn() throws {
        let fifos = ["f.pb", "f.fmodel", "f.h5", "c.json", "x.npy"].map { dir + "/" + $0 }
        for fifo in fifos { try #require(mkfifo(fifo, 0o600) == 0, "the test could not make its FIFO") }
        let (model, config) = (fixture("multitask_nested_weights.h5"), dir + "/c.json")
        let cases: [(arguments: [String], file: String)] = fifos.prefix(3).map { (["inspect", $0], $0) } + [
            (["import", model, "--config", config, "-o", dir + "/w.fmodel"], config),
            (["run", fixture("tiny_residual.h5"), "--input", dir + "/x.npy", "--out", dir + "/o"], dir + "/x.npy"),
        ]
        for c in cases {
            guard let outcome = promptly(unblocking: fifos, { FModelCommand.outcome(arguments: c.arguments) }) else { continue }
            expectRefusal(outcome, naming: [c.file, "not a regular file"])
        }
    }

    @Test func usageErrorsExitTwo() {
        expectRefused(["import"], naming: "Missing expected argument '<source>'")
        expectRefused(["frobnicate"], naming: "Unexpected argument 'frobnicate'")
        expectRefused(["run", fixture("tiny_residual.h5"), "--out", dir], naming: "give an --input for each of: input_1")
        let help = FModelCommand.outcome(arguments: ["--help"])
        #expect(help.code == 0 && help.message?.contains("SUBCOMMANDS") == true)
    }

    /// Numbers no command can use are usage errors before any work. Each of the first four
    /// trapped converting to an integer (SIGILL); a side of 100,000 aborted allocating 120 GB,
    /// a side of 0 wrote an empty array, and a NaN bound failed every check as if the candidate
    /// were worse (exit 1).
    @Test(arguments: [
        (["shrink", "m.fmodel", "-o", "o.fmodel", "--target-mb", "inf"], "--target-mb"),
        (["shrink", "m.fmodel", "-o", "o.fmodel", "--target-mb", "1e308"], "--target-mb"),
        (["prune", "m.fmodel", "-o", "o.fmodel", "--layer", "fc1", "--keep", "inf"], "--keep"),
        (["prune", "m.fmodel", "-o", "o.fmodel", "--layer", "fc1", "--keep", "1e300"], "--keep"),
        (["prune", "m.fmodel", "-o", "o.fmodel", "--layer", "fc1", "--keep", "2.5"], "--keep"),
        (["shrink", "m.fmodel", "-o", "o.fmodel", "--target-mb", "1", "--max-output-change", "inf"], "--max-output-change"),
        (["preprocess", "i.jpg", "-o", "x.npy", "--size", "100000"], "--size"),
        (["preprocess", "i.jpg", "-o", "x.npy", "--size", "0"], "--size"),
        (["verify", "--candidate", "m.fmodel", "--data", ".", "--max-age-rmse-increase", "nan"], "--max-age-rmse-increase"),
    ])
    func unusableNumbersAreUsageErrors(_ arguments: [String], _ option: String) {
        expectRefused(arguments, naming: option)
    }

    /// Corrupted copies of a real file are imported in a worker process: libhdf5 may crash on
    /// some of them, the command never does, and each ends with 0 or 2.
    @Test func corruptedFilesNeverCrashTheCommand() throws {
        let original = try #require(FileManager.default.contents(atPath: fixture("tiny_residual.h5")))
        var rng = SplitMix64(seed: 7)
        for i in 0..<40 {
            var d = original
            for _ in 0..<4 { d[Int(rng.next() % UInt64(d.count))] ^= UInt8(truncatingIfNeeded: rng.next() | 1) }
            let p = "\(dir)/c\(i).h5"
            try #require(FileManager.default.createFile(atPath: p, contents: d), "the test could not write its input")
            let code = FModelCommand.main(arguments: ["inspect", p])
            #expect(code == 0 || code == 2, "case \(i) exited \(code)")
        }
    }

    @Test func inspectJSONIsValidAndCountsOptimizerState() throws {
        let summary = ModelSummary(try ModelOptions.parse([]).load(fixture("facenet_small.h5")))
        let data = try JSONEncoder().encode(summary)
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect((object["layers"] as? [Any])?.count == summary.layers.count)
        #expect(summary.parameters > 0 && summary.flops > 0)
        #expect((summary.metadata.sourceOptimizerTensors ?? 0) > 0)
        #expect(FModelCommand.main(arguments: ["inspect", fixture("facenet_small.h5"), "--json"]) == 0)
    }

    /// A model whose FLOPs do not fit an Int (two 2^30 pool windows over 2^30 values, within
    /// shape inference's bounds) is inspected with the count saturated, not a trap in the sum.
    @Test func uncountableFLOPsSaturate() throws {
        let pool = Op.maxPool(PoolAttributes(size: [1 << 30, 1 << 30], strides: [1, 1], padding: .same))
        let g = Graph(inputs: [ValueInfo(name: "x", shape: [-1, 1 << 15, 1 << 15, 1])], outputs: ["b"],
                      nodes: [Node(name: "a", op: pool, inputs: ["x"]), Node(name: "b", op: pool, inputs: ["a"])], tensors: [:])
        #expect(ModelSummary(g).flops == .max)
        let path = dir + "/wide.fmodel"
        try FModelWriter.write(g, to: path)
        #expect(FModelCommand.main(arguments: ["inspect", path]) == 0)
    }

    /// An argument that is not UTF-8 is refused before anything runs: Swift's arguments put
    /// U+FFFD for its bytes, so `-o $'out\xfe.fmodel'` wrote `out\xef\xbf\xbd.fmodel`, and a
    /// model so named was "No such file or directory".
    @Test func argumentsThatAreNotUTF8AreRefused() throws {
        let fmodel = try #require(fmodelExecutable(), "no fmodel beside the test bundle")
        let folder = dir + "/odd-arguments"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let run = try #require(runMeasured("/bin/sh", ["-c", #"exec "$0" import "$1" -o "$(printf '%s/out\376.fmodel' "$2")""#,
                                                       fmodel, Fixtures.path("multitask_flat.h5"), folder]))
        #expect(run.exitCode == 2, "exit code \(String(describing: run.exitCode))")
        #expect(run.standardError == "error: argument 4 (\(folder)/out\u{FFFD}.fmodel) is not UTF-8, which fmodel cannot name files in: rename the file\n", "\(run.standardError)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: folder) == [])
    }

    /// A legal model whose run needs more memory than any machine has: eight outputs of 2^31
    /// floats an image (8.6 GB each), kept to the end, on eight images — each 68.7 GB, 550 GB
    /// together. `fmodel run` says so and exits 2 before allocating any of it (it trapped in
    /// allocation before, signal 6), and writes no output.
    @Test func runsPastTheMachinesMemoryAreRefused() throws {
        let channels = 1 << 19
        let outputs = (1...8).map { "w\($0)" }
        let g = Graph(inputs: [ValueInfo(name: "x", shape: [-1, 64, 64, 1])], outputs: outputs,
                      nodes: outputs.map { Node(name: $0, op: .conv2D(ConvAttributes()), inputs: ["x"], params: ["kernel": "k"]) },
                      tensors: ["k": Tensor([Float](repeating: 0.5, count: channels), shape: [1, 1, 1, channels])])
        let model = dir + "/huge.fmodel", input = dir + "/x8.npy", out = dir + "/huge_out"
        try FModelWriter.write(g, to: model)
        try NPY.write(NPYArray(shape: [8, 64, 64, 1], values: [Float](repeating: 1, count: 8 * 64 * 64)), to: input)
        expectRefused(["run", model, "--input", input, "--out", out], naming: "a run of 8 images needs", "of activation memory")
        #expect((try? FileManager.default.contentsOfDirectory(atPath: out))?.isEmpty ?? true)
    }

    /// A run that fits the machine's memory but not the process's limit is refused the same way:
    /// a 1×1 conv to 2^19 channels on a 64×64 image needs 8.6 GB, under `ulimit -v` of 4 GB.
    /// The machine's memory was the only bound: the arena's mapping failed, the run fell back to
    /// pooled buffers and Swift's allocator ended it (SIGABRT, exit 134 in a shell). A cgroup's
    /// `memory.max` counts the same way (`ProcessMemory`).
    @Test(.enabled(if: FModelRuntime.Executor.memoryAvailable > 10 << 30, "needs a machine of more than 10 GB"))
    func runsPastTheProcessLimitAreRefused() throws {
        let fmodel = try #require(fmodelExecutable(), "no fmodel beside the test bundle")
        let channels = 1 << 19
        let g = Graph(inputs: [ValueInfo(name: "x", shape: [-1, 64, 64, 1])], outputs: ["w"],
                      nodes: [Node(name: "w", op: .conv2D(ConvAttributes()), inputs: ["x"], params: ["kernel": "k"])],
                      tensors: ["k": Tensor([Float](repeating: 0.5, count: channels), shape: [1, 1, 1, channels])])
        let model = dir + "/limited.fmodel"
        try FModelWriter.write(g, to: model)
        let run = try #require(runMeasured("/bin/sh", ["-c", "ulimit -v 4000000 && exec \"$0\" \"$@\"", fmodel, "bench", model, "--iterations", "1"]))
        #expect(run.exitCode == 2, "exit code \(String(describing: run.exitCode)) (nil: ended by a signal)")
        #expect(run.standardError.contains("a run of 1 image needs 8.6 GB of activation memory; at most"), "\(run.standardError)")
    }

    /// Synthetic inputs that would take more than the machine's memory (2^31 floats an image on
    /// 4096 images: 35 TB) are refused before they are made: `fmodel bench` exits 2 (it trapped
    /// before). So is a model whose input states no height and width (`[?, ?, ?, 3]`), before
    /// any input is made or read: the runtime sizes its buffers from the shapes the model states
    /// (`run` trapped on such a model, `bench` refused only its synthetic input).
    @Test(arguments: [([-1, 1 << 15, 1 << 15, 2], "4096", "a run of 4096 images needs"),
                      ([-1, -1, -1, 3], "1", "input 'x': shape [1,?,?,3] has an unknown dimension (only the batch may be unknown)")]
          as [(Shape, String, String)])
    func syntheticInputsThatCannotBeMadeAreRefused(input: Shape, batch: String, why: String) throws {
        let g = Graph(inputs: [ValueInfo(name: "x", shape: input)], outputs: ["p"],
                      nodes: [Node(name: "p", op: .globalAvgPool(keepDims: false), inputs: ["x"])], tensors: [:])
        let model = dir + "/synthetic_\(batch).fmodel"
        try FModelWriter.write(g, to: model)
        let unsized = input[1] < 0  // refused as the model's, so its message names the file
        expectRefusal(FModelCommand.outcome(arguments: ["bench", model, "--batch", batch, "--iterations", "1"]),
                      naming: unsized ? [model, why] : [why])
        guard unsized else { return }
        let x = dir + "/x_\(batch).npy"
        try NPY.write(NPYArray(shape: [1, 4, 4, 3], values: [Float](repeating: 1, count: 48)), to: x)
        expectRefused(["run", model, "--input", x, "--out", dir + "/unsized_out"], naming: model, why)
    }

    @Test func stripAndOptimize() {
        let stripped = dir + "/stripped.fmodel", optimized = dir + "/opt.fmodel"
        #expect(FModelCommand.main(arguments: ["strip", fixture("facenet_small.h5"), "--layers", "Bottleneck,Bottleneck_BatchNorm,Dropout", "-o", stripped]) == 0)
        #expect(FModelCommand.main(arguments: ["import", "--optimize", stripped, "-o", optimized]) == 0)
        #expect(FModelCommand.main(arguments: ["run", optimized, "--input", fixture("facenet_small.input.npy"), "--out", dir + "/o"]) == 0)
        #expect(FileManager.default.fileExists(atPath: dir + "/o/AvgPool.npy"))
        #expect(FModelCommand.main(arguments: ["graft", stripped, "--at", "AvgPool", fixture("graft_heads.h5"), "-o", dir + "/g.fmodel"]) == 0)
        expectRefused(["graft", stripped, "--at", "Conv2d_1a_3x3", fixture("graft_heads.h5"), "-o", dir + "/x.fmodel"],
                      naming: "'Conv2d_1a_3x3' gives [?,47,47,8], the head model takes [?,128]")
        expectRefused(["strip", fixture("facenet_small.h5"), "--layers", "Nope", "-o", dir + "/x.fmodel"], naming: "no layer 'Nope'")
        expectRefused(["strip", fixture("facenet_small.h5"), "-o", dir + "/x.fmodel"], naming: "exactly one of --layers and --after")
        #expect(!FileManager.default.fileExists(atPath: dir + "/x.fmodel"))
    }

    @Test func compressionCommands() throws {
        let m = fixture("multitask_flat.h5")
        #expect(FModelCommand.main(arguments: ["quantize", m, "--dtype", "int8", "--report", "-o", dir + "/q.fmodel"]) == 0)
        expectRefused(["quantize", m, "--dtype", "int4", "--include", "nothing*", "-o", dir + "/none.fmodel"],
                      naming: "no conv or dense layer matches --include/--exclude")
        #expect(FModelCommand.main(arguments: ["prune", m, "--layer", "fc1", "--keep", "0.5", "-o", dir + "/p.fmodel"]) == 0)
        expectRefused(["prune", m, "--layer", "age", "--keep", "0.5", "-o", dir + "/x.fmodel"], naming: "'age' feeds a model output")
        #expect(FModelCommand.main(arguments: ["shrink", m, "--target-mb", "0.3", "-o", dir + "/s.fmodel"]) == 0)
        #expect(try MappedFile(path: dir + "/s.fmodel").bytes.count <= 300_000)
        let unreachable = FModelCommand.outcome(arguments: ["shrink", m, "--target-mb", "0.001", "-o", dir + "/x.fmodel"])
        #expect(unreachable.code == 1 && unreachable.message?.contains("cannot reach 0.00 MB") == true)
        #expect(!FileManager.default.fileExists(atPath: dir + "/x.fmodel"))
    }

    @Test func tensorFlowGraphs() throws {
        let out = dir + "/tf1.fmodel"
        #expect(FModelCommand.main(arguments: ["import", fixture("tf1_facenet_small.pb"), "--inputs", "input:?x64x64x3", "--optimize", "-o", out]) == 0)
        #expect(FModelCommand.main(arguments: ["run", out, "--input", fixture("tf1_facenet_small.input.npy"), "--out", dir + "/o"]) == 0)
        let got = try NPY.read(path: dir + "/o/embeddings.npy"), expected = try NPY.read(path: fixture("tf1_facenet_small.out.embeddings.npy"))
        #expect(got.shape == expected.shape && zip(got.values, expected.values).allSatisfy { abs($0 - $1) <= 1e-4 })
        expectRefused(["inspect", fixture("tf1_facenet_small.pb")], naming: fixture("tf1_facenet_small.pb"), "--inputs batch_size:")
        expectRefused(["inspect", fixture("bad/length_past_end.pb")],
                      naming: fixture("bad/length_past_end.pb"), "byte offset 1: length 33554431 runs past the end of the file")
    }

    /// Output file names: sanitised, at most 204 bytes, one per output (two outputs whose names
    /// sanitise alike wrote one file, the second over the first).
    @Test func outputFileNamesAreSanitisedAndDistinct() {
        #expect(RunCommand.fileName(for: "age") == "age.npy")
        #expect(RunCommand.fileName(for: "Bottleneck/BatchNorm:0 x") == "Bottleneck_BatchNorm_0_x.npy")
        #expect(RunCommand.fileName(for: String(repeating: "n", count: 300)).utf8.count == 204)
        #expect(RunCommand.fileNames(for: ["a/b", "a_b", "a:b", "c"]) == ["a_b.npy", "a_b_2.npy", "a_b_3.npy", "c.npy"])
    }

    /// `run --out` at a file is refused before the run, naming it (it was Foundation's error
    /// dump, after the run); missing folders are made.
    @Test func runOutputFolderIsCheckedFirst() throws {
        let file = dir + "/file"
        try #require(FileManager.default.createFile(atPath: file, contents: Data()))
        for out in [file, file + "/sub"] {
            expectRefused(["run", fixture("multitask_flat.h5"), "--input", fixture("multitask_flat.input.npy"), "--out", out],
                          naming: out + ": cannot make the folder: " + file + " is not a directory")
        }
        #expect(FModelCommand.main(arguments: ["run", fixture("multitask_flat.h5"), "--input", fixture("multitask_flat.input.npy"),
                                               "--out", dir + "/made/deeper"]) == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir + "/made/deeper").sorted() == ["age.npy", "ethnicity.npy", "gender.npy"])
    }

    /// An output that cannot be written is refused before the work (here the model does not
    /// even exist): on bcbce0b `shrink`, `prune`, `quantize`, `graft` and `strip` found out only
    /// once they had done it (`shrink --data` of the full-size model: minutes).
    @Test(arguments: [["shrink", "MODEL", "--target-mb", "1"], ["prune", "MODEL", "--layer", "fc1", "--keep", "0.5"],
                      ["quantize", "MODEL", "--dtype", "int8"], ["graft", "MODEL", "--at", "x", "MODEL"], ["strip", "MODEL", "--after", "x"]])
    func unwritableOutputsAreRefusedFirst(arguments: [String]) {
        let output = dir + "/no-such-folder/out.fmodel"
        expectRefused(arguments.map { $0 == "MODEL" ? dir + "/missing.fmodel" : $0 } + ["-o", output],
                      naming: output + ": cannot create a temporary file: No such file or directory")
    }

    /// An input of the wrong shape is refused naming its file (the message named only the
    /// model's input, which with several `--input`s did not say which file was wrong).
    @Test func inputOfTheWrongShapeNamesItsFile() throws {
        let wrong = dir + "/wrong.npy"
        try NPY.write(NPYArray(shape: [1, 4], values: [1, 2, 3, 4]), to: wrong)
        expectRefused(["run", fixture("multitask_flat.h5"), "--input", wrong, "--out", dir + "/wrong_out/deeper"],
                      naming: wrong + ": input 'input_1' has shape [1,4], the model takes [?,")
        #expect(!FileManager.default.fileExists(atPath: dir + "/wrong_out"), "the folders it made for the outputs, left empty")
    }

    /// `run` puts its outputs in place all or none: one it cannot write (here a directory by its
    /// name) fails the command with the folder as it was. The outputs written before it were
    /// left beside an earlier run's.
    @Test func runWritesItsOutputsAllOrNone() throws {
        let out = dir + "/all_or_none"
        try FileManager.default.createDirectory(atPath: out + "/ethnicity.npy", withIntermediateDirectories: true)
        try NPY.write(NPYArray(shape: [1], values: [42]), to: out + "/age.npy")
        expectRefused(["run", fixture("multitask_flat.h5"), "--input", fixture("multitask_flat.input.npy"), "--out", out],
                      naming: out + "/ethnicity.npy: is a directory")
        #expect(try FileManager.default.contentsOfDirectory(atPath: out).sorted() == ["age.npy", "ethnicity.npy"])
        #expect(try NPY.read(path: out + "/age.npy").values == [42], "an earlier run's output, kept")
    }

    /// `bench`'s resident-set breakdown finds a mapped file's pages under `model_file` (all of
    /// them once read; smaps is read to its end, past the first mappings) and the rest elsewhere.
    @Test func residentSetCountsTheModelFile() throws {
        let path = fixture("multitask_nested.h5")
        let file = try MappedFile(path: path)
        var sum: UInt8 = 0
        for i in stride(from: 0, to: file.bytes.count, by: 4096) { sum &+= file.bytes[i] }
        let sample = ResidentSet.sample(modelPath: path)
        let size = Double(file.bytes.count) / 1e6
        #expect(abs(sample["model_file", default: 0] - size) < 0.005, "\(sample) for \(size) MB, \(sum)")
        #expect(sample["heap_anonymous", default: 0] > 0 && sample["other_libraries", default: 0] > 0)
        // /proc/self/status agrees: the resident set holds at least the file.
        let status = ResidentSet.status()
        #expect((status["VmRSS"] ?? 0) >= size && (status["VmHWM"] ?? 0) >= (status["VmRSS"] ?? 0), "\(status)")
        #expect(ResidentSet.kind("/x/libdnnl.so.2", perms: "r-xp", model: path) == "libdnnl")
        #expect(ResidentSet.kind("", perms: "rwxp", model: path) == "jit_code")
    }

    /// Every mapping's `Rss:` line is added to its kind, whatever the other lines hold: a path
    /// with spaces, anonymous and bracketed mappings, field lines that start with hex letters'
    /// capitals, no newline at the end.
    @Test func residentSetParsesEveryMapping() {
        let text = """
            7f00a000-7f00b000 r--p 00000000 fe:01 123   /models/my model.fmodel
            Size:                  4 kB
            Rss:                1234 kB
            AnonHugePages:         0 kB
            VmFlags: rd mr mw me
            7f00b000-7f00c000 rw-p 00000000 00:00 0
            Rss:                  10 kB
            55d0c000-55d0d000 rw-p 00000000 00:00 0                          [heap]
            Rss:                   5 kB
            7f00c000-7f00d000 rwxp 00000000 00:00 0
            Rss:                   7 kB
            7f00d000-7f00e000 r-xp 00000000 fe:01 99    /usr/lib/libdnnl.so.2.6
            Rss:                 300 kB
            7ffd0000-7ffd1000 rw-p 00000000 00:00 0                          [stack]
            Rss:                  12 kB
            """
        let mb = ResidentSet.parse(smaps: Array(text.utf8), model: "/models/my model.fmodel").mapValues { $0 * 1e6 / 1024 }
        #expect(mb.mapValues { Int($0.rounded()) } == ["model_file": 1234, "heap_anonymous": 15, "jit_code": 7, "libdnnl": 300, "stacks_vdso": 12])
    }
}

/// Cgroups with a CPU quota of one CPU (cgroup v1's cpu controller or v2's), if this process
/// may make them (root, a writable cgroup mount).
enum QuotaCgroup {
    static let available: Bool = make().map { rmdir($0) == 0 } ?? false

    /// A new cgroup's folder; the caller removes it once its processes have ended.
    static func make() -> String? {
        let name = "fmodel-test-\(getpid())-\(UUID().uuidString.prefix(8))"
        func write(_ text: String, _ path: String) -> Bool { (try? text.write(toFile: path, atomically: false, encoding: .utf8)) != nil }
        // Each mount is a cgroup file system only if its own control file is there (a tmpfs
        // would take the folder and the files as plain ones).
        for (mount, own, limit) in [("/sys/fs/cgroup/cpu", "cpu.cfs_quota_us", ["cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "100000"]),
                                    ("/sys/fs/cgroup", "cgroup.controllers", ["cpu.max": "100000 100000"])] {
            let folder = mount + "/" + name
            guard FileManager.default.fileExists(atPath: mount + "/" + own), mkdir(folder, 0o755) == 0 else { continue }
            if limit.allSatisfy({ write($0.value, folder + "/" + $0.key) }) { return folder }
            rmdir(folder)
        }
        return nil
    }
}

/// Whether a command can run here in a mount namespace of its own without /proc.
enum NoProc {
    static let available = FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare")
        && runMeasured("/usr/bin/unshare", ["-m", "/bin/sh", "-c", "umount -l /proc && ! test -e /proc/self/stat"])?.exitCode == 0
}

/// How a test runs a command held to what root is not (`ulimit -u`, file modes): as this
/// user, or as root through `setpriv` as nobody, if nobody can run fmodel here (its folders and
/// the fixtures readable by all). Nil when neither.
enum Unprivileged {
    static let command: [String]? = {
        let tools = ["/usr/bin/timeout", "/usr/bin/prlimit"]
        guard tools.allSatisfy(FileManager.default.isExecutableFile(atPath:)), let fmodel = fmodelExecutable() else { return nil }
        guard getuid() == 0 else { return ["/usr/bin/env"] }
        let setpriv = ["/usr/bin/setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
        guard FileManager.default.isExecutableFile(atPath: setpriv[0]),
              runMeasured(setpriv[0], Array(setpriv.dropFirst()) + [fmodel, "inspect", Fixtures.path("tf1_facenet_small.pb"), "--inputs", "input:?x64x64x3"])?.exitCode == 0
        else { return nil }
        return setpriv
    }()
}
