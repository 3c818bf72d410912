//===----------------------------------------------------------------------===//
// meshsim — SimRandom
//===----------------------------------------------------------------------===//

import SimCore

/// Why a distribution could not be built from its description.
public struct DistributionError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, in words.
    public var message: String
    /// The parameter at fault, when one is (e.g. `p99`).
    public var parameter: String?
    /// A correction to offer, e.g. "did you mean 'lognormal'?".
    public var suggestion: String?

    /// Creates an error.
    public init(_ message: String, parameter: String? = nil, suggestion: String? = nil) {
        self.message = message
        self.parameter = parameter
        self.suggestion = suggestion
    }

    public var description: String {
        var text = message
        if let suggestion { text += " (\(suggestion))" }
        return text
    }
}

extension Distribution {
    /// The kinds of distribution, with the parameter sets each accepts (for messages and docs).
    public static let kinds: [(name: String, forms: String)] = [
        ("constant", "constant:10ms | value"),
        ("uniform", "min, max"),
        ("exponential", "mean"),
        ("normal", "mean, stddev (truncated at 0)"),
        ("lognormal", "median and p99 | median and sigma | mu and sigma (of ln seconds)"),
        ("gamma", "shape with scale or mean"),
        ("weibull", "shape, scale"),
        ("pareto", "shape, scale (the minimum)"),
        ("empirical", "a list of samples (empirical:1ms,2ms,9ms) | a percentile table (p50=5ms,p90=20ms,p99=80ms)"),
        ("mixture", "weight*distribution|weight*distribution (weights sum to 1)"),
    ]

    /// The names of the kinds, for suggestions.
    public static var kindNames: [String] { kinds.map(\.name) }

    /// Reads the compact one-line form: `constant:10ms`, `exponential:mean=1ms`, `lognormal:median=20ms,p99=120ms`,
    /// `empirical:p50=5ms,p90=20ms,p99=80ms`, `mixture:0.99*lognormal:median=20ms,p99=120ms|0.01*constant:500ms`.
    /// A bare duration (`10ms`) means a constant.
    public static func parse(_ text: String) throws(DistributionError) -> Distribution {
        let trimmed = text.trimmingSpaces()
        guard let colon = trimmed.firstIndex(of: ":") else {
            if let value = try? SimDuration(parsing: trimmed) { return .constant(Double(value.nanoseconds)) }
            if isKind(trimmed) { throw DistributionError("'\(trimmed)' needs parameters, e.g. '\(example(trimmed))'") }
            throw DistributionError(
                "'\(trimmed)' is not a distribution (expected KIND:PARAMS such as 'exponential:mean=1ms', or a duration)",
                suggestion: suggestKind(trimmed)
            )
        }
        let kind = String(trimmed[..<colon]).trimmingSpaces().lowercased()
        let body = String(trimmed[trimmed.index(after: colon)...])
        if kind == "mixture" { return try parseMixture(body) }
        var parameters: [(String, String)] = []
        for item in body.split(separator: ",", omittingEmptySubsequences: false) {
            let part = String(item).trimmingSpaces()
            if part.isEmpty { throw DistributionError("empty parameter in '\(trimmed)'") }
            if let eq = part.firstIndex(of: "=") {
                parameters.append(
                    (String(part[..<eq]).trimmingSpaces(), String(part[part.index(after: eq)...]).trimmingSpaces())
                )
            } else {
                parameters.append(("", part))
            }
        }
        return try make(kind: kind, parameters: parameters)
    }

    /// Builds a distribution from its kind and named parameters; a parameter with an empty name is positional
    /// (the value of `constant`, or one sample of `empirical`).
    public static func make(kind: String, parameters: [(String, String)]) throws(DistributionError) -> Distribution {
        var reader = ParameterReader(kind: kind, parameters: parameters)
        let result: Distribution
        switch kind {
        case "constant":
            result = .constant(try reader.positionalOrNamed("value"))
        case "uniform":
            let a = try reader.duration("min")
            let b = try reader.duration("max")
            guard b >= a else { throw DistributionError("uniform needs max ≥ min", parameter: "max") }
            result = .uniform(min: a, max: b)
        case "exponential":
            let m = try reader.duration("mean")
            guard m > 0 else { throw DistributionError("exponential needs mean > 0", parameter: "mean") }
            result = .exponential(mean: m)
        case "normal":
            result = .normal(mean: try reader.duration("mean"), stddev: try reader.duration("stddev"))
        case "lognormal":
            result = try makeLognormal(&reader)
        case "gamma":
            let shape = try reader.number("shape", positive: true)
            let scale: Double
            if reader.has("mean") && reader.has("scale") {
                throw DistributionError("gamma takes 'scale' or 'mean', not both", parameter: "mean")
            }
            if reader.has("mean") {
                let mean = try reader.duration("mean")
                guard mean > 0 else { throw DistributionError("gamma needs mean > 0", parameter: "mean") }
                scale = mean / shape
            } else {
                scale = try reader.duration("scale")
                guard scale > 0 else { throw DistributionError("gamma needs scale > 0", parameter: "scale") }
            }
            result = .gamma(shape: shape, scale: scale)
        case "weibull":
            let shape = try reader.number("shape", positive: true)
            let scale = try reader.duration("scale")
            guard scale > 0 else { throw DistributionError("weibull needs scale > 0", parameter: "scale") }
            result = .weibull(shape: shape, scale: scale)
        case "pareto":
            let shape = try reader.number("shape", positive: true)
            let scale = try reader.duration("scale")
            guard scale > 0 else { throw DistributionError("pareto needs scale > 0", parameter: "scale") }
            result = .pareto(shape: shape, scale: scale)
        case "empirical":
            result = try makeEmpirical(&reader)
        case "mixture":
            throw DistributionError("a mixture is written 'mixture:0.99*DIST|0.01*DIST' or as a list of components")
        default:
            throw DistributionError("unknown distribution '\(kind)'", suggestion: suggestKind(kind))
        }
        try reader.finish()
        return result
    }

    /// Builds a mixture from weights and components, checking that the weights are probabilities summing to 1.
    public static func mixture(weighted parts: [(Double, Distribution)]) throws(DistributionError) -> Distribution {
        guard !parts.isEmpty else { throw DistributionError("a mixture needs at least one component") }
        for (w, _) in parts where !(w >= 0 && w <= 1) {
            throw DistributionError("mixture weight \(w) is not in [0, 1]", parameter: "weight")
        }
        let total = parts.reduce(0.0) { $0 + $1.0 }
        guard abs(total - 1) < 1e-6 else {
            throw DistributionError("mixture weights sum to \(total), not 1", parameter: "weight")
        }
        return .mixture(weights: parts.map(\.0), components: parts.map(\.1))
    }

    // MARK: - Helpers

    private static func parseMixture(_ body: String) throws(DistributionError) -> Distribution {
        var parts: [(Double, Distribution)] = []
        for item in body.split(separator: "|") {
            let text = String(item)
            guard let star = text.firstIndex(of: "*") else {
                throw DistributionError("mixture component '\(text.trimmingSpaces())' needs a weight: 'WEIGHT*DIST'")
            }
            let weightText = String(text[..<star]).trimmingSpaces()
            guard let weight = Double(weightText), weight.isFinite else {
                throw DistributionError("mixture weight '\(weightText)' is not a number", parameter: "weight")
            }
            let component = try parse(String(text[text.index(after: star)...]))
            parts.append((weight, component))
        }
        return try mixture(weighted: parts)
    }

    private static func makeLognormal(_ reader: inout ParameterReader) throws(DistributionError) -> Distribution {
        if reader.has("mu") || (!reader.has("median") && reader.has("sigma")) {
            let mu = try reader.number("mu")
            let sigma = try reader.number("sigma", positive: false)
            guard sigma >= 0 else { throw DistributionError("lognormal needs sigma ≥ 0", parameter: "sigma") }
            // mu and sigma describe ln(value in seconds); the model works in nanoseconds.
            return .lognormal(mu: mu + _log(1e9), sigma: sigma)
        }
        let median = try reader.duration("median")
        guard median > 0 else { throw DistributionError("lognormal needs median > 0", parameter: "median") }
        if reader.has("sigma") {
            let sigma = try reader.number("sigma", positive: false)
            guard sigma >= 0 else { throw DistributionError("lognormal needs sigma ≥ 0", parameter: "sigma") }
            return .lognormal(mu: _log(median), sigma: sigma)
        }
        let p99 = try reader.duration("p99")
        guard p99 >= median else { throw DistributionError("lognormal needs p99 ≥ median", parameter: "p99") }
        // ln(p99) = mu + z(0.99)·sigma, z(0.99) = 2.3263478740408408.
        return .lognormal(mu: _log(median), sigma: (_log(p99) - _log(median)) / 2.3263478740408408)
    }

    private static func makeEmpirical(_ reader: inout ParameterReader) throws(DistributionError) -> Distribution {
        let positional = reader.takePositional()
        if !positional.isEmpty {
            var samples: [Double] = []
            for text in positional {
                samples.append(try durationValue(text, parameter: "samples"))
            }
            return .samples(samples)
        }
        var points: [(percentile: Double, value: Double)] = []
        for (key, value) in reader.takeAll(where: { $0.hasPrefix("p") && Double($0.dropFirst()) != nil }) {
            let p = Double(key.dropFirst())!
            guard p > 0 && p < 100 else {
                throw DistributionError("percentile \(key) must lie strictly between p0 and p100", parameter: key)
            }
            points.append((p, try durationValue(value, parameter: key)))
        }
        guard !points.isEmpty else {
            throw DistributionError("empirical needs samples (empirical:1ms,2ms) or percentiles (p50=5ms,p99=80ms)")
        }
        points.sort { $0.percentile < $1.percentile }
        for i in 1..<points.count
        where points[i].value < points[i - 1].value || points[i].percentile == points[i - 1].percentile {
            let name = keyName(points[i].percentile)
            throw DistributionError(
                points[i].percentile == points[i - 1].percentile
                    ? "percentile \(name) is given twice"
                    : "percentile values must not decrease as the percentile grows (\(name) is below \(keyName(points[i - 1].percentile)))",
                parameter: name
            )
        }
        let low = reader.has("min") ? try reader.duration("min") : 0
        guard low <= points[0].value else {
            throw DistributionError("min exceeds the first percentile", parameter: "min")
        }
        let high: Double
        if reader.has("max") {
            high = try reader.duration("max")
            guard high >= points[points.count - 1].value else {
                throw DistributionError("max is below the last percentile", parameter: "max")
            }
        } else if points.count >= 2 {
            // Extend the last segment's slope to p100.
            let a = points[points.count - 2]
            let b = points[points.count - 1]
            high = b.value + (b.value - a.value) / (b.percentile - a.percentile) * (100 - b.percentile)
        } else {
            high = points[0].value
        }
        return .percentiles([(0, low)] + points + [(100, high)])
    }

    /// `p90` for 90, `p99.9` for 99.9.
    private static func keyName(_ percentile: Double) -> String {
        percentile == percentile.rounded() ? "p\(Int(percentile))" : "p\(percentile)"
    }

    static func durationValue(_ text: String, parameter: String) throws(DistributionError) -> Double {
        do {
            return Double(try SimDuration(parsing: text).nanoseconds)
        } catch {
            throw DistributionError("\(parameter): \(error)", parameter: parameter)
        }
    }

    private static func isKind(_ text: String) -> Bool { kindNames.contains(text.lowercased()) }

    private static func example(_ kind: String) -> String {
        switch kind.lowercased() {
        case "constant": return "constant:10ms"
        case "uniform": return "uniform:min=1ms,max=3ms"
        case "exponential": return "exponential:mean=1ms"
        case "normal": return "normal:mean=10ms,stddev=2ms"
        case "lognormal": return "lognormal:median=20ms,p99=120ms"
        case "gamma": return "gamma:shape=2,mean=10ms"
        case "weibull": return "weibull:shape=1.5,scale=10ms"
        case "pareto": return "pareto:shape=2.5,scale=1ms"
        case "empirical": return "empirical:p50=5ms,p90=20ms,p99=80ms"
        default: return "mixture:0.99*lognormal:median=20ms,p99=120ms|0.01*constant:500ms"
        }
    }

    private static func suggestKind(_ text: String) -> String? {
        let word = text.split(separator: ":").first.map(String.init) ?? text
        return closestName(to: word.lowercased(), among: kindNames).map { "did you mean '\($0)'?" }
    }
}

/// Takes named parameters one by one and reports any left over as unknown.
struct ParameterReader {
    let kind: String
    var remaining: [(String, String)]

    init(kind: String, parameters: [(String, String)]) {
        self.kind = kind
        self.remaining = parameters
    }

    func has(_ name: String) -> Bool { remaining.contains { $0.0 == name } }

    mutating func take(_ name: String) throws(DistributionError) -> String {
        guard let i = remaining.firstIndex(where: { $0.0 == name }) else {
            let known = Self.parameterNames[kind] ?? []
            let strangers = remaining.map(\.0).filter { !$0.isEmpty && !known.contains($0) }
            throw DistributionError(
                "\(kind) needs '\(name)'"
                    + (strangers.isEmpty
                        ? "" : "; '\(strangers.joined(separator: "', '"))' is not one of its parameters"),
                parameter: name,
                suggestion: strangers.first.flatMap { closestName(to: $0, among: known) }.map {
                    "did you mean '\($0)'?"
                }
            )
        }
        let value = remaining[i].1
        remaining.remove(at: i)
        if remaining.contains(where: { $0.0 == name }) {
            throw DistributionError("'\(name)' is given twice", parameter: name)
        }
        return value
    }

    mutating func duration(_ name: String) throws(DistributionError) -> Double {
        try Distribution.durationValue(try take(name), parameter: name)
    }

    mutating func number(_ name: String, positive: Bool = false) throws(DistributionError) -> Double {
        let text = try take(name)
        guard let value = Double(text), value.isFinite else {
            throw DistributionError("\(name) must be a number, not '\(text)'", parameter: name)
        }
        if positive && !(value > 0) { throw DistributionError("\(name) must be > 0", parameter: name) }
        return value
    }

    mutating func positionalOrNamed(_ name: String) throws(DistributionError) -> Double {
        if has(name) { return try duration(name) }
        let positional = takePositional()
        guard positional.count == 1 else {
            throw DistributionError("\(kind) needs exactly one value, e.g. '\(kind):10ms'", parameter: name)
        }
        return try Distribution.durationValue(positional[0], parameter: name)
    }

    mutating func takePositional() -> [String] {
        let values = remaining.filter { $0.0.isEmpty }.map(\.1)
        remaining.removeAll { $0.0.isEmpty }
        return values
    }

    mutating func takeAll(where match: (String) -> Bool) -> [(String, String)] {
        let taken = remaining.filter { match($0.0) }
        remaining.removeAll { match($0.0) }
        return taken
    }

    func finish() throws(DistributionError) {
        guard let (name, value) = remaining.first else { return }
        if name.isEmpty {
            throw DistributionError("\(kind) takes named parameters; '\(value)' has no name")
        }
        let known = Self.parameterNames[kind] ?? []
        throw DistributionError(
            "\(kind) has no parameter '\(name)'",
            parameter: name,
            suggestion: closestName(to: name, among: known).map { "did you mean '\($0)'?" }
        )
    }

    static let parameterNames: [String: [String]] = [
        "constant": ["value"], "uniform": ["min", "max"], "exponential": ["mean"], "normal": ["mean", "stddev"],
        "lognormal": ["median", "p99", "mu", "sigma"], "gamma": ["shape", "scale", "mean"],
        "weibull": ["shape", "scale"], "pareto": ["shape", "scale"], "empirical": ["min", "max", "p50", "p90", "p99"],
    ]
}
