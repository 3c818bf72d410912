//===----------------------------------------------------------------------===//
// meshsim — Balancers
//===----------------------------------------------------------------------===//

public import SimCore

/// nginx `least_conn`: the endpoint with the fewest active connections relative to its weight; endpoints tied on
/// that load are tried in turn by weighted round robin.
///
/// Source: nginx `ngx_http_upstream_least_conn_module` ("if there are several such servers, they are tried in
/// turn using a weighted round-robin"; loadgen-and-proxies.md §5.1). Loads are compared as `conns / weight` by
/// cross-multiplication. The round robin among ties keeps a rotating cursor.
public struct NginxLeastConnBalancer: LoadBalancer {
    private var cursor = 0

    /// Creates the balancer.
    public init() {}

    /// - Complexity: O(n), no allocation.
    public mutating func pick(
        from endpoints: UnsafeBufferPointer<EndpointState>,
        at now: SimInstant,
        using rng: inout some RandomNumberGenerator
    ) -> Int? {
        let n = endpoints.count
        guard n > 0 else { return nil }
        // The least load: conns_a / w_a < conns_b / w_b  ⇔  conns_a · w_b < conns_b · w_a.
        var best = 0
        for i in 1..<n
        where Int64(endpoints[i].active) * Int64(endpoints[best].weight)
            < Int64(endpoints[best].active) * Int64(endpoints[i].weight)
        {
            best = i
        }
        // Among the endpoints with that load, take the next one after the cursor.
        for step in 0..<n {
            let i = (cursor + step) % n
            if Int64(endpoints[i].active) * Int64(endpoints[best].weight)
                == Int64(endpoints[best].active) * Int64(endpoints[i].weight)
            {
                cursor = i + 1
                return i
            }
        }
        return best
    }
}

/// nginx `random two least_conn`: two **distinct** random endpoints, the one with fewer connections per weight.
///
/// Source: nginx `ngx_http_upstream_random_module.c`, `get_random2_peer` (loadgen-and-proxies.md §5.1): draws are
/// weighted by server weight, a repeated draw is redrawn, loads compare `conns × weight` crosswise, and after 20
/// tries it falls back to a single random pick.
public struct NginxRandomTwoLeastConnBalancer: LoadBalancer {
    private var draw = WeightedDraw()

    /// Creates the balancer.
    public init() {}

    /// The endpoint set changed: the weight ranges are recomputed on the next pick.
    public mutating func endpointsChanged() { draw = WeightedDraw() }

    /// - Complexity: O(log n) per draw (binary search over weight ranges, as nginx does); O(n) after a change.
    public mutating func pick(
        from endpoints: UnsafeBufferPointer<EndpointState>,
        at now: SimInstant,
        using rng: inout some RandomNumberGenerator
    ) -> Int? {
        let n = endpoints.count
        guard n > 0 else { return nil }
        if n == 1 { return 0 }
        if draw.count != n { draw = WeightedDraw(endpoints) }
        let a = draw.draw(using: &rng)
        var b = a
        var tries = 0
        while b == a && tries < 20 {
            b = draw.draw(using: &rng)
            tries += 1
        }
        if b == a { return a }
        let loadA = Int64(endpoints[a].active) * Int64(max(endpoints[b].weight, 1))
        let loadB = Int64(endpoints[b].active) * Int64(max(endpoints[a].weight, 1))
        return loadB < loadA ? b : a
    }
}

/// HAProxy `balance leastconn`: the fewest served requests relative to weight, round robin within equal loads.
///
/// Source: HAProxy `src/lb_fwlc.c` (loadgen-and-proxies.md §5.2): the key is
/// `(served + queue + 1) × SRV_EWGHT_MAX / eweight`; servers with the same key are used in turn. Here `served` is the
/// caller's active requests to the endpoint and the proxy's queue is empty.
public struct HAProxyLeastConnBalancer: LoadBalancer {
    private var cursor = 0
    /// HAProxy's `SRV_EWGHT_MAX` (weights are scaled by 16 up to 256 × 16).
    static let maxEffectiveWeight: Int64 = 4096

    /// Creates the balancer.
    public init() {}

    @inline(__always)
    private func key(_ e: EndpointState) -> Int64 {
        (Int64(e.active) + 1) * Self.maxEffectiveWeight / Int64(max(e.weight, 1))
    }

    /// - Complexity: O(n), no allocation.
    public mutating func pick(
        from endpoints: UnsafeBufferPointer<EndpointState>,
        at now: SimInstant,
        using rng: inout some RandomNumberGenerator
    ) -> Int? {
        let n = endpoints.count
        guard n > 0 else { return nil }
        var best = key(endpoints[0])
        for i in 1..<n { best = min(best, key(endpoints[i])) }
        for step in 0..<n {
            let i = (cursor + step) % n
            if key(endpoints[i]) == best {
                cursor = i + 1
                return i
            }
        }
        return 0
    }
}

/// HAProxy `balance random(<draws>)`: several weighted random draws (default 2), which **may repeat**; the
/// endpoint with the fewest served requests relative to weight wins, the first drawn on a tie (HAProxy 2.6).
///
/// Source: HAProxy `src/backend.c`, `get_server_rnd` (loadgen-and-proxies.md §5.2).
public struct HAProxyRandomBalancer: LoadBalancer {
    /// The number of draws.
    public let draws: Int
    private var draw = WeightedDraw()

    /// Creates the balancer; throws for fewer than 1 draw.
    public init(draws: Int = 2) throws(PolicyParameterError) {
        guard draws >= 1 else { throw PolicyParameterError("draws", "must be at least 1, not \(draws)") }
        self.draws = draws
    }

    /// The endpoint set changed: the weight ranges are recomputed on the next pick.
    public mutating func endpointsChanged() { draw = WeightedDraw() }

    /// - Complexity: O(draws × log n) (HAProxy draws on a weighted hash ring); O(n) after a change.
    public mutating func pick(
        from endpoints: UnsafeBufferPointer<EndpointState>,
        at now: SimInstant,
        using rng: inout some RandomNumberGenerator
    ) -> Int? {
        let n = endpoints.count
        guard n > 0 else { return nil }
        if draw.count != n { draw = WeightedDraw(endpoints) }
        var chosen = -1
        for _ in 0..<draws {
            let candidate = draw.draw(using: &rng)
            if chosen < 0 {
                chosen = candidate
            } else if Int64(endpoints[candidate].active) * Int64(max(endpoints[chosen].weight, 1))
                < Int64(endpoints[chosen].active) * Int64(max(endpoints[candidate].weight, 1))
            {
                chosen = candidate
            }
        }
        return chosen
    }
}

/// A weighted random draw over endpoints: cumulative weight ranges, searched by bisection.
struct WeightedDraw: Sendable {
    private var cumulative: [Int64] = []

    /// The number of endpoints described (-1: none yet).
    var count: Int { cumulative.isEmpty ? -1 : cumulative.count }

    init() {}

    /// Ranges for `endpoints` (weights below 1 count as 1).
    init(_ endpoints: UnsafeBufferPointer<EndpointState>) {
        var total: Int64 = 0
        cumulative.reserveCapacity(endpoints.count)
        for e in endpoints {
            total += Int64(max(e.weight, 1))
            cumulative.append(total)
        }
    }

    /// A position drawn with probability proportional to its weight.
    ///
    /// - Complexity: O(log n), no allocation.
    func draw(using rng: inout some RandomNumberGenerator) -> Int {
        let x = Int64(uniformBelow(UInt64(cumulative[cumulative.count - 1]), using: &rng))
        var lo = 0
        var hi = cumulative.count - 1
        while lo < hi {
            let mid = (lo + hi) / 2
            if cumulative[mid] > x { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }
}
