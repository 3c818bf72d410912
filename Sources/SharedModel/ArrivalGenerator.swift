//===----------------------------------------------------------------------===//
// meshsim — SharedModel
//===----------------------------------------------------------------------===//

import SimCore
public import SimRandom
public import Spec

/// A load spike: the rate is multiplied by `factor` from `start` until `end` (ns; `nil`: to the end of the run).
public struct LoadSpike: Sendable, Equatable {
    /// When the spike begins.
    public var start: Int64
    /// When it ends, if it does.
    public var end: Int64?
    /// The rate multiplier.
    public var factor: Double

    /// A spike of `factor` over [start, end).
    public init(start: Int64, end: Int64?, factor: Double) {
        self.start = start
        self.end = end
        self.factor = factor
    }
}

/// An open-loop client's offered rate over time: a schedule of steps and ramps, times any load spikes, and the
/// spacing of arrivals (Poisson or constant). The one description of offered load for simulated clients and `load`.
public struct ArrivalSchedule: Sendable, Equatable {
    /// Exponential (Poisson) or even spacing.
    public var process: ArrivalProcess
    /// The rate points, in time order (from each point's `at`, its rate; ramps move linearly to the next point).
    public var points: [RatePoint]
    /// Load spikes.
    public var spikes: [LoadSpike]

    /// A schedule of `points` (sorted by time here) with `spikes`.
    public init(process: ArrivalProcess, points: [RatePoint], spikes: [LoadSpike] = []) {
        self.process = process
        self.points = points.enumerated().sorted { ($0.element.at, $0.offset) < ($1.element.at, $1.offset) }
            .map(\.element)
        self.spikes = spikes
    }

    /// One rate from the start.
    public init(process: ArrivalProcess, rate: Double) {
        self.init(process: process, points: [RatePoint(at: .zero, rate: rate)])
    }

    /// The open-loop schedule of client `client` of `spec`, with the `load_spike` faults aimed at it; `nil` for a
    /// closed-loop client.
    public init?(client: Int, of spec: MeshSpec) {
        guard case .open(let process, let points) = spec.clients[client].load else { return nil }
        var spikes: [LoadSpike] = []
        for fault in spec.faults {
            if case .loadSpike(let target, let factor) = fault.kind, target == client {
                spikes.append(LoadSpike(start: fault.at.nanoseconds, end: fault.end, factor: factor))
            }
        }
        self.init(process: process, points: points, spikes: spikes)
    }

    /// The rate (per second) at `time`: the schedule's, times every spike active then.
    ///
    /// - Complexity: O(points + spikes).
    public func rate(at time: Int64) -> Double {
        var base = 0.0
        if let i = points.lastIndex(where: { $0.at.nanoseconds <= time }) {
            let point = points[i]
            base = point.rate
            if point.ramp, i + 1 < points.count {
                let next = points[i + 1]
                let span = Double(next.at.nanoseconds - point.at.nanoseconds)
                if span > 0 { base += (next.rate - point.rate) * Double(time - point.at.nanoseconds) / span }
            }
        }
        for spike in spikes where spike.start <= time && (spike.end.map { time < $0 } ?? true) {
            base *= spike.factor
        }
        return base
    }

    /// The expected number of arrivals in [from, to): the integral of the rate.
    ///
    /// The rate is linear between the schedule's points and the spikes' edges, so each such piece integrates
    /// exactly as its midpoint rate times its width.
    /// - Complexity: O((points + spikes)²).
    public func expectedArrivals(from: Int64, to: Int64) -> Double {
        guard to > from else { return 0 }
        var edges = [from, to]
        for point in points { edges.append(point.at.nanoseconds) }
        for spike in spikes {
            edges.append(spike.start)
            if let end = spike.end { edges.append(end) }
        }
        let cuts = Set(edges.filter { $0 >= from && $0 <= to }).sorted()
        var total = 0.0
        for (a, b) in zip(cuts, cuts.dropFirst()) {
            total += rate(at: a + (b - a) / 2) * Double(b - a) / 1e9
        }
        return total
    }

    /// The highest rate ever reached: the schedule's peak times every spike above 1 (they could overlap it).
    public var peakRate: Double {
        var peak = points.map(\.rate).max() ?? 0
        for spike in spikes where spike.factor > 1 { peak *= spike.factor }
        return peak
    }

    /// Poisson at one rate from time zero with no spike: arrivals need no thinning.
    public var isSteadyPoisson: Bool {
        process == .poisson && points.count == 1 && points[0].at == .zero && spikes.isEmpty
    }
}

/// The arrival times of an open-loop client: the one generator for simulated clients and for `load`.
///
/// Poisson arrivals at a steady rate are exponential gaps. With a varying rate they use thinning (Lewis and
/// Shedler, "Simulation of nonhomogeneous Poisson processes by thinning", Naval Research Logistics Quarterly 26(3),
/// 1979): candidates at the peak rate, each kept with probability rate(t) / peak. The candidates come from the
/// arrival stream and the coin flips from a separate stream, so two variants with the same schedule see identical
/// arrivals. Constant spacing places arrival k (from 0) where the expected count Λ(t) reaches k + ½, so a steady
/// rate r gives (k + ½) / r, and steps, ramps, spikes and zero-rate stretches are followed exactly. The same seed
/// and stream keys give the same times in both halves.
public struct ArrivalGenerator {
    /// A stretch on which the rate is `rate + slope·(t − start)` (per second, t in ns).
    struct Piece {
        var start: Int64
        var rate: Double
        var slope: Double
        /// Λ at `start`: expected arrivals before the piece.
        var cumulative: Double
    }

    /// The schedule it follows.
    public let schedule: ArrivalSchedule
    /// No arrival at or after this time (ns).
    public let end: Int64
    private let arrivals: RandomStream
    private let thinning: RandomStream
    private let peak: Double
    private let steadyPoisson: Bool
    private let pieces: [Piece]
    private var pieceHint = 0
    private var produced = 0
    private var last: Int64 = 0

    /// A generator for `schedule` until `end`, drawing from the two streams.
    public init(schedule: ArrivalSchedule, end: Int64, arrivals: RandomStream, thinning: RandomStream) {
        self.schedule = schedule
        self.end = end
        self.arrivals = arrivals
        self.thinning = thinning
        peak = schedule.peakRate
        steadyPoisson = schedule.isSteadyPoisson
        pieces = Self.pieces(of: schedule)
    }

    /// The stream keys of client `name`: the same in both halves.
    public static func streamKeys(client name: String) -> (arrivals: String, thinning: String) {
        ("client/\(name)/arrivals", "client/\(name)/thinning")
    }

    /// The next arrival time (ns from the start), or `nil` when arrivals have ended.
    ///
    /// - Complexity: O(1) for steady Poisson and (amortised) for constant spacing; for Poisson with a varying rate,
    ///   O(points + spikes) per candidate, with on average peak / mean rate candidates per arrival.
    public mutating func next() -> Int64? {
        guard peak > 0 else { return nil }
        var t = last
        if steadyPoisson {
            t += max(1, clampToNanoseconds(arrivals.exponential(mean: 1e9 / peak)))
        } else {
            switch schedule.process {
            case .poisson:
                while true {
                    t += max(1, clampToNanoseconds(arrivals.exponential(mean: 1e9 / peak)))
                    if t >= end { return nil }
                    let rate = schedule.rate(at: t)
                    if rate >= peak || thinning.uniform() * peak < rate { break }
                }
            case .constant:
                guard let at = inverse(Double(produced) + 0.5) else { return nil }
                produced += 1
                t = max(at, last + 1)
            }
        }
        guard t < end else { return nil }
        last = t
        return t
    }

    /// Λ⁻¹(λ): the time (ns) at which `λ` arrivals are expected, or `nil` if never (the rate stays 0).
    ///
    /// - Complexity: O(1) amortised for increasing λ.
    private mutating func inverse(_ lambda: Double) -> Int64? {
        var i = min(max(pieceHint, 0), pieces.count - 1)
        while i > 0 && pieces[i].cumulative > lambda { i -= 1 }
        while i + 1 < pieces.count && pieces[i + 1].cumulative <= lambda { i += 1 }
        pieceHint = i
        let piece = pieces[i]
        let need = (lambda - piece.cumulative) * 1e9
        if need <= 0 { return piece.start }
        let x: Double
        if abs(piece.slope) < 1e-30 {
            guard piece.rate > 0 else { return nil }
            x = need / piece.rate
        } else {
            var discriminant = piece.rate * piece.rate + 2 * piece.slope * need
            // Rounding can leave a tiny negative value where a falling ramp reaches exactly the needed count.
            if discriminant < 0 && discriminant > -1e-9 * max(piece.rate * piece.rate, 1) { discriminant = 0 }
            guard discriminant >= 0 else { return nil }
            x = (discriminant.squareRoot() - piece.rate) / piece.slope
        }
        guard x.isFinite, x >= 0, x < Double(SimDuration.horizon.nanoseconds) else { return nil }
        return piece.start + Int64(x.rounded())
    }

    /// The schedule cut where its rate's formula changes (points and spike edges), with Λ at each cut.
    static func pieces(of schedule: ArrivalSchedule) -> [Piece] {
        var cuts: Set<Int64> = [0]
        for point in schedule.points { cuts.insert(max(0, point.at.nanoseconds)) }
        for spike in schedule.spikes {
            cuts.insert(max(0, spike.start))
            if let end = spike.end { cuts.insert(max(0, end)) }
        }
        var result: [Piece] = []
        var cumulative = 0.0
        for start in cuts.sorted() {
            if let last = result.last {
                let width = Double(start - last.start)
                cumulative += (last.rate * width + last.slope * width * width / 2) / 1e9
            }
            var slope = 0.0
            if let i = schedule.points.lastIndex(where: { $0.at.nanoseconds <= start }), schedule.points[i].ramp,
                i + 1 < schedule.points.count
            {
                let (a, b) = (schedule.points[i], schedule.points[i + 1])
                let span = Double(b.at.nanoseconds - a.at.nanoseconds)
                if span > 0 { slope = (b.rate - a.rate) / span }
            }
            for spike in schedule.spikes where spike.start <= start && (spike.end.map { start < $0 } ?? true) {
                slope *= spike.factor
            }
            result.append(Piece(start: start, rate: schedule.rate(at: start), slope: slope, cumulative: cumulative))
        }
        return result
    }
}
