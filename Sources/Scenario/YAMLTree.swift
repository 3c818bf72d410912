//===----------------------------------------------------------------------===//
// meshsim — Scenario
//===----------------------------------------------------------------------===//

import Yams

/// A position in the scenario file (1-based).
struct SourceMark: Equatable, Sendable {
    var line: Int
    var column: Int
}

/// A YAML document as plain values with their positions, so that variants can override parts of it and every
/// error can point at the text it comes from.
indirect enum YAMLTree: Sendable {
    /// A scalar; `plain` is false for quoted text (so `"0"` stays a string).
    case scalar(String, plain: Bool, SourceMark?)
    /// A mapping, in file order.
    case mapping([(key: String, keyMark: SourceMark?, value: YAMLTree)], SourceMark?)
    /// A sequence.
    case sequence([YAMLTree], SourceMark?)

    var mark: SourceMark? {
        switch self {
        case .scalar(_, _, let m), .mapping(_, let m), .sequence(_, let m): return m
        }
    }

    /// Whether the node is a mapping.
    var isMapping: Bool {
        if case .mapping = self { return true }
        return false
    }

    /// Whether the node is YAML null (`~`, `null` or nothing).
    var isNull: Bool {
        if case .scalar(let text, let plain, _) = self, plain {
            return text.isEmpty || text == "~" || text == "null" || text == "Null" || text == "NULL"
        }
        return false
    }

    /// What the node is, for "expected X, found Y" messages.
    var kindName: String {
        switch self {
        case .scalar(let text, _, _): return isNull ? "nothing" : "'\(text)'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        }
    }

    /// Parses YAML text into a tree; throws the syntax problem as a located message.
    static func parse(_ text: String) throws -> YAMLTree? {
        guard let node = try Yams.compose(yaml: text) else { return nil }
        return try convert(node)
    }

    private static func convert(_ node: Node) throws -> YAMLTree {
        let mark = node.mark.map { SourceMark(line: $0.line, column: $0.column) }
        switch node {
        case .scalar(let scalar):
            return .scalar(scalar.string, plain: scalar.style == .plain, mark)
        case .mapping(let mapping):
            var pairs: [(key: String, keyMark: SourceMark?, value: YAMLTree)] = []
            for (key, value) in mapping {
                let keyText: String
                switch key {
                case .scalar(let s): keyText = s.string
                default: keyText = "<\(key.tag.description) key>"
                }
                pairs.append(
                    (keyText, key.mark.map { SourceMark(line: $0.line, column: $0.column) }, try convert(value))
                )
            }
            return .mapping(pairs, mark)
        case .sequence(let sequence):
            return .sequence(try sequence.map { try convert($0) }, mark)
        case .alias:
            return .scalar("*alias", plain: false, mark)
        }
    }
}
