import CPNG
import CTurboJPEG
import FModelVerify

/// Encodes RGB images, for tests that need images of their own (fmodel itself only decodes, so
/// TurboJPEG's and libpng's encoders are linked by the tests alone).
public enum ImageEncoder {
    /// JPEG bytes at `quality` (libjpeg-turbo, 4:2:0).
    public static func jpeg(_ image: RGBImage, quality: Int32 = 90) -> [UInt8]? {
        guard let handle = tjInitCompress() else { return nil }
        defer { tjDestroy(handle) }
        var out: UnsafeMutablePointer<UInt8>?
        var size: UInt = 0
        let status = image.pixels.withUnsafeBufferPointer {
            tjCompress2(handle, $0.baseAddress, Int32(image.width), 0, Int32(image.height), Int32(TJPF_RGB.rawValue),
                        &out, &size, Int32(TJSAMP_420.rawValue), quality, 0)
        }
        defer { tjFree(out) }
        guard status == 0, let out else { return nil }
        return Array(UnsafeBufferPointer(start: out, count: Int(size)))
    }

    /// PNG bytes (libpng's simplified API).
    public static func png(_ image: RGBImage) -> [UInt8]? {
        var png = png_image()
        png.version = fm_png_image_version()
        png.width = UInt32(image.width)
        png.height = UInt32(image.height)
        png.format = fm_png_format_rgb()
        var size = 0
        guard image.pixels.withUnsafeBufferPointer({ png_image_write_to_memory(&png, nil, &size, 0, $0.baseAddress, Int32(image.width * 3), nil) }) != 0 else { return nil }
        var out = [UInt8](repeating: 0, count: size)
        guard image.pixels.withUnsafeBufferPointer({ png_image_write_to_memory(&png, &out, &size, 0, $0.baseAddress, Int32(image.width * 3), nil) }) != 0 else { return nil }
        return Array(out.prefix(size))
    }
}
