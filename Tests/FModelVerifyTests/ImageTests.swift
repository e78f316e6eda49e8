import FModelCore
import FModelTestSupport
import FModelVerify
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

    @Test func truncatedJPEGIsAnErrorOrAnImageNeverACrash() throws {
        let bytes = try #require(ImageEncoder.jpeg(Self.gradient(32, 32)))
        for cut in stride(from: 0, to: bytes.count, by: 17) { _ = try? ImageDecoder.decode(Array(bytes.prefix(cut)), path: "cut") }
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
