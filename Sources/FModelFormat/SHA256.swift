import CChecksums

/// SHA-256 (FIPS 180-4), used to record the source file a model was imported from.
public struct SHA256: Sendable {
    private var h: [UInt32] = [  // swiftlint:disable:this identifier_name
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
    ]
    private var pending: [UInt8] = []
    private var length: UInt64 = 0

    /// The compression runs in C: with SHA-NI where the CPU has it (about 8× the portable code
    /// on 475 MB), else portable.
    private let portable: Int32

    public init() { portable = 0 }

    /// The portable code even where SHA-NI exists (to test one against the other).
    init(portable: Bool) { self.portable = portable ? 1 : 0 }

    /// Feeds more bytes.
    public mutating func update(_ data: UnsafeRawBufferPointer) {
        length &+= UInt64(data.count)
        var i = 0
        if !pending.isEmpty {
            let take = min(64 - pending.count, data.count)
            pending.append(contentsOf: data[0..<take])
            i = take
            if pending.count == 64 {
                let block = pending
                block.withUnsafeBytes { compress($0.baseAddress!, blocks: 1) }
                pending.removeAll(keepingCapacity: true)
            }
        }
        let whole = (data.count - i) / 64
        if whole > 0 {
            compress(data.baseAddress! + i, blocks: whole)
            i += whole * 64
        }
        if i < data.count { pending.append(contentsOf: data[i...]) }
    }

    /// Finishes and returns the digest as lowercase hex.
    public mutating func finalizeHex() -> String {
        let bitLength = length &* 8
        var tail: [UInt8] = [0x80]
        while (Int(length) + tail.count) % 64 != 56 { tail.append(0) }
        for s in stride(from: 56, through: 0, by: -8) { tail.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(s))) }
        let savedLength = length
        tail.withUnsafeBytes { update($0) }
        length = savedLength
        return h.map { word in
            let s = String(word, radix: 16)
            return String(repeating: "0", count: 8 - s.count) + s
        }.joined()
    }

    /// The hex digest of `data`.
    public static func hex(_ data: UnsafeRawBufferPointer) -> String {
        var s = SHA256()
        s.update(data)
        return s.finalizeHex()
    }

    private mutating func compress(_ p: UnsafeRawPointer, blocks: Int) {
        let portable = portable
        h.withUnsafeMutableBufferPointer { fm_sha256_blocks($0.baseAddress!, p.assumingMemoryBound(to: UInt8.self), blocks, portable) }
    }
}
