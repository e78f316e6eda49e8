import FModelFormat

/// Byte edits of encoded images, as a hostile or damaged file would have them.
public enum ImageBytes {
    /// `jpeg` with its frame header declaring `width`×`height`; its data unchanged.
    public static func declaring(_ jpeg: [UInt8], width: Int, height: Int) -> [UInt8] {
        var b = jpeg, i = 2
        while i + 9 < b.count, b[i] == 0xFF {
            if (0xC0...0xC2).contains(b[i + 1]) {
                b.replaceSubrange(i + 5..<i + 9, with: [UInt8(height >> 8), UInt8(height & 0xFF), UInt8(width >> 8), UInt8(width & 0xFF)])
                return b
            }
            i += 2 + (Int(b[i + 2]) << 8 | Int(b[i + 3]))
        }
        preconditionFailure("the JPEG has no frame header")
    }

    /// `jpeg` with `count` comment segments of 64 KB after its start marker: a file that much
    /// larger, with the same image.
    public static func padded(_ jpeg: [UInt8], comments count: Int) -> [UInt8] {
        let comment: [UInt8] = [0xFF, 0xFE, 0xFF, 0xFF] + [UInt8](repeating: 0x20, count: 0xFFFF - 2)
        return Array(jpeg.prefix(2)) + Array([[UInt8]](repeating: comment, count: count).joined()) + jpeg.dropFirst(2)
    }

    /// `png` with its IHDR declaring `width`×`height`, its CRC restamped (else libpng stops there).
    public static func declaringPNG(_ png: [UInt8], width: Int, height: Int) -> [UInt8] {
        var b = png
        let bigEndian = { (v: Int) in (0..<4).map { UInt8((v >> (24 - 8 * $0)) & 0xFF) } }
        b.replaceSubrange(16..<24, with: bigEndian(width) + bigEndian(height))
        b.replaceSubrange(29..<33, with: bigEndian(Int(b[12..<29].withUnsafeBytes { CRC32.checksum($0) })))
        return b
    }
}
