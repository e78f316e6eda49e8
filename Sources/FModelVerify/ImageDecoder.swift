import CImageDecoders
import FModelFormat
import Foundation

/// An 8-bit RGB image, rows top to bottom, pixels interleaved.
public struct RGBImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(pixels.count == width * height * 3)
        (self.width, self.height, self.pixels) = (width, height, pixels)
    }
}

/// Why an image could not be used.
public enum ImageError: Error, Equatable, Sendable, CustomStringConvertible {
    case unreadable(path: String, reason: String)
    case unsupportedFormat(path: String)
    case decode(path: String, reason: String)
    case tooLarge(path: String, width: Int, height: Int)
    /// The file is larger than any image fmodel decodes needs.
    case fileTooLarge(path: String, bytes: Int)
    /// The header declares more pixels than a file of its size can hold.
    case implausibleSize(path: String, width: Int, height: Int, bytes: Int, pixelsPerByte: Int)

    public var description: String {
        switch self {
        case .unreadable(let p, let r): "\(p): cannot read: \(r)"
        case .unsupportedFormat(let p): "\(p): not a JPEG or PNG image"
        case .decode(let p, let r): "\(p): cannot decode: \(r)"
        case .tooLarge(let p, let w, let h):
            "\(p): \(w)×\(h) is larger than fmodel decodes (at most \(ImageDecoder.maxSide) a side and \(ImageDecoder.maxRGBBytes) bytes of RGB, the most tf.io.decode_jpeg decodes)"
        case .fileTooLarge(let p, let bytes):
            "\(p): \(bytes) bytes, more than an image fmodel decodes needs (at most \(ImageDecoder.maxFileBytes)): it is corrupt"
        case .implausibleSize(let p, let w, let h, let bytes, let rate):
            "\(p): its header declares \(w)×\(h) pixels, more than a \(bytes)-byte file can encode (at most \(max(ImageDecoder.freePixels, bytes * rate)): 2048² or \(rate) a byte): it is corrupt"
        }
    }
}

/// Decodes JPEG and PNG into RGB as `tf.io.decode_jpeg` and `tf.io.decode_png(channels: 3)` do
/// by default (`CImageDecoders`, on libjpeg's and libpng's APIs): a file that ends early is an
/// error; a JPEG through the fast integer IDCT and fancy upsampling; a PNG's alpha dropped and
/// its 16-bit samples cut to their high byte.
///
/// What a hostile header can cost is bounded before any pixel is allocated: the image must fit
/// TensorFlow's limit, and past `freePixels` it may declare only as many pixels as its bytes
/// could encode. The pixels are fresh pages the decoder writes row by row, so a file whose data
/// stops early is resident only as far as it decoded.
public enum ImageDecoder {
    static let maxSide = 16384
    /// `tf.io.decode_jpeg` refuses an image of 2^29 bytes or more (jpeg_mem.cc).
    static let maxRGBBytes = 1 << 29
    /// The largest image file decoded: twice the RGB bytes above. Past the image's data the decoder
    /// reads on to the end marker (as TensorFlow does), so a JPEG header before a terabyte of
    /// zeros (a sparse file) was read for minutes, 23 GB of it resident. (The largest image as a
    /// 16-bit RGBA PNG stored without compression would be 1.43 GB; a face crop is kilobytes.)
    static let maxFileBytes = 2 * maxRGBBytes
    /// Pixels any file may declare (2048², 12 MB of RGB), whatever its size.
    static let freePixels = 1 << 22
    /// Pixels a JPEG byte can hold, with room to spare: a flat 4096² image encodes at 64-85
    /// pixels a byte, 170 (colour) and 255 (grey) with optimised Huffman tables or progressive
    /// (`tf.io.encode_jpeg`, quality 75). A Huffman-coded 8×8 block costs at least a bit, so no
    /// such file holds more than 512 a byte; only arithmetic coding of a flat image could.
    static let jpegPixelsPerByte = 1024
    /// Pixels a PNG byte can hold: deflate expands at most 1032 times, to 8 one-bit pixels a byte.
    static let pngPixelsPerByte = 1032 * 8

    /// Reads and decodes the image at `path`, from a mapping of it: only the bytes the decoder
    /// reads are paged in, and none is copied.
    public static func decode(path: String) throws(ImageError) -> RGBImage {
        let file: MappedFile
        do { file = try MappedFile(path: path) } catch { throw .unreadable(path: path, reason: error.detail) }
        guard file.bytes.count <= maxFileBytes else { throw .fileTooLarge(path: path, bytes: file.bytes.count) }
        return try file.withBytes { bytes throws(ImageError) in try decode(bytes, path: path) }
    }

    /// Decodes image bytes; `path` names them in errors.
    public static func decode(_ bytes: [UInt8], path: String) throws(ImageError) -> RGBImage {
        // `withUnsafeBytes` rethrows `any Error`: the Result carries the typed error through.
        try bytes.withUnsafeBytes { bytes in Result { () throws(ImageError) in try decode(bytes, path: path) } }.get()
    }

    /// Decodes image bytes; `path` names them in errors.
    public static func decode(_ bytes: UnsafeRawBufferPointer, path: String) throws(ImageError) -> RGBImage {
        if bytes.starts(with: [0xFF, 0xD8]) { return try jpeg(bytes, path: path) }
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return try png(bytes, path: path) }
        throw .unsupportedFormat(path: path)
    }

    /// Refuses a declared size past the bounds above.
    static func checkSize(width w: Int, height h: Int, bytes: Int, pixelsPerByte: Int, path: String) throws(ImageError) {
        guard w > 0, h > 0, w <= maxSide, h <= maxSide, w * h * 3 < maxRGBBytes else { throw .tooLarge(path: path, width: w, height: h) }
        guard w * h <= max(freePixels, bytes * pixelsPerByte) else {
            throw .implausibleSize(path: path, width: w, height: h, bytes: bytes, pixelsPerByte: pixelsPerByte)
        }
    }

    /// `count` bytes that `fill` writes all of (returning true) or gives up on: not zeroed first,
    /// so that a large buffer is fresh pages, resident only where written.
    static func pixels(_ count: Int, _ fill: (UnsafeMutablePointer<UInt8>) -> Bool) -> [UInt8]? {
        var complete = false
        let pixels = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            complete = fill(buffer.baseAddress!)
            initialized = complete ? count : 0
        }
        return complete ? pixels : nil
    }

    /// A C decoder's two calls (`CImageDecoders`): the header's size, and the pixels.
    typealias SizeCall = (UnsafePointer<UInt8>?, Int, UnsafeMutablePointer<Int32>, UnsafeMutablePointer<Int32>,
                          UnsafeMutablePointer<CChar>, Int) -> fm_decode_status
    typealias DecodeCall = (UnsafePointer<UInt8>?, Int, UnsafeMutablePointer<UInt8>, Int32, Int32,
                            UnsafeMutablePointer<CChar>, Int) -> fm_decode_status

    static func jpeg(_ bytes: UnsafeRawBufferPointer, path: String) throws(ImageError) -> RGBImage {
        try decode(bytes, path: path, pixelsPerByte: jpegPixelsPerByte, size: fm_jpeg_size, decode: fm_jpeg_decode)
    }

    static func png(_ bytes: UnsafeRawBufferPointer, path: String) throws(ImageError) -> RGBImage {
        try decode(bytes, path: path, pixelsPerByte: pngPixelsPerByte, size: fm_png_size, decode: fm_png_decode)
    }

    /// The header's size, checked, then the pixels.
    static func decode(_ bytes: UnsafeRawBufferPointer, path: String, pixelsPerByte: Int, size: SizeCall,
                       decode: DecodeCall) throws(ImageError) -> RGBImage {
        let data = bytes.bindMemory(to: UInt8.self).baseAddress
        var message = [CChar](repeating: 0, count: 256)
        func failure(_ status: fm_decode_status) -> ImageError {
            status == FM_DECODE_TRUNCATED
                ? .decode(path: path, reason: "the file ends before the image does")
                : .decode(path: path, reason: String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        var w: Int32 = 0, h: Int32 = 0
        let header = size(data, bytes.count, &w, &h, &message, message.count)
        guard header == FM_DECODE_OK else { throw failure(header) }
        try checkSize(width: Int(w), height: Int(h), bytes: bytes.count, pixelsPerByte: pixelsPerByte, path: path)
        var status = FM_DECODE_OK
        guard let pixels = pixels(Int(w) * Int(h) * 3, { out in
            status = decode(data, bytes.count, out, w, h, &message, message.count)
            return status == FM_DECODE_OK
        }) else { throw failure(status) }
        return RGBImage(width: Int(w), height: Int(h), pixels: pixels)
    }
}
