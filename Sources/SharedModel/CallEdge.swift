//===----------------------------------------------------------------------===//
// meshsim — SharedModel
//===----------------------------------------------------------------------===//

public import Balancers
public import Breakers
public import DequeModule
public import Health
public import Limiters
public import Retries
public import SimCore
public import SimRandom
public import Spec

/// A call edge: who calls which service, with which policy, and the caller's view of the endpoints with its own
/// count of active requests on each; every policy state machine of the edge (balancer, retry budget, breaker, rate
/// limiter, adaptive throttle, outlier detection, health checks, zone-aware routing) lives here.
///
/// The simulator keeps one per call edge and drives it in virtual time; `meshsim proxy` keeps one per route and
/// event loop and drives it with the loop's clock. Both make the same calls in the same order (see the decision
/// methods in `CallEdge+Decisions.swift`).
public struct CallEdge {
    /// The called service's index.
    public var target: Int32
    /// The edge's policies as the scenario gives them.
    public var policy: CallPolicy
    /// The per-attempt timeout in ns (0: none).
    public var timeoutNs: Int64
    /// The balancer over ``endpoints``.
    public var balancer: BalancerBox
    /// The balancer's stream.
    public var rng: RandomStream
    /// The stream for the edge's other policies (backoff jitter, outlier enforcement draws), kept apart from the
    /// balancer's so that adding a policy does not change the picks (common random numbers).
    public var policyRng: RandomStream
    /// The endpoints the caller knows, in replica order, with this edge's active requests.
    public var endpoints: [EndpointState]
    /// Active requests per replica of the target (kept while a replica is out of the view).
    public var activeByReplica: [Int32]
    /// The position of each replica in `endpoints`, or -1.
    public var positionOf: [Int32]
    /// The edge's retry budget, if any.
    public var budget: RetryBudgetBox?
    /// The edge's retry rules (attempts and conditions; the backoff lives in each call).
    public var retryPolicy: RetryPolicy
    /// The edge's circuit breaker, if any.
    public var breaker: BreakerBox?
    /// Attempts waiting for a connection of the Envoy breaker's pool, oldest first, with their slot generations
    /// (an entry whose attempt has since ended is skipped).
    public var pending: Deque<(attempt: Int32, generation: UInt32)> = []
    /// The edge's rate limiter, if any.
    public var rateLimiter: RateLimiterBox?
    /// The edge's SRE adaptive throttle, if any.
    public var throttle: AdaptiveThrottle?
    /// The edge's outlier detection over the target's replicas, if any.
    public var outlier: OutlierDetectorStateMachine?
    /// Replicas currently ejected by outlier detection.
    public var ejected: [Bool] = []
    /// The service's endpoint list as discovery reports it (before ejections).
    public var fullView: [EndpointState] = []
    /// Whether the edge balances over unhealthy or ejected replicas because too few healthy ones are left.
    public var inPanic = false

    // Health checks and passive health (see Simulation+Health.swift).

    /// Envoy active health checking of the target's replicas, if any.
    public var activeCheck: ActiveHealthCheckStateMachine?
    /// nginx `max_fails` / `fail_timeout`, if any.
    public var nginx: NginxPassiveHealthStateMachine?
    /// The end of each replica's latest nginx unavailability.
    public var passiveDownUntil: [SimInstant] = []
    /// HAProxy server health (its checks, and observed errors), if any.
    public var haproxy: HAProxyServerHealthStateMachine?
    /// Health checks in flight per replica of the target: bit 0 the Envoy checker's, bit 1 HAProxy's.
    public var checking: [UInt8] = []
    /// The stream for health-check draws (network delays, errors), apart from the edge's other streams.
    public var healthRng: RandomStream?
    /// The zone health checks are sent from (the caller's).
    public var checkZone: Int32 = 0

    // Zone-aware routing.

    /// Envoy zone-aware routing, if on.
    public var zoneAware: ZoneAwareRouting?
    /// The stream for zone choices.
    public var zoneRng: RandomStream?
    /// The zone of each replica of the target.
    public var replicaZone: [Int32] = []
    /// The edge's endpoints of each zone, with their own balancers (as Envoy keeps one per locality).
    public var zoneEndpoints: [[EndpointState]] = []
    /// The balancer of each zone's endpoints.
    public var zoneBalancers: [BalancerBox] = []
    /// The position of each replica in its zone's list, or -1.
    public var zonePositionOf: [Int32] = []
    /// The edge's endpoints per zone (the upstream cluster's healthy hosts per zone).
    public var upstreamByZone: [Int] = []
    /// The calling service (the originating cluster), or -1 for a client edge.
    public var originService: Int32 = -1
    /// For a client edge: the originating cluster's members per zone (every client of the scenario).
    public var originByZone: [Int] = []

    /// Picks an endpoint with the edge's balancer and stream; returns the replica's index in its service.
    ///
    /// With zone-aware routing (outside panic) the zone is chosen first from `origin` (the originating cluster's
    /// hosts per zone) and the edge's endpoints per zone, then that zone's balancer picks within it.
    @inlinable
    public mutating func pick(at now: SimInstant, callerZone: Int32, origin: [Int]) -> Int32? {
        if let zoneAware, !inPanic, var zoneRng {
            let zone = origin.withUnsafeBufferPointer { o in
                upstreamByZone.withUnsafeBufferPointer { u in
                    zoneAware.chooseZone(local: Int(callerZone), originating: o, upstream: u, using: &zoneRng)
                }
            }
            if let zone, !zoneEndpoints[zone].isEmpty {
                let choice = zoneEndpoints[zone].withUnsafeBufferPointer { buffer in
                    zoneBalancers[zone].pick(from: buffer, at: now, using: &rng)
                }
                return choice.map { zoneEndpoints[zone][$0].index }
            }
        }
        let choice = endpoints.withUnsafeBufferPointer { buffer in
            balancer.pick(from: buffer, at: now, using: &rng)
        }
        return choice.map { endpoints[$0].index }
    }

    /// Counts a request started on replica `local`.
    @inlinable
    public mutating func started(replica local: Int32, at now: SimInstant) {
        activeByReplica[Int(local)] += 1
        let position = Int(positionOf[Int(local)])
        if position >= 0 { endpoints[position].active += 1 }
        if balancer.learns { balancer.requestStarted(endpoint: local, at: now) }
        if zoneAware != nil {
            let zone = Int(replicaZone[Int(local)])
            let zonePosition = Int(zonePositionOf[Int(local)])
            if zonePosition >= 0 { zoneEndpoints[zone][zonePosition].active += 1 }
            if zoneBalancers[zone].learns { zoneBalancers[zone].requestStarted(endpoint: local, at: now) }
        }
    }

    /// Counts a request on replica `local` as ended (answered, refused or given up) after `latency`.
    @inlinable
    public mutating func finished(replica local: Int32, latency: SimDuration, at now: SimInstant) {
        activeByReplica[Int(local)] -= 1
        let position = Int(positionOf[Int(local)])
        if position >= 0 { endpoints[position].active -= 1 }
        if balancer.learns { balancer.requestFinished(endpoint: local, latency: latency, at: now) }
        if zoneAware != nil {
            let zone = Int(replicaZone[Int(local)])
            let zonePosition = Int(zonePositionOf[Int(local)])
            if zonePosition >= 0 { zoneEndpoints[zone][zonePosition].active -= 1 }
            if zoneBalancers[zone].learns {
                zoneBalancers[zone].requestFinished(endpoint: local, latency: latency, at: now)
            }
        }
    }

    /// Whether any policy of the edge can take replicas out of its view.
    public var filtersHealth: Bool { outlier != nil || activeCheck != nil || nginx != nil || haproxy != nil }

    /// Whether replica `i` is out of the edge's view at `now`: ejected by outlier detection, failing active
    /// health checks, or down by nginx's or HAProxy's passive health.
    public func isExcluded(replica i: Int, at now: SimInstant) -> Bool {
        if !ejected.isEmpty && ejected[i] { return true }
        if let activeCheck, !activeCheck.isUsable(host: i, at: now) { return true }
        if let nginx, !nginx.isUsable(host: i, at: now) { return true }
        if let haproxy, !haproxy.isUsable(host: i, at: now) { return true }
        return false
    }

    /// Replaces the view with `view` (the service's current endpoints) less the ejected and unhealthy replicas —
    /// unless too few would be left (Envoy's panic threshold), keeping the active counts.
    public mutating func setView(_ view: [EndpointState], at now: SimInstant) {
        fullView = view
        for i in positionOf.indices { positionOf[i] = -1 }
        endpoints = view
        inPanic = false
        if filtersHealth {
            let healthy = view.filter { !isExcluded(replica: Int($0.index), at: now) }
            if healthy.count < view.count {
                let panic = (try? PanicThreshold(percent: policy.panicThreshold)) ?? (try! PanicThreshold())
                if panic.percent == 0
                    || (!healthy.isEmpty && !panic.isPanicking(healthy: healthy.count, total: view.count))
                {
                    endpoints = healthy
                } else {
                    inPanic = true
                }
            }
        }
        for (position, e) in endpoints.enumerated() {
            endpoints[position].active = activeByReplica[Int(e.index)]
            positionOf[Int(e.index)] = Int32(position)
        }
        balancer.endpointsChanged()
        if zoneAware != nil { splitByZone() }
    }

    /// Rebuilds the per-zone endpoint lists from `endpoints`.
    private mutating func splitByZone() {
        for i in zonePositionOf.indices { zonePositionOf[i] = -1 }
        for z in zoneEndpoints.indices {
            zoneEndpoints[z].removeAll(keepingCapacity: true)
            upstreamByZone[z] = 0
        }
        for e in endpoints {
            let zone = Int(replicaZone[Int(e.index)])
            zonePositionOf[Int(e.index)] = Int32(zoneEndpoints[zone].count)
            zoneEndpoints[zone].append(e)
            upstreamByZone[zone] += 1
        }
        for z in zoneBalancers.indices { zoneBalancers[z].endpointsChanged() }
    }
}

extension CallEdge {
    /// The edge to `target` under `policy`, over a service whose replicas sit in `replicaZones` (of `zoneCount`
    /// zones), drawing from the streams keyed by `key` (`key/balancer`, `key/policies`, `key/health_checks`,
    /// `key/zones`). The view starts empty: call ``setView(_:at:)``. The caller sets ``checkZone`` and, for
    /// zone-aware routing, ``originService`` / ``originByZone``.
    public init(
        target: Int,
        policy: CallPolicy,
        replicaZones: [Int],
        zoneCount: Int,
        stream: (String) -> RandomStream,
        key: String
    ) {
        let count = replicaZones.count
        self.init(
            target: Int32(target),
            policy: policy,
            timeoutNs: policy.timeout?.nanoseconds ?? 0,
            balancer: BalancerBox(policy.balancer, endpointCapacity: count),
            rng: stream(key + "/balancer"),
            policyRng: stream(key + "/policies"),
            endpoints: [],
            activeByReplica: Array(repeating: 0, count: count),
            positionOf: Array(repeating: -1, count: count),
            budget: RetryBudgetBox(policy.budget),
            retryPolicy: Self.retryPolicy(policy),
            breaker: BreakerBox(policy.breaker),
            rateLimiter: RateLimiterBox(policy.rateLimit)
        )
        throttle = policy.adaptiveThrottle.flatMap { try? AdaptiveThrottle($0) }
        if let configuration = policy.outlierDetection {
            outlier = try? OutlierDetectorStateMachine(hostCount: count, configuration: configuration)
            ejected = Array(repeating: false, count: count)
        }
        if let configuration = policy.healthCheck {
            activeCheck = try? ActiveHealthCheckStateMachine(hostCount: count, configuration: configuration)
        }
        switch policy.passiveHealth {
        case .nginx(let configuration)?:
            nginx = try? NginxPassiveHealthStateMachine(hostCount: count, configuration: configuration)
            passiveDownUntil = Array(repeating: .zero, count: count)
        case .haproxy(let configuration)?:
            haproxy = try? HAProxyServerHealthStateMachine(hostCount: count, configuration: configuration)
        case nil:
            break
        }
        if activeCheck != nil || haproxy != nil {
            checking = Array(repeating: 0, count: count)
            healthRng = stream(key + "/health_checks")
        }
        guard let zoneAware = policy.zoneAware else { return }
        self.zoneAware = zoneAware
        zoneRng = stream(key + "/zones")
        replicaZone = replicaZones.map { Int32($0) }
        zoneEndpoints = (0..<zoneCount).map { _ in
            var list: [EndpointState] = []
            list.reserveCapacity(count)
            return list
        }
        zoneBalancers = (0..<zoneCount).map { _ in BalancerBox(policy.balancer, endpointCapacity: count) }
        zonePositionOf = Array(repeating: -1, count: count)
        upstreamByZone = Array(repeating: 0, count: zoneCount)
    }

    /// The retry rules of a call policy (validated by the loader, so they cannot throw; the backoff lives in each
    /// call).
    public static func retryPolicy(_ policy: CallPolicy) -> RetryPolicy {
        let immediate = try! Backoff(kind: .none, base: .zero, cap: .zero)
        return (try? RetryPolicy(maxAttempts: policy.retries + 1, retryOn: policy.retryOn, backoff: immediate))
            ?? (try! RetryPolicy(maxAttempts: 1, backoff: immediate))
    }
}
