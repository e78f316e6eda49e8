@testable import FModelFormat
import FModelTestSupport
import Foundation
import Testing

@Suite struct NPYTests {
    @Test func roundTrip() throws {
        let a = NPYArray(shape: [2, 3], values: [1, 2, 3, 4, 5, 6.5])
        let bytes = NPY.encode(a)
        #expect(bytes.count % 64 == 24 % 64 || (bytes.count - 24) % 64 == 0)
        #expect(try bytes.withUnsafeBytes { try NPY.parse($0, path: "a.npy") } == a)
        let vector = NPYArray(shape: [3], values: [1, 2, 3])
        #expect(try NPY.encode(vector).withUnsafeBytes { try NPY.parse($0, path: "v.npy") } == vector)
    }

    @Test func readsTensorFlowFixtures() throws {
        let x = try NPY.read(path: Fixtures.path("tiny_residual.input.npy"))
        #expect(x.shape == [2, 8, 8, 4] && x.values.count == 512)
    }

    @Test(arguments: [
        "", "\u{93}NUMPY", "\u{93}NUMPY\u{01}\u{00}\u{FF}\u{FF}",
        "\u{93}NUMPY\u{01}\u{00}\u{30}\u{00}{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }        \n",
        "\u{93}NUMPY\u{01}\u{00}\u{30}\u{00}{'descr': '<f4', 'fortran_order': False, 'shape': (99999999,), }\n",
    ])
    func hostileHeadersAreErrors(_ text: String) {
        let bytes = Array(text.unicodeScalars.map { UInt8(truncatingIfNeeded: $0.value) })
        #expect(throws: FormatError.self) { try bytes.withUnsafeBytes { try NPY.parse($0, path: "x.npy") } }
    }

    /// A shape of more dimensions than NumPy allows is refused before it is built.
    @Test func shapesPastNumPysDimensionsAreRefused() throws {
        let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + String(repeating: "1, ", count: 65) + "), }\n"
        let bytes = [0x93] + Array("NUMPY".utf8) + [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)]
            + Array(header.utf8)
        let error = #expect(throws: FormatError.self) { try bytes.withUnsafeBytes { try NPY.parse($0, path: "x.npy") } }
        #expect(try #require(error).description.contains("more than 64 dimensions"))
    }
}
