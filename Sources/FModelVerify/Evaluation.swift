import Dispatch
import FModelCore
import Foundation

/// Runs models over a dataset: images are decoded and preprocessed on other threads while the
/// models run on the batch before.
public struct Evaluation: Sendable {
    /// One model's predictions, aligned with `samples` (nil where the image could not be read).
    public var predictions: [[FacePrediction?]]
    /// The samples evaluated, in order.
    public var samples: [FaceSample]
    /// Images that could not be read or decoded (the run went on without them).
    public var unreadable: [SkippedName]
    /// Seconds it took (monotonic clock), decoding included.
    public var seconds: Double

    /// Runs `models` over `samples` in batches of `batchSize`; `progress(done, total)` after each batch.
    public init(models: [FaceModel], samples: [FaceSample], batchSize: Int = 32, progress: (Int, Int) -> Void = { _, _ in }) throws {
        let start = MonotonicClock.seconds
        self.samples = samples
        let batches = stride(from: 0, to: samples.count, by: batchSize).map { Array(samples[$0..<min($0 + batchSize, samples.count)]) }
        let preprocessors = Array(Set(models.map(\.preprocessor)))
        var predictions = [[FacePrediction?]](repeating: [], count: models.count)
        var unreadable: [SkippedName] = []
        var next = batches.isEmpty ? nil : Self.prepare(batches[0], preprocessors)
        for k in batches.indices {
            let prepared = next!.wait()
            next = k + 1 < batches.count ? Self.prepare(batches[k + 1], preprocessors) : nil
            unreadable += prepared.failures
            for (m, model) in models.enumerated() {
                let inputs = prepared.inputs[model.preprocessor]!
                let ok = try model.predict(inputs.compactMap { $0 })
                var it = ok.makeIterator()
                predictions[m] += inputs.map { $0 == nil ? nil : it.next() }
            }
            progress(min((k + 1) * batchSize, samples.count), samples.count)
        }
        self.predictions = predictions
        self.unreadable = unreadable
        seconds = MonotonicClock.seconds - start
    }

    /// Prediction/label pairs of model `m`, over the readable images.
    public func pairs(_ m: Int) -> [(FacePrediction, FaceLabels)] {
        zip(predictions[m], samples).compactMap { p, s in p.map { ($0, s.labels) } }
    }

    /// The readable images' predictions of model `m`.
    public func readable(_ m: Int) -> [FacePrediction] { predictions[m].compactMap { $0 } }

    // MARK: - Prefetching

    struct Prepared: Sendable {
        var inputs: [ImagePreprocessor: [[Float]?]]
        var failures: [SkippedName]
    }

    /// A batch being prepared in the background.
    final class Pending: @unchecked Sendable {
        private let done = DispatchSemaphore(value: 0)
        private var result: Prepared?
        func finish(_ r: Prepared) { result = r; done.signal() }
        func wait() -> Prepared { done.wait(); return result! }
    }

    /// Decodes and preprocesses (for each of `preprocessors`) a batch, images in parallel.
    static func prepare(_ batch: [FaceSample], _ preprocessors: [ImagePreprocessor]) -> Pending {
        let pending = Pending()
        DispatchQueue.global().async {
            let images = Slots<Result<[[Float]], ImageError>>(count: batch.count)
            DispatchQueue.concurrentPerform(iterations: batch.count) { i in
                images[i] = Result { () throws(ImageError) in
                    let image = try ImageDecoder.decode(path: batch[i].path)
                    return preprocessors.map { $0(image) }
                }
            }
            var failures: [SkippedName] = []
            var inputs: [ImagePreprocessor: [[Float]?]] = [:]
            for key in preprocessors { inputs[key] = [] }
            for i in 0..<batch.count {
                switch images[i]! {
                case .success(let values): for (key, x) in zip(preprocessors, values) { inputs[key]!.append(x) }
                case .failure(let e):
                    failures.append(SkippedName(name: batch[i].path, reason: e.description))
                    for key in preprocessors { inputs[key]!.append(nil) }
                }
            }
            pending.finish(Prepared(inputs: inputs, failures: failures))
        }
        return pending
    }
}

/// Fixed slots written by concurrent workers, each at its own index.
final class Slots<T>: @unchecked Sendable {
    private let values: UnsafeMutableBufferPointer<T?>
    init(count: Int) {
        values = .allocate(capacity: count)
        values.initialize(repeating: nil)
    }
    deinit {
        _ = values.deinitialize()
        values.deallocate()
    }
    subscript(i: Int) -> T? {
        get { values[i] }
        set { values[i] = newValue }
    }
}
