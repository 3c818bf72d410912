//===----------------------------------------------------------------------===//
// meshsim — MeshModel
//===----------------------------------------------------------------------===//

import Balancers
import Breakers
import DequeModule
import Health
import Limiters
import Reports
import Retries
import SharedModel
import SimCore
import SimKernel
import SimRandom
import Spec

/// How an attempt ended, as seen by its caller.
enum AttemptStatus: UInt8 {
    case ok
    /// The service answered with an error (500).
    case error
    /// The replica crashed with the request on it.
    case reset
    /// The replica's queue was full (503).
    case overloaded
    /// The connection was refused (dead or removed endpoint) or no endpoint was known.
    case refused

    var outcome: RequestOutcome {
        switch self {
        case .ok: return .ok
        case .error, .reset: return .failed
        case .overloaded, .refused: return .rejected
        }
    }
}

/// Where an attempt is in its life.
enum AttemptPhase: UInt8 {
    case free, travelling, queued, working, answering
    /// Lost in a partition on its way to the replica: only the caller's timeout ends it.
    case lost
    /// Waiting for a connection of the edge's Envoy breaker pool (`max_pending_requests`).
    case pending
}

/// One try of a call, served by one replica.
struct AttemptState {
    var generation: UInt32 = 0
    var phase: AttemptPhase = .free
    var status: AttemptStatus = .ok
    var failedChild = false
    var call: Int32 = -1
    var callGeneration: UInt32 = 0
    /// When the caller sent it (for the balancer's latency samples).
    var sentAt: Int64 = 0
    /// Whether the caller's balancer counts it as outstanding.
    var heldByBalancer = false
    /// The call edge it was sent on.
    var edge: Int32 = -1
    /// Whether it holds a permission of the edge's circuit breaker.
    var breakerHeld = false
    /// What it holds in the edge's Envoy connection pool.
    var pool = PoolState.none
    /// Whether it is a retry.
    var isRetry = false
    /// Whether it is a hedge (a further attempt sent while others are out).
    var isHedge = false
    /// Whether the caller is still waiting for it.
    var waitedOn = false
    /// Its replica's concurrency-limit permit, if the replica has a limiter.
    var permit: ConcurrencyPermit?
    var replica: Int32 = -1
    var replicaEpoch: UInt32 = 0
    var stage: Int32 = 0
    var pendingChildren: Int32 = 0
}

/// A call from a client or a replica to a service, with its retries.
struct CallState {
    var generation: UInt32 = 0
    var live = false
    var edge: Int32 = -1
    var parent: Int32 = -1
    var parentGeneration: UInt32 = 0
    var client: Int32 = -1
    var user: Int32 = -1
    var callerZone: Int32 = 0
    var attemptsMade: Int32 = 0
    var currentAttempt: Int32 = -1
    var start: Int64 = 0
    /// Whether the current attempt is a retry the edge's budget admitted (to release it when it ends).
    var retryHeld = false
    /// The call's own backoff state (decorrelated jitter remembers the previous wait).
    var backoff: Backoff?
    /// The request's path and host (indices into the simulation's tables), inherited down the call graph.
    var path: Int16 = 0
    var host: Int16 = 0
    /// The call's deadline (its own, or inherited from the call that caused it), if any.
    var deadline = Deadline.none
    /// Attempts the caller is still waiting for (more than one only with hedging).
    var outstanding: Int16 = 0
    /// The slots of the call's first eight attempts, by attempt number − 1.
    var slots = SIMD8<Int32>(repeating: -1)
}

/// A call site: how a client or a call step chooses the edge (target and policies) of each call.
struct CallSite {
    /// The edge of a direct site.
    var direct: Int32 = -1
    /// A split's sides, with cumulative weights (fractions of the total).
    var splitEdges: [Int32] = []
    var cumulative: [Double] = []
    /// Routes: the edge for each (path, host) pair, `pathIndex * hostCount + hostIndex`, or -1 (no route).
    var routeTable: [Int32] = []
    /// The stream for split draws.
    var rng: RandomStream?
}

/// A call edge: who calls which service, with which policy, and the caller's view of the endpoints with its own
/// count of active requests on each.
struct EdgeState {
    var target: Int32
    var policy: CallPolicy
    var timeoutNs: Int64
    var balancer: BalancerBox
    var rng: RandomStream
    /// The stream for the edge's other policies (backoff jitter, outlier enforcement draws), kept apart from the
    /// balancer's so that adding a policy does not change the picks (common random numbers).
    var policyRng: RandomStream
    /// The endpoints the caller knows, in replica order, with this edge's active requests.
    var endpoints: [EndpointState]
    /// Active requests per replica of the target (kept while a replica is out of the view).
    var activeByReplica: [Int32]
    /// The position of each replica in `endpoints`, or -1.
    var positionOf: [Int32]
    /// The edge's retry budget, if any.
    var budget: RetryBudgetBox?
    /// The edge's retry rules (attempts and conditions; the backoff lives in each call).
    var retryPolicy: RetryPolicy
    /// The edge's circuit breaker, if any.
    var breaker: BreakerBox?
    /// Attempts waiting for a connection of the Envoy breaker's pool, oldest first, with their slot generations
    /// (an entry whose attempt has since ended is skipped).
    var pending: Deque<(attempt: Int32, generation: UInt32)> = []
    /// The edge's rate limiter, if any.
    var rateLimiter: RateLimiterBox?
    /// The edge's SRE adaptive throttle, if any.
    var throttle: AdaptiveThrottle?
    /// The edge's outlier detection over the target's replicas, if any.
    var outlier: OutlierDetectorStateMachine?
    /// Replicas currently ejected by outlier detection.
    var ejected: [Bool] = []
    /// The service's endpoint list as discovery reports it (before ejections).
    var fullView: [EndpointState] = []
    /// Whether the edge balances over unhealthy or ejected replicas because too few healthy ones are left.
    var inPanic = false

    // Health checks and passive health (see Simulation+Health.swift).

    /// Envoy active health checking of the target's replicas, if any.
    var activeCheck: ActiveHealthCheckStateMachine?
    /// nginx `max_fails` / `fail_timeout`, if any.
    var nginx: NginxPassiveHealthStateMachine?
    /// The end of each replica's latest nginx unavailability.
    var passiveDownUntil: [SimInstant] = []
    /// HAProxy server health (its checks, and observed errors), if any.
    var haproxy: HAProxyServerHealthStateMachine?
    /// Health checks in flight per replica of the target: bit 0 the Envoy checker's, bit 1 HAProxy's.
    var checking: [UInt8] = []
    /// The stream for health-check draws (network delays, errors), apart from the edge's other streams.
    var healthRng: RandomStream?
    /// The zone health checks are sent from (the caller's).
    var checkZone: Int32 = 0

    // Zone-aware routing.

    /// Envoy zone-aware routing, if on.
    var zoneAware: ZoneAwareRouting?
    /// The stream for zone choices.
    var zoneRng: RandomStream?
    /// The zone of each replica of the target.
    var replicaZone: [Int32] = []
    /// The edge's endpoints of each zone, with their own balancers (as Envoy keeps one per locality).
    var zoneEndpoints: [[EndpointState]] = []
    var zoneBalancers: [BalancerBox] = []
    /// The position of each replica in its zone's list, or -1.
    var zonePositionOf: [Int32] = []
    /// The edge's endpoints per zone (the upstream cluster's healthy hosts per zone).
    var upstreamByZone: [Int] = []
    /// The calling service (the originating cluster), or -1 for a client edge.
    var originService: Int32 = -1
    /// For a client edge: the originating cluster's members per zone (every client of the scenario).
    var originByZone: [Int] = []

    /// Picks an endpoint with the edge's balancer and stream; returns the replica's index in its service.
    ///
    /// With zone-aware routing (outside panic) the zone is chosen first from `origin` (the originating cluster's
    /// hosts per zone) and the edge's endpoints per zone, then that zone's balancer picks within it.
    @inline(__always)
    mutating func pick(at now: SimInstant, callerZone: Int32, origin: [Int]) -> Int32? {
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
    @inline(__always)
    mutating func started(replica local: Int32, at now: SimInstant) {
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
    @inline(__always)
    mutating func finished(replica local: Int32, latency: SimDuration, at now: SimInstant) {
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
    var filtersHealth: Bool { outlier != nil || activeCheck != nil || nginx != nil || haproxy != nil }

    /// Whether replica `i` is out of the edge's view at `now`: ejected by outlier detection, failing active
    /// health checks, or down by nginx's or HAProxy's passive health.
    func isExcluded(replica i: Int, at now: SimInstant) -> Bool {
        if !ejected.isEmpty && ejected[i] { return true }
        if let activeCheck, !activeCheck.isUsable(host: i, at: now) { return true }
        if let nginx, !nginx.isUsable(host: i, at: now) { return true }
        if let haproxy, !haproxy.isUsable(host: i, at: now) { return true }
        return false
    }

    /// Replaces the view with `view` (the service's current endpoints) less the ejected and unhealthy replicas —
    /// unless too few would be left (Envoy's panic threshold), keeping the active counts.
    mutating func setView(_ view: [EndpointState], at now: SimInstant) {
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

/// A replica's runtime state: the shared replica state machine and where the replica sits in the model.
struct ReplicaState {
    var service: Int32
    var localIndex: Int32
    var zone: Int32
    /// The number of downstream steps of the service.
    var stageCount: Int32
    /// Workers, queue, draws, faults and concurrency limit (shared with `serve`).
    var machine: ReplicaStateMachine

    var isServing: Bool { machine.isServing }
    var active: Bool { machine.active }
    var workers: Int32 { machine.workers }
    var busy: Int32 { machine.busy }
    var epoch: UInt32 { machine.epoch }
    var errorRate: Double { machine.errorRate }
}

/// A client's runtime state.
struct ClientState {
    /// Open-loop arrival times (shared with `load`); `nil` for a closed-loop client.
    var generator: ArrivalGenerator?
    var think: RandomStream
    /// The client's zone.
    var zone: Int32
    /// Cumulative weights of its request paths (empty: one path), their global indices, and its host's index.
    var pathCumulative: [Double] = []
    var pathIndices: [Int16] = []
    var hostIndex: Int16 = 0
    var paths: RandomStream?
}

/// A one-way link's runtime state.
struct LinkState {
    var spec: LinkSpec
    var instant: Bool
    var extraDelay: Int64 = 0
    var partitioned = false
    var rng: RandomStream
}
