import FModelVerify
import FModelTestSupport
import Foundation
import Testing

@Suite struct DatasetTests {
    @Test(arguments: [("25_1_2_20170116174525125.jpg", 25, 1, 2), ("100_0_0_20170112213500903.jpg.chip.jpg", 100, 0, 0),
                      ("0_1_4_1.png", 0, 1, 4), ("116_0_3_20170119.jpg", 116, 0, 3)])
    func parsesUTKFaceNames(_ name: String, _ age: Int, _ gender: Int, _ race: Int) throws {
        #expect(try FaceDataset.parse(name: name).get() == FaceLabels(age: age, gender: gender, race: race))
    }

    @Test(arguments: ["25_1_20170116174525125.jpg", "117_0_0_20170116.jpg", "25_2_0_20170116.jpg", "25_0_5_20170116.jpg",
                      "25_0_0.jpg", "25_0_0_2017 0116.jpg", "x_0_0_20170116.jpg", "25_0_0_20170116jpg", "-1_0_0_2017.jpg", "25__0_0_2017.jpg"])
    func rejectsMalformedNames(_ name: String) {
        #expect(throws: SkippedName.self) { try FaceDataset.parse(name: name).get() }
    }

    func folder(_ names: [String]) throws -> String {
        let dir = Fixtures.temporaryDirectory()
        for n in names {
            let path = dir + "/" + n
            try? FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try #require(FileManager.default.createFile(atPath: path, contents: Data([0xFF, 0xD8])), "the test could not write its input")
        }
        return dir
    }

    @Test func scansRecursivelyInOrderAndCountsBadNames() throws {
        let dir = try folder(["b/30_0_1_2017.jpg", "a/20_1_0_2017.jpg.chip.jpg", "bad_name.jpg", "notes.txt", "40_0_2_2017.png"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let d = try FaceDataset(folder: dir)
        #expect(d.samples.map { ($0.path as NSString).lastPathComponent } == ["40_0_2_2017.png", "20_1_0_2017.jpg.chip.jpg", "30_0_1_2017.jpg"])
        #expect(d.skipped.map(\.name) == ["bad_name.jpg"])
        #expect(try FaceDataset(folder: dir, limit: 2).samples.count == 2)
        #expect(throws: DatasetError.self) { try FaceDataset(folder: dir, strict: true) }
    }

    /// Names that are not UTF-8 are skipped with the reason (a folder's image was "unreadable:
    /// No such file or directory", a file's name "not digits"); linked folders are scanned (they
    /// were passed over), each folder once (a link back up is not a loop).
    @Test func oddNamesAndLinkedFolders() throws {
        let dir = try folder(["10_0_1_2017.jpg"]), other = try folder(["sub/20_1_0_2017.png"])
        defer { [dir, other].forEach { try? FileManager.default.removeItem(atPath: $0) } }
        // Paths with one byte that is not UTF-8 after `head`.
        func odd(_ head: String, _ byte: UInt8, _ tail: String = "") -> [CChar] {
            (Array(head.utf8) + [byte] + Array(tail.utf8) + [0]).map { CChar(bitPattern: $0) }
        }
        func touch(_ path: [CChar]) throws { let fd = open(path, O_CREAT | O_WRONLY, 0o644); try #require(fd >= 0); close(fd) }
        try #require(mkdir(odd(dir + "/bad", 0xFF), 0o755) == 0)
        try touch(odd(dir + "/bad", 0xFF, "/30_0_1_2017.jpg"))
        try touch(odd(dir + "/40_0_1_2017", 0xFE, ".jpg"))
        try #require(symlink(other, dir + "/linked") == 0 && symlink("..", other + "/sub/up") == 0 && symlink("loop", dir + "/loop") == 0)

        #expect(FaceDataset.imageFiles(in: dir) == ["10_0_1_2017.jpg", "linked/sub/20_1_0_2017.png"])
        let d = try FaceDataset(folder: dir)
        #expect(d.samples.map(\.path) == [dir + "/10_0_1_2017.jpg", dir + "/linked/sub/20_1_0_2017.png"])
        #expect(d.skipped.map(\.name) == ["40_0_1_2017\u{FFFD}.jpg", "bad\u{FFFD}"])
        #expect(d.skipped.allSatisfy { $0.reason.hasPrefix("the name is not UTF-8") })
        #expect(d.skipped.last?.reason.hasSuffix("the folder's images are not read") == true)
        #expect(throws: DatasetError.self) { try FaceDataset(folder: dir, strict: true) }
    }

    @Test func emptyOrMissingFolderIsAnError() throws {
        let dir = try folder(["readme.txt"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: DatasetError.empty(dir)) { try FaceDataset(folder: dir) }
        #expect(throws: DatasetError.notAFolder(dir + "/nope")) { try FaceDataset(folder: dir + "/nope") }
    }

    @Test func labelsFromCSV() throws {
        let dir = try folder(["img1.jpg", "img2.jpg"])
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let csv = dir + "/labels.csv"
        try "file,age,gender,race\nimg1.jpg,30,1,2\nimg2.jpg,5,0,4\n".write(toFile: csv, atomically: true, encoding: .utf8)
        let d = try FaceDataset(folder: dir, labels: csv)
        #expect(d.samples.map(\.labels) == [FaceLabels(age: 30, gender: 1, race: 2), FaceLabels(age: 5, gender: 0, race: 4)])
        try "file,age,gender,race\nimg1.jpg,300,1,2\n".write(toFile: csv, atomically: true, encoding: .utf8)
        #expect(throws: DatasetError.badLabelsFile(path: csv, line: 2, reason: "expected file,age(0-116),gender(0-1),race(0-4)")) {
            try FaceDataset(folder: dir, labels: csv)
        }
        // Past 256 MiB, refused by its size before it is read (a 3 GB one was read whole).
        try #require(truncate(csv, off_t(256 << 20) + 1) == 0)
        #expect(throws: DatasetError.badLabelsFile(path: csv, line: 0, reason: "cannot read: its size is \((256 << 20) + 1), over the limit of \(256 << 20)")) {
            try FaceDataset(folder: dir, labels: csv)
        }
    }
}
