import CPNG
import CTurboJPEG
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

    public var description: String {
        switch self {
        case .unreadable(let p, let r): "\(p): cannot read: \(r)"
        case .unsupportedFormat(let p): "\(p): not a JPEG or PNG image"
        case .decode(let p, let r): "\(p): cannot decode: \(r)"
        case .tooLarge(let p, let w, let h): "\(p): \(w)×\(h) is larger than 16384×16384"
        }
    }
}

/// Decodes JPEG (libjpeg-turbo, with the fast integer IDCT and fancy upsampling that
/// `tf.io.decode_jpeg` uses by default) and PNG (libpng) into RGB.
public enum ImageDecoder {
    static let maxSide = 16384

    /// Reads and decodes the image at `path`.
    public static func decode(path: String) throws(ImageError) -> RGBImage {
        let bytes: [UInt8]
        do { bytes = try MappedFile(path: path).withBytes { [UInt8]($0) } } catch { throw .unreadable(path: path, reason: error.detail) }
        return try decode(bytes, path: path)
    }

    /// Decodes image bytes; `path` names them in errors.
    public static func decode(_ bytes: [UInt8], path: String) throws(ImageError) -> RGBImage {
        if bytes.starts(with: [0xFF, 0xD8]) { return try jpeg(bytes, path: path) }
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47]) { return try png(bytes, path: path) }
        throw .unsupportedFormat(path: path)
    }

    static func jpeg(_ bytes: [UInt8], path: String) throws(ImageError) -> RGBImage {
        guard let handle = tjInitDecompress() else { throw .decode(path: path, reason: "tjInitDecompress failed") }
        defer { tjDestroy(handle) }
        var w: Int32 = 0, h: Int32 = 0, subsampling: Int32 = 0, colorspace: Int32 = 0
        guard tjDecompressHeader3(handle, bytes, UInt(bytes.count), &w, &h, &subsampling, &colorspace) == 0 else {
            throw .decode(path: path, reason: String(cString: tjGetErrorStr2(handle)))
        }
        guard w > 0, h > 0, w <= maxSide, h <= maxSide else { throw .tooLarge(path: path, width: Int(w), height: Int(h)) }
        var pixels = [UInt8](repeating: 0, count: Int(w) * Int(h) * 3)
        let status = tjDecompress2(handle, bytes, UInt(bytes.count), &pixels, w, 0, h, Int32(TJPF_RGB.rawValue), TJFLAG_FASTDCT)
        if status != 0 && tjGetErrorCode(handle) == Int32(TJERR_FATAL.rawValue) {
            throw .decode(path: path, reason: String(cString: tjGetErrorStr2(handle)))
        }
        return RGBImage(width: Int(w), height: Int(h), pixels: pixels)
    }

    static func png(_ bytes: [UInt8], path: String) throws(ImageError) -> RGBImage {
        var image = png_image()
        image.version = fm_png_image_version()
        guard png_image_begin_read_from_memory(&image, bytes, bytes.count) != 0 else {
            throw .decode(path: path, reason: pngMessage(&image))
        }
        defer { png_image_free(&image) }
        let (w, h) = (Int(image.width), Int(image.height))
        guard w > 0, h > 0, w <= maxSide, h <= maxSide else { throw .tooLarge(path: path, width: w, height: h) }
        image.format = fm_png_format_rgb()
        var pixels = [UInt8](repeating: 0, count: w * h * 3)
        guard png_image_finish_read(&image, nil, &pixels, Int32(w * 3), nil) != 0 else {
            throw .decode(path: path, reason: pngMessage(&image))
        }
        return RGBImage(width: w, height: h, pixels: pixels)
    }

    private static func pngMessage(_ image: inout png_image) -> String {
        withUnsafeBytes(of: &image.message) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }
}
