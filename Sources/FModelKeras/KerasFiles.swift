import FModelCore
import FModelImport

/// The in-process importer of Keras `.h5` (full models, weights-only with a config, nested
/// models) and Keras 3 `.keras` files, for `ImportOptions.hdf5`: what the `fmodel-keras` worker
/// runs, and tests.
public struct KerasFiles: HDF5Importing {
    public init() {}

    public func importModel(path: String, format: SourceFormat, configJSON: String?) throws -> Graph {
        format == .keras3
            ? try Keras3Importer.importModel(path: path, configJSON: configJSON) : try KerasImporter.importModel(path: path, configJSON: configJSON)
    }
}

extension ImportOptions {
    /// Options that import the HDF5-based formats in this process.
    public static var inProcess: ImportOptions { ImportOptions(hdf5: KerasFiles()) }
}
