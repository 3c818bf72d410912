//===----------------------------------------------------------------------===//
// meshsim — Breakers
//===----------------------------------------------------------------------===//

import SimCore

/// One set of Envoy circuit-breaker limits (for one routing priority), validated at creation.
///
/// Source: Envoy `envoy/config/cluster/v3/circuit_breaker.proto` (`CircuitBreakers.Thresholds`), as summarized
/// in the project reference (`algorithms.md` §2.2). Limits are per cluster, per priority, per Envoy process.
public struct EnvoyCircuitBreakerThresholds: Sendable, Equatable {
    /// Concurrent upstream connections (`max_connections`, default 1024).
    public let maxConnections: Int
    /// Requests queued waiting for a connection (`max_pending_requests`, default 1024).
    public let maxPendingRequests: Int
    /// Concurrent requests, e.g. HTTP/2 streams (`max_requests`, default 1024).
    public let maxRequests: Int
    /// Concurrent retries, across all requests (`max_retries`, default 3).
    public let maxRetries: Int
    /// Concurrent connection pools (`max_connection_pools`, default unlimited: `nil`).
    public let maxConnectionPools: Int?

    /// Creates a set of limits; every argument defaults to Envoy's default.
    ///
    /// - Throws: `PolicyParameterError` for a negative limit (0 is allowed and admits nothing).
    public init(
        maxConnections: Int = 1024,
        maxPendingRequests: Int = 1024,
        maxRequests: Int = 1024,
        maxRetries: Int = 3,
        maxConnectionPools: Int? = nil
    ) throws {
        try Validate.atLeast(maxConnections, 0, "max_connections")
        try Validate.atLeast(maxPendingRequests, 0, "max_pending_requests")
        try Validate.atLeast(maxRequests, 0, "max_requests")
        try Validate.atLeast(maxRetries, 0, "max_retries")
        if let maxConnectionPools { try Validate.atLeast(maxConnectionPools, 0, "max_connection_pools") }
        self.init(
            validated: maxConnections,
            maxPendingRequests,
            maxRequests,
            maxRetries,
            maxConnectionPools
        )
    }

    /// Envoy's default limits: 1024 connections, 1024 pending requests, 1024 requests, 3 retries, unlimited pools.
    public static let envoyDefaults = EnvoyCircuitBreakerThresholds(validated: 1024, 1024, 1024, 3, nil)

    private init(
        validated maxConnections: Int,
        _ maxPendingRequests: Int,
        _ maxRequests: Int,
        _ maxRetries: Int,
        _ maxConnectionPools: Int?
    ) {
        self.maxConnections = maxConnections
        self.maxPendingRequests = maxPendingRequests
        self.maxRequests = maxRequests
        self.maxRetries = maxRetries
        self.maxConnectionPools = maxConnectionPools
    }

    /// The limit on `resource` (`Int.max` for unlimited connection pools).
    public func limit(_ resource: EnvoyCircuitBreakerResource) -> Int {
        switch resource {
        case .connections: return maxConnections
        case .pendingRequests: return maxPendingRequests
        case .requests: return maxRequests
        case .retries: return maxRetries
        case .connectionPools: return maxConnectionPools ?? Int.max
        }
    }
}

/// A resource Envoy's circuit breakers count.
public enum EnvoyCircuitBreakerResource: Int, Sendable, Equatable, CaseIterable {
    /// Upstream connections (`max_connections`; overflow: `upstream_cx_overflow`).
    case connections
    /// Requests waiting for a connection (`max_pending_requests`; overflow: `upstream_rq_pending_overflow`).
    case pendingRequests
    /// Active requests (`max_requests`).
    case requests
    /// Active retries (`max_retries`; overflow: `upstream_rq_retry_overflow`).
    case retries
    /// Connection pools (`max_connection_pools`).
    case connectionPools
}

/// Envoy's routing priority; each has its own thresholds and counters.
public enum EnvoyRoutingPriority: Int, Sendable, Equatable, CaseIterable {
    /// `DEFAULT`.
    case `default`
    /// `HIGH`.
    case high
}

/// Envoy circuit breakers for one cluster: a counter per resource and priority, with try-acquire, release and
/// overflow counts.
///
/// Source: Envoy `envoy/config/cluster/v3/circuit_breaker.proto`, as the project reference gives it
/// (`algorithms.md` §2.2): a resource is granted while its count is below the limit; on overflow the request fails
/// fast (a 503 with `x-envoy-overloaded`) and the matching overflow counter increments. `remaining` is what
/// `track_remaining` would publish. Time plays no part, so no method takes an instant.
public struct EnvoyCircuitBreakerStateMachine: Sendable {
    private let thresholds: [EnvoyCircuitBreakerThresholds]
    private var active: [Int]
    private var overflowCounts: [Int]

    /// Creates breakers with `defaultPriority` limits for `DEFAULT` and `highPriority` limits for `HIGH`.
    public init(
        defaultPriority: EnvoyCircuitBreakerThresholds,
        highPriority: EnvoyCircuitBreakerThresholds
    ) {
        thresholds = [defaultPriority, highPriority]
        let slots = 2 * Self.resourceCount
        active = [Int](repeating: 0, count: slots)
        overflowCounts = [Int](repeating: 0, count: slots)
    }

    /// Creates breakers with Envoy's default limits for both priorities.
    public init() {
        self.init(defaultPriority: .envoyDefaults, highPriority: .envoyDefaults)
    }

    /// Acquires one unit of `resource` at `priority` if its count is below the limit; otherwise counts an overflow.
    ///
    /// - Complexity: O(1); does not allocate.
    public mutating func tryAcquire(
        _ resource: EnvoyCircuitBreakerResource,
        priority: EnvoyRoutingPriority = .default
    ) -> Permission {
        let slot = Self.slot(resource, priority)
        guard active[slot] < thresholds[priority.rawValue].limit(resource) else {
            overflowCounts[slot] += 1
            return .rejected
        }
        active[slot] += 1
        return .permitted
    }

    /// Releases one unit of `resource` at `priority` (a release with nothing held is ignored).
    ///
    /// - Complexity: O(1).
    public mutating func release(_ resource: EnvoyCircuitBreakerResource, priority: EnvoyRoutingPriority = .default) {
        let slot = Self.slot(resource, priority)
        if active[slot] > 0 { active[slot] -= 1 }
    }

    /// The limits for `priority`.
    public func thresholds(for priority: EnvoyRoutingPriority) -> EnvoyCircuitBreakerThresholds {
        thresholds[priority.rawValue]
    }

    /// The units of `resource` held at `priority`.
    public func active(_ resource: EnvoyCircuitBreakerResource, priority: EnvoyRoutingPriority = .default) -> Int {
        active[Self.slot(resource, priority)]
    }

    /// The units of `resource` still available at `priority` (`track_remaining`'s `remaining_*` gauges).
    public func remaining(_ resource: EnvoyCircuitBreakerResource, priority: EnvoyRoutingPriority = .default) -> Int {
        let limit = thresholds[priority.rawValue].limit(resource)
        return max(0, limit - active[Self.slot(resource, priority)])
    }

    /// Whether `resource` at `priority` is at its limit (the breaker's `*_open` gauge).
    public func isOpen(_ resource: EnvoyCircuitBreakerResource, priority: EnvoyRoutingPriority = .default) -> Bool {
        remaining(resource, priority: priority) == 0
    }

    /// How many acquisitions of `resource` at `priority` were refused.
    public func overflows(_ resource: EnvoyCircuitBreakerResource, priority: EnvoyRoutingPriority = .default) -> Int {
        overflowCounts[Self.slot(resource, priority)]
    }

    private static func slot(_ resource: EnvoyCircuitBreakerResource, _ priority: EnvoyRoutingPriority) -> Int {
        priority.rawValue * resourceCount + resource.rawValue
    }

    /// The number of `EnvoyCircuitBreakerResource` cases (a constant, so the hot path never builds `allCases`).
    private static let resourceCount = 5
}
