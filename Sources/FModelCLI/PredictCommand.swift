import ArgumentParser
import FModelCore
import FModelFormat
import FModelVerify
import Foundation

/// `fmodel predict MODEL IMAGE…`: age, gender and ethnicity of each face.
struct PredictCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "predict", abstract: "Tell age, gender and ethnicity of face images.")

    @Argument(help: "The model.") var model: String
    @Argument(help: "JPEG or PNG face images.") var images: [String]
    @Flag(help: "One JSON object per line.") var json = false
    @OptionGroup var heads: HeadOptions
    @OptionGroup var options: ModelOptions

    @OptionGroup var runtime: RuntimeOptions

    struct Line: Codable {
        var image: String
        var age: Double
        var gender: [String: Float]
        var ethnicity: [String: Float]
    }

    func run() throws {
        let face = try naming(model) { try FaceModel(graph: options.load(model), preprocess: options.preprocess, heads: heads.explicit, precision: runtime.precision.checked()) }
        var failed = 0
        for path in images {
            do {
                let p = try face.predict([face.preprocessor(ImageDecoder.decode(path: path))])[0]
                let line = Line(image: path, age: p.age,
                                gender: Dictionary(uniqueKeysWithValues: zip(FaceLabels.genders, p.gender)),
                                ethnicity: Dictionary(uniqueKeysWithValues: zip(FaceLabels.races, p.ethnicity)))
                show(json ? try jsonText(line, pretty: false) : text(line, p))
            } catch {
                failed += 1
                printError(FModelCommand.describe(error))
            }
        }
        if failed > 0 { throw CLIError(description: "\(failed) of \(images.count) images failed") }
    }

    func text(_ l: Line, _ p: FacePrediction) -> String {
        let g = FaceLabels.genders[p.genderClass], e = FaceLabels.races[p.ethnicityClass]
        return String(format: "%@: age %.1f, %@ %.2f, %@ %.2f", l.image, l.age, g, p.gender[p.genderClass], e, p.ethnicity[p.ethnicityClass])
    }

}

/// `fmodel preprocess IMAGE -o x.npy`: the input tensor a model would see, for checking.
struct PreprocessCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "preprocess", abstract: "Decode, resize and normalise an image into a [1,H,W,3] .npy.")

    @Argument var image: String
    @Option(name: .shortAndLong) var output: String
    @Option(help: "Height and width.") var size = 160
    @Option(help: "prewhiten, scale01 or none.") var mode: Preprocess = .prewhiten

    func validate() throws {
        // A side of 100,000 asked for 120 GB, and the allocation aborted; 0 wrote an empty array.
        guard (1...ImagePreprocessor.maxSide).contains(size) else {
            throw ValidationError("--size must be 1...\(ImagePreprocessor.maxSide)")
        }
    }

    func run() throws {
        let x = ImagePreprocessor(height: size, width: size, mode: mode)(try ImageDecoder.decode(path: image))
        try NPY.write(NPYArray(shape: [1, size, size, 3], values: x), to: output)
    }
}
