import FModelCore
@testable import FModelFormat
import FModelTestSupport
import Foundation
import Testing

@Suite final class FModelFileTests {
    let dir = Fixtures.temporaryDirectory()

    deinit { try? FileManager.default.removeItem(atPath: dir) }

    /// A small graph with every stored dtype.
    static func sample() -> Graph {
        let kernel = Tensor((0..<24).map { Float($0) / 7 }, shape: [1, 1, 3, 8])
        let half = Tensor(dtype: .f16, shape: [8], storage: TensorStorage(values: (0..<8).map { Float16(Float($0) * 0.5).bitPattern }))
        let q8 = Tensor(dtype: .int8PerChannel, shape: [8, 2], storage: TensorStorage(values: (0..<16).map { Int8($0 - 8) }),
                        scales: TensorStorage(values: [Float(0.1), 0.2]))
        let q4 = Tensor(dtype: .int4PerGroup, shape: [2, 2], storage: TensorStorage(values: [UInt8(0x21), 0x43]),
                        scales: TensorStorage(values: [Float16(1).bitPattern]), groupSize: 4)
        let nodes = [
            Node(name: "conv", op: .conv2D(ConvAttributes(padding: .same, activation: .relu)), inputs: ["x"], params: ["kernel": "conv/kernel", "bias": "conv/bias"]),
            Node(name: "pool", op: .globalAvgPool(keepDims: false), inputs: ["conv"]),
            Node(name: "fc", op: .dense(activation: .softmax), inputs: ["pool"], params: ["kernel": "fc/kernel"]),
            Node(name: "fc2", op: .dense(activation: .linear), inputs: ["fc"], params: ["kernel": "fc2/kernel"]),
        ]
        return Graph(inputs: [ValueInfo(name: "x", shape: [-1, 4, 4, 3])], outputs: ["fc2"], nodes: nodes,
                     tensors: ["conv/kernel": kernel, "conv/bias": half, "fc/kernel": q8, "fc2/kernel": q4],
                     metadata: ModelMetadata(sourceFile: "m.h5", sourceSHA256: String(repeating: "ab", count: 32), preprocess: .prewhiten, passes: ["fold_batch_norm"]))
    }

    func written() throws -> (String, [UInt8]) {
        let path = dir + "/m.fmodel"
        try FModelWriter.write(Self.sample(), to: path)
        return (path, [UInt8](try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    @Test func roundTripKeepsEverything() throws {
        let (path, bytes) = try written()
        let g = try FModelReader.read(path: path)
        let s = Self.sample()
        #expect(g.nodes == s.nodes && g.inputs == s.inputs && g.outputs == s.outputs && g.metadata == s.metadata)
        for (name, t) in s.tensors {
            let r = try #require(g.tensors[name])
            #expect(r.dtype == t.dtype && r.shape == t.shape && r.groupSize == t.groupSize)
            #expect(Array(r.storage.bytes) == Array(t.storage.bytes))
            #expect(r.floats() == t.floats())
            // Used in place: 64-byte aligned inside the mapping.
            #expect(Int(bitPattern: r.storage.bytes.baseAddress) % 64 == 0)
        }
        #expect(Array(bytes.prefix(8)) == FModelLayout.magic)
    }

    /// A tensor whose pages a runtime released reads the same afterwards (they fault back in
    /// from the file), and releasing pages of owned memory is a no-op.
    @Test func releasedPagesReadBackTheSame() throws {
        var g = Self.sample()
        g.tensors["big/kernel"] = Tensor((0..<100_000).map { Float($0) * 0.25 }, shape: [100_000])
        let path = dir + "/pages.fmodel"
        try FModelWriter.write(g, to: path)
        let back = try FModelReader.read(path: path)
        let t = try #require(back.tensors["big/kernel"])
        let before = t.floats()
        t.storage.releaseResidentPages()
        #expect(t.floats() == before && before[99_999] == 24_999.75)
        let owned = g.tensors["big/kernel"]!
        owned.storage.releaseResidentPages()
        #expect(owned.floats() == before)
    }

    /// Once read, the header's whole pages leave the resident set (the graph holds what they
    /// said); the tensors' pages stay mapped for use in place.
    @Test func headerPagesAreReleasedAfterReading() throws {
        var g = Self.sample()
        for i in 0..<300 { g.nodes.append(Node(name: "identity_with_a_long_name_\(i)", op: .identity, inputs: [i == 0 ? "fc2" : "identity_with_a_long_name_\(i - 1)"])) }
        g.tensors["big/kernel"] = Tensor((0..<10_000).map { Float($0) }, shape: [10_000])
        let path = dir + "/header.fmodel"
        try FModelWriter.write(g, to: path)
        let file = try MappedFile(path: path)
        let headerEnd = FModelLayout.preambleSize + Int(file.bytes.loadUnaligned(fromByteOffset: 16, as: UInt64.self))
        let header = UnsafeRawBufferPointer(rebasing: file.bytes[0..<headerEnd / 4096 * 4096])
        #expect(header.count >= 2 * 4096)
        // Every header page mapped by reading it. The sum is checked, so that the optimised build
        // cannot drop the reads as unused. Without the check the mapped pages were left to
        // chance (to what fault-around had mapped), and the count below came out 6 of 9 in one
        // CI run of the optimised build.
        let bytesRead = try Data(contentsOf: URL(fileURLWithPath: path)).prefix(header.count)
        #expect(header.reduce(0) { $0 &+ Int($1) } == bytesRead.reduce(0) { $0 &+ Int($1) })
        #expect(residentPages(header) == header.count / 4096)
        let back = try FModelReader.read(file)
        #expect(residentPages(header) == 0)
        #expect(back.nodes.count == g.nodes.count)
        let kernel = try #require(back.tensors["big/kernel"])
        #expect(kernel.floats()[9_999] == 9_999)
        #expect(residentPages(kernel.storage.bytes)! > 0)
    }

    @Test func sameGraphSameBytes() throws {
        let (_, a) = try written()
        let (_, b) = try written()
        #expect(a == b)
    }

    @Test func invalidGraphLeavesNoFile() {
        var g = Self.sample()
        g.tensors["conv/kernel"] = Tensor([1, 2], shape: [2])
        #expect(throws: GraphError.self) { try FModelWriter.write(g, to: dir + "/x.fmodel") }
        #expect((try? FileManager.default.contentsOfDirectory(atPath: dir))?.isEmpty ?? true)
        #expect(throws: FormatError.self) { try FModelWriter.write(Self.sample(), to: "/nonexistent-dir/x.fmodel") }
    }

    /// A writer's file has no name until it is committed (`O_TMPFILE`): nothing is left in its
    /// directory while it is written, when it is dropped, or (what that stands for) when the
    /// process is killed by SIGKILL, which no handler sees. Committed, it replaces the file
    /// there, with the usual mode. Before, a hidden `.w.bin.tmp-…` was there all along, and
    /// `kill -9` of fmodel left it (a 152 MB one beside an import's output).
    @Test func outputHasNoNameUntilCommitted() throws {
        let path = dir + "/w.bin"
        for (round, committed) in [(1, false), (2, true), (3, true)] {
            let writer = try AtomicFileWriter(path: path)
            try writer.write(Array(repeating: UInt8(round), count: 1000 * round))
            let listed = try FileManager.default.contentsOfDirectory(atPath: dir)
            #expect(listed == (round == 3 ? ["w.bin"] : []), "round \(round): named while written: \(listed)")
            #expect(try MappedFile(path: writer.stagedPath).withBytes { Array($0) } == Array(repeating: UInt8(round), count: 1000 * round))
            if committed { try writer.commit() } else { _ = consume writer }
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == (round == 1 ? [] : ["w.bin"]), "round \(round)")
        }
        #expect(try MappedFile(path: path).withBytes { Array($0) } == Array(repeating: 3, count: 3000), "replaced by the last")
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
        #expect(mode == 0o644 & ~Int(AtomicFileWriter.processUmask))
    }

    /// A file replaced keeps its permissions, however the writer staged it and through a link
    /// to it: a model kept private (0600) was made 0644 by writing it again.
    @Test(arguments: [true, false])
    func replacingAFileKeepsItsPermissions(unnamed: Bool) throws {
        let path = dir + "/private-\(unnamed).bin", link = dir + "/link-\(unnamed)"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: path)
        for (mode, through) in [(0o600, path), (0o640, link)] {
            try #require(FileManager.default.createFile(atPath: path, contents: Data([1])) && chmod(path, mode_t(mode)) == 0)
            let writer = try AtomicFileWriter(path: through, unnamed: unnamed)
            try writer.write([2, 3])
            try writer.commit()
            #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == mode, "through \(through)")
            #expect(try MappedFile(path: path).withBytes { Array($0) } == [2, 3])
        }
    }

    /// Where the file system has no unnamed files, the temporary file a writer fills is
    /// remembered for `Cleanup` (which removes it if a signal ends the process:
    /// `InterruptionTests`) while it exists, and forgotten once it is renamed into place or
    /// removed.
    @Test func temporaryFileIsRememberedWhileItExists() throws {
        func temporaryFiles() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.contains(".tmp-") }.map { dir + "/" + $0 }
        }
        for committed in [true, false] {
            let writer = try AtomicFileWriter(path: dir + "/w.bin", unnamed: false)
            let temporary = temporaryFiles()
            try #require(temporary.count == 1, "\(temporary)")
            #expect(Cleanup.remembers(temporary[0]))
            if committed { try writer.commit() } else { _ = consume writer }
            #expect(!Cleanup.remembers(temporary[0]) && temporaryFiles().isEmpty, "committed: \(committed)")
        }
        #expect(FileManager.default.fileExists(atPath: dir + "/w.bin"))
    }

    /// An output at a symbolic link is written where the link points (absolute, relative, or to
    /// nothing yet), the link kept; a directory, a FIFO and a loop of links are refused, naming
    /// the path, and left as they were. (The FIFO stood for a device: `-o /dev/null` as root
    /// replaced /dev/null with a regular file before.)
    @Test func outputsAreWrittenThroughLinksAndOnlyToFiles() throws {
        let fm = FileManager.default
        try fm.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: dir + "/absolute", withDestinationPath: dir + "/sub/a.fmodel")
        try fm.createSymbolicLink(atPath: dir + "/relative", withDestinationPath: "sub/r.fmodel")
        try FModelWriter.write(Self.sample(), to: dir + "/sub/a.fmodel")  // replaced through the link
        for link in ["absolute", "relative"] {
            try FModelWriter.write(Self.sample(), to: dir + "/" + link)
            #expect(try fm.destinationOfSymbolicLink(atPath: dir + "/" + link).hasSuffix(".fmodel"), "\(link) is still a link")
            _ = try FModelReader.read(path: dir + "/" + link)
        }
        #expect(try fm.contentsOfDirectory(atPath: dir + "/sub").sorted() == ["a.fmodel", "r.fmodel"])

        try #require(mkfifo(dir + "/fifo", 0o600) == 0, "the test could not make its FIFO")
        try fm.createDirectory(atPath: dir + "/folder", withIntermediateDirectories: true)
        try fm.createSymbolicLink(atPath: dir + "/loop1", withDestinationPath: "loop2")
        try fm.createSymbolicLink(atPath: dir + "/loop2", withDestinationPath: "loop1")
        // A target that is not UTF-8 was written under the name with U+FFFD, the link dangling.
        try #require(symlink((Array("odd".utf8) + [0xFF, 0]).map { CChar(bitPattern: $0) }, dir + "/odd") == 0)
        // A link to a pipe through /proc, as /dev/stdout is (`-o /dev/stdout | …`): its target
        // reads "pipe:[N]", no path, and was taken for a file to make ("cannot create a
        // temporary file: No such file or directory").
        var pipeEnds: [Int32] = [0, 0]
        try #require(pipe(&pipeEnds) == 0)
        defer { pipeEnds.forEach { close($0) } }
        try fm.createSymbolicLink(atPath: dir + "/stdout", withDestinationPath: "/proc/self/fd/\(pipeEnds[1])")
        for (name, reason) in [("fifo", "not a regular file"), ("folder", "is a directory"), ("loop1", "too many levels of symbolic links"),
                               ("odd", "the symbolic link's target is not UTF-8"), ("stdout", "not a regular file")] {
            do {
                try FModelWriter.write(Self.sample(), to: dir + "/" + name)
                Issue.record("\(name) was written")
            } catch {
                #expect("\(error)".contains(dir + "/" + name) && "\(error)".contains(reason), "\(error)")
            }
        }
        var info = stat()
        #expect(lstat(dir + "/fifo", &info) == 0 && info.st_mode & S_IFMT == S_IFIFO, "the FIFO is still one")
        #expect(try fm.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix(".") } == [], "no temporary file left")
    }

    func readError(_ bytes: [UInt8]) throws -> (any Error)? {
        let p = dir + "/bad.fmodel"
        try #require(FileManager.default.createFile(atPath: p, contents: Data(bytes)), "the test could not write its input")
        do { _ = try FModelReader.read(path: p); return nil } catch { return error }
    }

    /// Every prefix of a valid file is an error, never a crash.
    @Test func everyTruncationIsAnError() throws {
        let (_, bytes) = try written()
        for cut in 0..<bytes.count where cut % 7 == 0 || cut < 64 {
            #expect(try readError(Array(bytes.prefix(cut))) != nil, "prefix \(cut)")
        }
    }

    /// Every single-byte change is caught: by the magic, the header checks, or a tensor checksum.
    @Test func everyByteFlipIsCaught() throws {
        let (_, bytes) = try written()
        let headerEnd = 32 + Int(UInt64(littleEndian: bytes[16..<24].withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }))
        for i in 0..<bytes.count where i < headerEnd || (i - headerEnd) % 5 == 0 {
            var b = bytes
            b[i] ^= 0x5A
            let error = try readError(b)
            // Padding bytes between regions carry no meaning; every other change must fail.
            let isPadding = bytes[i] == 0 && i >= FModelLayout.aligned(headerEnd) && error == nil
            #expect(error != nil || isPadding, "flip at \(i)")
            // In the tensor data it is the checksum of the region holding the byte that fails.
            if i >= FModelLayout.aligned(headerEnd), let error {
                guard case .checksumMismatch(_, _, let offset) = error as? FormatError else {
                    Issue.record("flip at \(i): \(error)")
                    continue
                }
                #expect(offset <= i && offset >= FModelLayout.aligned(headerEnd), "flip at \(i): region at \(offset)")
            }
        }
    }

    /// Bytes past the end of the data (a file appended to, two files concatenated) are an error
    /// at the offset where the data ends; before, such a file read as the one it starts with.
    @Test func bytesAfterTheDataAreAnError() throws {
        let (_, bytes) = try written()
        for tail in [[UInt8(0)], [UInt8](repeating: 0, count: 64), bytes] {
            guard case .corrupt(_, let offset, let reason)? = try readError(bytes + tail) as? FormatError else {
                Issue.record("\(tail.count) bytes appended: \(String(describing: try readError(bytes + tail)))")
                continue
            }
            #expect(offset == bytes.count && reason.hasPrefix("\(tail.count) bytes after"), "\(offset): \(reason)")
        }
        #expect(try readError(bytes) == nil)
    }

    @Test func hostileHeaderFields() throws {
        let (_, bytes) = try written()
        var huge = bytes
        huge.replaceSubrange(16..<24, with: withUnsafeBytes(of: UInt64.max.littleEndian, Array.init))
        #expect(try readError(huge) as? FormatError == .limitExceeded(path: dir + "/bad.fmodel", what: "header length at byte offset 16", value: Int.max, limit: 64 << 20))
        var version = bytes
        version[8] = 2
        #expect(try readError(version) as? FormatError == .unsupportedVersion(path: dir + "/bad.fmodel", version: 2))
    }

    /// A header that lies about a tensor (offset past the end, size of another shape) is
    /// rejected before any byte of the tensor is touched.
    @Test func lyingTensorTableIsRejected() throws {
        var header = FModelWriter.layout(Self.sample()).0
        header.tensors[0].data.offset = 1 << 40
        #expect(try readError(try file(with: header)) is FormatError)
        header = FModelWriter.layout(Self.sample()).0
        header.tensors[0].shape = [1 << 30, 1 << 30]
        #expect(try readError(try file(with: header)) != nil)
    }

    /// Headers whose sizes and checksums hold but whose graph does not: errors that name the file
    /// at the header's offset, never traps. Each of these once trapped (found by
    /// `Tools/fuzz_inputs.py`'s resealed cases): a shape of `Int.max` values overflowed its byte
    /// count, a dilation of 2^31 the 32-bit parameters of the convolution kernels, and a role a
    /// dense layer does not take, naming its kernel again, `shrink`'s planner.
    @Test func hostileGraphsInWellFormedFiles() throws {
        let cases: [(String, (inout FileHeader) -> Void)] = [
            ("conv/kernel", { $0.tensors[1].shape = [Int.max] }),
            ("fc/kernel", { $0.tensors[2].shape = [1, Int.max] }),
            ("conv", { $0.graph.nodes[0].op = .conv2D(ConvAttributes(dilations: [1 << 31, 1], padding: .same, activation: .relu)) }),
            ("fc", { $0.graph.nodes[2].params["kernel_"] = "fc/kernel" }),
        ]
        for (named, change) in cases {
            let error = try readError(try resealed(change))
            guard case .corrupt(let path, let offset, let reason)? = error as? FormatError else {
                Issue.record("\(named): \(String(describing: error))")
                continue
            }
            #expect(path == dir + "/bad.fmodel" && offset == FModelLayout.preambleSize && reason.contains("'\(named)'"), "\(reason)")
        }
        #expect(try readError(try resealed { _ in }) == nil, "the resealed sample itself is well formed")
    }

    /// The sample written whole with its header changed by `change`, its length and checksums
    /// made right again: a hostile file no checksum catches.
    func resealed(_ change: (inout FileHeader) -> Void) throws -> [UInt8] {
        var (header, regions) = FModelWriter.layout(Self.sample())
        change(&header)
        let json = try FModelWriter.encodeHeader(header)
        var out = FModelWriter.preamble(headerLength: json.count, headerCRC: CRC32C.checksum(json)) + json
        let dataStart = FModelLayout.aligned(out.count)
        for (region, storage) in regions {
            out += [UInt8](repeating: 0, count: dataStart + region.offset - out.count) + Array(storage.bytes)
        }
        return out
    }

    func file(with header: FileHeader) throws -> [UInt8] {
        let json = try FModelWriter.encodeHeader(header)
        var out = FModelWriter.preamble(headerLength: json.count, headerCRC: CRC32C.checksum(json)) + json
        out += [UInt8](repeating: 0, count: FModelLayout.aligned(out.count) - out.count + 4096)
        return out
    }
}

@Suite struct ChecksumTests {
    @Test func crc32cCheckValue() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8]()) == 0)
        #expect(Array("123456789".utf8).withUnsafeBytes { CRC32.checksum($0) } == 0xCBF4_3926)
        #expect(Array("123456789".utf8).withUnsafeBytes { CRC32C.software($0) } == 0xE306_9283)
    }

    /// A CRC-32 continued over pieces (a deflated zip entry, inflated a piece at a time) is
    /// the CRC-32 of the whole, wherever the pieces are cut.
    @Test func crc32ContinuesAcrossPieces() {
        Array("123456789".utf8).withUnsafeBytes { all in
            for cut in 0...9 {
                let first = CRC32.checksum(UnsafeRawBufferPointer(rebasing: all[..<cut]))
                #expect(CRC32.checksum(UnsafeRawBufferPointer(rebasing: all[cut...]), continuing: first) == 0xCBF4_3926, "cut at \(cut)")
            }
        }
    }

    /// The hardware and table forms agree on every length and alignment.
    @Test func hardwareAndSoftwareAgree() {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        bytes.withUnsafeBytes { all in
            for start in 0..<9 {
                for length in [0, 1, 7, 8, 9, 63, 64, 65, 500, 991 - start] {
                    let slice = UnsafeRawBufferPointer(rebasing: all[start..<(start + length)])
                    #expect(CRC32C.checksum(slice) == CRC32C.software(slice))
                }
            }
        }
    }

    /// Long inputs, which the hardware form runs as three streams of 8 KB joined by a shift:
    /// lengths on either side of one round (24 KB), several rounds with a tail, odd starts.
    @Test func hardwareStreamsJoinAsOne() {
        let bytes = (0..<100_000).map { UInt8(truncatingIfNeeded: ($0 &* 2_654_435_761) >> 13) }
        bytes.withUnsafeBytes { all in
            for start in [0, 3] {
                for length in [24_575, 24_576, 24_577, 3 * 24_576 + 13, 99_990] {
                    let slice = UnsafeRawBufferPointer(rebasing: all[start..<(start + length)])
                    #expect(CRC32C.checksum(slice) == CRC32C.software(slice), "start \(start), length \(length)")
                }
            }
        }
    }

    @Test(arguments: [("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
                      ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
                      (String(repeating: "a", count: 1000), "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")])
    func sha256KnownAnswers(_ text: String, _ hex: String) {
        #expect(Array(text.utf8).withUnsafeBytes { SHA256.hex($0) } == hex)
    }

    /// SHA-NI and the portable code agree on 1 MB fed in uneven pieces (partial blocks, then
    /// runs of whole blocks).
    @Test func sha256HardwareMatchesPortable() {
        var g = SplitMix64(seed: 11)
        let data = (0..<(1 << 20)).map { _ in UInt8(truncatingIfNeeded: g.next()) }
        var fast = SHA256(), slow = SHA256(portable: true)
        data.withUnsafeBytes { all in
            var i = 0, step = 1
            while i < all.count {
                let piece = UnsafeRawBufferPointer(rebasing: all[i..<min(i + step, all.count)])
                fast.update(piece)
                slow.update(piece)
                i += step
                step = step * 3 + 7
            }
        }
        #expect(fast.finalizeHex() == slow.finalizeHex())
    }
}
