//===----------------------------------------------------------------------===//
// meshsim — Balancers
//===----------------------------------------------------------------------===//

public import SimCore

/// A load-balancing algorithm: picks one endpoint of a service for each request.
///
/// Balancers are clock-agnostic state machines: the caller passes the current time and a random number generator,
/// so the simulator drives them in virtual time and a live proxy in wall time with the same code. They import only
/// SimCore.
///
/// ## Implementation requirements
/// `pick` returns a position in `endpoints`, or `nil` only when `endpoints` is empty; it must not allocate unless
/// the endpoint set changed since the last pick (hash tables are rebuilt then). Endpoints are identified across
/// calls by ``SimCore/EndpointState/index``. Balancers that learn from responses (peak EWMA) implement
/// `requestStarted` and `requestFinished`; the others inherit no-ops.
public protocol LoadBalancer: Sendable {
    /// Picks an endpoint for a request at `now`; returns its position in `endpoints`.
    mutating func pick(
        from endpoints: UnsafeBufferPointer<EndpointState>,
        at now: SimInstant,
        using rng: inout some RandomNumberGenerator
    ) -> Int?

    /// A request was sent to endpoint `index` at `now`.
    mutating func requestStarted(endpoint index: Int32, at now: SimInstant)

    /// A request to endpoint `index` ended at `now` after `latency` (successes and failures alike).
    mutating func requestFinished(endpoint index: Int32, latency: SimDuration, at now: SimInstant)

    /// The set of endpoints (or their weights) changed: tables and schedules are rebuilt on the next pick.
    mutating func endpointsChanged()
}

extension LoadBalancer {
    /// Does nothing: this balancer does not learn from requests.
    public mutating func requestStarted(endpoint index: Int32, at now: SimInstant) {}
    /// Does nothing: this balancer does not learn from responses.
    public mutating func requestFinished(endpoint index: Int32, latency: SimDuration, at now: SimInstant) {}
    /// Does nothing: this balancer keeps no table.
    public mutating func endpointsChanged() {}
}

/// Round robin, starting at a random position so that many callers do not move in lockstep; weights are ignored.
///
/// Source: Envoy `ROUND_ROBIN` with equal weights — `hosts[rr_index++ % n]` with a randomly seeded index
/// (algorithms.md §1.1); gRPC `round_robin` (§4.2). For unequal weights use ``WeightedRoundRobinBalancer``.
public struct RoundRobinBalancer: LoadBalancer {
    private var next: Int?

    /// Creates a balancer whose first pick is at a random position.
    public init() {}

    /// - Complexity: O(1).
    public mutating func pick(
        from endpoints: UnsafeBufferPointer<EndpointState>,
        at now: SimInstant,
        using rng: inout some RandomNumberGenerator
    ) -> Int? {
        guard !endpoints.isEmpty else { return nil }
        let position: Int
        if let next {
            position = next % endpoints.count
        } else {
            position = Int(uniformBelow(UInt64(endpoints.count), using: &rng))
        }
        next = position + 1
        return position
    }
}

/// Uniform random choice among the endpoints.
///
/// Source: Envoy `RANDOM` — `hosts[rand % n]` over the healthy set (algorithms.md §1.3).
public struct RandomBalancer: LoadBalancer {
    /// Creates the balancer.
    public init() {}

    /// - Complexity: O(1).
    public mutating func pick(
        from endpoints: UnsafeBufferPointer<EndpointState>,
        at now: SimInstant,
        using rng: inout some RandomNumberGenerator
    ) -> Int? {
        guard !endpoints.isEmpty else { return nil }
        if endpoints.count == 1 { return 0 }
        return Int(uniformBelow(UInt64(endpoints.count), using: &rng))
    }
}
