//===----------------------------------------------------------------------===//
// meshsim — Proxy
//===----------------------------------------------------------------------===//

import Balancers
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

/// One cluster as one event loop sees it: the balancer, the endpoints with this loop's active counts, and counters.
///
/// Every request routed to the cluster goes through its hooks in order: ``admit(at:)``, ``pick(at:)``,
/// ``attemptStarted(endpoint:at:)`` and ``attemptEnded(endpoint:outcome:latency:at:)``; the resilience policies
/// (limiters, breakers, outlier detection, retries) plug in there. Confined to its event loop: no locks.
final class ClusterState {
    /// The cluster's position in the configuration.
    let index: Int
    /// The cluster's configuration.
    let spec: ProxyCluster
    /// The backend (pool) index of each endpoint.
    let backendOfEndpoint: [Int]
    /// The balancer, fed the way the simulator feeds it (`Simulation+State.swift`'s `EdgeState`).
    var balancer: BalancerBox
    /// Each endpoint with this loop's outstanding requests on it (Envoy `rq_active`).
    var endpoints: [EndpointState]
    /// Attempts sent, per endpoint.
    var sent: [Int]
    /// Attempts that failed (5xx or no response), per endpoint.
    var failures: [Int]
    /// The balancer's random stream (seeded, one per loop and cluster).
    var random: RandomStream

    init(index: Int, spec: ProxyCluster, backendOfEndpoint: [Int], random: RandomStream) {
        self.index = index
        self.spec = spec
        self.backendOfEndpoint = backendOfEndpoint
        self.random = random
        let count = spec.backends.count
        balancer = BalancerBox(spec.balancer, endpointCapacity: count)
        endpoints = (0..<count).map { EndpointState(index: Int32($0), weight: spec.weight($0)) }
        sent = Array(repeating: 0, count: count)
        failures = Array(repeating: 0, count: count)
        balancer.endpointsChanged()
    }

    /// Whether a new request may go to the cluster now (the hook for limiters and breakers; today: always).
    func admit(at now: SimInstant) -> Bool { true }

    /// The endpoint for the next attempt, or `nil` when there is none.
    ///
    /// - Complexity: that of the balancer.
    func pick(at now: SimInstant) -> Int? {
        endpoints.withUnsafeBufferPointer { buffer in
            balancer.pick(from: buffer, at: now, using: &random)
        }
    }

    /// Counts an attempt started on `endpoint`.
    ///
    /// - Complexity: O(1).
    func attemptStarted(endpoint: Int, at now: SimInstant) {
        endpoints[endpoint].active += 1
        sent[endpoint] += 1
        if balancer.learns { balancer.requestStarted(endpoint: Int32(endpoint), at: now) }
    }

    /// Counts an attempt on `endpoint` ended with `outcome` after `latency`, releasing its active count.
    ///
    /// - Complexity: O(1).
    func attemptEnded(endpoint: Int, outcome: AttemptOutcome, latency: SimDuration, at now: SimInstant) {
        endpoints[endpoint].active -= 1
        if outcome.isFailure { failures[endpoint] += 1 }
        if balancer.learns { balancer.requestFinished(endpoint: Int32(endpoint), latency: latency, at: now) }
    }
}
