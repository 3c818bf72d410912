//===----------------------------------------------------------------------===//
// meshsim — Scenario
//===----------------------------------------------------------------------===//

import SimCore

/// Why a variant's override path does not lead anywhere.
struct PathError: Error {
    var message: String
    var suggestion: String?
}

extension YAMLTree {
    /// Replaces the node at a dotted path (`services.api.calls[0].balancer`) with `value`, creating missing mapping
    /// keys; a mapping value is merged key by key into a mapping already there.
    mutating func set(path: String, to value: YAMLTree) throws(PathError) {
        var segments: [PathSegment] = []
        for part in path.split(separator: ".", omittingEmptySubsequences: false) {
            var text = Substring(part)
            var key = text
            if let bracket = text.firstIndex(of: "[") {
                key = text[..<bracket]
                text = text[bracket...]
            } else {
                text = ""
            }
            guard !key.isEmpty else { throw PathError(message: "'\(path)' has an empty key") }
            segments.append(.key(String(key)))
            while text.first == "[" {
                guard let close = text.firstIndex(of: "]"),
                    let index = Int(text[text.index(after: text.startIndex)..<close]),
                    index >= 0
                else { throw PathError(message: "'\(path)' has a malformed index (write e.g. calls[0])") }
                segments.append(.index(index))
                text = text[text.index(after: close)...]
            }
            guard text.isEmpty else { throw PathError(message: "'\(path)' has text after an index") }
        }
        try set(segments[...], to: value, path: path)
    }

    private enum PathSegment {
        case key(String)
        case index(Int)
    }

    private mutating func set(_ segments: ArraySlice<PathSegment>, to value: YAMLTree, path: String) throws(PathError) {
        guard let first = segments.first else {
            self = YAMLTree.merge(self, value)
            return
        }
        switch (first, self) {
        case (.key(let key), .mapping(var pairs, let mark)):
            if let i = pairs.firstIndex(where: { $0.key == key }) {
                try pairs[i].value.set(segments.dropFirst(), to: value, path: path)
            } else {
                guard
                    segments.count == 1
                        || segments.dropFirst().allSatisfy({ if case .key = $0 { true } else { false } })
                else {
                    throw PathError(message: "'\(path)': there is no '\(key)' to index into")
                }
                var node = YAMLTree.mapping([], value.mark)
                try node.set(segments.dropFirst(), to: value, path: path)
                pairs.append((key, value.mark, segments.count == 1 ? value : node))
            }
            self = .mapping(pairs, mark)
        case (.key(let key), _) where isNull:
            var node = YAMLTree.mapping([], mark)
            try node.set(segments, to: value, path: path)
            self = node
            _ = key
        case (.index(let index), .sequence(var items, let mark)):
            guard index < items.count else {
                throw PathError(message: "'\(path)': index \(index) is past the end of a list of \(items.count)")
            }
            try items[index].set(segments.dropFirst(), to: value, path: path)
            self = .sequence(items, mark)
        case (.key(let key), _):
            throw PathError(message: "'\(path)': '\(key)' cannot be set inside \(kindName)")
        case (.index(let index), _):
            throw PathError(message: "'\(path)': [\(index)] needs a list, found \(kindName)")
        }
    }

    /// `overlay` merged onto `base`: mappings key by key, anything else replaced.
    ///
    /// A mapping that names a `kind` other than the one already there (or where none was named) replaces the old
    /// mapping instead: the parameters of one kind of policy mean nothing to another.
    static func merge(_ base: YAMLTree, _ overlay: YAMLTree) -> YAMLTree {
        guard case .mapping(var pairs, let mark) = base, case .mapping(let overlayPairs, _) = overlay else {
            return overlay
        }
        if let newKind = kindName(overlayPairs), kindName(pairs) != newKind { return overlay }
        for pair in overlayPairs {
            if let i = pairs.firstIndex(where: { $0.key == pair.key }) {
                pairs[i].value = merge(pairs[i].value, pair.value)
            } else {
                pairs.append(pair)
            }
        }
        return .mapping(pairs, mark)
    }

    /// The scalar value of a mapping's `kind` key, if any.
    private static func kindName(_ pairs: [(key: String, keyMark: SourceMark?, value: YAMLTree)]) -> String? {
        guard let pair = pairs.first(where: { $0.key == "kind" }), case .scalar(let text, _, _) = pair.value else {
            return nil
        }
        return text
    }
}
