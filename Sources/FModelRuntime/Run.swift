import CKernels
import FModelCore

/// The values alive during one run, and which buffer holds each. A buffer shared by aliases is
/// released when the last value holding it is.
final class Run {
    /// Each value's shape, by value number.
    let shapes: [Shape]
    var buffers: [Buffer?]
    var holders: [ObjectIdentifier: Int] = [:]
    var scratch: Buffer
    /// Values converted for oneDNN convolutions (quantized, or bfloat16), by the address of
    /// their float buffer.
    var converted: [ConvertedKey: (ActivationQuantization?, Buffer)] = [:]

    struct ConvertedKey: Hashable {
        let buffer: UnsafeRawPointer
        let encoding: InputEncoding
    }

    /// Ranges of values written by an epilogue that measured them, by buffer address.
    var ranges: [UnsafeRawPointer: (lo: Float, hi: Float)] = [:]
    /// Ranges of values written into a concat's buffer (`Program.ConcatSlot`), by value.
    var partRanges: [Int: (lo: Float, hi: Float)] = [:]
    /// Float32 convolutions run as oneDNN primitives (false on a `tiered` first run).
    let nativeFloat: Bool
    /// False for the walk that plans a run's buffers (`ActivationMemory`): nothing is computed,
    /// and its buffers have no memory.
    let computes: Bool
    /// Inputs quantized with a known range instead of a measuring pass.
    var rangesReused = 0

    /// The value at `x` (`count` floats) as a oneDNN convolution reads it, converted on the
    /// first request and kept until its buffer is forgotten; `take` gives memory for the copy.
    func convert(_ x: UnsafePointer<Float>, count: Int, to encoding: InputEncoding, trackRanges: Bool,
                 take: (Int) -> Buffer) -> (ActivationQuantization?, UnsafeRawPointer) {
        let key = ConvertedKey(buffer: UnsafeRawPointer(x), encoding: encoding)
        if let (q, bytes) = converted[key] { return (q, UnsafeRawPointer(bytes.pointer)) }
        let q: ActivationQuantization?
        let bytes: Buffer
        switch encoding {
        case .int8:
            // The producer's epilogue measured the range, else a pass measures it.
            let known = trackRanges ? ranges[UnsafeRawPointer(x)] : nil
            if known != nil { rangesReused += 1 }
            let quantization = known.map { ActivationQuantization(lo: $0.lo, hi: $0.hi, zeroPointAllowed: false) }
                ?? ActivationQuantization(x, count: count, zeroPointAllowed: false)
            bytes = take((count + 3) / 4)
            quantization.quantize(x, count: count, into: UnsafeMutableRawPointer(bytes.pointer))
            q = quantization
        case .bf16:
            q = nil
            bytes = take((count + 1) / 2)
            let out = UnsafeMutableRawPointer(bytes.pointer).assumingMemoryBound(to: UInt16.self)
            parallelFor(count, grain: 4 * rowGrain) { range in fm_to_bf16(x + range.lowerBound, range.count, out + range.lowerBound) }
        }
        converted[key] = (q, bytes)
        return (q, UnsafeRawPointer(bytes.pointer))
    }

    /// Forgets the converted copies and the range of `b`, which is about to hold another
    /// value; hands each copy to `give`.
    func forget(_ b: Buffer, giving give: (Buffer) -> Void) {
        let address = UnsafeRawPointer(b.pointer)
        if !ranges.isEmpty { ranges[address] = nil }
        guard !converted.isEmpty else { return }
        for encoding in InputEncoding.allCases {
            if let (_, copy) = converted.removeValue(forKey: ConvertedKey(buffer: address, encoding: encoding)) { give(copy) }
        }
    }

    /// `bytes` of scratch memory (im2col, a oneDNN layer's workspace), valid until the next call.
    func scratch(bytes: Int) -> UnsafeMutableRawPointer {
        let floats = (bytes + 3) / 4
        if scratch.capacity < floats { scratch = Buffer(capacity: floats) }
        return UnsafeMutableRawPointer(scratch.pointer)
    }

    init(shapes: [Shape], valueCount: Int, scratch: Buffer, nativeFloat: Bool, computes: Bool) {
        self.shapes = shapes
        self.scratch = scratch
        self.nativeFloat = nativeFloat
        self.computes = computes
        buffers = [Buffer?](repeating: nil, count: valueCount)
    }

    func bind(_ v: Int, _ b: Buffer) {
        buffers[v] = b
        holders[ObjectIdentifier(b), default: 0] += 1
    }

    /// True when value `v`'s buffer holds no other live value.
    func soleHolder(_ v: Int) -> Bool {
        guard let b = buffers[v] else { return false }
        return holders[ObjectIdentifier(b)] == 1
    }

    /// Drops value `v`; returns its buffer when no other value holds it.
    func unbind(_ v: Int) -> Buffer? {
        guard let b = buffers[v] else { return nil }
        buffers[v] = nil
        let id = ObjectIdentifier(b)
        holders[id]! -= 1
        if holders[id]! == 0 {
            holders[id] = nil
            return b
        }
        return nil
    }

    /// Every buffer still held (the outputs), once each.
    func releaseAll() -> [Buffer] {
        var seen = Set<ObjectIdentifier>()
        var out: [Buffer] = []
        for case let b? in buffers where seen.insert(ObjectIdentifier(b)).inserted { out.append(b) }
        buffers = buffers.map { _ in nil }
        return out
    }
}
