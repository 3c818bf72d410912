//===----------------------------------------------------------------------===//
// meshsim — Scenario
//===----------------------------------------------------------------------===//

import Foundation
public import MeshModel
public import SimCore
import Yams

/// A loaded, validated scenario: the base mesh, its variants, and how to run and rank them.
public struct Scenario: Sendable {
    /// One variant: a name and the mesh with its overrides applied.
    public struct Variant: Sendable {
        /// The variant's name (`base` when the file defines none).
        public var name: String
        /// What the variant changes, in words.
        public var description: String
        /// The resolved mesh.
        public var spec: MeshSpec
    }

    /// The scenario's name.
    public var name: String
    /// What the scenario models.
    public var description: String
    /// The file it was read from.
    public var file: String
    /// The file's text (hashed into `run.json`).
    public var source: String
    /// The first replication's seed; replication `i` uses `seed + i`.
    public var seed: UInt64
    /// How many replications (seeds) per variant.
    public var seeds: Int
    /// The metric that ranks variants in `comparison.csv`.
    public var rankBy: String
    /// The variants, in file order.
    public var variants: [Variant]

    /// Metrics a scenario may rank by, and whether larger is better.
    public static let rankMetrics: [(name: String, higherIsBetter: Bool)] = [
        ("success_rate", true), ("goodput_rps", true), ("mean_ms", false), ("p50_ms", false), ("p90_ms", false),
        ("p99_ms", false), ("p999_ms", false), ("max_ms", false), ("attempts_per_request", false),
    ]

    /// Loads and validates the scenario at `path`.
    ///
    /// - Throws: ``ScenarioValidationFailure`` listing every problem found.
    public static func load(path: String) throws -> Scenario {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ScenarioValidationFailure(errors: [
                ScenarioError(
                    .unreadable,
                    file: path,
                    keyPath: "",
                    message: "cannot read the file: \(error.localizedDescription)"
                )
            ])
        }
        return try parse(text, file: path)
    }

    /// Parses and validates scenario text; `file` names it in messages.
    ///
    /// - Throws: ``ScenarioValidationFailure`` listing every problem found.
    public static func parse(_ text: String, file: String) throws -> Scenario {
        let tree: YAMLTree
        do {
            guard let parsed = try YAMLTree.parse(text) else {
                throw ScenarioValidationFailure(errors: [
                    ScenarioError(
                        .syntax,
                        file: file,
                        line: 1,
                        column: 1,
                        keyPath: "",
                        message: "the file is empty: a scenario needs at least 'duration', 'services' and 'clients'"
                    )
                ])
            }
            tree = parsed
        } catch let failure as ScenarioValidationFailure {
            throw failure
        } catch {
            throw ScenarioValidationFailure(errors: [syntaxError(error, file: file)])
        }
        var decoder = ScenarioDecoder(file: file)
        let scenario = decoder.decode(tree, source: text)
        guard decoder.reader.errors.isEmpty, let scenario else {
            // In file order; problems without a position (rare) come last, in the order found.
            let ordered = decoder.reader.errors.enumerated().sorted { a, b in
                let ka = (a.element.line ?? Int.max, a.element.column ?? Int.max, a.offset)
                let kb = (b.element.line ?? Int.max, b.element.column ?? Int.max, b.offset)
                return ka < kb
            }
            throw ScenarioValidationFailure(errors: ordered.map(\.element))
        }
        return scenario
    }

    /// Turns a YAML parser error into a located scenario error.
    static func syntaxError(_ error: any Error, file: String) -> ScenarioError {
        if case .duplicatedKeysInMapping(let duplicates, let context) = error as? YamlError {
            return ScenarioError(
                .duplicate,
                file: file,
                line: context.mark.line,
                column: context.mark.column,
                keyPath: "",
                message: "key '\(duplicates.joined(separator: "', '"))' is given twice in one mapping (\(context.text))"
            )
        }
        let text = String(describing: error)
        // Yams describes errors as "<line>:<column>: error: <kind>: <problem>" followed by a snippet.
        let firstLine = text.split(separator: "\n", maxSplits: 1).first.map(String.init) ?? text
        let parts = firstLine.split(separator: ":", maxSplits: 2)
        if parts.count == 3, let line = Int(parts[0]), let column = Int(parts[1]) {
            var message = String(parts[2]).trimmingCharacters(in: .whitespaces)
            if message.hasPrefix("error: ") { message.removeFirst(7) }
            return ScenarioError(
                .syntax,
                file: file,
                line: line,
                column: column,
                keyPath: "",
                message: "invalid YAML: " + message
            )
        }
        return ScenarioError(.syntax, file: file, keyPath: "", message: "invalid YAML: " + firstLine)
    }

    /// Keeps only the named variants.
    ///
    /// - Throws: ``ScenarioValidationFailure`` naming an unknown variant, with a suggestion.
    public func selecting(variants names: [String]) throws -> Scenario {
        guard !names.isEmpty else { return self }
        let known = variants.map(\.name)
        var errors: [ScenarioError] = []
        for name in names where !known.contains(name) {
            errors.append(
                ScenarioError(
                    .danglingReference,
                    file: file,
                    keyPath: "variants",
                    message: "no variant named '\(name)' (variants: \(known.joined(separator: ", ")))",
                    suggestion: closestName(to: name, among: known).map { "did you mean '\($0)'?" }
                )
            )
        }
        if !errors.isEmpty { throw ScenarioValidationFailure(errors: errors) }
        var copy = self
        copy.variants = variants.filter { names.contains($0.name) }
        return copy
    }

    /// The scenario with every variant's duration replaced (the warm-up is shortened to fit).
    public func withDuration(_ duration: SimDuration) -> Scenario {
        var copy = self
        for i in copy.variants.indices {
            copy.variants[i].spec.duration = duration
            if copy.variants[i].spec.warmup >= duration { copy.variants[i].spec.warmup = .zero }
        }
        return copy
    }
}
