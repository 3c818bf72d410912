//===----------------------------------------------------------------------===//
// meshsim — Live
//===----------------------------------------------------------------------===//

import SimCore
public import Spec

/// An arrival rate over time (requests per second as a function of nanoseconds since the start), piecewise linear,
/// with its integral Λ(t) and the inverse Λ⁻¹ used to place open-loop arrivals.
///
/// Arrival k of a constant-spaced schedule is at Λ⁻¹(k); a Poisson schedule places arrivals at Λ⁻¹ of a unit-rate
/// Poisson process (a non-homogeneous Poisson process by inversion), so steps, ramps and load spikes need no
/// thinning and no per-arrival search beyond the current piece.
public struct RateSchedule: Sendable, Equatable {
    /// A piece on which the rate is `rate + slope·(t − start)` (per second, t in ns).
    struct Piece: Sendable, Equatable {
        var start: Int64
        var rate: Double
        var slope: Double
        /// Λ at `start` (expected arrivals before the piece).
        var cumulative: Double
    }

    private(set) var pieces: [Piece]

    /// A constant rate.
    public init(constant rate: Double) {
        pieces = [Piece(start: 0, rate: max(rate, 0), slope: 0, cumulative: 0)]
    }

    /// The schedule of `points` (steps, or ramps to the next point), multiplied by `factor` inside each spike window.
    public init(points: [RatePoint], spikes: [(start: Int64, end: Int64, factor: Double)] = []) {
        let sorted = points.sorted { $0.at < $1.at }
        func base(at t: Int64) -> (rate: Double, slope: Double) {
            var current: (Double, Double) = (0, 0)
            for (i, point) in sorted.enumerated() where point.at.nanoseconds <= t {
                if point.ramp, i + 1 < sorted.count, sorted[i + 1].at.nanoseconds > point.at.nanoseconds {
                    let next = sorted[i + 1]
                    let slope = (next.rate - point.rate) / Double(next.at.nanoseconds - point.at.nanoseconds)
                    current = (point.rate + slope * Double(t - point.at.nanoseconds), slope)
                } else {
                    current = (point.rate, 0)
                }
            }
            return current
        }
        var breaks = Set<Int64>([0])
        for point in sorted { breaks.insert(max(0, point.at.nanoseconds)) }
        for spike in spikes {
            breaks.insert(max(0, spike.start))
            breaks.insert(max(0, spike.end))
        }
        var result: [Piece] = []
        var cumulative = 0.0
        for start in breaks.sorted() {
            if let last = result.last {
                let width = Double(start - last.start)
                cumulative += (last.rate * width + last.slope * width * width / 2) / 1e9
            }
            var (rate, slope) = base(at: start)
            for spike in spikes where spike.start <= start && start < spike.end {
                rate *= spike.factor
                slope *= spike.factor
            }
            result.append(Piece(start: start, rate: max(rate, 0), slope: slope, cumulative: cumulative))
        }
        pieces = result
    }

    /// The rate at `t` nanoseconds.
    public func rate(at t: Int64) -> Double {
        guard let piece = pieces.last(where: { $0.start <= t }) else { return 0 }
        return max(0, piece.rate + piece.slope * Double(t - piece.start))
    }

    /// Λ(t): expected arrivals in [0, t).
    public func cumulative(at t: Int64) -> Double {
        guard let piece = pieces.last(where: { $0.start <= t }) else { return 0 }
        let x = Double(t - piece.start)
        return piece.cumulative + (piece.rate * x + piece.slope * x * x / 2) / 1e9
    }

    /// Λ⁻¹(λ): the time (ns) at which `λ` arrivals are expected, or `nil` if never (the rate stays 0).
    ///
    /// `hint` is the index of the piece to start from; it is updated, so increasing queries cost O(1) amortised.
    /// - Complexity: O(1) amortised for increasing λ with a kept hint; no allocation.
    public func inverse(_ lambda: Double, hint: inout Int) -> Int64? {
        var i = min(max(hint, 0), pieces.count - 1)
        while i > 0 && pieces[i].cumulative > lambda { i -= 1 }
        while i + 1 < pieces.count && pieces[i + 1].cumulative <= lambda { i += 1 }
        hint = i
        let piece = pieces[i]
        let need = (lambda - piece.cumulative) * 1e9
        if need <= 0 { return piece.start }
        let x: Double
        if abs(piece.slope) < 1e-30 {
            guard piece.rate > 0 else { return nil }
            x = need / piece.rate
        } else {
            var discriminant = piece.rate * piece.rate + 2 * piece.slope * need
            // Rounding can leave a tiny negative value where the ramp reaches exactly the needed count.
            if discriminant < 0 && discriminant > -1e-9 * max(piece.rate * piece.rate, 1) { discriminant = 0 }
            guard discriminant >= 0 else { return nil }
            x = (discriminant.squareRoot() - piece.rate) / piece.slope
        }
        guard x.isFinite, x >= 0, x < 9e18 - Double(piece.start) else { return nil }
        return piece.start + Int64(x)
    }
}
