//===----------------------------------------------------------------------===//
// meshsim — Scenario
//===----------------------------------------------------------------------===//

import SimCore
import SimRandom

/// Reads typed values out of a ``YAMLTree``, collecting every problem instead of stopping at the first.
///
/// Each getter returns a usable fallback after recording an error, so one pass over a file finds all its problems.
struct TreeReader {
    let file: String
    var errors: [ScenarioError] = []

    init(file: String) { self.file = file }

    mutating func fail(
        _ code: ScenarioError.Code,
        _ node: YAMLTree?,
        _ path: String,
        _ message: String,
        suggestion: String? = nil,
        mark: SourceMark? = nil
    ) {
        let at = mark ?? node?.mark
        errors.append(
            ScenarioError(
                code,
                file: file,
                line: at?.line,
                column: at?.column,
                keyPath: path,
                message: message,
                suggestion: suggestion
            )
        )
    }

    /// The fields of a mapping, checking that every key is one of `known`.
    mutating func fields(_ node: YAMLTree?, _ path: String, known: [String]) -> Fields? {
        guard let node else { return nil }
        guard case .mapping(let pairs, _) = node else {
            fail(
                .wrongType,
                node,
                path,
                "expected a mapping with keys \(known.joined(separator: ", ")), found \(node.kindName)"
            )
            return nil
        }
        var fields = Fields(path: path, node: node)
        for pair in pairs {
            let keyPath = path.isEmpty ? pair.key : path + "." + pair.key
            if !known.contains(pair.key) {
                fail(
                    .unknownKey,
                    node,
                    keyPath,
                    "unknown key '\(pair.key)'"
                        + (known.isEmpty ? "" : " (expected one of: \(known.joined(separator: ", ")))"),
                    suggestion: closestName(to: pair.key, among: known).map { "did you mean '\($0)'?" },
                    mark: pair.keyMark
                )
                continue
            }
            if fields.values[pair.key] != nil {
                fail(.duplicate, node, keyPath, "key '\(pair.key)' is given twice", mark: pair.keyMark)
                continue
            }
            fields.values[pair.key] = pair.value
        }
        return fields
    }

    /// A mapping's entries in file order (for name → definition maps such as `services`).
    mutating func entries(_ node: YAMLTree?, _ path: String) -> [(key: String, mark: SourceMark?, value: YAMLTree)] {
        guard let node, !node.isNull else { return [] }
        guard case .mapping(let pairs, _) = node else {
            fail(.wrongType, node, path, "expected a mapping of names to definitions, found \(node.kindName)")
            return []
        }
        var seen: Set<String> = []
        var result: [(key: String, mark: SourceMark?, value: YAMLTree)] = []
        for pair in pairs {
            if !seen.insert(pair.key).inserted {
                fail(.duplicate, node, path + "." + pair.key, "'\(pair.key)' is defined twice", mark: pair.keyMark)
                continue
            }
            result.append((pair.key, pair.keyMark, pair.value))
        }
        return result
    }

    /// The items of a list (a missing or null node is an empty list).
    mutating func list(_ node: YAMLTree?, _ path: String) -> [YAMLTree] {
        guard let node, !node.isNull else { return [] }
        guard case .sequence(let items, _) = node else {
            fail(.wrongType, node, path, "expected a list, found \(node.kindName)")
            return []
        }
        return items
    }

    /// The items of a list, at most `limit` of them: more is reported (as "N what; a scenario may have at most
    /// limit") and the rest dropped.
    mutating func list(_ node: YAMLTree?, _ path: String, atMost limit: Int, of what: String) -> [YAMLTree] {
        let items = list(node, path)
        guard items.count > limit else { return items }
        fail(.tooLarge, node, path, "\(items.count) \(what); a scenario may have at most \(limit)")
        return Array(items.prefix(limit))
    }

    /// The text of a scalar.
    mutating func string(_ node: YAMLTree?, _ path: String, maxLength: Int = 10_000) -> String? {
        guard let node else { return nil }
        guard case .scalar(let text, _, _) = node, !node.isNull else {
            fail(.wrongType, node, path, "expected text, found \(node.kindName)")
            return nil
        }
        guard text.utf8.count <= maxLength else {
            fail(.tooLarge, node, path, "\(text.utf8.count) bytes of text; at most \(maxLength) are allowed here")
            return nil
        }
        return text
    }

    /// An integer within `range`.
    mutating func int(_ node: YAMLTree?, _ path: String, default value: Int, range: ClosedRange<Int>) -> Int {
        guard let node else { return value }
        guard case .scalar(let text, _, _) = node, let parsed = Int(text.replacingUnderscores()) else {
            fail(.wrongType, node, path, "expected a whole number in \(describe(range)), found \(node.kindName)")
            return value
        }
        guard range.contains(parsed) else {
            fail(.outOfRange, node, path, "\(parsed) is out of range: expected a whole number in \(describe(range))")
            return value
        }
        return parsed
    }

    /// A finite number within `range`.
    mutating func number(
        _ node: YAMLTree?,
        _ path: String,
        default value: Double,
        range: ClosedRange<Double>,
        what: String = "a number"
    ) -> Double {
        guard let node else { return value }
        guard case .scalar(let text, _, _) = node, let parsed = Double(text.replacingUnderscores()), parsed.isFinite
        else {
            fail(.wrongType, node, path, "expected \(what) in \(describe(range)), found \(node.kindName)")
            return value
        }
        guard range.contains(parsed) else {
            fail(.outOfRange, node, path, "\(text) is out of range: expected \(what) in \(describe(range))")
            return value
        }
        return parsed
    }

    /// A probability in [0, 1].
    mutating func probability(_ node: YAMLTree?, _ path: String, default value: Double) -> Double {
        number(node, path, default: value, range: 0...1, what: "a probability")
    }

    /// `true` or `false`.
    mutating func bool(_ node: YAMLTree?, _ path: String, default value: Bool) -> Bool {
        guard let node else { return value }
        if case .scalar(let text, _, _) = node {
            switch text {
            case "true", "True", "TRUE", "yes", "on": return true
            case "false", "False", "FALSE", "no", "off": return false
            default: break
            }
        }
        fail(.wrongType, node, path, "expected true or false, found \(node.kindName)")
        return value
    }

    /// A duration with a unit (`250us`, `20ms`, `1.5s`, `2m`) within `range` (by default at most a year).
    mutating func duration(
        _ node: YAMLTree?,
        _ path: String,
        default value: SimDuration,
        range: ClosedRange<SimDuration> = .zero...SimDuration.year
    ) -> SimDuration {
        guard let node else { return value }
        guard case .scalar(let text, _, _) = node, !node.isNull else {
            fail(.wrongType, node, path, "expected a duration such as 20ms, found \(node.kindName)")
            return value
        }
        let parsed: SimDuration
        do {
            parsed = try SimDuration(parsing: text)
        } catch {
            fail(.badDuration, node, path, "expected a duration with a unit (ns, us, ms, s, m, h): \(error)")
            return value
        }
        guard range.contains(parsed) else {
            fail(
                .outOfRange,
                node,
                path,
                "\(text) is out of range: expected a duration in [\(range.lowerBound.formatted), \(range.upperBound.formatted)]"
            )
            return value
        }
        return parsed
    }

    // MARK: - Policy-module parameters (the module's initializer checks the range)

    /// A whole-number parameter `key` of `f`; only its type is checked here.
    mutating func parameterInt(_ f: Fields, _ key: String, _ value: Int) -> Int {
        int(f[key], f.path(key), default: value, range: -1_000_000_000...1_000_000_000)
    }

    /// A numeric parameter `key` of `f`; only its type is checked here.
    mutating func parameterNumber(_ f: Fields, _ key: String, _ value: Double) -> Double {
        number(f[key], f.path(key), default: value, range: -1e9...1e9)
    }

    /// A duration parameter `key` of `f` (not negative, at most a year); the module checks the rest.
    mutating func parameterDuration(_ f: Fields, _ key: String, _ value: SimDuration) -> SimDuration {
        duration(f[key], f.path(key), default: value, range: .zero...SimDuration.year)
    }

    /// One of the `choices`, with a suggestion for a misspelling.
    mutating func choice(_ node: YAMLTree?, _ path: String, choices: [String]) -> String? {
        guard let text = string(node, path) else { return nil }
        guard choices.contains(text) else {
            fail(
                .unknownName,
                node,
                path,
                "unknown value '\(text)' (expected one of: \(choices.joined(separator: ", ")))",
                suggestion: closestName(to: text, among: choices).map { "did you mean '\($0)'?" }
            )
            return nil
        }
        return text
    }

    /// A distribution: the compact form (`lognormal:median=20ms,p99=120ms`), a bare duration (a constant), or a
    /// mapping with `kind` and the parameters.
    mutating func distribution(_ node: YAMLTree?, _ path: String, default value: Distribution) -> Distribution {
        guard let node else { return value }
        do {
            switch node {
            case .scalar(let text, _, _) where !node.isNull:
                return try Distribution.parse(text)
            case .mapping(let pairs, _):
                guard let kindPair = pairs.first(where: { $0.key == "kind" }),
                    let kind = string(kindPair.value, path + ".kind")
                else {
                    fail(
                        .missingField,
                        node,
                        path + ".kind",
                        "a distribution mapping needs 'kind' (one of: \(Distribution.kindNames.joined(separator: ", ")))"
                    )
                    return value
                }
                if kind == "mixture" { return try mixture(pairs, path) ?? value }
                var parameters: [(String, String)] = []
                for pair in pairs where pair.key != "kind" {
                    switch pair.value {
                    case .scalar(let text, _, _):
                        parameters.append((pair.key, text))
                    case .sequence(let items, _) where kind == "empirical" && pair.key == "samples":
                        for item in items {
                            guard let text = string(item, path + ".samples") else { return value }
                            parameters.append(("", text))
                        }
                    case .mapping(let points, _) where kind == "empirical" && pair.key == "percentiles":
                        for point in points {
                            guard let text = string(point.value, path + ".percentiles." + point.key) else {
                                return value
                            }
                            parameters.append((point.key, text))
                        }
                    default:
                        fail(
                            .wrongType,
                            pair.value,
                            path + "." + pair.key,
                            "expected a value, found \(pair.value.kindName)"
                        )
                        return value
                    }
                }
                return try Distribution.make(kind: kind, parameters: parameters)
            default:
                fail(
                    .wrongType,
                    node,
                    path,
                    "expected a distribution such as 'exponential:mean=1ms', found \(node.kindName)"
                )
                return value
            }
        } catch {
            fail(
                .badDistribution,
                node,
                path + (error.parameter.map { "." + $0 } ?? ""),
                error.message,
                suggestion: error.suggestion
            )
            return value
        }
    }

    private mutating func mixture(
        _ pairs: [(key: String, keyMark: SourceMark?, value: YAMLTree)],
        _ path: String
    ) throws(DistributionError) -> Distribution? {
        for pair in pairs where pair.key != "kind" && pair.key != "components" {
            fail(
                .unknownKey,
                pair.value,
                path + "." + pair.key,
                "unknown key '\(pair.key)' (a mixture has 'components')",
                mark: pair.keyMark
            )
        }
        let componentsPath = path + ".components"
        var parts: [(Double, Distribution)] = []
        for (i, item) in list(pairs.first { $0.key == "components" }?.value, componentsPath).enumerated() {
            let itemPath = componentsPath + "[\(i)]"
            guard let f = fields(item, itemPath, known: ["weight", "dist"]) else { return nil }
            guard let weightNode = f.values["weight"], let distNode = f.values["dist"] else {
                fail(.missingField, item, itemPath, "a mixture component needs 'weight' and 'dist'")
                return nil
            }
            let weight = probability(weightNode, itemPath + ".weight", default: 0)
            parts.append((weight, distribution(distNode, itemPath + ".dist", default: .constant(0))))
        }
        return try Distribution.mixture(weighted: parts)
    }

    private func describe<T: Comparable>(_ range: ClosedRange<T>) -> String {
        "[\(range.lowerBound), \(range.upperBound)]"
    }
}

/// The known fields of one mapping.
struct Fields {
    let path: String
    let node: YAMLTree
    var values: [String: YAMLTree] = [:]

    init(path: String, node: YAMLTree) {
        self.path = path
        self.node = node
    }

    /// The value of `key`; a key written with no value or `null` reads as absent, so the default applies (and a
    /// variant can remove a policy: `hedging: null`).
    subscript(key: String) -> YAMLTree? {
        guard let value = values[key], !value.isNull else { return nil }
        return value
    }

    /// The key path of a field.
    func path(_ key: String) -> String { path.isEmpty ? key : path + "." + key }
}

extension String {
    /// YAML allows `1_000`; Swift's number parsers do not.
    func replacingUnderscores() -> String { filter { $0 != "_" } }
}
