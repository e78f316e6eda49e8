/// The `.fmodel` header's JSON, parsed in one pass into a flat table of values and decoded
/// through Swift's `Decodable` by a `Decoder` over that table, without Foundation.
///
/// Why not `JSONDecoder`: loading is on the way to a model's first output, and Foundation's
/// decoder was 7–12 ms of the ~60 ms from process start (the full multi-task model's 95 KB
/// header) and paged in 1.2 MB of FoundationEssentials' code, which stayed in the resident set
/// beside the weights (`bench --json`'s `rss_added_by_first_output_mb`). The writer still
/// encodes with `JSONEncoder`; the round-trip tests hold the two to the same values.
///
/// Strict RFC 8259 on hostile input: UTF-8 checked, control characters and lone surrogates
/// rejected, nesting at most `maxDepth` deep, nothing after the value; every syntax error names
/// its byte offset. Numbers keep their text and are converted to the type asked for (so a
/// `Float` is read by the same correctly rounded conversion that printed it); an integer that
/// does not fit, or a float that overflows, is an error. Of a key given twice, the first is read.
enum HeaderJSON {
    /// Deepest nesting of arrays and objects accepted (the header nests about 6 deep).
    static let maxDepth = 256
    /// Most values (keys included) accepted: the table takes 20 bytes a value, so a 64 MiB
    /// header of `[0,0,…]` would otherwise make a 670 MB table. The full multi-task model's
    /// header has 10,055 values.
    static let maxValues = 1 << 22

    /// A JSON syntax error at `offset` bytes into the text.
    struct SyntaxError: Error, Equatable {
        var offset: Int
        var reason: String
    }

    /// Decodes a `T` from the JSON text `bytes`; `fileOffset` is where the text starts in its
    /// file, for the byte offsets in decoding errors' messages.
    /// - Throws: `SyntaxError`, or `DecodingError` for JSON that is not a `T`.
    static func decode<T: Decodable>(_ type: T.Type, from bytes: UnsafeRawBufferPointer, fileOffset: Int = 0) throws -> T {
        let document = try Document(parsing: bytes, fileOffset: fileOffset)
        return try T(from: ValueDecoder(document: document, index: 0))
    }
}

// MARK: - Parsing

extension HeaderJSON {
    enum Kind: UInt8 {
        case null, `false`, `true`, number, string, array, object

        var name: String {
            switch self {
            case .null: "null"
            case .false, .true: "a boolean"
            case .number: "a number"
            case .string: "a string"
            case .array: "an array"
            case .object: "an object"
            }
        }
    }

    /// One value: its kind, where its text starts and, for a scalar, ends (a string's without the
    /// quotes), and for arrays and objects
    /// how many table entries the value spans (so its next sibling is `index + span`) and how many
    /// elements or members it has. An object's members are a key (a string) then a value.
    struct Value {
        var kind: Kind
        /// A string with a backslash escape, decoded when asked for.
        var escaped = false
        var start: Int32
        var end: Int32
        var span: Int32 = 1
        var count: Int32 = 0
    }

    /// One pass over the text, appending to `values`.
    struct Parser {
        let bytes: UnsafeRawBufferPointer
        var values: [Value] = []
        var position = 0

        init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        mutating func parseDocument() throws(SyntaxError) {
            guard bytes.count < Int(Int32.max) else { throw SyntaxError(offset: 0, reason: "text of \(bytes.count) bytes is too long") }
            try parseValue(depth: 0)
            skipSpace()
            guard position == bytes.count else { throw fail("unexpected text after the value") }
        }

        private func fail(_ reason: String, at offset: Int? = nil) -> SyntaxError {
            SyntaxError(offset: offset ?? position, reason: position < bytes.count || offset != nil ? reason : "the text ends early")
        }

        private mutating func skipSpace() {
            while position < bytes.count {
                switch bytes[position] {
                case 0x20, 0x0A, 0x0D, 0x09: position += 1
                default: return
                }
            }
        }

        private mutating func expect(_ c: UInt8) throws(SyntaxError) {
            skipSpace()
            guard position < bytes.count, bytes[position] == c else {
                throw fail("expected '\(Character(Unicode.Scalar(c)))'")
            }
            position += 1
        }

        /// Every entry of the table goes through here, so the cap counts keys too.
        private mutating func append(_ value: Value) throws(SyntaxError) {
            guard values.count < HeaderJSON.maxValues else {
                throw SyntaxError(offset: Int(value.start), reason: "more than \(HeaderJSON.maxValues) values")
            }
            values.append(value)
        }

        private mutating func parseValue(depth: Int) throws(SyntaxError) {
            skipSpace()
            guard position < bytes.count else { throw fail("expected a value") }
            switch bytes[position] {
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                guard depth < HeaderJSON.maxDepth else { throw fail("nested deeper than \(HeaderJSON.maxDepth)") }
                try parseContainer(depth: depth)
            case UInt8(ascii: "\""): try parseString()
            case UInt8(ascii: "t"): try literal("true", .true)
            case UInt8(ascii: "f"): try literal("false", .false)
            case UInt8(ascii: "n"): try literal("null", .null)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try parseNumber()
            default: throw fail("unexpected character \(bytes[position]) where a value should start")
            }
        }

        private mutating func literal(_ word: StaticString, _ kind: Kind) throws(SyntaxError) {
            let n = word.utf8CodeUnitCount
            guard bytes.count - position >= n, (0..<n).allSatisfy({ bytes[position + $0] == word.utf8Start[$0] }) else {
                throw fail("expected '\(word)'")
            }
            try append(Value(kind: kind, start: Int32(position), end: Int32(position + n)))
            position += n
        }

        /// An array or object: its entry first, its span and count filled in at the end.
        private mutating func parseContainer(depth: Int) throws(SyntaxError) {
            let isObject = bytes[position] == UInt8(ascii: "{")
            let close = isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
            let index = values.count
            try append(Value(kind: isObject ? .object : .array, start: Int32(position), end: 0))
            position += 1
            var count: Int32 = 0
            skipSpace()
            if position < bytes.count, bytes[position] == close {
                position += 1
            } else {
                while true {
                    if isObject {
                        skipSpace()
                        guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw fail("expected a key") }
                        try parseString()
                        try expect(UInt8(ascii: ":"))
                    }
                    try parseValue(depth: depth + 1)
                    count += 1
                    skipSpace()
                    guard position < bytes.count else { throw fail("") }
                    let c = bytes[position]
                    position += 1
                    if c == close { break }
                    guard c == UInt8(ascii: ",") else { throw fail("expected ',' or '\(Character(Unicode.Scalar(close)))'", at: position - 1) }
                }
            }
            values[index].span = Int32(values.count - index)
            values[index].count = count
        }

        /// A string from its opening quote: UTF-8 checked, escapes checked (decoded on use).
        private mutating func parseString() throws(SyntaxError) {
            position += 1
            var value = Value(kind: .string, start: Int32(position), end: 0)
            while true {
                guard position < bytes.count else { throw fail("") }
                let c = bytes[position]
                switch c {
                case UInt8(ascii: "\""):
                    value.end = Int32(position)
                    try append(value)
                    position += 1
                    return
                case UInt8(ascii: "\\"):
                    value.escaped = true
                    try parseEscape()
                case 0..<0x20: throw fail("control character \(c) in a string")
                case 0x80...: try parseMultibyte()
                default: position += 1
                }
            }
        }

        private mutating func parseEscape() throws(SyntaxError) {
            guard position + 1 < bytes.count else { throw fail("the text ends inside an escape", at: position) }
            switch bytes[position + 1] {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
                 UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
                position += 2
            case UInt8(ascii: "u"):
                let start = position
                guard let unit = HeaderJSON.hex4(bytes, at: position + 2) else { throw fail("bad \\u escape", at: start) }
                position += 6
                if (0xD800..<0xDC00).contains(unit) {
                    guard position + 1 < bytes.count, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u"),
                          let low = HeaderJSON.hex4(bytes, at: position + 2), (0xDC00..<0xE000).contains(low) else {
                        throw fail("unpaired surrogate in a \\u escape", at: start)
                    }
                    position += 6
                } else if (0xDC00..<0xE000).contains(unit) {
                    throw fail("unpaired surrogate in a \\u escape", at: start)
                }
            default:
                throw fail("unknown escape")
            }
        }

        /// One well-formed UTF-8 sequence of two to four bytes (no overlongs, no surrogates,
        /// nothing past U+10FFFF).
        private mutating func parseMultibyte() throws(SyntaxError) {
            let lead = bytes[position]
            let (length, low, high): (Int, UInt8, UInt8) = switch lead {
            case 0xC2...0xDF: (2, 0x80, 0xBF)
            case 0xE0: (3, 0xA0, 0xBF)
            case 0xED: (3, 0x80, 0x9F)
            case 0xE1...0xEF: (3, 0x80, 0xBF)
            case 0xF0: (4, 0x90, 0xBF)
            case 0xF1...0xF3: (4, 0x80, 0xBF)
            case 0xF4: (4, 0x80, 0x8F)
            default: (0, 0, 0)
            }
            guard length > 0, position + length <= bytes.count, (low...high).contains(bytes[position + 1]),
                  (2..<length).allSatisfy({ (0x80...0xBF).contains(bytes[position + $0]) }) else {
                throw fail("invalid UTF-8 in a string")
            }
            position += length
        }

        /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
        private mutating func parseNumber() throws(SyntaxError) {
            let start = position
            func digits() -> Int {
                let from = position
                while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) { position += 1 }
                return position - from
            }
            if bytes[position] == UInt8(ascii: "-") { position += 1 }
            let integer = position
            guard digits() > 0 else { throw fail("expected a digit") }
            guard bytes[integer] != UInt8(ascii: "0") || position - integer == 1 else { throw fail("a number with a leading zero", at: start) }
            if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
                position += 1
                guard digits() > 0 else { throw fail("expected a digit after '.'") }
            }
            if position < bytes.count, bytes[position] | 0x20 == UInt8(ascii: "e") {
                position += 1
                if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
                guard digits() > 0 else { throw fail("expected a digit in the exponent") }
            }
            try append(Value(kind: .number, start: Int32(start), end: Int32(position)))
        }
    }

    /// The four hex digits at `i` as a UTF-16 unit; nil when they are not.
    static func hex4(_ bytes: UnsafeRawBufferPointer, at i: Int) -> UInt16? {
        guard i + 4 <= bytes.count else { return nil }
        var v: UInt16 = 0
        for j in i..<i + 4 {
            let c = bytes[j]
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: return nil
            }
            v = v << 4 | UInt16(d)
        }
        return v
    }

    /// The parsed text: the bytes (borrowed for the decoding) and the values in document order.
    final class Document {
        let bytes: UnsafeRawBufferPointer
        let fileOffset: Int
        let values: [Value]

        init(parsing bytes: UnsafeRawBufferPointer, fileOffset: Int) throws(SyntaxError) {
            var parser = Parser(bytes)
            try parser.parseDocument()
            self.bytes = bytes
            self.fileOffset = fileOffset
            values = parser.values
        }

        // MARK: Reading values

        /// The elements of array `index`, or the members of object `index`, in order: each one's
        /// key's table index (nil in an array) and its value's. The one walk of the table's
        /// layout (a key, then its value; a value, then the values it spans).
        func children(of index: Int) -> Children { Children(values: values, container: index) }

        struct Children: Sequence, IteratorProtocol {
            let values: [Value]
            let isObject: Bool
            /// The next child's first entry (its key, in an object) and how many children are left.
            var position: Int, left: Int

            init(values: [Value], container index: Int) {
                (self.values, isObject) = (values, values[index].kind == .object)
                (position, left) = (index + 1, Int(values[index].count))
            }

            mutating func next() -> (key: Int?, value: Int)? {
                guard left > 0 else { return nil }
                left -= 1
                let key = isObject ? position : nil
                let value = isObject ? position + 1 : position
                position = value + Int(values[value].span)
                return (key, value)
            }
        }

        /// The keys from the root to value `target`: an object's member names, an array's positions.
        func codingPath(to target: Int) -> [any CodingKey] {
            var path: [any CodingKey] = []
            var i = 0
            descent: while i != target {
                for (n, child) in children(of: i).enumerated() where target < child.value + Int(values[child.value].span) {
                    path.append(child.key.map { PathKey(stringValue: string(values[$0])) } ?? PathKey(intValue: n))
                    i = child.value
                    continue descent
                }
                break  // not a value's index (a key's): the path to its object
            }
            return path
        }

        /// Where value `v` starts in the file (a string at its opening quote).
        func fileOffset(of v: Value) -> Int { fileOffset + Int(v.start) - (v.kind == .string ? 1 : 0) }

        func text(_ v: Value) -> String {
            String(decoding: UnsafeRawBufferPointer(rebasing: bytes[Int(v.start)..<Int(v.end)]), as: UTF8.self)
        }

        /// A string value's contents, escapes decoded (`parseString` checked them).
        func string(_ v: Value) -> String {
            guard v.escaped else { return text(v) }
            var scalars = String.UnicodeScalarView()
            var i = Int(v.start)
            while i < Int(v.end) {
                guard bytes[i] == UInt8(ascii: "\\") else {
                    // An unescaped run: copy it as it is (it is valid UTF-8).
                    var j = i
                    while j < Int(v.end), bytes[j] != UInt8(ascii: "\\") { j += 1 }
                    scalars.append(contentsOf: String(decoding: UnsafeRawBufferPointer(rebasing: bytes[i..<j]), as: UTF8.self).unicodeScalars)
                    i = j
                    continue
                }
                let e = bytes[i + 1]
                i += 2
                switch e {
                case UInt8(ascii: "b"): scalars.append("\u{8}")
                case UInt8(ascii: "f"): scalars.append("\u{C}")
                case UInt8(ascii: "n"): scalars.append("\n")
                case UInt8(ascii: "r"): scalars.append("\r")
                case UInt8(ascii: "t"): scalars.append("\t")
                case UInt8(ascii: "u"):
                    var unit = UInt32(HeaderJSON.hex4(bytes, at: i)!)
                    i += 4
                    if (0xD800..<0xDC00).contains(unit) {
                        unit = 0x10000 + (unit - 0xD800) << 10 + (UInt32(HeaderJSON.hex4(bytes, at: i + 2)!) - 0xDC00)
                        i += 6
                    }
                    scalars.append(Unicode.Scalar(unit)!)
                default: scalars.append(Unicode.Scalar(e))
                }
            }
            return String(scalars)
        }

        /// Whether string value `v` is `key`, without making a String when it has no escapes.
        func string(_ v: Value, equals key: String) -> Bool {
            guard !v.escaped else { return string(v) == key }
            let raw = UnsafeRawBufferPointer(rebasing: bytes[Int(v.start)..<Int(v.end)])
            var key = key
            return key.withUTF8 { $0.elementsEqual(raw) }
        }
    }
}

// MARK: - Decoding

extension HeaderJSON {
    /// A key of a coding path: an object member's name or an array position.
    struct PathKey: CodingKey {
        var stringValue: String
        var intValue: Int?
        init(stringValue: String) { self.stringValue = stringValue }
        init(intValue: Int) { (stringValue, self.intValue) = ("\(intValue)", intValue) }
    }

    /// A number's text as a float; nil when it overflows, or when a nonzero number rounds to
    /// zero (as Foundation's decoder refuses both).
    static func float<F: BinaryFloatingPoint & LosslessStringConvertible>(_ text: String) -> F? {
        guard let v = F(text), v.isFinite else { return nil }
        let isZero = text.utf8.prefix { $0 | 0x20 != UInt8(ascii: "e") }.allSatisfy { !(UInt8(ascii: "1")...UInt8(ascii: "9")).contains($0) }
        return v != 0 || isZero ? v : nil
    }

    /// The decoder for one value (also its single-value container).
    struct ValueDecoder: Decoder, SingleValueDecodingContainer {
        let document: Document
        let index: Int
        /// Found from the table when asked for (for an error), not carried down the decoding.
        var codingPath: [any CodingKey] { document.codingPath(to: index) }
        var userInfo: [CodingUserInfoKey: Any] { [:] }

        var value: Value { document.values[index] }

        func mismatch<T>(_ type: T.Type, _ expected: String) -> DecodingError {
            .typeMismatch(type, .init(codingPath: codingPath, debugDescription:
                "expected \(expected), found \(value.kind.name) at byte offset \(document.fileOffset(of: value))"))
        }

        func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
            guard value.kind == .object else { throw mismatch([String: Any].self, "an object") }
            return KeyedDecodingContainer(KeyedContainer<Key>(decoder: self))
        }

        func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
            guard value.kind == .array else { throw mismatch([Any].self, "an array") }
            return UnkeyedContainer(decoder: self)
        }

        func singleValueContainer() throws -> any SingleValueDecodingContainer { self }

        func decodeNil() -> Bool { value.kind == .null }

        func decode(_ type: Bool.Type) throws -> Bool {
            switch value.kind {
            case .true: true
            case .false: false
            default: throw mismatch(type, "a boolean")
            }
        }

        func decode(_ type: String.Type) throws -> String {
            guard value.kind == .string else { throw mismatch(type, "a string") }
            return document.string(value)
        }

        /// A number's text converted by `convert`; nil from it (out of range, not an integer)
        /// is a `dataCorrupted` error naming the number.
        func number<T>(_ type: T.Type, _ convert: (String) -> T?) throws -> T {
            guard value.kind == .number else { throw mismatch(type, "a number") }
            let text = document.text(value)
            guard let n = convert(text) else {
                throw DecodingError.dataCorrupted(.init(codingPath: codingPath, debugDescription:
                    "the number \(text) at byte offset \(document.fileOffset(of: value)) does not fit in \(T.self)"))
            }
            return n
        }

        func decode(_ type: Double.Type) throws -> Double { try number(type, HeaderJSON.float) }
        func decode(_ type: Float.Type) throws -> Float { try number(type, HeaderJSON.float) }
        func decode(_ type: Int.Type) throws -> Int { try number(type) { Int($0) } }
        func decode(_ type: Int8.Type) throws -> Int8 { try number(type) { Int8($0) } }
        func decode(_ type: Int16.Type) throws -> Int16 { try number(type) { Int16($0) } }
        func decode(_ type: Int32.Type) throws -> Int32 { try number(type) { Int32($0) } }
        func decode(_ type: Int64.Type) throws -> Int64 { try number(type) { Int64($0) } }
        func decode(_ type: UInt.Type) throws -> UInt { try number(type) { UInt($0) } }
        func decode(_ type: UInt8.Type) throws -> UInt8 { try number(type) { UInt8($0) } }
        func decode(_ type: UInt16.Type) throws -> UInt16 { try number(type) { UInt16($0) } }
        func decode(_ type: UInt32.Type) throws -> UInt32 { try number(type) { UInt32($0) } }
        func decode(_ type: UInt64.Type) throws -> UInt64 { try number(type) { UInt64($0) } }
        func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: self) }

        func child(_ index: Int) -> ValueDecoder { ValueDecoder(document: document, index: index) }
    }

    struct KeyedContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let decoder: ValueDecoder
        /// Past 16 members, each key's value index by name: a scan per key would make an object
        /// read whole (a dictionary asks for every key) quadratic in its size, a hang for a
        /// hostile header with a million keys.
        private let byName: [String: Int]?
        var codingPath: [any CodingKey] { decoder.codingPath }

        init(decoder: ValueDecoder) {
            self.decoder = decoder
            let document = decoder.document
            guard document.values[decoder.index].count > 16 else {
                byName = nil
                return
            }
            var table: [String: Int] = [:]
            for member in document.children(of: decoder.index) {
                let name = document.string(document.values[member.key!])
                if table[name] == nil { table[name] = member.value }
            }
            byName = table
        }

        var allKeys: [Key] {
            decoder.document.children(of: decoder.index).compactMap { Key(stringValue: decoder.document.string(decoder.document.values[$0.key!])) }
        }

        /// The table index of `key`'s value (the first, if the key is there twice), nil when the
        /// object has no such member.
        func find(_ key: Key) -> Int? {
            let name = key.stringValue
            if let byName { return byName[name] }
            let document = decoder.document
            return document.children(of: decoder.index).first { document.string(document.values[$0.key!], equals: name) }?.value
        }

        func contains(_ key: Key) -> Bool { find(key) != nil }

        func child(_ key: Key) throws -> ValueDecoder {
            guard let index = find(key) else {
                throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription:
                    "no '\(key.stringValue)' in the object at byte offset \(decoder.document.fileOffset(of: decoder.value))"))
            }
            return decoder.child(index)
        }

        func decodeNil(forKey key: Key) throws -> Bool { try child(key).decodeNil() }
        func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try child(key).decode(type) }
        func decode(_ type: String.Type, forKey key: Key) throws -> String { try child(key).decode(type) }
        func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try child(key).decode(type) }
        func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try child(key).decode(type) }
        func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try child(key).decode(type) }
        func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try child(key).decode(type) }
        func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try child(key).decode(type) }
        func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try child(key).decode(type) }
        func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try child(key).decode(type) }
        func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try child(key).decode(type) }
        func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try child(key).decode(type) }
        func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try child(key).decode(type) }
        func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try child(key).decode(type) }
        func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try child(key).decode(type) }
        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try child(key).decode(type) }

        // One lookup for an optional member, where the protocol's defaults make three
        // (`contains`, `decodeNil`, `decode`): most of an op's attributes are optional.
        func present(_ key: Key) -> ValueDecoder? {
            find(key).map(decoder.child).flatMap { $0.decodeNil() ? nil : $0 }
        }

        func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try present(key)?.decode(type) }
        func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try present(key)?.decode(type) }
        func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try present(key)?.decode(type) }
        func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? { try present(key)?.decode(type) }
        func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try present(key)?.decode(type) }
        func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? { try present(key)?.decode(type) }
        func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? { try present(key)?.decode(type) }
        func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? { try present(key)?.decode(type) }
        func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try present(key)?.decode(type) }
        func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? { try present(key)?.decode(type) }
        func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? { try present(key)?.decode(type) }
        func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? { try present(key)?.decode(type) }
        func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? { try present(key)?.decode(type) }
        func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? { try present(key)?.decode(type) }
        func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? { try present(key)?.decode(type) }

        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
            try child(key).container(keyedBy: type)
        }

        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer { try child(key).unkeyedContainer() }
        func superDecoder() throws -> any Decoder { try child(Key(stringValue: "super")!) }
        func superDecoder(forKey key: Key) throws -> any Decoder { try child(key) }
    }

    struct UnkeyedContainer: UnkeyedDecodingContainer {
        let decoder: ValueDecoder
        var codingPath: [any CodingKey] { decoder.codingPath }
        var count: Int? { Int(decoder.value.count) }
        var currentIndex = 0
        private var elements: Document.Children

        init(decoder: ValueDecoder) {
            self.decoder = decoder
            elements = decoder.document.children(of: decoder.index)
        }

        var isAtEnd: Bool { elements.left == 0 }

        /// The next element's decoder; moves past it.
        mutating func element() throws -> ValueDecoder {
            guard !isAtEnd else {
                throw DecodingError.valueNotFound(Any.self, .init(codingPath: codingPath + [PathKey(intValue: currentIndex)], debugDescription:
                    "the array at byte offset \(decoder.document.fileOffset(of: decoder.value)) has only \(count!) elements"))
            }
            currentIndex += 1
            return decoder.child(elements.next()!.value)
        }

        mutating func decodeNil() throws -> Bool {
            guard !isAtEnd, decoder.document.values[elements.position].kind == .null else { return false }
            _ = try element()
            return true
        }

        mutating func decode(_ type: Bool.Type) throws -> Bool { try element().decode(type) }
        mutating func decode(_ type: String.Type) throws -> String { try element().decode(type) }
        mutating func decode(_ type: Double.Type) throws -> Double { try element().decode(type) }
        mutating func decode(_ type: Float.Type) throws -> Float { try element().decode(type) }
        mutating func decode(_ type: Int.Type) throws -> Int { try element().decode(type) }
        mutating func decode(_ type: Int8.Type) throws -> Int8 { try element().decode(type) }
        mutating func decode(_ type: Int16.Type) throws -> Int16 { try element().decode(type) }
        mutating func decode(_ type: Int32.Type) throws -> Int32 { try element().decode(type) }
        mutating func decode(_ type: Int64.Type) throws -> Int64 { try element().decode(type) }
        mutating func decode(_ type: UInt.Type) throws -> UInt { try element().decode(type) }
        mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try element().decode(type) }
        mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try element().decode(type) }
        mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try element().decode(type) }
        mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try element().decode(type) }
        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try element().decode(type) }

        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
            try element().container(keyedBy: type)
        }

        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try element().unkeyedContainer() }
        mutating func superDecoder() throws -> any Decoder { try element() }
    }
}
