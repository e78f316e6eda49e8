import FModelCore
import FModelFormat
import Foundation

/// Options that shape an import, shared by `fmodel import` and every command taking a MODEL.
public struct ImportOptions: Sendable {
    /// Keras model config text for weights-only files (`--config`).
    public var configJSON: String?
    /// Input normalisation to record in the model (`--preprocess`).
    public var preprocess: Preprocess?
    /// When set, the HDF5-based formats are imported by this worker process (`fmodel-keras`).
    public var isolation: IsolatedImport?
    /// Otherwise, the importer of the HDF5-based formats that runs in this process (FModelKeras's
    /// `KerasFiles`, for the worker itself and for tests); with neither, such a file is an error.
    public var hdf5: (any HDF5Importing)?
    /// Inputs, outputs and constants for TensorFlow graphs (`--inputs`, `--outputs`, `--set`).
    public var graphCut = GraphCut()
    /// Receives the choices an importer made on its own (printed by the CLI).
    public var onNote: (@Sendable (String) -> Void)?

    public init(configJSON: String? = nil, preprocess: Preprocess? = nil, hdf5: (any HDF5Importing)? = nil) {
        self.configJSON = configJSON
        self.preprocess = preprocess
        self.hdf5 = hdf5
    }
}

/// Imports the formats read through libhdf5, Keras `.h5` and `.keras`, in this process. It lives
/// in FModelKeras, which alone links libhdf5, so that a process that only runs models (and
/// `fmodel` itself, which imports those files through the `fmodel-keras` worker) never loads the
/// library and the two dozen libraries it brings.
public protocol HDF5Importing: Sendable {
    /// The graph in the Keras file at `path` (`format` is `.kerasH5` or `.keras3`); `configJSON`
    /// is the model config for a weights-only `.h5`.
    func importModel(path: String, format: SourceFormat, configJSON: String?) throws -> Graph
}

/// The formats fmodel reads.
public enum SourceFormat: String, Sendable {
    case fmodel, kerasH5 = "keras-h5", tensorflowPB = "tensorflow-pb", keras3 = "keras3"
}

/// Loads a model from any supported file: `.fmodel` directly, anything else through its importer.
public enum ModelLoader {
    /// Tells the format of `path` from its first bytes (and, for a GraphDef, its extension).
    public static func detect(path: String) throws(ImportError) -> SourceFormat {
        if isDirectory(path) {
            guard access(path + "/config.json", F_OK) == 0 else {
                if access(path + "/saved_model.pb", F_OK) == 0 { throw .unknownFormat(path: path, reason: savedModel) }
                throw .unknownFormat(path: path, reason: "a directory, and not a Keras 3 model saved as one (it has no config.json)")
            }
            return .keras3
        }
        // Through MappedFile (POSIX, not FileHandle: Foundation's file and Data code, 0.4 MB of
        // pages by `bench --json`, would otherwise be paged in on the way to an .fmodel's first
        // output), which takes regular files only and does not wait on a FIFO.
        let prefix: [UInt8]
        do { prefix = try leadingBytes(of: path) } catch {
            throw .unknownFormat(path: path, reason: "cannot open the file (\(error.detail))")
        }
        if prefix.starts(with: FModelLayout.magic) { return .fmodel }
        if hasHDF5Signature(prefix) { return .kerasH5 }
        if prefix.starts(with: [0x50, 0x4B, 0x03, 0x04]) { return .keras3 }
        if KerasShardIndex.isIndex(path: path, prefix: prefix) { return .keras3 }
        if path.hasSuffix(".pb") { return .tensorflowPB }
        throw .unknownFormat(path: path, reason: "not an .fmodel, Keras HDF5 (.h5), Keras 3 (.keras) or TensorFlow GraphDef (.pb) file")
    }

    /// True when importing `path` goes through the isolated worker (HDF5-based formats).
    public static func usesWorker(path: String) throws(ImportError) -> Bool {
        switch try detect(path: path) {
        case .kerasH5, .keras3: true
        case .fmodel, .tensorflowPB: false
        }
    }

    /// Loads `path`, importing it when it is not an `.fmodel`.
    /// - Throws: `ImportError`, `FormatError` or `GraphError`, each naming the file.
    public static func load(path: String, options: ImportOptions = .init()) throws -> Graph {
        let format = try detect(path: path)
        var graph: Graph
        switch format {
        case .fmodel:
            graph = try FModelReader.read(path: path)
        case .kerasH5, .keras3:
            // libhdf5 may crash on a hostile file: with a worker, it crashes there.
            if let isolation = options.isolation {
                var inner = options
                inner.isolation = nil
                graph = try isolation.load(path: path, options: inner)
            } else if let hdf5 = options.hdf5 {
                graph = try recordingSource(path) { try hdf5.importModel(path: path, format: format, configJSON: options.configJSON) }
            } else {
                throw ImportError.noWorker(path: path)
            }
        case .tensorflowPB:
            var notes: [String] = []
            graph = try recordingSource(path) { try TensorFlowImporter.importModel(path: path, cut: options.graphCut, notes: &notes) }
            for n in notes { options.onNote?(n) }
        }
        if let p = options.preprocess { graph.metadata.preprocess = p }
        graph.metadata.producer = "fmodel \(FModelVersion.current)"
        return graph
    }

    /// What is said of a TensorFlow SavedModel (a directory with `saved_model.pb`, or that file),
    /// which fmodel does not read, and what to give it instead.
    static let savedModel = "a TensorFlow SavedModel, which fmodel does not read: give it a frozen GraphDef (.pb; convert_variables_to_constants_v2), or the Keras model saved as .keras or .h5"

    /// True when `path` is a directory (or a link to one): a Keras 3 model saved unzipped.
    public static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    /// The files the model at `path` is read from: itself or, for a Keras 3 model saved as a
    /// directory (`save(zipped=False)`, as Keras puts models on the Hugging Face Hub), its
    /// `config.json` and `model.weights.h5`, in that order; for an index of weights in shards,
    /// it and its shards (an index that cannot be read is an error when it is imported).
    public static func sourceFiles(path: String) -> [String] {
        if isDirectory(path) { return [path + "/config.json", path + "/model.weights.h5"] }
        if KerasShardIndex.isIndex(path: path), let index = try? KerasShardIndex(path: path) { return [path] + index.shards }
        return [path]
    }

    /// The size in bytes of the model at `path`: of its source files, together.
    public static func sourceBytes(path: String) -> Int {
        sourceFiles(path: path).reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: $1)[.size] as? Int) ?? 0) }
    }

    /// The first bytes of the file at `path` that tell its format: through the HDF5 signature at
    /// its last place (2048), and the start of a shard index.
    package static func leadingBytes(of path: String) throws(FormatError) -> [UInt8] {
        try MappedFile(path: path).withBytes { Array($0.prefix(2056)) }
    }

    /// True when `prefix` (a file's first bytes) holds the HDF5 signature `\x89HDF\r\n\x1a\n`
    /// at offset 0 or a power of two from 512.
    package static func hasHDF5Signature(_ prefix: [UInt8]) -> Bool {
        let signature: [UInt8] = [0x89, 0x48, 0x44, 0x46, 0x0D, 0x0A, 0x1A, 0x0A]
        return [0, 512, 1024, 2048].contains { prefix.count >= $0 + 8 && prefix[$0..<$0 + 8].elementsEqual(signature) }
    }

    /// The graph `importing` makes of `path`, with where it came from recorded: the file's name
    /// and SHA-256, hashed on another thread meanwhile (`SourceHash`). Face models take
    /// FaceNet's prewhitening unless the importer or the user says otherwise.
    private static func recordingSource(_ path: String, _ importing: () throws -> Graph) throws -> Graph {
        let hash = SourceHash(path: path)
        defer { hash.cancel() }
        var graph = try importing()
        graph.metadata.sourceFile = (path as NSString).lastPathComponent
        graph.metadata.sourceSHA256 = try hash.value()
        graph.metadata.preprocess = graph.metadata.preprocess ?? .prewhiten
        return graph
    }

    /// Hex SHA-256 of a model's source files (`sourceFiles`) one after the other: of the file,
    /// or of a directory's `cat config.json model.weights.h5`. Streamed in 1 MiB reads (a
    /// memory map would count the whole file in the process's resident memory); before each
    /// read it asks `continuing`, and stops with an error if told not to go on.
    public static func sha256(path: String, continuing: () -> Bool = { true }) throws(FormatError) -> String {
        var hash = SHA256()
        for file in sourceFiles(path: path) {
            guard let handle = FileHandle(forReadingAtPath: file) else { throw .io(path: file, reason: "cannot open") }
            defer { try? handle.close() }
            while true {
                guard continuing() else { throw .io(path: file, reason: "hashing stopped") }
                let chunk: Data
                do { chunk = try handle.read(upToCount: 1 << 20) ?? Data() } catch { throw .io(path: file, reason: "\(error)") }
                if chunk.isEmpty { break }
                chunk.withUnsafeBytes { hash.update($0) }
            }
        }
        return hash.finalizeHex()
    }
}

/// The version of this toolkit, recorded in files it writes.
public enum FModelVersion {
    public static let current = "0.1.0"
}
