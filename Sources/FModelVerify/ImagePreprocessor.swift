import FModelCore

/// Turns a decoded image into a model input: bilinear resize as `tf.image.resize(method=
/// "bilinear", antialias=False)` (half-pixel centres), then the model's normalisation.
public struct ImagePreprocessor: Sendable, Hashable {
    public var height: Int
    public var width: Int
    public var mode: Preprocess

    public init(height: Int, width: Int, mode: Preprocess) {
        (self.height, self.width, self.mode) = (height, width, mode)
    }

    /// The preprocessing for `graph`'s one RGB image input, in the mode its metadata records
    /// unless `mode` overrides it.
    /// - Throws: `VerifyError.inputNotAnImage` when the input is not `[?, H, W, 3]` with sides
    ///   of at most `maxSide` (a face model's are a few hundred; a hostile file's could make each
    ///   image gigabytes).
    public init(for graph: Graph, mode: Preprocess? = nil) throws(VerifyError) {
        guard graph.inputs.count == 1, let input = graph.inputs.first, input.shape.rank == 4, input.shape[3] == 3,
              (1...Self.maxSide).contains(input.shape[1]), (1...Self.maxSide).contains(input.shape[2]) else {
            throw .inputNotAnImage(name: graph.inputs.first?.name ?? "?", shape: graph.inputs.first?.shape ?? [])
        }
        self.init(height: input.shape[1], width: input.shape[2], mode: mode ?? graph.metadata.preprocess ?? .prewhiten)
    }

    /// The largest side of a model input images are resized to: 8192 (805 MB of floats an image).
    public static let maxSide = 8192

    /// The input tensor values (HWC float32) for `image`.
    public func callAsFunction(_ image: RGBImage) -> [Float] {
        var x = Self.resizeBilinear(image, height: height, width: width)
        switch mode {
        case .prewhiten: Self.standardize(&x)
        case .scale01: for i in x.indices { x[i] /= 255 }
        case .none: break
        }
        return x
    }

    /// TensorFlow's `ResizeBilinear` with `half_pixel_centers=True`: source coordinate
    /// `(i + 0.5) · in/out − 0.5`, neighbours clamped to the image, weights from the fraction.
    public static func resizeBilinear(_ image: RGBImage, height: Int, width: Int) -> [Float] {
        let ys = weights(out: height, in: image.height), xs = weights(out: width, in: image.width)
        var out = [Float](repeating: 0, count: height * width * 3)
        image.pixels.withUnsafeBufferPointer { p in
            let rowStride = image.width * 3
            for (oy, y) in ys.enumerated() {
                for (ox, x) in xs.enumerated() {
                    for c in 0..<3 {
                        let tl = Float(p[y.lower * rowStride + x.lower * 3 + c]), tr = Float(p[y.lower * rowStride + x.upper * 3 + c])
                        let bl = Float(p[y.upper * rowStride + x.lower * 3 + c]), br = Float(p[y.upper * rowStride + x.upper * 3 + c])
                        let top = tl + (tr - tl) * x.lerp
                        let bottom = bl + (br - bl) * x.lerp
                        out[(oy * width + ox) * 3 + c] = top + (bottom - top) * y.lerp
                    }
                }
            }
        }
        return out
    }

    private static func weights(out: Int, in size: Int) -> [(lower: Int, upper: Int, lerp: Float)] {
        let scale = Float(size) / Float(out)
        return (0..<out).map { i in
            let source = (Float(i) + 0.5) * scale - 0.5
            let floor = source.rounded(.down)
            return (max(Int(floor), 0), min(Int(source.rounded(.up)), size - 1), source - floor)
        }
    }

    /// `tf.image.per_image_standardization` (FaceNet's prewhiten): `(x − mean) / max(std, 1/√N)`.
    public static func standardize(_ x: inout [Float]) {
        let n = Double(x.count)
        var sum = 0.0
        for v in x { sum += Double(v) }
        let mean = sum / n
        var squares = 0.0
        for v in x { squares += (Double(v) - mean) * (Double(v) - mean) }
        let std = max((squares / n).squareRoot(), 1 / n.squareRoot())
        let (m, inv) = (Float(mean), Float(1 / std))
        for i in x.indices { x[i] = (x[i] - m) * inv }
    }
}
