// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "fmodel",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "fmodel", targets: ["fmodel"]),
        .executable(name: "fmodel-keras", targets: ["fmodel-keras"]),
        .library(name: "FModelRuntime", targets: ["FModelRuntime"]),
        .library(name: "FModelImport", targets: ["FModelImport"]),
        .library(name: "FModelKeras", targets: ["FModelKeras"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    ],
    targets: [
        // MARK: - C libraries (system-library shims: module map + pkg-config, nothing else)
        .systemLibrary(
            name: "CHDF5", pkgConfig: "hdf5",
            providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CDNNL", providers: [.apt(["libdnnl-dev"])]),
        // TurboJPEG and libpng's simplified API: the tests' image encoder (FModelTestSupport).
        .systemLibrary(
            name: "CTurboJPEG", pkgConfig: "libturbojpeg",
            providers: [.apt(["libturbojpeg0-dev"])]),
        .systemLibrary(
            name: "CPNG", pkgConfig: "libpng",
            providers: [.apt(["libpng-dev"])]),
        // zlib's inflate: deflated entries in a `.keras` zip.
        .systemLibrary(
            name: "CZlib", pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]),

        // MARK: - Libraries, one per concern
        .target(name: "FModelCore"),
        .target(name: "CChecksums"),
        // What a process removes or ends when a signal ends it (its handler is C: async-signal-safe).
        .target(name: "CCleanup"),
        .target(name: "CKernels", linkerSettings: [.linkedLibrary("dnnl")]),
        // JPEG and PNG decoding on libjpeg's and libpng's own APIs, where their errors (longjmp) and
        // their sources can be TensorFlow's. Optimised in debug builds too, so that the tests decode
        // with the code that ships: what a longjmp leaves in registers differs with -O2, and one
        // such fault showed in release builds only. (Unsafe flags bar a target from other
        // packages' products; this one is in none.)
        .target(name: "CImageDecoders", cSettings: [.unsafeFlags(["-O2"])], linkerSettings: [.linkedLibrary("jpeg"), .linkedLibrary("png")]),
        .target(name: "FModelFormat", dependencies: ["FModelCore", "CChecksums", "CCleanup"]),
        .target(
            name: "FModelImport",
            dependencies: ["FModelCore", "FModelFormat", .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        // The formats read through libhdf5 (Keras .h5 and .keras), linked only by the worker that
        // imports them and by tests: the fmodel executable does not load libhdf5 at all.
        .target(name: "FModelKeras", dependencies: ["FModelCore", "FModelFormat", "FModelImport", "CHDF5", "CZlib"]),
        .target(name: "FModelRuntime", dependencies: ["FModelCore", "CDNNL", "CKernels"]),
        .target(name: "FModelCompress", dependencies: ["FModelCore", "FModelRuntime"]),
        .target(name: "FModelVerify", dependencies: ["FModelCore", "FModelRuntime", "FModelFormat", "CImageDecoders"]),
        .target(
            name: "FModelCLI",
            dependencies: [
                "FModelCore", "FModelFormat", "FModelImport", "FModelRuntime", "FModelCompress", "FModelVerify",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // MARK: - The thin executable
        .executableTarget(name: "fmodel", dependencies: ["FModelCLI"]),
        // The isolated Keras importer `fmodel import` runs (IsolatedImport): a crash in libhdf5 on
        // a hostile file ends this process, not fmodel.
        .executableTarget(
            name: "fmodel-keras",
            dependencies: [
                "CHDF5", "FModelCore", "FModelFormat", "FModelImport", "FModelKeras", "FModelCompress",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]),

        // MARK: - Tests (fixtures made by real TensorFlow live in Tests/Fixtures)
        .target(name: "FModelTestSupport", dependencies: ["FModelCore", "FModelFormat", "FModelRuntime", "FModelVerify", "CTurboJPEG", "CPNG"], path: "Tests/FModelTestSupport"),
        .testTarget(name: "FModelCoreTests", dependencies: ["FModelCore", "FModelTestSupport"]),
        .testTarget(name: "FModelFormatTests", dependencies: ["FModelFormat", "FModelTestSupport"]),
        .testTarget(name: "FModelImportTests", dependencies: ["FModelImport", "FModelKeras", "FModelRuntime", "FModelTestSupport"]),
        .testTarget(name: "FModelRuntimeTests", dependencies: ["FModelRuntime", "FModelCompress", "FModelImport", "FModelKeras", "FModelTestSupport"]),
        .testTarget(name: "FModelCompressTests", dependencies: ["FModelCompress", "FModelImport", "FModelKeras", "FModelRuntime", "FModelTestSupport"]),
        .testTarget(name: "FModelVerifyTests", dependencies: ["FModelVerify", "FModelImport", "FModelKeras", "FModelTestSupport"]),
        .testTarget(name: "FModelCLITests", dependencies: ["FModelCLI", "FModelKeras", "FModelTestSupport", "fmodel", "fmodel-keras"]),
    ]
)
