import Foundation
import FModelFormat

/// Keras 3's index of weights saved in pieces (`save_weights("x.weights.json",
/// max_shard_size=…)`, as Keras saves big models): JSON whose `weight_map` names, for each
/// layer's `…/vars` place, the shard file or files (`x_00000.weights.h5`, …) beside the index
/// that hold it. Each shard is laid out as a whole `.weights.h5` is, with the places it holds.
package struct KerasShardIndex {
    /// The shards' paths, each once.
    package let shards: [String]

    /// True when the file at `path` is a shard index (`isIndex(path:prefix:)` on its first bytes).
    /// Every place that tells an index from other files asks this.
    package static func isIndex(path: String) -> Bool {
        guard path.hasSuffix(".json"), let prefix = try? ModelLoader.leadingBytes(of: path) else { return false }
        return isIndex(path: path, prefix: prefix)
    }

    /// True when `prefix` (a file's first bytes) opens a shard index: a `.json` file whose
    /// object names a `weight_map` (Keras writes it after a short `metadata`).
    package static func isIndex(path: String, prefix: [UInt8]) -> Bool {
        guard path.hasSuffix(".json"), prefix.first(where: { ![0x20, 0x09, 0x0A, 0x0D].contains($0) }) == UInt8(ascii: "{") else { return false }
        return String(decoding: prefix, as: UTF8.self).contains("\"weight_map\"")
    }

    /// Reads the index at `path`. A shard must be named as Keras names it, a file beside the
    /// index (no directory in its name), so that an index cannot point fmodel elsewhere.
    package init(path: String) throws(ImportError) {
        let text: String
        do { text = try MappedFile.text(path: path, maxBytes: MappedFile.maxConfigBytes) } catch {
            throw .unknownFormat(path: path, reason: "cannot read the shard index: \(error.detail)")
        }
        let json: JSONValue
        do { json = try JSONValue.parse(text) } catch { throw .badConfig(path: path, layer: nil, reason: "the shard index is not JSON") }
        guard let map = json["weight_map"]?.object else { throw .badConfig(path: path, layer: nil, reason: "the shard index has no weight_map object") }
        let folder = (path as NSString).deletingLastPathComponent
        var seen: Set<String> = [], shards: [String] = []
        for place in map.keys.sorted() {
            let value = map[place]!
            guard let names = value.string.map({ [$0] }) ?? value.array?.compactMap(\.string), !names.isEmpty,
                  names.count == (value.array?.count ?? 1) else {
                throw .badConfig(path: path, layer: nil, reason: "weight_map names \(value.brief.prefix(80)) for '\(place)', expected shard file names")
            }
            for name in names where !seen.contains(name) {
                guard !name.contains("/"), name != ".", name != "..", !name.isEmpty else {
                    throw .badConfig(path: path, layer: nil, reason: "weight_map names '\(name)' for '\(place)', not a file beside the index")
                }
                seen.insert(name)
                shards.append(folder.isEmpty ? name : folder + "/" + name)
            }
        }
        self.shards = shards
    }
}
