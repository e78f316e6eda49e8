@testable import FModelFormat
import Testing

/// OpenMP stack sizes read as libgomp reads OMP_STACKSIZE (a B, K, M or G suffix, kilobytes
/// without) and GOMP_STACKSIZE (kilobytes only).
@Suite struct OpenMPStackSizeTests {
    @Test(arguments: [("16K", 16 << 10), ("16 k", 16 << 10), (" 300 ", 300 << 10), ("512b", 512), ("2M", 2 << 20), ("1g", 1 << 30),
                      ("256K ", 256 << 10)])
    func sizesAreReadAsLibgompReadsThem(text: String, bytes: Int) {
        #expect(ProcessLimits.stackBytes(text, suffixes: true) == bytes)
    }

    @Test(arguments: ["", "abc", "16KB", "K", "-16K", "1.5M", "99999999999999999999", "9999999999999999G"])
    func valuesLibgompRefusesAreNotRead(text: String) {
        #expect(ProcessLimits.stackBytes(text, suffixes: true) == nil)
    }

    @Test func gompStacksizeTakesNoSuffix() {
        #expect(ProcessLimits.stackBytes("64", suffixes: false) == 64 << 10)
        #expect(ProcessLimits.stackBytes("64K", suffixes: false) == nil)
    }
}
