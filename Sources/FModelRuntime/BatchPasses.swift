import FModelCore
import Glibc

/// How many images one pass of a large batch runs: a batch larger than that runs its early
/// layers, where the activations are large, as equal passes one after the other, so that each
/// layer's input and output stay in the cache between layers, and the rest at the full batch
/// (`Executor.passCut`).
///
/// At batch 32 FaceNet's stem writes activations of 24-49 MB a layer (Conv2d_2b's output is
/// 1.5 MB an image), more than a core's share of the last-level cache (32 MB a CCD on the Zen
/// 3), so each layer read its input back from memory (see README, Performance). A pass keeps
/// its largest activation within `passActivationBytes` but takes at least `minimumPassImages`
/// images, over which the reading of the weights (158 MB for the full model) is shared.
struct BatchPasses {
    /// The largest activation, in bytes, a pass aims to keep within: half a CCD's L3 on the
    /// Zen 3 (FaceNet: ten images, so 32 run as four passes of eight; per 32 images without
    /// passes batch 8, 11 and 32 were within 1% of each other in a quiet phase,
    /// `Benchmarks/batch_sizes.py`, while the stem and Block35 ran 7-18% faster in passes,
    /// `layer_ab.py` with `FMODEL_NO_PASSES=1`).
    static let passActivationBytes = 16_000_000
    /// Images a pass takes at least.
    static let minimumPassImages = 8
    /// False when the environment sets `FMODEL_NO_PASSES` (every batch in one pass: the A/B
    /// of `Benchmarks/batch_sizes.py` and `layer_ab.py`).
    static let enabled = getenv("FMODEL_NO_PASSES") == nil

    /// Images per pass for a graph whose largest value holds `largestImageBytes` bytes an
    /// image, with `budget` bytes for it: nil when the graph has no values.
    static func limit(largestImageBytes: Int, budget: Int = passActivationBytes) -> Int? {
        guard largestImageBytes > 0 else { return nil }
        return max(minimumPassImages, budget / largestImageBytes)
    }

    /// The passes of `batch` images under `limit`: equal shares (differing by one at most),
    /// as ranges of images.
    static func passes(batch: Int, limit: Int) -> [Range<Int>] {
        let count = (batch + limit - 1) / limit
        return (0..<count).map { batch * $0 / count..<batch * ($0 + 1) / count }
    }
}

extension FloatTensor {
    /// The tensors' images one after the other (the batch dimension joined).
    static func joiningImages(_ parts: [FloatTensor]) -> FloatTensor {
        var dims = parts[0].shape.dims
        dims[0] = parts.reduce(0) { $0 + $1.shape[0] }
        return FloatTensor(shape: Shape(dims), values: parts.flatMap(\.values))
    }
}
