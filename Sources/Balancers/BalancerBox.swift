//===----------------------------------------------------------------------===//
// meshsim — Balancers
//===----------------------------------------------------------------------===//

public import SimCore

/// The balancer of one call edge, without existentials (a switch, not dynamic dispatch).
///
/// Mutating a payload in place: the box is emptied first, so that a balancer's storage (peak EWMA's per-node
/// array, a hash table) stays uniquely referenced and is never copied on the hot path.
public enum BalancerBox {
    case empty
    case roundRobin(RoundRobinBalancer)
    case weightedRoundRobin(WeightedRoundRobinBalancer)
    case random(RandomBalancer)
    case leastRequest(LeastRequestBalancer)
    case peakEWMA(PeakEWMABalancer)
    case ringHash(RingHashBalancer)
    case maglev(MaglevBalancer)
    case nginxLeastConn(NginxLeastConnBalancer)
    case nginxRandomTwo(NginxRandomTwoLeastConnBalancer)
    case haproxyLeastConn(HAProxyLeastConnBalancer)
    case haproxyRandom(HAProxyRandomBalancer)

    /// Picks an endpoint.
    ///
    /// - Complexity: that of the balancer; no dynamic dispatch, no copy of its storage.
    @inlinable
    public mutating func pick(
        from endpoints: UnsafeBufferPointer<EndpointState>,
        at now: SimInstant,
        using rng: inout some RandomNumberGenerator
    ) -> Int? {
        switch self {
        case .empty: return nil
        case .roundRobin(var b):
            let choice = b.pick(from: endpoints, at: now, using: &rng)
            self = .roundRobin(b)
            return choice
        case .random(var b):
            return b.pick(from: endpoints, at: now, using: &rng)
        case .weightedRoundRobin(var b):
            self = .empty
            defer { self = .weightedRoundRobin(b) }
            return b.pick(from: endpoints, at: now, using: &rng)
        case .leastRequest(var b):
            self = .empty
            defer { self = .leastRequest(b) }
            return b.pick(from: endpoints, at: now, using: &rng)
        case .peakEWMA(var b):
            self = .empty
            defer { self = .peakEWMA(b) }
            return b.pick(from: endpoints, at: now, using: &rng)
        case .ringHash(var b):
            self = .empty
            defer { self = .ringHash(b) }
            return b.pick(from: endpoints, at: now, using: &rng)
        case .maglev(var b):
            self = .empty
            defer { self = .maglev(b) }
            return b.pick(from: endpoints, at: now, using: &rng)
        case .nginxLeastConn(var b):
            defer { self = .nginxLeastConn(b) }
            return b.pick(from: endpoints, at: now, using: &rng)
        case .nginxRandomTwo(var b):
            return b.pick(from: endpoints, at: now, using: &rng)
        case .haproxyLeastConn(var b):
            defer { self = .haproxyLeastConn(b) }
            return b.pick(from: endpoints, at: now, using: &rng)
        case .haproxyRandom(var b):
            return b.pick(from: endpoints, at: now, using: &rng)
        }
    }

    /// Whether the balancer learns from request starts and ends (only peak EWMA does).
    public var learns: Bool {
        if case .peakEWMA = self { return true }
        return false
    }

    /// Reports a request start to a learning balancer.
    public mutating func requestStarted(endpoint: Int32, at now: SimInstant) {
        guard case .peakEWMA(var b) = self else { return }
        self = .empty
        b.requestStarted(endpoint: endpoint, at: now)
        self = .peakEWMA(b)
    }

    /// Reports a request end to a learning balancer.
    public mutating func requestFinished(endpoint: Int32, latency: SimDuration, at now: SimInstant) {
        guard case .peakEWMA(var b) = self else { return }
        self = .empty
        b.requestFinished(endpoint: endpoint, latency: latency, at: now)
        self = .peakEWMA(b)
    }

    /// Tells a table-keeping balancer that the endpoints changed.
    public mutating func endpointsChanged() {
        switch self {
        case .weightedRoundRobin(var b):
            self = .empty
            b.endpointsChanged()
            self = .weightedRoundRobin(b)
        case .leastRequest(var b):
            self = .empty
            b.endpointsChanged()
            self = .leastRequest(b)
        case .ringHash(var b):
            self = .empty
            b.endpointsChanged()
            self = .ringHash(b)
        case .maglev(var b):
            self = .empty
            b.endpointsChanged()
            self = .maglev(b)
        default:
            break
        }
    }
}
