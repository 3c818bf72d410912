//===----------------------------------------------------------------------===//
// meshsim — Balancers
//===----------------------------------------------------------------------===//

public import SimCore

/// Consistent hashing on a ring (ketama), with optional bounded load.
///
/// Source: Envoy `RING_HASH` (`ring_hash.proto`, algorithms.md §1.4). The ring holds
/// `ring_size = ceil(min(ceil(min_w · minimum_ring_size) / min_w, maximum_ring_size))` entries for normalised
/// weights `w`; each endpoint contributes entries `xxHash64("<key>_<n>")` in proportion to its weight; the ring is
/// sorted by hash, and a request goes to the first entry at or after its hash, wrapping around. With
/// `hash_balance_factor` (≥ 100), an endpoint may hold at most `factor/100 × average` active requests; an
/// overloaded one passes the request on to the following ring entries (bounded-load consistent hashing).
/// Defaults: minimum 1,024, maximum 8,388,608 entries.
public struct RingHashBalancer: LoadBalancer {
    /// The smallest ring.
    public let minimumRingSize: Int
    /// The largest ring.
    public let maximumRingSize: Int
    /// Bounded load, in percent of the average (nil: unbounded).
    public let hashBalanceFactor: Int?
    private var ring: [(hash: UInt64, position: Int32)] = []
    private var builtFor = -1

    /// Creates the balancer; throws for sizes out of order or a balance factor below 100.
    public init(minimumRingSize: Int = 1024, maximumRingSize: Int = 8_388_608, hashBalanceFactor: Int? = nil)
        throws(PolicyParameterError)
    {
        guard minimumRingSize >= 1 else { throw PolicyParameterError("minimum_ring_size", "must be ≥ 1") }
        guard maximumRingSize >= minimumRingSize, maximumRingSize <= 8_388_608 else {
            throw PolicyParameterError("maximum_ring_size", "must be in [minimum_ring_size, 8388608]")
        }
        if let f = hashBalanceFactor, f < 100 {
            throw PolicyParameterError("hash_balance_factor", "must be ≥ 100, not \(f)")
        }
        self.minimumRingSize = minimumRingSize
        self.maximumRingSize = maximumRingSize
        self.hashBalanceFactor = hashBalanceFactor
    }

    /// The number of ring entries (after the first pick).
    public var ringSize: Int { ring.count }

    /// The ring must be rebuilt: the endpoints or their weights changed.
    public mutating func endpointsChanged() { builtFor = -1 }

    private mutating func build(_ endpoints: UnsafeBufferPointer<EndpointState>) {
        let total = endpoints.reduce(0.0) { $0 + Double(max($1.weight, 1)) }
        let normalised = endpoints.map { Double(max($0.weight, 1)) / total }
        let minWeight = normalised.min() ?? 1
        let scale = min((minWeight * Double(minimumRingSize)).rounded(.up) / minWeight, Double(maximumRingSize))
        ring.removeAll(keepingCapacity: true)
        ring.reserveCapacity(Int(scale.rounded(.up)))
        var current = 0.0
        var target = 0.0
        for (position, e) in endpoints.enumerated() {
            target += scale * normalised[position]
            var count = 0
            while current < target {
                ring.append((XXHash64.hash("endpoint-\(e.index)_\(count)"), Int32(position)))
                count += 1
                current += 1
            }
        }
        ring.sort { $0.hash < $1.hash || ($0.hash == $1.hash && $0.position < $1.position) }
        builtFor = endpoints.count
    }

    /// Picks for a request whose hash key is `hash`.
    ///
    /// - Complexity: O(log ring) without bounded load; up to O(ring) probing with it.
    public mutating func pick(from endpoints: UnsafeBufferPointer<EndpointState>, hash: UInt64) -> Int? {
        guard !endpoints.isEmpty else { return nil }
        if builtFor != endpoints.count { build(endpoints) }
        var lo = 0
        var hi = ring.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ring[mid].hash < hash { lo = mid + 1 } else { hi = mid }
        }
        let start = lo == ring.count ? 0 : lo
        guard let factor = hashBalanceFactor else { return Int(ring[start].position) }
        var total = 0
        for e in endpoints { total += Int(e.active) }
        // Each endpoint may hold ceil(factor/100 × (total + 1) / n) requests, counting this one.
        let cap = (Double(factor) / 100 * Double(total + 1) / Double(endpoints.count)).rounded(.up)
        for step in 0..<ring.count {
            let position = Int(ring[(start + step) % ring.count].position)
            if Double(endpoints[position].active) + 1 <= cap { return position }
        }
        return Int(ring[start].position)
    }

    /// Picks for a request with a random hash key (each request its own key).
    public mutating func pick(
        from endpoints: UnsafeBufferPointer<EndpointState>,
        at now: SimInstant,
        using rng: inout some RandomNumberGenerator
    ) -> Int? {
        pick(from: endpoints, hash: rng.next())
    }
}

/// Maglev consistent hashing: a lookup table of prime size filled from per-endpoint permutations.
///
/// Source: Envoy `MAGLEV` (`maglev.proto`, algorithms.md §1.5). Each endpoint has `offset = xxHash64(key) % M` and
/// `skip = xxHash64(key, seed 1) % (M − 1) + 1`; its permutation is `(offset + skip·j) % M`. The table is filled
/// round by round: in round `r` an endpoint claims its next free slot unless `r · w < target`, after which its
/// target grows by the largest normalised weight. Weights 1:2 fill 21,846 and 43,691 of 65,537 entries.
/// `table_size` must be prime (default 65,537, at most 5,000,011).
public struct MaglevBalancer: LoadBalancer {
    /// The table size M (prime).
    public let tableSize: Int
    private var table: [Int32] = []
    private var builtFor = -1

    /// Creates the balancer; throws when `tableSize` is not a prime ≤ 5,000,011.
    public init(tableSize: Int = 65_537) throws(PolicyParameterError) {
        guard tableSize >= 2, tableSize <= 5_000_011, Self.isPrime(tableSize) else {
            throw PolicyParameterError("table_size", "must be a prime no larger than 5000011, not \(tableSize)")
        }
        self.tableSize = tableSize
    }

    static func isPrime(_ n: Int) -> Bool {
        if n < 2 { return false }
        if n % 2 == 0 { return n == 2 }
        var d = 3
        while d * d <= n {
            if n % d == 0 { return false }
            d += 2
        }
        return true
    }

    /// The table must be rebuilt: the endpoints or their weights changed.
    public mutating func endpointsChanged() { builtFor = -1 }

    /// How many table entries each endpoint position owns (after the first pick), for tests and reports.
    public func entryCounts(endpoints: Int) -> [Int] {
        var counts = Array(repeating: 0, count: endpoints)
        for p in table where Int(p) < endpoints { counts[Int(p)] += 1 }
        return counts
    }

    /// Builds the table for `endpoints` now.
    public mutating func build(_ endpoints: UnsafeBufferPointer<EndpointState>) {
        let m = tableSize
        let n = endpoints.count
        let total = endpoints.reduce(0.0) { $0 + Double(max($1.weight, 1)) }
        let weights = endpoints.map { Double(max($0.weight, 1)) / total }
        let maxWeight = weights.max() ?? 1
        var offsets = [Int](repeating: 0, count: n)
        var skips = [Int](repeating: 0, count: n)
        for (i, e) in endpoints.enumerated() {
            let key = "endpoint-\(e.index)"
            offsets[i] = Int(XXHash64.hash(key) % UInt64(m))
            skips[i] = Int(XXHash64.hash(key, seed: 1) % UInt64(m - 1)) + 1
        }
        var next = [Int](repeating: 0, count: n)
        var targets = [Double](repeating: 0, count: n)
        table = Array(repeating: -1, count: m)
        var filled = 0
        var iteration = 1
        while filled < m {
            for i in 0..<n where filled < m {
                if Double(iteration) * weights[i] < targets[i] { continue }
                targets[i] += maxWeight
                var slot = (offsets[i] + skips[i] * next[i]) % m
                while table[slot] >= 0 {
                    next[i] += 1
                    slot = (offsets[i] + skips[i] * next[i]) % m
                }
                table[slot] = Int32(i)
                next[i] += 1
                filled += 1
            }
            iteration += 1
        }
        builtFor = n
    }

    /// Picks for a request whose hash key is `hash`.
    ///
    /// - Complexity: O(1) once the table is built.
    public mutating func pick(from endpoints: UnsafeBufferPointer<EndpointState>, hash: UInt64) -> Int? {
        guard !endpoints.isEmpty else { return nil }
        if builtFor != endpoints.count { build(endpoints) }
        return Int(table[Int(hash % UInt64(tableSize))])
    }

    /// Picks for a request with a random hash key.
    public mutating func pick(
        from endpoints: UnsafeBufferPointer<EndpointState>,
        at now: SimInstant,
        using rng: inout some RandomNumberGenerator
    ) -> Int? {
        pick(from: endpoints, hash: rng.next())
    }
}
