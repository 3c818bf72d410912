//===----------------------------------------------------------------------===//
// meshsim — SimRandom
//===----------------------------------------------------------------------===//

import SimCore

/// A distribution of durations (service times, network delays, think times, pauses), sampled with GSL.
///
/// Parameters are held in nanoseconds as `Double`; a draw is rounded to integer nanoseconds and never negative.
/// Build one from text with ``Distribution/parse(_:)`` (`constant:10ms`, `lognormal:median=20ms,p99=120ms`, …) or
/// from its parts with ``Distribution/make(kind:parameters:)``.
public enum Distribution: Sendable, Equatable {
    /// Always the same value.
    case constant(Double)
    /// Uniform on [min, max].
    case uniform(min: Double, max: Double)
    /// Exponential with the given mean.
    case exponential(mean: Double)
    /// Normal with the given mean and standard deviation, truncated at 0 (negative draws are redrawn).
    case normal(mean: Double, stddev: Double)
    /// Lognormal: `exp(N(mu, sigma))` nanoseconds.
    case lognormal(mu: Double, sigma: Double)
    /// Gamma with the given shape and scale.
    case gamma(shape: Double, scale: Double)
    /// Weibull with the given shape and scale.
    case weibull(shape: Double, scale: Double)
    /// Pareto with the given shape and scale (the minimum).
    case pareto(shape: Double, scale: Double)
    /// A mixture: component `i` is drawn with probability `weights[i]` (weights sum to 1).
    case mixture(weights: [Double], components: [Distribution])
    /// An empirical distribution: one of the recorded samples, each equally likely.
    case samples([Double])
    /// An empirical distribution given as a percentile table: the quantile function interpolated linearly between
    /// the points `(percentile in [0, 100], value)`, which start at percentile 0 and end at 100.
    case percentiles([(percentile: Double, value: Double)])

    public static func == (lhs: Distribution, rhs: Distribution) -> Bool {
        switch (lhs, rhs) {
        case (.constant(let a), .constant(let b)): return a == b
        case (.uniform(let a, let b), .uniform(let c, let d)): return a == c && b == d
        case (.exponential(let a), .exponential(let b)): return a == b
        case (.normal(let a, let b), .normal(let c, let d)): return a == c && b == d
        case (.lognormal(let a, let b), .lognormal(let c, let d)): return a == c && b == d
        case (.gamma(let a, let b), .gamma(let c, let d)): return a == c && b == d
        case (.weibull(let a, let b), .weibull(let c, let d)): return a == c && b == d
        case (.pareto(let a, let b), .pareto(let c, let d)): return a == c && b == d
        case (.mixture(let a, let b), .mixture(let c, let d)): return a == c && b == d
        case (.samples(let a), .samples(let b)): return a == b
        case (.percentiles(let a), .percentiles(let b)):
            return a.count == b.count && zip(a, b).allSatisfy { $0.percentile == $1.percentile && $0.value == $1.value }
        default: return false
        }
    }

    /// Whether every draw is exactly zero, so a model can skip sampling and scheduling entirely.
    public var isAlwaysZero: Bool {
        if case .constant(let v) = self { return v == 0 }
        return false
    }

    /// The mean of the distribution in nanoseconds, where it is finite (`nil` otherwise, e.g. Pareto with shape ≤ 1).
    public var mean: Double? {
        switch self {
        case .constant(let v): return v
        case .uniform(let a, let b): return (a + b) / 2
        case .exponential(let m): return m
        case .normal(let m, let s):
            // Mean of a normal truncated below at 0.
            if s == 0 { return max(m, 0) }
            let alpha = -m / s
            let phi = _stdNormalPDF(alpha)
            let tail = 1 - _stdNormalCDF(alpha)
            return tail > 0 ? m + s * phi / tail : 0
        case .lognormal(let mu, let sigma): return _exp(mu + sigma * sigma / 2)
        case .gamma(let k, let theta): return k * theta
        case .weibull(let k, let lambda): return lambda * _gammaFunction(1 + 1 / k)
        case .pareto(let a, let xm): return a > 1 ? a * xm / (a - 1) : nil
        case .mixture(let w, let c):
            var total = 0.0
            for (wi, ci) in zip(w, c) {
                guard let m = ci.mean else { return nil }
                total += wi * m
            }
            return total
        case .samples(let s): return s.isEmpty ? 0 : s.reduce(0, +) / Double(s.count)
        case .percentiles(let points):
            var total = 0.0
            for i in 1..<points.count {
                let dp = (points[i].percentile - points[i - 1].percentile) / 100
                total += dp * (points[i].value + points[i - 1].value) / 2
            }
            return total
        }
    }

    /// One draw, in nanoseconds (never negative).
    ///
    /// - Complexity: O(1), except O(log n) for percentile tables and O(k) for a mixture of k components.
    public func sample(using stream: RandomStream) -> Int64 {
        let value: Double
        switch self {
        case .constant(let v): value = v
        case .uniform(let a, let b): value = a + (b - a) * stream.uniform()
        case .exponential(let m): value = stream.exponential(mean: m)
        case .normal(let m, let s):
            var draw = m + stream.gaussian(sigma: s)
            var tries = 0
            while draw < 0 && tries < 64 {
                draw = m + stream.gaussian(sigma: s)
                tries += 1
            }
            value = max(draw, 0)
        case .lognormal(let mu, let sigma): value = stream.lognormal(mu: mu, sigma: sigma)
        case .gamma(let k, let theta): value = stream.gamma(shape: k, scale: theta)
        case .weibull(let k, let lambda): value = stream.weibull(shape: k, scale: lambda)
        case .pareto(let a, let xm): value = stream.pareto(shape: a, scale: xm)
        case .mixture(let weights, let components):
            let u = stream.uniform()
            var cumulative = 0.0
            var chosen = components.count - 1
            for i in 0..<weights.count {
                cumulative += weights[i]
                if u < cumulative {
                    chosen = i
                    break
                }
            }
            return components[chosen].sample(using: stream)
        case .samples(let s): value = s[stream.uniformInt(below: s.count)]
        case .percentiles(let points): value = Distribution.quantile(points, at: stream.uniform() * 100)
        }
        return clampToNanoseconds(max(value, 0))
    }

    /// The value of a percentile table at percentile `p`, interpolating linearly.
    static func quantile(_ points: [(percentile: Double, value: Double)], at p: Double) -> Double {
        var lo = 0
        var hi = points.count - 1
        while hi - lo > 1 {
            let mid = (lo + hi) / 2
            if points[mid].percentile <= p { lo = mid } else { hi = mid }
        }
        let a = points[lo]
        let b = points[hi]
        let span = b.percentile - a.percentile
        if span <= 0 { return b.value }
        return a.value + (b.value - a.value) * (p - a.percentile) / span
    }
}
