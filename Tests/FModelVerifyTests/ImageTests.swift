import FModelCore
import FModelFormat
import FModelTestSupport
import FModelVerify
import Foundation
import Testing

@Suite struct ImageTests {
    static func gradient(_ w: Int, _ h: Int) -> RGBImage {
        RGBImage(width: w, height: h, pixels: (0..<(w * h * 3)).map { UInt8(($0 * 7) % 251) })
    }

    @Test func pngRoundTripsExactly() throws {
        let image = Self.gradient(13, 7)
        let bytes = try #require(ImageEncoder.png(image))
        #expect(try ImageDecoder.decode(bytes, path: "x.png") == image)
    }

    @Test func jpegDecodesToTheRightSize() throws {
        let image = RGBImage(width: 24, height: 16, pixels: [UInt8](repeating: 128, count: 24 * 16 * 3))
        let decoded = try ImageDecoder.decode(try #require(ImageEncoder.jpeg(image)), path: "x.jpg")
        #expect(decoded.width == 24 && decoded.height == 16)
        #expect(decoded.pixels.allSatisfy { abs(Int($0) - 128) <= 2 })
    }

    @Test(arguments: [[UInt8](), [0xFF, 0xD8, 0xFF], [0x89, 0x50, 0x4E, 0x47, 0, 0], Array("GIF89a".utf8)])
    func garbageIsAnError(_ bytes: [UInt8]) {
        #expect(throws: ImageError.self) { try ImageDecoder.decode(bytes, path: "bad") }
    }

    /// Images TensorFlow wrote (JPEG baseline 4:2:0 and 4:4:4, progressive, greyscale, and one
    /// whose scan meets its end marker early; PNG RGB, grey, RGBA and 16-bit), a CMYK JPEG
    /// Pillow wrote (with Adobe's marker, inverted, and without), a palette PNG with transparent
    /// entries (Pillow) and an interlaced PNG decode to TensorFlow's pixels exactly, and every
    /// cut of them is refused where TensorFlow refuses it.
    /// libpng's simplified API, before, composited the RGBA onto black, converted the 16-bit
    /// samples as linear light, and decoded each PNG cut in its last 12 bytes; the palette PNG
    /// was refused on 7fb2bb0 ("decodes to rows of 192 bytes": its transparency made a fourth
    /// channel).
    @Test(arguments: Fixtures.images.map(\.name))
    func decodesAsTensorFlowDoes(_ name: String) throws {
        let entry = try #require(Fixtures.images.first { $0.name == name })
        let bytes = try #require(FileManager.default.contents(atPath: Fixtures.path(entry.file)).map([UInt8].init))
        let image = try ImageDecoder.decode(bytes, path: entry.file)
        let expected = try NPY.read(path: Fixtures.path(entry.decoded))
        #expect([image.height, image.width, 3] == entry.shape && expected.shape == entry.shape)
        #expect(image.pixels.map(Float.init) == expected.values)
        let decodedCuts = (0..<bytes.count).filter { (try? ImageDecoder.decode(Array(bytes.prefix($0)), path: "cut")) != nil }
        #expect(decodedCuts == entry.tensorflowDecodesCuts)
    }

    @Test func theImageFixturesAreThere() { #expect(Fixtures.images.count == 13) }

    /// A JPEG whose bytes end before its image or its end marker does is refused (as
    /// `tf.io.decode_jpeg` refuses it: `decodesAsTensorFlowDoes`), saying so, where libjpeg's own
    /// source would make up an end marker and grey rows.
    @Test func jpegEndingEarlySaysSo() throws {
        let bytes = try #require(ImageEncoder.jpeg(Self.gradient(32, 32)))
        for cut in [bytes.count / 2, bytes.count - 2] {
            #expect(throws: ImageError.decode(path: "cut", reason: "the file ends before the image does")) {
                try ImageDecoder.decode(Array(bytes.prefix(cut)), path: "cut")
            }
        }
    }

    /// A JPEG header before 2^31 bytes of holes is refused before the decoder reads on through
    /// them (a terabyte of them was read for minutes).
    @Test func filesLargerThanAnyImageAreRefused() throws {
        let dir = Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/sparse.jpg"
        try Fixtures.sparseCopy(of: "images/gradient.jpg", keeping: 200, size: 1 << 31, at: path)
        #expect(throws: ImageError.fileTooLarge(path: path, bytes: 1 << 31)) { try ImageDecoder.decode(path: path) }
    }

    /// A header may declare only as many pixels as the file's bytes could encode (past 2048²),
    /// and no more than TensorFlow decodes: refused before any pixel is allocated. A 1.6 KB face
    /// declaring 16000×16000 made `fmodel predict` allocate 930 MB and answer, exit 0.
    @Test func headersDeclaringMoreThanTheirBytesHoldAreRefused() throws {
        let jpeg = try #require(ImageEncoder.jpeg(Self.gradient(64, 64)))
        #expect(throws: ImageError.implausibleSize(path: "x.jpg", width: 8000, height: 8000, bytes: jpeg.count, pixelsPerByte: 1024)) {
            try ImageDecoder.decode(ImageBytes.declaring(jpeg, width: 8000, height: 8000), path: "x.jpg")
        }
        #expect(throws: ImageError.tooLarge(path: "x.jpg", width: 16000, height: 16000)) {
            try ImageDecoder.decode(ImageBytes.declaring(jpeg, width: 16000, height: 16000), path: "x.jpg")
        }
        #expect(try ImageDecoder.decode(ImageBytes.declaring(jpeg, width: 2048, height: 2048), path: "x.jpg").height == 2048)
        let png = try #require(ImageEncoder.png(Self.gradient(64, 64)))
        #expect(throws: ImageError.implausibleSize(path: "x.png", width: 16384, height: 8192, bytes: png.count, pixelsPerByte: 8256)) {
            try ImageDecoder.decode(ImageBytes.declaringPNG(png, width: 16384, height: 8192), path: "x.png")
        }
    }

    /// TensorFlow's half-pixel bilinear: [a, b] → [a, a+¼(b−a), a+¾(b−a), b].
    @Test func bilinearUsesHalfPixelCentres() {
        let image = RGBImage(width: 2, height: 1, pixels: [0, 0, 0, 100, 200, 40])
        let x = ImagePreprocessor.resizeBilinear(image, height: 1, width: 4)
        #expect(x == [0, 0, 0, 25, 50, 10, 75, 150, 30, 100, 200, 40])
        let same = Self.gradient(5, 3)
        #expect(ImagePreprocessor.resizeBilinear(same, height: 3, width: 5) == same.pixels.map(Float.init))
    }

    @Test func prewhitenStandardises() {
        var x: [Float] = [1, 2, 3, 4, 5, 6]
        ImagePreprocessor.standardize(&x)
        let mean = x.reduce(0, +) / 6, variance = x.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / 6
        #expect(abs(mean) < 1e-6 && abs(variance - 1) < 1e-5)
        var flat: [Float] = [7, 7, 7, 7]
        ImagePreprocessor.standardize(&flat)
        #expect(flat == [0, 0, 0, 0])  // std clamps at 1/√N, no division by zero
        let p = ImagePreprocessor(height: 2, width: 2, mode: .scale01)(RGBImage(width: 1, height: 1, pixels: [255, 0, 51]))
        #expect(p == [1, 0, 0.2, 1, 0, 0.2, 1, 0, 0.2, 1, 0, 0.2])
    }

    /// A model input of RGB images up to 8192 on a side is resized to; a larger one (a hostile
    /// file's: 16384² × 3 floats are 3.2 GB an image) or one that is no image is an error.
    @Test func modelInputsImagesAreResizedTo() throws {
        func graph(_ shape: Shape) -> Graph {
            Graph(inputs: [ValueInfo(name: "x", shape: shape)], outputs: ["p"],
                  nodes: [Node(name: "p", op: .globalAvgPool(keepDims: false), inputs: ["x"])], tensors: [:])
        }
        let face = try ImagePreprocessor(for: graph([-1, 160, 160, 3]))
        #expect(face.height == 160 && face.width == 160)
        #expect(try ImagePreprocessor(for: graph([-1, 8192, 100, 3])).height == 8192)
        for shape: Shape in [[-1, 16384, 16384, 3], [-1, 160, 8193, 3], [-1, 160, 160, 1]] {
            #expect(throws: VerifyError.inputNotAnImage(name: "x", shape: shape)) { try ImagePreprocessor(for: graph(shape)) }
        }
    }
}
