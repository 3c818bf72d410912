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
/// `pick` must not allocate and must return an index into `endpoints`, or `nil` only when `endpoints` is empty.
public protocol LoadBalancer: Sendable {
    /// Picks an endpoint for a request at `now`; returns its position in `endpoints`.
    mutating func pick(
        from endpoints: UnsafeBufferPointer<EndpointState>,
        at now: SimInstant,
        using rng: inout some RandomNumberGenerator
    ) -> Int?
}

/// Round robin, starting at a random position (as Envoy does, so callers do not move in lockstep).
///
/// Source: Envoy `ROUND_ROBIN` load-balancing policy (envoyproxy.io, "Supported load balancers"); weights are
/// ignored here (weighted round robin is a separate algorithm).
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
/// Source: Envoy `RANDOM` load-balancing policy.
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

