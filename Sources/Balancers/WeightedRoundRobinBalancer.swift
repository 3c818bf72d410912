//===----------------------------------------------------------------------===//
// meshsim — Balancers
//===----------------------------------------------------------------------===//

public import SimCore

/// Weighted round robin on Envoy's earliest-deadline-first scheduler, with optional slow start.
///
/// With equal weights and no endpoint in slow start it is plain round robin from a random start (Envoy's cheap
/// path); otherwise each endpoint is picked in proportion to its (slow-start-adjusted) weight, in EDF order.
/// The schedule starts as if a random number of picks had happened (Envoy `createWithPicks`), so callers do not
/// move in lockstep. Source: Envoy `ROUND_ROBIN`, `edf_scheduler.h` (algorithms.md §1.1, §1.6).
public struct WeightedRoundRobinBalancer: LoadBalancer {
    /// Slow start for new endpoints, if any.
    public var slowStart: SlowStart?
    private var scheduler = EDFScheduler()
    private var scheduledCount = -1
    private var shape = WeightShape()
    private var roundRobin = RoundRobinBalancer()

    /// Creates the balancer.
    public init(slowStart: SlowStart? = nil) {
        self.slowStart = slowStart
    }

    /// The endpoint set changed: the schedule is rebuilt on the next pick.
    public mutating func endpointsChanged() {
        scheduledCount = -1
        shape = WeightShape()
    }

    /// - Complexity: O(log n) amortized; O(n) when the endpoint set changed.
    public mutating func pick(
        from endpoints: UnsafeBufferPointer<EndpointState>,
        at now: SimInstant,
        using rng: inout some RandomNumberGenerator
    ) -> Int? {
        guard !endpoints.isEmpty else { return nil }
        if shape.count != endpoints.count { shape = WeightShape(endpoints, slowStart: slowStart) }
        let uniform = shape.uniformWeights && !(shape.rampingUntil.map { now < $0 } ?? false)
        if uniform { return roundRobin.pick(from: endpoints, at: now, using: &rng) }
        let slowStart = self.slowStart
        let weight = { (i: Int) -> Double in
            let w = Double(endpoints[i].weight)
            return slowStart?.effectiveWeight(w, readySince: endpoints[i].readySince, at: now) ?? w
        }
        if scheduledCount != endpoints.count {
            scheduler.reset(count: endpoints.count, picks: uniformBelow(429_496_729, using: &rng), weight: weight)
            scheduledCount = endpoints.count
        }
        return scheduler.pickAndAdd(weight: weight)
    }
}
