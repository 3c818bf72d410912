//===----------------------------------------------------------------------===//
// meshsim — Proxy
//===----------------------------------------------------------------------===//

import Balancers
import Breakers
import Health
import Limiters
import SharedModel
import SimCore
import SimRandom
import Spec

/// How one attempt on an upstream ended.
public enum AttemptOutcome: Sendable, Equatable {
    /// The upstream answered with this status (the whole response passed).
    case response(status: Int)
    /// No connection could be made (answered 502).
    case connectFailure
    /// The connection broke, or the upstream sent something that is not HTTP, before the response ended (502).
    case upstreamError
    /// The upstream timeout passed (504).
    case timeout
    /// The client went away first; the upstream connection was closed.
    case cancelled

    /// Whether the attempt counts as a failure of the endpoint (5xx, no response).
    public var isFailure: Bool {
        switch self {
        case .response(let status): return status >= 500
        case .connectFailure, .upstreamError, .timeout: return true
        case .cancelled: return false
        }
    }

    /// The `outcome` label of the request counters.
    var label: Int {
        switch self {
        case .response(let status):
            switch status {
            case ..<300: return 0
            case 300..<400: return 1
            case 400..<500: return 2
            default: return 3
            }
        case .connectFailure, .upstreamError: return 4
        case .timeout: return 5
        case .cancelled: return 6
        }
    }

    /// The label values, indexed by ``label``.
    static let labels = ["2xx", "3xx", "4xx", "5xx", "502", "504", "cancelled"]
}

/// One cluster as one event loop sees it: the shared call edge (balancer over this loop's view of the endpoints,
/// rate limit, adaptive throttle, circuit breaker, outlier detection) and counters.
///
/// The edge is the simulator's own `CallEdge`, driven with the loop's clock: every request meets the same policy
/// calls in the same order as a simulated call (``admit(at:)``, then ``admitAttempt(at:)``, ``pick(at:)``,
/// ``attemptStarted(endpoint:at:)`` and ``attemptEnded(endpoint:outcome:latency:at:)``). Confined to its event
/// loop: no locks.
final class ClusterState {
    /// The cluster's position in the configuration.
    let index: Int
    /// The cluster's configuration.
    let spec: ProxyCluster
    /// The backend (pool) index of each endpoint.
    let backendOfEndpoint: [Int]
    /// The policies of the cluster's call edge and its view of the endpoints (with this loop's active counts).
    var edge: CallEdge
    /// The proxy's zone (the caller's, for zone-aware routing).
    let localZone: Int32
    /// Schedules a re-check of the view at an instant (the end of an nginx peer's unavailability); set by the loop.
    var scheduleRecovery: (SimInstant) -> Void = { _ in }
    /// Schedules an HAProxy check of an endpoint at an instant (`on-error` brought it forward, with `fastinter`);
    /// set by the loop's health checker.
    var scheduleHAProxyCheck: (Int, SimInstant) -> Void = { _, _ in }
    /// The cluster's adaptive concurrency limit, if any (this loop's).
    var concurrency: ConcurrencyLimiterBox?
    /// The stream the concurrency limit draws from (`proxy/LOOP/CLUSTER/concurrency`).
    let concurrencyRng: RandomStream
    /// Attempts sent, per endpoint.
    var sent: [Int]
    /// Attempts that failed (5xx or no response), per endpoint.
    var failures: [Int]

    /// The cluster `spec` on event loop `loop`, its streams keyed `proxy/LOOP/CLUSTER/…` from `seed`.
    init(index: Int, spec: ProxyCluster, backendOfEndpoint: [Int], seed: UInt64, loop: Int) {
        self.index = index
        self.spec = spec
        self.backendOfEndpoint = backendOfEndpoint
        let count = spec.backends.count
        let zones = spec.zones.count == count ? spec.zones : Array(repeating: 0, count: count)
        let zoneCount = max(spec.callersByZone.count, (zones.max() ?? 0) + 1, spec.localZone + 1)
        edge = CallEdge(
            target: index,
            policy: spec.policy,
            replicaZones: zones,
            zoneCount: zoneCount,
            stream: { RandomStream(seed: seed, replication: 0, key: $0) },
            key: "proxy/\(loop)/\(spec.name)"
        )
        edge.checkZone = Int32(spec.localZone)
        if edge.zoneAware != nil {
            edge.originService = -1
            edge.originByZone = spec.callersByZone + Array(repeating: 0, count: zoneCount - spec.callersByZone.count)
        }
        localZone = Int32(spec.localZone)
        concurrency = ConcurrencyLimiterBox(spec.concurrencyLimit)
        concurrencyRng = RandomStream(seed: seed, replication: 0, key: "proxy/\(loop)/\(spec.name)/concurrency")
        edge.setView((0..<count).map { EndpointState(index: Int32($0), weight: spec.weight($0)) }, at: .zero)
        sent = Array(repeating: 0, count: count)
        failures = Array(repeating: 0, count: count)
    }

    /// Whether a new request may go to the cluster now: the retry budget counts it and the rate limiter admits it.
    func admit(at now: SimInstant) -> Bool { edge.admitCall(at: now) }

    /// A permit of the cluster's concurrency limit for a new request: `.some(nil)` without a limit, `nil` when the
    /// limit is reached.
    ///
    /// - Complexity: O(1).
    func acquireConcurrency(at now: SimInstant) -> ConcurrencyPermit?? {
        guard concurrency != nil else { return .some(nil) }
        guard let permit = concurrency!.acquire(at: now) else { return nil }
        return .some(permit)
    }

    /// Returns a request's concurrency permit; the limit learns from `outcome`.
    func releaseConcurrency(_ permit: ConcurrencyPermit, outcome: ConcurrencyOutcome, at now: SimInstant) {
        guard concurrency != nil else { return }
        var rng = concurrencyRng
        concurrency!.release(permit, at: now, outcome: outcome, using: &rng)
    }

    /// Whether an attempt may go out (a retry counts against Envoy's `max_retries`): the adaptive throttle, then the
    /// circuit breaker (and Envoy's pool limits). Returns the admission and whether the breaker opened.
    func admitAttempt(isRetry: Bool, at now: SimInstant) -> (AttemptAdmission, breakerOpened: Bool) {
        edge.admitAttempt(isRetry: isRetry, at: now)
    }

    /// The endpoint for the next attempt, or `nil` when the view is empty.
    ///
    /// - Complexity: that of the balancer.
    func pick(at now: SimInstant) -> Int? {
        let choice = edge.pick(at: now, callerZone: localZone, origin: edge.originByZone).map { Int($0) }
        if let choice, edge.nginx != nil { edge.nginxSelected(host: choice, at: now) }
        return choice
    }

    /// Counts an attempt started on `endpoint`.
    ///
    /// - Complexity: O(1).
    func attemptStarted(endpoint: Int, at now: SimInstant) {
        edge.started(replica: Int32(endpoint), at: now)
        sent[endpoint] += 1
    }

    /// Counts an attempt on `endpoint` ended with `outcome` after `latency`: the balancer lets go of it (unless
    /// `releasingBalancer` is false: a timed-out attempt under `release_on_timeout: false`, released by
    /// ``releaseBalancer(endpoint:latency:at:)`` when its response arrives), the breaker (admitted with `pool`) and
    /// the throttle learn the result, and outlier detection, nginx's and HAProxy's passive health record it.
    ///
    /// - Returns: the ejections and breaker openings it caused, for the metrics.
    /// - Complexity: O(1) plus the policies' own costs (an ejection rebuilds the view).
    @discardableResult
    func attemptEnded(
        endpoint: Int,
        outcome: AttemptOutcome,
        latency: SimDuration,
        pool: PoolState,
        isRetry: Bool = false,
        releasingBalancer: Bool = true,
        at now: SimInstant
    ) -> (ejections: Int, breakerOpened: Bool) {
        if releasingBalancer { edge.finished(replica: Int32(endpoint), latency: latency, at: now) }
        if outcome.isFailure { failures[endpoint] += 1 }
        if case .cancelled = outcome {
            // The client left: the breaker takes its permission back without an outcome.
            if edge.breaker != nil { edge.breaker!.cancel(isRetry: isRetry, pool: pool, at: now) }
            return (0, false)
        }
        var opened = false
        if edge.breaker != nil {
            opened = edge.breaker!.finish(
                isRetry: isRetry,
                pool: pool,
                success: !outcome.isFailure,
                duration: latency,
                at: now
            )
        }
        if edge.throttle != nil {
            // The backend accepted the request unless it refused it (connection) or shed it (503).
            let accepted: Bool
            switch outcome {
            case .connectFailure: accepted = false
            case .response(let status): accepted = status != 503
            default: accepted = true
            }
            edge.throttle!.record(accepted: accepted, at: now)
        }
        var ejections = 0
        if let event = edge.recordOutlier(host: endpoint, result: outcome.requestResult, at: now),
            edge.applyOutlierEvent(event, at: now)
        {
            ejections += 1
        }
        if edge.nginx != nil {
            let (until, fresh) = edge.recordNginxPassive(host: endpoint, result: outcome.requestResult, at: now)
            if fresh { ejections += 1 }
            if let until { scheduleRecovery(until) }
        }
        if edge.haproxy != nil, let event = edge.observeHAProxy(host: endpoint, result: outcome.requestResult, at: now)
        {
            // `error-limit` reached: `on-error` acted (a server marked down counts as an ejection).
            if case .becameUnhealthy? = event.transition { ejections += 1 }
            if edge.haproxy!.configuration.fastinter != nil { scheduleHAProxyCheck(endpoint, event.nextCheck) }
        }
        return (ejections, opened)
    }

    /// The balancer lets go of an attempt that timed out earlier and learns its whole latency (Finagle's pure-delay
    /// servers: `release_on_timeout: false`).
    func releaseBalancer(endpoint: Int, latency: SimDuration, at now: SimInstant) {
        edge.finished(replica: Int32(endpoint), latency: latency, at: now)
    }

    /// The periodic outlier-detection sweep; returns the number of ejections.
    func sweepOutliers(at now: SimInstant) -> Int {
        var ejections = 0
        for event in edge.sweepOutliers(at: now) where edge.applyOutlierEvent(event, at: now) { ejections += 1 }
        return ejections
    }

    /// Whether endpoint `i` is ejected by outlier detection now.
    func isEjected(_ i: Int) -> Bool { !edge.ejected.isEmpty && edge.ejected[i] }

    /// Whether endpoint `i` is out of the view for its health now (failing Envoy active checks, or down by nginx's
    /// or HAProxy's passive health or HAProxy's checks), apart from outlier ejection.
    func isDown(_ i: Int, at now: SimInstant) -> Bool {
        if let check = edge.activeCheck, !check.isUsable(host: i, at: now) { return true }
        if let nginx = edge.nginx, !nginx.isUsable(host: i, at: now) { return true }
        if let haproxy = edge.haproxy, !haproxy.isUsable(host: i, at: now) { return true }
        return false
    }
}

extension AttemptOutcome {
    /// What the end of a request with this outcome teaches an adaptive concurrency limit, as a replica's limit
    /// learns: a success (below 500) is a latency sample, an overload sign (503, a timeout, a refused or broken
    /// connection) a drop, another 5xx or a client that left nothing.
    var concurrencyOutcome: ConcurrencyOutcome {
        switch self {
        case .response(let status): return status < 500 ? .success : (status == 503 ? .dropped : .ignored)
        case .timeout, .connectFailure, .upstreamError: return .dropped
        case .cancelled: return .ignored
        }
    }

    /// The result as outlier detection sees it (Envoy: 5xx responses, and local-origin gateway failures).
    var requestResult: RequestResult {
        switch self {
        case .response(let status): return status >= 500 ? .httpError(status: status) : .success
        case .connectFailure, .upstreamError, .timeout, .cancelled: return .gatewayFailure
        }
    }
}
