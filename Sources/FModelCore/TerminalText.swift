extension String {
    /// The text with its control characters written out as `\u001B` (JSON's escape, so that a
    /// JSON line stays JSON): tab and newline kept, the other C0 controls, DEL and the C1
    /// controls (U+0080–U+009F; U+009B starts a terminal command as ESC [ does) escaped. Names
    /// in a model file are shown in messages and reports as they are, and a hostile file's
    /// "Dense\u{1B}[2J\u{1B}]0;…\u{7}" cleared the terminal and set its title.
    public var terminalSafe: String {
        guard unicodeScalars.contains(where: Self.isControl) else { return self }
        var out = String.UnicodeScalarView()
        for scalar in unicodeScalars {
            guard Self.isControl(scalar) else {
                out.append(scalar)
                continue
            }
            let hex = String(scalar.value, radix: 16, uppercase: true)
            out.append(contentsOf: ("\\u" + String(repeating: "0", count: 4 - hex.count) + hex).unicodeScalars)
        }
        return String(out)
    }

    private static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09, 0x0A: false
        case 0x00...0x1F, 0x7F...0x9F: true
        default: false
        }
    }
}
