import CChecksums

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of every tensor in a
/// `.fmodel` file: the SSE4.2 `crc32` instruction where the CPU has it (checking a 158 MB model
/// stays within the first-output budget), else slicing-by-8 over a table computed once.
public enum CRC32C {
    private static let hardware = fm_crc32c_hardware_available() != 0

    private static let table = SlicingCRC(reflectedPolynomial: 0x82F6_3B78)

    /// The checksum of `bytes`.
    public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
        if hardware, let base = bytes.baseAddress { return ~fm_crc32c_hardware(0xFFFF_FFFF, base, bytes.count) }
        return software(bytes)
    }

    /// The table-driven form, also used where the CPU lacks SSE4.2.
    static func software(_ bytes: UnsafeRawBufferPointer) -> UInt32 { table.checksum(bytes) }

    /// The checksum of a byte array.
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0) }
    }
}

/// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as zip archives record for each entry.
public enum CRC32 {
    private static let table = SlicingCRC(reflectedPolynomial: 0xEDB8_8320)

    /// The checksum of `bytes`; or, given the checksum of the bytes before them, of both.
    public static func checksum(_ bytes: UnsafeRawBufferPointer, continuing previous: UInt32 = 0) -> UInt32 {
        table.checksum(bytes, continuing: previous)
    }
}

/// A reflected 32-bit CRC, slicing by 8 bytes: eight 256-entry tables computed once.
struct SlicingCRC: Sendable {
    /// Eight 256-entry tables, back to back: table k at `k * 256`.
    private let table: [UInt32]

    init(reflectedPolynomial polynomial: UInt32) {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ polynomial : c >> 1 }
            t[i] = c
        }
        for k in 1..<8 {
            for i in 0..<256 { t[k * 256 + i] = (t[(k - 1) * 256 + i] >> 8) ^ t[Int(t[(k - 1) * 256 + i] & 0xFF)] }
        }
        table = t
    }

    /// The checksum of `bytes` (initial value and final inversion all ones); or, given the
    /// checksum of the bytes before them, of both.
    func checksum(_ bytes: UnsafeRawBufferPointer, continuing previous: UInt32 = 0) -> UInt32 {
        var crc = ~previous
        table.withUnsafeBufferPointer { t in
            var i = 0
            let n = bytes.count
            while i + 8 <= n {
                let lo = bytes.loadUnaligned(fromByteOffset: i, as: UInt32.self).littleEndian ^ crc
                let hi = bytes.loadUnaligned(fromByteOffset: i + 4, as: UInt32.self).littleEndian
                crc = t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
                    ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
                    ^ t[1 * 256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
                i += 8
            }
            while i < n {
                crc = t[Int((crc ^ UInt32(bytes[i])) & 0xFF)] ^ (crc >> 8)
                i += 1
            }
        }
        return ~crc
    }
}
