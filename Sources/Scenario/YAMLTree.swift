//===----------------------------------------------------------------------===//
// meshsim — Scenario
//===----------------------------------------------------------------------===//

internal import CYaml

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

    /// Parses YAML text into a tree.
    ///
    /// Aliases are expanded (they share storage), but the expanded document may hold at most
    /// ``YAMLLimits/maxNodes`` nodes and nest at most ``YAMLLimits/maxDepth`` deep, so that a few hundred bytes of
    /// anchors and aliases (a "billion laughs") cannot make later passes walk or allocate billions of nodes.
    ///
    /// - Returns: The document's root, or nil for an empty document.
    /// - Throws: ``YAMLProblems`` with every located problem (syntax stops at the first).
    static func parse(_ text: String) throws(YAMLProblems) -> YAMLTree? {
        var bytes = Array(text.utf8)
        return try bytes.withUnsafeMutableBufferPointer { buffer throws(YAMLProblems) -> YAMLTree? in
            var composer = YAMLComposer()
            defer { composer.close() }
            return try composer.compose(buffer)
        }
    }
}

/// Bounds on the documents a scenario file may describe.
public enum YAMLLimits {
    /// The most nodes a document may expand to, aliases counted as often as they are used. The largest bundled
    /// scenario has under 2,000.
    public static let maxNodes = 200_000
    /// The deepest nesting of mappings and lists (the scenario format needs under 10).
    public static let maxDepth = 64
}

/// A problem found while reading YAML, with its position (1-based).
struct YAMLProblem: Sendable {
    enum Kind: Sendable {
        case syntax
        case duplicateKey
        case limit
    }
    var kind: Kind
    var line: Int
    var column: Int
    var message: String
}

/// The problems found while reading a YAML document.
struct YAMLProblems: Error, Sendable {
    var problems: [YAMLProblem]
}

/// Builds a ``YAMLTree`` from libyaml's events, counting nodes as it goes.
///
/// Written over the event parser rather than a node composer so that alias expansion is counted before anything
/// is built from it, duplicate keys are all reported with their positions, and nesting is bounded.
private struct YAMLComposer {
    private var parser = yaml_parser_t()
    private var anchors: [String: (tree: YAMLTree, nodes: Int)] = [:]
    private var nodes = 0
    private var problems: [YAMLProblem] = []
    private var open = false

    mutating func close() {
        if open { yaml_parser_delete(&parser) }
        open = false
    }

    /// Composes the single document in `buffer` (which must outlive the call).
    mutating func compose(_ buffer: UnsafeMutableBufferPointer<UInt8>) throws(YAMLProblems) -> YAMLTree? {
        guard yaml_parser_initialize(&parser) == 1 else {
            throw YAMLProblems(problems: [YAMLProblem(kind: .limit, line: 1, column: 1, message: "out of memory")])
        }
        open = true
        yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING)
        yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
        var event = try next()  // stream start
        yaml_event_delete(&event)
        event = try next()
        if event.type == YAML_STREAM_END_EVENT {
            yaml_event_delete(&event)
            return nil
        }
        yaml_event_delete(&event)  // document start
        event = try next()
        let root = try node(from: &event, depth: 0)
        event = try next()  // document end
        yaml_event_delete(&event)
        event = try next()
        if event.type != YAML_STREAM_END_EVENT {
            let mark = event.start_mark
            yaml_event_delete(&event)
            problems.append(
                YAMLProblem(
                    kind: .syntax,
                    line: Int(mark.line) + 1,
                    column: Int(mark.column) + 1,
                    message: "a second document ('---') starts here: a scenario file holds one"
                )
            )
        } else {
            yaml_event_delete(&event)
        }
        if !problems.isEmpty { throw YAMLProblems(problems: problems) }
        return root
    }

    /// The next event; the caller deletes it.
    private mutating func next() throws(YAMLProblems) -> yaml_event_t {
        var event = yaml_event_t()
        guard yaml_parser_parse(&parser, &event) == 1 else {
            throw YAMLProblems(problems: problems + [syntaxProblem()])
        }
        return event
    }

    /// libyaml's description of the error it stopped at.
    private func syntaxProblem() -> YAMLProblem {
        let mark = parser.problem_mark
        var message = parser.problem.map { String(cString: $0) } ?? "unreadable YAML"
        if let context = parser.context.map({ String(cString: $0) }) { message = context + ": " + message }
        if parser.error == YAML_MEMORY_ERROR { message = "out of memory while reading YAML" }
        return YAMLProblem(kind: .syntax, line: Int(mark.line) + 1, column: Int(mark.column) + 1, message: message)
    }

    private func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?, length: Int? = nil) -> String? {
        guard let pointer else { return nil }
        var count = 0
        if let length {
            count = length
        } else {
            while pointer[count] != 0 { count += 1 }
        }
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    /// Counts `count` more nodes, failing at `mark` once the document passes its budget.
    private mutating func count(_ count: Int, at mark: SourceMark, alias: Bool) throws(YAMLProblems) {
        nodes += count
        guard nodes > YAMLLimits.maxNodes else { return }
        let why =
            alias
            ? "aliases expand the document past \(YAMLLimits.maxNodes) values (aliases of aliases multiply: "
                + "a \"billion laughs\"); write the repeated parts out or alias fewer of them"
            : "the document holds more than \(YAMLLimits.maxNodes) values; a scenario needs a few thousand at most"
        throw YAMLProblems(
            problems: problems + [YAMLProblem(kind: .limit, line: mark.line, column: mark.column, message: why)]
        )
    }

    /// Builds the node that starts with `event` (consumed).
    private mutating func node(from event: inout yaml_event_t, depth: Int) throws(YAMLProblems) -> YAMLTree {
        let mark = SourceMark(line: Int(event.start_mark.line) + 1, column: Int(event.start_mark.column) + 1)
        defer { yaml_event_delete(&event) }
        switch event.type {
        case YAML_ALIAS_EVENT:
            let name = string(event.data.alias.anchor) ?? ""
            guard let anchored = anchors[name] else {
                throw YAMLProblems(
                    problems: problems + [
                        YAMLProblem(
                            kind: .syntax,
                            line: mark.line,
                            column: mark.column,
                            message: "alias '*\(name)' names no anchor defined before it ('&\(name)')"
                        )
                    ]
                )
            }
            try count(anchored.nodes, at: mark, alias: true)
            return anchored.tree
        case YAML_SCALAR_EVENT:
            try count(1, at: mark, alias: false)
            let scalar = event.data.scalar
            let text = string(scalar.value, length: Int(scalar.length)) ?? ""
            var plain = scalar.style == YAML_PLAIN_SCALAR_STYLE
            if let tag = string(scalar.tag) {
                // `!!str 5` is the string "5"; other tags are not part of the scenario format.
                if tag == "tag:yaml.org,2002:str" {
                    plain = false
                } else if !Self.plainTags.contains(tag) {
                    problems.append(unsupportedTag(tag, at: mark))
                }
            }
            let tree = YAMLTree.scalar(text, plain: plain, mark)
            register(scalar.anchor, tree, nodes: 1)
            return tree
        case YAML_SEQUENCE_START_EVENT:
            let start = nodes
            try beginCollection(tag: event.data.sequence_start.tag, expected: "tag:yaml.org,2002:seq", mark, depth)
            var items: [YAMLTree] = []
            while true {
                var item = try next()
                if item.type == YAML_SEQUENCE_END_EVENT {
                    yaml_event_delete(&item)
                    break
                }
                items.append(try node(from: &item, depth: depth + 1))
            }
            let tree = YAMLTree.sequence(items, mark)
            register(event.data.sequence_start.anchor, tree, nodes: nodes - start)
            return tree
        case YAML_MAPPING_START_EVENT:
            let start = nodes
            try beginCollection(tag: event.data.mapping_start.tag, expected: "tag:yaml.org,2002:map", mark, depth)
            var pairs: [(key: String, keyMark: SourceMark?, value: YAMLTree)] = []
            var seen: [String: SourceMark] = [:]
            while true {
                var keyEvent = try next()
                if keyEvent.type == YAML_MAPPING_END_EVENT {
                    yaml_event_delete(&keyEvent)
                    break
                }
                let keyNode = try node(from: &keyEvent, depth: depth + 1)
                let keyMark = keyNode.mark ?? mark
                let key: String
                switch keyNode {
                case .scalar(let text, _, _): key = text
                case .mapping: key = "<a mapping as a key>"
                case .sequence: key = "<a list as a key>"
                }
                var valueEvent = try next()
                let value = try node(from: &valueEvent, depth: depth + 1)
                if let first = seen[key] {
                    problems.append(
                        YAMLProblem(
                            kind: .duplicateKey,
                            line: keyMark.line,
                            column: keyMark.column,
                            message: "key '\(key)' is given twice in one mapping (first at line \(first.line))"
                        )
                    )
                } else {
                    seen[key] = keyMark
                }
                pairs.append((key, keyMark, value))
            }
            let tree = YAMLTree.mapping(pairs, mark)
            register(event.data.mapping_start.anchor, tree, nodes: nodes - start)
            return tree
        default:
            throw YAMLProblems(
                problems: problems + [
                    YAMLProblem(kind: .syntax, line: mark.line, column: mark.column, message: "unexpected YAML event")
                ]
            )
        }
    }

    /// Tags that change nothing for a plain scalar.
    private static let plainTags: Set<String> = [
        "tag:yaml.org,2002:int", "tag:yaml.org,2002:float", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null",
    ]

    private func unsupportedTag(_ tag: String, at mark: SourceMark) -> YAMLProblem {
        YAMLProblem(
            kind: .syntax,
            line: mark.line,
            column: mark.column,
            message: "the tag '\(tag)' is not part of the scenario format (only !!str, !!int, !!float, !!bool, "
                + "!!null, !!map and !!seq are accepted)"
        )
    }

    /// Counts a list or mapping that starts at `mark`, checks its depth, and notes a tag other than its own.
    private mutating func beginCollection(
        tag: UnsafeMutablePointer<yaml_char_t>?,
        expected: String,
        _ mark: SourceMark,
        _ depth: Int
    ) throws(YAMLProblems) {
        try count(1, at: mark, alias: false)
        try checkDepth(depth, at: mark)
        if let tag = string(tag), tag != expected { problems.append(unsupportedTag(tag, at: mark)) }
    }

    private func checkDepth(_ depth: Int, at mark: SourceMark) throws(YAMLProblems) {
        guard depth >= YAMLLimits.maxDepth else { return }
        throw YAMLProblems(
            problems: problems + [
                YAMLProblem(
                    kind: .limit,
                    line: mark.line,
                    column: mark.column,
                    message: "mappings and lists nest more than \(YAMLLimits.maxDepth) deep here; "
                        + "a scenario needs under 10 levels"
                )
            ]
        )
    }

    private mutating func register(_ anchor: UnsafeMutablePointer<yaml_char_t>?, _ tree: YAMLTree, nodes: Int) {
        guard let name = string(anchor) else { return }
        anchors[name] = (tree, nodes)
    }
}
