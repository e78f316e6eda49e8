extension Tensor {
    /// The values as float32, dequantizing compact encodings.
    public func floats() -> [Float] {
        let n = count
        return [Float](unsafeUninitializedCapacity: n) { out, initialized in
            decode(into: out)
            initialized = n
        }
    }

    private func decode(into out: UnsafeMutableBufferPointer<Float>) {
        let raw = storage.bytes
        switch dtype {
        case .f32:
            for i in 0..<out.count { out[i] = raw.loadUnaligned(fromByteOffset: i * 4, as: Float.self) }
        case .f16:
            for i in 0..<out.count {
                out[i] = Float(Float16(bitPattern: raw.loadUnaligned(fromByteOffset: i * 2, as: UInt16.self)))
            }
        case .int8PerChannel:
            let channels = shape.last
            let s = scales!.bytes
            for i in 0..<out.count {
                let scale = s.loadUnaligned(fromByteOffset: (i % channels) * 4, as: Float.self)
                out[i] = Float(Int8(bitPattern: raw[i])) * scale
            }
        case .int4PerGroup:
            let g = groupSize!
            let s = scales!.bytes
            for i in 0..<out.count {
                let byte = raw[i / 2]
                let nibble = i % 2 == 0 ? byte & 0x0F : byte >> 4
                let value = Int8(bitPattern: nibble << 4) >> 4  // sign-extend 4 bits
                let scale = Float(Float16(bitPattern: s.loadUnaligned(fromByteOffset: (i / g) * 2, as: UInt16.self)))
                out[i] = Float(value) * scale
            }
        }
    }
}
