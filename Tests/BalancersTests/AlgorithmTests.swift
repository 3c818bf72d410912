import Balancers
import SimCore
import Testing

/// Runs `picks` picks of `balancer` over `endpoints`, optionally holding each pick as active, and counts them.
func countPicks(
    _ balancer: inout some LoadBalancer,
    _ endpoints: [EndpointState],
    picks: Int,
    seed: UInt64 = 1,
    at now: SimInstant = .zero
) -> [Int] {
    var rng = SplitMix(state: seed)
    var counts = [Int](repeating: 0, count: endpoints.count)
    endpoints.withUnsafeBufferPointer { buffer in
        for _ in 0..<picks { counts[balancer.pick(from: buffer, at: now, using: &rng)!] += 1 }
    }
    return counts
}

@Suite("Weighted round robin (EDF)")
struct WeightedRoundRobinTests {
    @Test("EDF picks in weight ratio, exactly over whole cycles", arguments: 0..<20)
    func ratio(seed: UInt64) {
        var balancer = WeightedRoundRobinBalancer()
        let endpoints = [1, 2, 3, 4].enumerated().map { EndpointState(index: Int32($0), weight: Int32($1)) }
        let counts = countPicks(&balancer, endpoints, picks: 1_000, seed: seed)
        for (i, w) in [1, 2, 3, 4].enumerated() { #expect(abs(counts[i] - 100 * w) <= 2, "\(counts)") }
    }

    @Test("EDF spreads a heavy endpoint's picks rather than bunching them")
    func smooth() {
        var balancer = WeightedRoundRobinBalancer()
        let endpoints = [EndpointState(index: 0, weight: 1), EndpointState(index: 1, weight: 3)]
        var rng = SplitMix(state: 3)
        var picks: [Int] = []
        endpoints.withUnsafeBufferPointer { buffer in
            for _ in 0..<40 { picks.append(balancer.pick(from: buffer, at: .zero, using: &rng)!) }
        }
        var run = 0
        var longest = 0
        for p in picks {
            run = p == 1 ? run + 1 : 0
            longest = max(longest, run)
        }
        #expect(longest <= 3)
        #expect(picks.filter { $0 == 0 }.count == 10)
    }

    @Test("slow start ramps a new endpoint's share linearly over its window")
    func slowStart() throws {
        let ramp = try SlowStart(window: .seconds(10))
        var balancer = WeightedRoundRobinBalancer(slowStart: ramp)
        let endpoints = [
            EndpointState(index: 0, weight: 1), EndpointState(index: 1, weight: 1, readySince: .zero + .seconds(100)),
        ]
        // 5 s into its window the new endpoint has weight 0.5: a third of the picks.
        let counts = countPicks(&balancer, endpoints, picks: 3_000, at: .zero + .seconds(105))
        #expect(abs(Double(counts[1]) / 3_000 - 1.0 / 3) < 0.01, "\(counts)")
        #expect(abs(ramp.effectiveWeight(1, readySince: .zero, at: .zero + .milliseconds(100)) - 0.1) < 1e-9)
        #expect(ramp.effectiveWeight(2, readySince: .zero, at: .zero + .seconds(20)) == 2)
        let aggressive = try SlowStart(window: .seconds(10), aggression: 2)
        #expect(
            abs(aggressive.effectiveWeight(1, readySince: .zero, at: .zero + .seconds(4)) - 0.4.squareRoot()) < 1e-9
        )
        #expect(throws: PolicyParameterError.self) { try SlowStart(window: .zero) }
        #expect(throws: PolicyParameterError.self) { try SlowStart(window: .seconds(1), minWeightPercent: 120) }
    }
}

@Suite("Least request")
struct LeastRequestTests {
    static func endpoints(_ active: [Int32], weights: [Int32]? = nil) -> [EndpointState] {
        active.enumerated().map { EndpointState(index: Int32($0), weight: weights?[$0] ?? 1, active: $1) }
    }

    @Test("P2C with replacement can pick the most loaded endpoint; without replacement it never does")
    func replacement() throws {
        let endpoints = Self.endpoints([0, 0, 9])
        var envoy = try LeastRequestBalancer(selection: .nChoices(2, withReplacement: true))
        var finagle = try LeastRequestBalancer(selection: .nChoices(2, withReplacement: false))
        let withReplacement = countPicks(&envoy, endpoints, picks: 9_000)
        let distinct = countPicks(&finagle, endpoints, picks: 9_000)
        // With replacement the loaded endpoint wins only when drawn twice: 1/9 of picks.
        #expect(abs(Double(withReplacement[2]) / 9_000 - 1.0 / 9) < 0.01)
        #expect(distinct[2] == 0)
    }

    @Test("full scan always picks a least-loaded endpoint and spreads ties")
    func fullScan() throws {
        var balancer = try LeastRequestBalancer(selection: .fullScan)
        let counts = countPicks(&balancer, Self.endpoints([3, 1, 1, 5]), picks: 10_000)
        #expect(counts[0] == 0 && counts[3] == 0)
        #expect(abs(counts[1] - 5_000) < 250)
    }

    @Test("unequal weights use weight / (active + 1)^bias on the EDF scheduler")
    func weighted() throws {
        // Envoy's doc example: weight 2 with 4 active requests gives 2/5 = 0.4 against 1/1 for an idle weight-1 host.
        var balancer = try LeastRequestBalancer()
        let counts = countPicks(&balancer, Self.endpoints([4, 0], weights: [2, 1]), picks: 7_000)
        #expect(abs(Double(counts[0]) / 7_000 - 0.4 / 1.4) < 0.01, "\(counts)")
        var plain = try LeastRequestBalancer(activeRequestBias: 0)
        let wrr = countPicks(&plain, Self.endpoints([4, 0], weights: [2, 1]), picks: 3_000)
        #expect(abs(wrr[0] - 2_000) <= 2)
    }

    @Test("impossible parameters are errors")
    func parameters() {
        #expect(throws: PolicyParameterError("choice_count", "must be at least 2, not 1")) {
            try LeastRequestBalancer(selection: .nChoices(1, withReplacement: true))
        }
        #expect(throws: PolicyParameterError.self) { try LeastRequestBalancer(activeRequestBias: -0.5) }
    }
}

@Suite("Peak EWMA")
struct PeakEWMATests {
    @Test("a latency spike is adopted at once and decays with time constant tau")
    func peakAndDecay() throws {
        var balancer = try PeakEWMABalancer(decay: .seconds(10), endpointCapacity: 1)
        let t0 = SimInstant.zero
        balancer.requestStarted(endpoint: 0, at: t0)
        balancer.requestFinished(endpoint: 0, latency: .milliseconds(100), at: t0)
        #expect(balancer.cost(of: 0, at: t0) == 100e6)
        balancer.requestStarted(endpoint: 0, at: t0)
        balancer.requestFinished(endpoint: 0, latency: .seconds(2), at: t0)
        #expect(balancer.cost(of: 0, at: t0) == 2e9)
        // 10 s later with no sample the cost has decayed by e^-1.
        let later = balancer.cost(of: 0, at: t0 + .seconds(10))
        #expect(abs(later / (2e9 * 0.36787944117144233) - 1) < 1e-9)
    }

    @Test("cost is ema × (pending + 1), and an endpoint with pending requests and no sample is avoided")
    func cost() throws {
        var balancer = try PeakEWMABalancer(endpointCapacity: 2)
        balancer.requestStarted(endpoint: 0, at: .zero)
        #expect(balancer.cost(of: 0, at: .zero) == PeakEWMABalancer.penalty + 1)
        #expect(balancer.cost(of: 1, at: .zero) == 0)
        balancer.requestFinished(endpoint: 0, latency: .milliseconds(10), at: .zero)
        balancer.requestStarted(endpoint: 0, at: .zero)
        balancer.requestStarted(endpoint: 0, at: .zero)
        #expect(balancer.cost(of: 0, at: .zero) == 10e6 * 3)
        let endpoints = [EndpointState(index: 0), EndpointState(index: 1)]
        var rng = SplitMix(state: 1)
        let pick = endpoints.withUnsafeBufferPointer { balancer.pick(from: $0, at: .zero, using: &rng) }
        #expect(pick == 1)
        #expect(throws: PolicyParameterError.self) { try PeakEWMABalancer(decay: .zero, endpointCapacity: 1) }
    }
}

@Suite("Hashing balancers")
struct HashingTests {
    @Test("xxHash64 matches the reference test vectors")
    func xxhash() {
        #expect(XXHash64.hash([UInt8]()) == 0xEF46_DB37_51D8_E999)
        #expect(XXHash64.hash("a") == 0xD24E_C4F1_A98C_6E5B)
        #expect(XXHash64.hash("abc") == 0x44BC_2CF5_AD77_0999)
        #expect(XXHash64.hash("Nobody inspects the spammish repetition") == 0xFBCE_A83C_8A37_8BF1)
    }

    @Test("Maglev with weights 1:2 fills 21,846 and 43,691 of 65,537 entries")
    func maglevWeights() throws {
        var maglev = try MaglevBalancer()
        let endpoints = [EndpointState(index: 0, weight: 1), EndpointState(index: 1, weight: 2)]
        endpoints.withUnsafeBufferPointer { maglev.build($0) }
        #expect(maglev.entryCounts(endpoints: 2) == [21_846, 43_691])
    }

    @Test("Maglev needs a prime table size")
    func maglevPrime() {
        #expect(throws: PolicyParameterError.self) { try MaglevBalancer(tableSize: 65_536) }
        #expect(throws: PolicyParameterError.self) { try MaglevBalancer(tableSize: 5_000_012) }
    }

    @Test("the same key always maps to the same endpoint; removing one of N moves a small share of the keys")
    func consistency() throws {
        var ring = try RingHashBalancer()
        var maglev = try MaglevBalancer(tableSize: 5_003)
        let ten = (0..<10).map { EndpointState(index: Int32($0)) }
        let nine = Array(ten.prefix(9))
        var rng = SplitMix(state: 5)
        let keys = (0..<5_000).map { _ in rng.next() }
        for useMaglev in [false, true] {
            func map(_ endpoints: [EndpointState]) -> [Int32] {
                endpoints.withUnsafeBufferPointer { buffer in
                    keys.map { key in
                        let p = useMaglev ? maglev.pick(from: buffer, hash: key)! : ring.pick(from: buffer, hash: key)!
                        return buffer[p].index
                    }
                }
            }
            let before = map(ten)
            #expect(before == map(ten))
            if useMaglev { maglev.endpointsChanged() } else { ring.endpointsChanged() }
            let after = map(nine)
            let moved = zip(before, after).filter { $0 != $1 }.count
            let share = Double(moved) / Double(keys.count)
            // 1/N = 10% must move; the ring also re-scales (each remaining endpoint gets ~11% more entries, which
            // take keys too), and Maglev is known to move about twice as many keys as a ring.
            #expect(share > 0.07 && share < 0.25, "moved \(share) maglev \(useMaglev)")
            if useMaglev { maglev.endpointsChanged() } else { ring.endpointsChanged() }
        }
    }

    @Test("the ring has the documented size and weights shape it")
    func ringSize() throws {
        var ring = try RingHashBalancer()
        let endpoints = [EndpointState(index: 0, weight: 1), EndpointState(index: 1, weight: 3)]
        var rng = SplitMix(state: 2)
        var counts = [0, 0]
        endpoints.withUnsafeBufferPointer { buffer in
            for _ in 0..<20_000 { counts[ring.pick(from: buffer, at: .zero, using: &rng)!] += 1 }
        }
        #expect(ring.ringSize == 1_024)
        #expect(abs(Double(counts[1]) / 20_000 - 0.75) < 0.05, "\(counts)")
        #expect(throws: PolicyParameterError.self) { try RingHashBalancer(hashBalanceFactor: 99) }
    }

    @Test("bounded load keeps every endpoint under factor × average")
    func boundedLoad() throws {
        var ring = try RingHashBalancer(hashBalanceFactor: 125)
        var endpoints = (0..<4).map { EndpointState(index: Int32($0)) }
        var rng = SplitMix(state: 9)
        // Every request hashes to the same key and stays active: without a bound one endpoint would take all.
        for _ in 0..<40 {
            let p = endpoints.withUnsafeBufferPointer { ring.pick(from: $0, hash: 42) }!
            endpoints[p].active += 1
            _ = rng.next()
        }
        let loads = endpoints.map(\.active)
        #expect(loads.max()! <= Int32((1.25 * 10).rounded(.up)), "\(loads)")
    }
}

@Suite("Proxy balancers, panic and zones")
struct ProxyBalancerTests {
    @Test("nginx least_conn takes the least loaded per weight and rotates among ties")
    func nginxLeastConn() {
        var balancer = NginxLeastConnBalancer()
        let endpoints = [
            EndpointState(index: 0, weight: 1, active: 2), EndpointState(index: 1, weight: 2, active: 2),
            EndpointState(index: 2, weight: 1, active: 1), EndpointState(index: 3, weight: 1, active: 3),
        ]
        let counts = countPicks(&balancer, endpoints, picks: 100)
        #expect(counts == [0, 50, 50, 0])
    }

    @Test("nginx random two never compares an endpoint with itself; HAProxy random(2) may")
    func randomTwo() throws {
        let endpoints = [EndpointState(index: 0, active: 0), EndpointState(index: 1, active: 5)]
        var nginx = NginxRandomTwoLeastConnBalancer()
        var haproxy = try HAProxyRandomBalancer(draws: 2)
        #expect(countPicks(&nginx, endpoints, picks: 1_000)[1] == 0)
        let h = countPicks(&haproxy, endpoints, picks: 8_000)
        #expect(abs(Double(h[1]) / 8_000 - 0.25) < 0.02)
        #expect(throws: PolicyParameterError.self) { try HAProxyRandomBalancer(draws: 0) }
    }

    @Test("HAProxy leastconn keys on (served + 1) / weight and rotates among equal keys")
    func haproxyLeastConn() {
        var balancer = HAProxyLeastConnBalancer()
        let endpoints = [
            EndpointState(index: 0, weight: 2, active: 1), EndpointState(index: 1, weight: 1, active: 0),
            EndpointState(index: 2, weight: 1, active: 1),
        ]
        // Keys: (1+1)/2 = 1, (0+1)/1 = 1, (1+1)/1 = 2: endpoints 0 and 1 alternate.
        #expect(countPicks(&balancer, endpoints, picks: 10) == [5, 5, 0])
    }

    @Test("panic threshold: below 50% healthy, balance across all")
    func panic() throws {
        let threshold = try PanicThreshold()
        #expect(!threshold.isPanicking(healthy: 5, total: 10))
        #expect(threshold.isPanicking(healthy: 4, total: 10))
        #expect(!(try PanicThreshold(percent: 0)).isPanicking(healthy: 0, total: 10))
        #expect(threshold.health(healthy: 72, total: 100) == 100)
        #expect(abs(threshold.health(healthy: 50, total: 100) - 70) < 1e-9)
        #expect(throws: PolicyParameterError.self) { try PanicThreshold(percent: 101) }
    }

    @Test("zone-aware routing keeps L_u / L_o local and spills by residual capacity")
    func zoneAware() throws {
        let routing = try ZoneAwareRouting()
        var rng = SplitMix(state: 4)
        var counts = [0, 0, 0]
        let originating = [6, 2, 2]
        let upstream = [3, 3, 4]
        originating.withUnsafeBufferPointer { o in
            upstream.withUnsafeBufferPointer { u in
                for _ in 0..<30_000 {
                    counts[routing.chooseZone(local: 0, originating: o, upstream: u, using: &rng)!] += 1
                }
            }
        }
        // L_o = 0.6, L_u = 0.3: half stays local; residuals are 0.1 (zone 1) and 0.2 (zone 2).
        #expect(abs(Double(counts[0]) / 30_000 - 0.5) < 0.01)
        #expect(abs(Double(counts[2]) / Double(counts[1]) - 2) < 0.15)
        let small = [1, 1, 1]
        small.withUnsafeBufferPointer { u in
            originating.withUnsafeBufferPointer { o in
                #expect(routing.chooseZone(local: 0, originating: o, upstream: u, using: &rng) == nil)
            }
        }
    }
}

@Suite("Balancer properties over 1,000 seeds")
struct BalancerPropertyTests {
    @Test("every balancer returns a valid position, and none for an empty set")
    func validPositions() throws {
        for seed in 0..<1_000 as Range<UInt64> {
            var rng = SplitMix(state: seed)
            let n = Int(uniformBelow(12, using: &rng)) + 1
            let endpoints = (0..<n).map {
                EndpointState(
                    index: Int32($0),
                    weight: Int32(uniformBelow(5, using: &rng)) + 1,
                    active: Int32(uniformBelow(8, using: &rng))
                )
            }
            var balancers: [any LoadBalancer] = [
                RoundRobinBalancer(), RandomBalancer(), WeightedRoundRobinBalancer(), try LeastRequestBalancer(),
                try LeastRequestBalancer(selection: .fullScan), try PeakEWMABalancer(endpointCapacity: 12),
                try RingHashBalancer(minimumRingSize: 64), try MaglevBalancer(tableSize: 251), NginxLeastConnBalancer(),
                NginxRandomTwoLeastConnBalancer(), HAProxyLeastConnBalancer(), try HAProxyRandomBalancer(),
            ]
            for i in balancers.indices {
                endpoints.withUnsafeBufferPointer { buffer in
                    for _ in 0..<5 {
                        let p = balancers[i].pick(from: buffer, at: .zero, using: &rng)
                        #expect(p != nil && p! >= 0 && p! < n)
                    }
                }
                let empty: [EndpointState] = []
                empty.withUnsafeBufferPointer { #expect(balancers[i].pick(from: $0, at: .zero, using: &rng) == nil) }
            }
        }
    }
}
