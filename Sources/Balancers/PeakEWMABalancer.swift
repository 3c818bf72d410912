//===----------------------------------------------------------------------===//
// meshsim — Balancers
//===----------------------------------------------------------------------===//

public import SimCore

/// Power of two choices on a peak-sensitive EWMA of latency times outstanding requests.
///
/// Source: Finagle `Balancers.p2cPeakEwma(decayTime = 10.seconds)`, `PeakEwma.scala` and `util/Ema.scala`
/// (algorithms.md §3.2); Linkerd uses the same with a 10 s decay. Per endpoint: `pending` outstanding requests and
/// a time-weighted EWMA of round-trip times, `ema = x·(1−w) + ema·w` with `w = exp(−Δt/τ)`. A sample above the
/// average resets it, so spikes are adopted at once and decay slowly. Reading the cost first decays the average
/// toward 0 by the elapsed time; `cost = ema × (pending + 1)`, or `penalty + pending` for an endpoint with
/// requests outstanding and no sample yet (Finagle's `Long.MaxValue >> 16`). Two **distinct** endpoints are
/// drawn; the cheaper wins, the first drawn on a tie.
public struct PeakEWMABalancer: LoadBalancer {
    /// The EWMA's time constant τ (Finagle's `decayTime`, default 10 s).
    public let decay: SimDuration
    /// The cost of an endpoint with outstanding requests and no latency sample yet.
    public static let penalty = Double(Int64.max >> 16)

    private struct Node: Sendable {
        var ema = 0.0
        var stamp = SimInstant.zero
        var pending: Int32 = 0
        var resetNext = true
    }

    private var nodes: [Node]

    /// Creates the balancer for endpoints with indices below `endpointCapacity`; throws for a decay ≤ 0.
    public init(decay: SimDuration = .seconds(10), endpointCapacity: Int) throws(PolicyParameterError) {
        guard decay > .zero else { throw PolicyParameterError("decay", "must be positive") }
        guard endpointCapacity >= 0 else { throw PolicyParameterError("endpoint_capacity", "must be ≥ 0") }
        self.decay = decay
        self.nodes = Array(repeating: Node(), count: endpointCapacity)
    }

    /// Folds the sample `x` (nanoseconds) taken at `now` into node `i`'s average.
    private mutating func observe(_ i: Int, _ x: Double, at now: SimInstant) {
        if nodes[i].resetNext || x > nodes[i].ema {
            // First sample, or a peak: adopt it exactly.
            nodes[i].ema = x
            nodes[i].resetNext = false
        } else {
            let elapsed = Double(max((now - nodes[i].stamp).nanoseconds, 0))
            let w = SimMath.exp(-elapsed / Double(decay.nanoseconds))
            nodes[i].ema = x * (1 - w) + nodes[i].ema * w
        }
        nodes[i].stamp = now
    }

    /// The load of endpoint `index` at `now` (decaying its average first, as Finagle's `load` does).
    public mutating func cost(of index: Int32, at now: SimInstant) -> Double {
        let i = Int(index)
        guard i < nodes.count else { return 0 }
        if !nodes[i].resetNext { observe(i, 0, at: now) }
        if nodes[i].ema == 0 && nodes[i].pending != 0 { return Self.penalty + Double(nodes[i].pending) }
        return nodes[i].ema * Double(nodes[i].pending + 1)
    }

    /// - Complexity: O(1), no allocation.
    public mutating func pick(
        from endpoints: UnsafeBufferPointer<EndpointState>,
        at now: SimInstant,
        using rng: inout some RandomNumberGenerator
    ) -> Int? {
        let n = endpoints.count
        guard n > 0 else { return nil }
        if n == 1 { return 0 }
        let a = Int(uniformBelow(UInt64(n), using: &rng))
        var b = Int(uniformBelow(UInt64(n - 1), using: &rng))
        if b >= a { b += 1 }
        let costA = cost(of: endpoints[a].index, at: now)
        let costB = cost(of: endpoints[b].index, at: now)
        return costB < costA ? b : a
    }

    /// A request was sent to endpoint `index`: one more pending.
    public mutating func requestStarted(endpoint index: Int32, at now: SimInstant) {
        guard Int(index) < nodes.count else { return }
        nodes[Int(index)].pending += 1
    }

    /// A request to endpoint `index` ended after `latency`: one fewer pending, and the latency is observed.
    public mutating func requestFinished(endpoint index: Int32, latency: SimDuration, at now: SimInstant) {
        let i = Int(index)
        guard i < nodes.count else { return }
        nodes[i].pending = max(nodes[i].pending - 1, 0)
        observe(i, Double(latency.nanoseconds), at: now)
    }
}
