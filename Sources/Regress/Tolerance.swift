//===----------------------------------------------------------------------===//
// meshsim — Regress
//===----------------------------------------------------------------------===//

import Foundation
import Yams

/// Which way a metric gets better.
public enum Direction: String, Sendable {
    /// Higher is better (success rate, goodput).
    case higherIsBetter = "higher"
    /// Lower is better (latencies, attempts, rejections).
    case lowerIsBetter = "lower"
}

/// How far a metric may move the wrong way before it counts as worse.
public struct Tolerance: Sendable, Equatable, CustomStringConvertible {
    /// The kinds of allowance.
    public enum Kind: Sendable, Equatable {
        /// A share of the baseline value: 0.05 is 5%.
        case relative(Double)
        /// An amount in the metric's own unit (ms, requests/s, …).
        case absolute(Double)
        /// Percentage points of a rate held as a fraction (`success_rate`): 0.1pt is 0.001.
        case points(Double)
    }

    /// The allowance.
    public var kind: Kind

    /// Creates a tolerance.
    public init(kind: Kind) {
        self.kind = kind
    }

    /// The largest move the wrong way (or the right way, for an improvement) that does not count, from `baseline`.
    public func allowance(from baseline: Double) -> Double {
        switch kind {
        case .relative(let share): return abs(baseline) * share
        case .absolute(let amount): return amount
        case .points(let points): return points / 100
        }
    }

    public var description: String {
        switch kind {
        case .relative(let share): return Self.number(share * 100) + "%"
        case .absolute(let amount): return Self.number(amount)
        case .points(let points): return Self.number(points) + "pt"
        }
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    /// Parses `+5%`, `5%`, `0.5`, `+2`, `-0.1pt`, `1pt` for `metric`. A sign must point the way the metric gets
    /// worse (`+` for a latency, `-` for a success rate); no sign means the same.
    ///
    /// - Throws: a sentence naming the metric when the text is malformed or its sign points the better way.
    public static func parse(_ text: String, metric: String, direction: Direction) throws(ToleranceError) -> Tolerance {
        var body = Substring(text.trimmingCharacters(in: .whitespaces))
        var sign: Character?
        if let first = body.first, first == "+" || first == "-" {
            sign = first
            body = body.dropFirst()
        }
        if let sign {
            let worse: Character = direction == .lowerIsBetter ? "+" : "-"
            if sign != worse {
                let way = direction == .lowerIsBetter ? "rises" : "falls"
                throw ToleranceError(
                    "\(metric): '\(text)' points the better way; \(metric) gets worse when it \(way), write \(worse)\(body)"
                )
            }
        }
        var kind: (Double) -> Kind = { .absolute($0) }
        if body.hasSuffix("%") {
            body = body.dropLast()
            kind = { .relative($0 / 100) }
        } else if body.hasSuffix("pt") {
            body = body.dropLast(2)
            kind = { .points($0) }
        }
        guard let value = Double(body), value.isFinite, value >= 0 else {
            throw ToleranceError(
                "\(metric): '\(text)' is not a tolerance; write a share (5%), an amount in the metric's unit (0.5) or percentage points of a rate (0.1pt)"
            )
        }
        return Tolerance(kind: kind(value))
    }
}

/// A tolerance that cannot be read.
public struct ToleranceError: Error, CustomStringConvertible, Equatable {
    /// The sentence.
    public var description: String
    init(_ description: String) { self.description = description }
}

/// The metrics `regress` knows, the way each gets better, and the default tolerances.
public enum RegressMetrics {
    /// Every metric of `summary.csv` that has a better direction.
    public static let directions: [String: Direction] = [
        "success_rate": .higherIsBetter, "goodput_rps": .higherIsBetter, "ok": .higherIsBetter,
        "mean_ms": .lowerIsBetter, "p50_ms": .lowerIsBetter, "p90_ms": .lowerIsBetter, "p99_ms": .lowerIsBetter,
        "p999_ms": .lowerIsBetter, "max_ms": .lowerIsBetter, "attempts_per_request": .lowerIsBetter,
        "failed": .lowerIsBetter, "timed_out": .lowerIsBetter, "rejected": .lowerIsBetter,
        "unfinished": .lowerIsBetter, "retries": .lowerIsBetter, "retries_denied": .lowerIsBetter,
        "ejections": .lowerIsBetter, "breaker_opens": .lowerIsBetter, "breaker_rejections": .lowerIsBetter,
        "limiter_rejections": .lowerIsBetter, "retry_amplification": .lowerIsBetter,
        "authz_denials": .lowerIsBetter, "tls_handshakes": .lowerIsBetter, "hedges_sent": .lowerIsBetter,
        "attempts_all_edges": .lowerIsBetter, "utilization": .lowerIsBetter,
    ]

    /// The metrics checked when no tolerance is given for them, with their tolerances: success within 0.1
    /// percentage point, goodput within 1%, median and tail latency within 5%.
    public static let defaults: [(metric: String, tolerance: Tolerance)] = [
        ("success_rate", Tolerance(kind: .points(0.1))),
        ("goodput_rps", Tolerance(kind: .relative(0.01))),
        ("p50_ms", Tolerance(kind: .relative(0.05))),
        ("p99_ms", Tolerance(kind: .relative(0.05))),
    ]

    /// The tolerances to check: the defaults, then a YAML file's (`metric: 5%`, `metric: off` to drop one), then
    /// `overrides` (`metric=5%`), later ones replacing earlier ones; in a fixed order (the defaults', then by name).
    ///
    /// - Throws: ``ToleranceError`` naming the file, key or flag at fault.
    public static func resolve(file: String?, overrides: [String]) throws(ToleranceError) -> [(
        metric: String, tolerance: Tolerance
    )] {
        var chosen: [String: Tolerance?] = [:]
        for (metric, tolerance) in defaults { chosen[metric] = tolerance }
        if let file {
            for (metric, text) in try read(file: file) { try set(metric, text, in: &chosen, source: file) }
        }
        for flag in overrides {
            guard let equals = flag.firstIndex(of: "=") else {
                throw ToleranceError("--tolerance '\(flag)': write METRIC=TOLERANCE, e.g. p99_ms=+5%")
            }
            try set(
                String(flag[..<equals]).trimmingCharacters(in: .whitespaces),
                String(flag[flag.index(after: equals)...]),
                in: &chosen,
                source: "--tolerance"
            )
        }
        let order =
            defaults.map(\.metric)
            + chosen.keys.filter { name in !defaults.contains { $0.metric == name } }
            .sorted()
        return order.compactMap { metric in chosen[metric].flatMap { $0 }.map { (metric, $0) } }
    }

    private static func set(
        _ metric: String,
        _ text: String,
        in chosen: inout [String: Tolerance?],
        source: String
    ) throws(ToleranceError) {
        guard let direction = directions[metric] else {
            let known = directions.keys.sorted().joined(separator: ", ")
            throw ToleranceError("\(source): unknown metric '\(metric)' (one of: \(known))")
        }
        if text.trimmingCharacters(in: .whitespaces) == "off" {
            chosen[metric] = .some(nil)
            return
        }
        do {
            chosen[metric] = try Tolerance.parse(text, metric: metric, direction: direction)
        } catch {
            throw ToleranceError("\(source): \(error.description)")
        }
    }

    /// The `metric: tolerance` pairs of a YAML file, in file order.
    static func read(file: String) throws(ToleranceError) -> [(String, String)] {
        guard let data = FileManager.default.contents(atPath: file), data.count <= 1 << 20,
            let text = String(data: data, encoding: .utf8)
        else { throw ToleranceError("\(file): cannot be read (or over 1 MiB, or not UTF-8)") }
        let node: Node?
        do { node = try Yams.compose(yaml: text) } catch {
            throw ToleranceError("\(file): not YAML: \(error)")
        }
        guard let node else { return [] }
        guard case .mapping(let mapping) = node else {
            throw ToleranceError("\(file): expected a mapping of metric names to tolerances (p99_ms: +5%)")
        }
        var pairs: [(String, String)] = []
        for (key, value) in mapping {
            guard let name = key.string, let text = value.string else {
                let line = key.mark.map { ":\($0.line)" } ?? ""
                throw ToleranceError("\(file)\(line): each entry is METRIC: TOLERANCE, e.g. p99_ms: +5%")
            }
            if pairs.contains(where: { $0.0 == name }) {
                throw ToleranceError("\(file)\(key.mark.map { ":\($0.line)" } ?? ""): '\(name)' appears twice")
            }
            pairs.append((name, text))
        }
        return pairs
    }
}
