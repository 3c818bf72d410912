//===----------------------------------------------------------------------===//
// meshsim — Balancers
//===----------------------------------------------------------------------===//

public import SimCore

/// Least request: the endpoint with the fewest active requests among a few random choices, or among all.
///
/// Source: Envoy `LEAST_REQUEST` (`least_request.proto`, algorithms.md §1.2) and Finagle's P2C least-loaded
/// (`P2CPick.scala`, §3.1):
/// - ``Selection/nChoices(_:withReplacement:)``: `choice_count` (default 2) draws; Envoy draws **with
///   replacement** (the same endpoint can be drawn twice), Finagle draws two **distinct** endpoints. The
///   candidate with strictly fewer active requests wins; on a tie the first drawn.
/// - ``Selection/fullScan``: the minimum over all endpoints, ties broken at random.
/// - With unequal weights (Envoy), EDF weighted round robin on the dynamic weight
///   `weight / (active + 1)^active_request_bias` (bias default 1.0; 0 gives plain weighted round robin).
/// Slow start (§1.6) scales weights and forces the EDF path, as in Envoy.
public struct LeastRequestBalancer: LoadBalancer {
    /// How candidates are chosen.
    public enum Selection: Sendable, Equatable {
        /// `count` random draws (≥ 2), with replacement (Envoy) or without (Finagle).
        case nChoices(Int, withReplacement: Bool)
        /// Every endpoint (Envoy `FULL_SCAN`).
        case fullScan
    }

    /// How candidates are chosen.
    public let selection: Selection
    /// Envoy's `active_request_bias` for unequal weights.
    public let activeRequestBias: Double
    /// Slow start for new endpoints, if any.
    public let slowStart: SlowStart?
    private var scheduler = EDFScheduler()
    private var scheduledCount = -1
    private var shape = WeightShape()

    /// Creates the balancer; throws for fewer than 2 choices or a negative bias.
    public init(
        selection: Selection = .nChoices(2, withReplacement: true),
        activeRequestBias: Double = 1.0,
        slowStart: SlowStart? = nil
    ) throws(PolicyParameterError) {
        if case .nChoices(let n, _) = selection, n < 2 {
            throw PolicyParameterError("choice_count", "must be at least 2, not \(n)")
        }
        guard activeRequestBias >= 0, activeRequestBias.isFinite else {
            throw PolicyParameterError("active_request_bias", "must be ≥ 0, not \(activeRequestBias)")
        }
        self.selection = selection
        self.activeRequestBias = activeRequestBias
        self.slowStart = slowStart
    }

    /// The endpoint set changed: the weighted schedule is rebuilt on the next pick.
    public mutating func endpointsChanged() {
        scheduledCount = -1
        shape = WeightShape()
    }

    /// - Complexity: O(choices) with equal weights, O(n) for a full scan, O(log n) amortized on the weighted path.
    public mutating func pick(
        from endpoints: UnsafeBufferPointer<EndpointState>,
        at now: SimInstant,
        using rng: inout some RandomNumberGenerator
    ) -> Int? {
        let n = endpoints.count
        guard n > 0 else { return nil }
        if n == 1 { return 0 }
        if shape.count != endpoints.count { shape = WeightShape(endpoints, slowStart: slowStart) }
        let uniform = shape.uniformWeights && !(shape.rampingUntil.map { now < $0 } ?? false)
        if !uniform { return weightedPick(endpoints, at: now, using: &rng) }
        switch selection {
        case .fullScan:
            // One pass for the least load and its ties, one draw, one pass to find the chosen tie.
            var best = Int32.max
            var ties = 0
            for i in 0..<n {
                let a = endpoints[i].active
                if a < best {
                    best = a
                    ties = 1
                } else if a == best {
                    ties += 1
                }
            }
            var k = ties == 1 ? 0 : Int(uniformBelow(UInt64(ties), using: &rng))
            for i in 0..<n where endpoints[i].active == best {
                if k == 0 { return i }
                k -= 1
            }
            return 0
        case .nChoices(let count, let withReplacement):
            if !withReplacement {
                // Finagle: two distinct draws, a = rnd(n), b = rnd(n-1), b += 1 if b ≥ a; then further distinct
                // draws the same way are not defined by Finagle, so more than two choices keep drawing with
                // rejection of repeats.
                let a = Int(uniformBelow(UInt64(n), using: &rng))
                var b = Int(uniformBelow(UInt64(n - 1), using: &rng))
                if b >= a { b += 1 }
                var chosen = endpoints[b].active < endpoints[a].active ? b : a
                if count > 2 {
                    for _ in 2..<min(count, n) {
                        var c = Int(uniformBelow(UInt64(n), using: &rng))
                        while c == a || c == b { c = Int(uniformBelow(UInt64(n), using: &rng)) }
                        if endpoints[c].active < endpoints[chosen].active { chosen = c }
                    }
                }
                return chosen
            }
            var chosen = Int(uniformBelow(UInt64(n), using: &rng))
            for _ in 1..<count {
                let candidate = Int(uniformBelow(UInt64(n), using: &rng))
                if endpoints[candidate].active < endpoints[chosen].active { chosen = candidate }
            }
            return chosen
        }
    }

    private mutating func weightedPick(
        _ endpoints: UnsafeBufferPointer<EndpointState>,
        at now: SimInstant,
        using rng: inout some RandomNumberGenerator
    ) -> Int? {
        let bias = activeRequestBias
        let slowStart = self.slowStart
        let weight = { (i: Int) -> Double in
            var w = Double(endpoints[i].weight)
            if let slowStart { w = slowStart.effectiveWeight(w, readySince: endpoints[i].readySince, at: now) }
            let load = Double(endpoints[i].active) + 1
            if bias == 1 { return w / load }
            if bias == 0 { return w }
            return w / SimMath.pow(load, bias)
        }
        if scheduledCount != endpoints.count {
            scheduler.reset(count: endpoints.count, picks: uniformBelow(429_496_729, using: &rng), weight: weight)
            scheduledCount = endpoints.count
        }
        return scheduler.pickAndAdd(weight: weight)
    }
}
