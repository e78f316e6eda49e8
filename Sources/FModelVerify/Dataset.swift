import FModelFormat
import Foundation

/// Labels of one face: age 0–116, gender 0 male / 1 female, race 0–4.
public struct FaceLabels: Sendable, Hashable, Codable {
    public var age: Int
    public var gender: Int
    public var race: Int

    public init(age: Int, gender: Int, race: Int) { (self.age, self.gender, self.race) = (age, gender, race) }

    /// Race names in UTKFace's order.
    public static let races = ["White", "Black", "Asian", "Indian", "Others"]
    public static let genders = ["male", "female"]
}

/// A labelled image.
public struct FaceSample: Sendable, Hashable {
    public var path: String
    public var labels: FaceLabels
}

/// A name that could not be used, and why.
public struct SkippedName: Error, Sendable, Hashable, Codable {
    public var name: String
    public var reason: String
}

/// Why a dataset could not be loaded at all.
public enum DatasetError: Error, Equatable, Sendable, CustomStringConvertible {
    case notAFolder(String)
    case empty(String)
    case badNames(folder: String, count: Int, first: SkippedName)
    case badLabelsFile(path: String, line: Int, reason: String)

    public var description: String {
        switch self {
        case .notAFolder(let p): "\(p): not a folder"
        case .empty(let p): "\(p): no labelled .jpg or .png images"
        case .badNames(let f, let n, let first): "\(f): \(n) file names are not UTKFace names (first: \(first.name): \(first.reason)); --strict is set"
        case .badLabelsFile(let p, let l, let r): "\(p): line \(l): \(r)"
        }
    }
}

/// A folder of faces named the UTKFace way, `[age]_[gender]_[race]_[datetime].jpg` (also
/// `….jpg.chip.jpg`), searched recursively, in a deterministic order.
public struct FaceDataset: Sendable {
    public var folder: String
    public var samples: [FaceSample]
    /// Image files whose names did not parse.
    public var skipped: [SkippedName]

    /// Scans `folder`.
    /// - Parameters:
    ///   - limit: keep at most this many samples (after sorting).
    ///   - strict: fail on any name that does not parse.
    ///   - labels: a CSV file (`file,age,gender,race`, paths relative to `folder`) used instead of names.
    public init(folder: String, limit: Int? = nil, strict: Bool = false, labels: String? = nil) throws(DatasetError) {
        try Self.requireFolder(folder)
        self.folder = folder
        var samples: [FaceSample] = []
        var skipped: [SkippedName] = []
        if let labels {
            samples = try Self.readLabels(labels, folder: folder)
        } else {
            let found = Self.scan(folder)
            skipped = found.unusable
            for file in found.files {
                switch Self.parse(name: (file as NSString).lastPathComponent) {
                case .success(let l): samples.append(FaceSample(path: folder + "/" + file, labels: l))
                case .failure(let s): skipped.append(s)
                }
            }
        }
        if strict, let first = skipped.first { throw .badNames(folder: folder, count: skipped.count, first: first) }
        if let limit { samples = Array(samples.prefix(limit)) }
        guard !samples.isEmpty else { throw .empty(folder) }
        self.samples = samples
        self.skipped = skipped
    }

    /// Throws `notAFolder` unless `folder` is a directory.
    public static func requireFolder(_ folder: String) throws(DatasetError) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue else { throw .notAFolder(folder) }
    }

    /// Image files below `folder` (relative paths), sorted.
    public static func imageFiles(in folder: String) -> [String] { scan(folder).files }

    /// Image files below `folder` (relative paths, sorted), following links to folders (each
    /// folder scanned once: a link back up is no loop), and what could not be used: a name that is
    /// not UTF-8 (a Swift string cannot hold it, so no report could name it; its image was
    /// "unreadable: No such file or directory" when Foundation listed the folder), a folder that
    /// cannot be read. (Foundation's listing also passed over linked folders.)
    public static func scan(_ folder: String) -> (files: [String], unusable: [SkippedName]) {
        var files: [String] = [], unusable: [SkippedName] = []
        var scanned = Set<[UInt64]>()
        var pending = [""]
        while let relative = pending.popLast() {
            let path = relative.isEmpty ? folder : folder + "/" + relative
            guard let dir = opendir(path) else {
                unusable.append(SkippedName(name: relative.isEmpty ? "." : relative, reason: "cannot read the folder: " + MappedFile.errnoText()))
                continue
            }
            defer { closedir(dir) }
            var info = stat()
            guard fstat(dirfd(dir), &info) == 0, scanned.insert([UInt64(info.st_dev), UInt64(info.st_ino)]).inserted else { continue }
            let prefix = relative.isEmpty ? "" : relative + "/"
            while let entry = readdir(dir) {
                // The name's own bytes, for what is there (its String may not be the same name).
                var info = stat()
                let (name, utf8, found) = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    let bytes = raw.prefix { $0 != 0 }
                    let found = fstatat(dirfd(dir), raw.baseAddress!.assumingMemoryBound(to: CChar.self), &info, 0) == 0
                    return (String(decoding: bytes, as: UTF8.self), String(validating: bytes, as: UTF8.self) != nil, found)
                }
                guard name != ".", name != ".." else { continue }
                let isFolder = found && info.st_mode & S_IFMT == S_IFDIR
                guard isFolder || isImage(name) else { continue }
                guard utf8 else {
                    unusable.append(SkippedName(name: prefix + name, reason: "the name is not UTF-8 (its bad bytes shown as U+FFFD), so no report could name it: rename it" + (isFolder ? "; the folder's images are not read" : "")))
                    continue
                }
                if isFolder { pending.append(prefix + name) } else { files.append(prefix + name) }
            }
        }
        return (files.sorted(), unusable.sorted { $0.name < $1.name })
    }

    /// Whether `name` ends in .jpg, .jpeg or .png, in any case.
    static func isImage(_ name: String) -> Bool { ["jpg", "jpeg", "png"].contains((name as NSString).pathExtension.lowercased()) }

    /// Parses a UTKFace file name.
    public static func parse(name: String) -> Result<FaceLabels, SkippedName> {
        let fields = name.split(separator: "_", omittingEmptySubsequences: false)
        func fail(_ r: String) -> Result<FaceLabels, SkippedName> { .failure(SkippedName(name: name, reason: r)) }
        guard fields.count == 4 else { return fail("expected age_gender_race_datetime, found \(fields.count) fields") }
        guard let age = Int(fields[0]), (0...116).contains(age) else { return fail("age '\(fields[0])' is not 0–116") }
        guard let gender = Int(fields[1]), (0...1).contains(gender) else { return fail("gender '\(fields[1])' is not 0 or 1") }
        guard let race = Int(fields[2]), (0...4).contains(race) else { return fail("race '\(fields[2])' is not 0–4") }
        let stamp = fields[3].prefix { $0 != "." }
        guard !stamp.isEmpty, stamp.allSatisfy(\.isNumber), fields[3].dropFirst(stamp.count).hasPrefix(".") else {
            return fail("datetime '\(fields[3])' is not digits followed by the extension")
        }
        return .success(FaceLabels(age: age, gender: gender, race: race))
    }

    static func readLabels(_ path: String, folder: String) throws(DatasetError) -> [FaceSample] {
        // 256 MiB: some 5 million lines. (A 3 GB file was read whole, and split into lines.)
        let text: String
        do { text = try MappedFile.text(path: path, maxBytes: 256 << 20) } catch {
            throw .badLabelsFile(path: path, line: 0, reason: "cannot read: \(error.detail)")
        }
        var out: [FaceSample] = []
        for (i, line) in text.split(whereSeparator: \.isNewline).enumerated() {
            let f = line.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            if i == 0, f.first == "file" { continue }
            guard f.count == 4, let a = Int(f[1]), let g = Int(f[2]), let r = Int(f[3]),
                  (0...116).contains(a), (0...1).contains(g), (0...4).contains(r) else {
                throw .badLabelsFile(path: path, line: i + 1, reason: "expected file,age(0-116),gender(0-1),race(0-4)")
            }
            out.append(FaceSample(path: f[0].hasPrefix("/") ? f[0] : folder + "/" + f[0], labels: FaceLabels(age: a, gender: g, race: r)))
        }
        return out
    }
}
