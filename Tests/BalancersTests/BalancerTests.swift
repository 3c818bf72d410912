import Balancers
import SimCore
import Testing

struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        return StreamSeed.splitMix64(state)
    }
}

@Suite("Balancers")
struct BalancerTests {
    static let endpoints = (0..<5).map { EndpointState(index: Int32($0)) }

    @Test("round robin visits every endpoint once per cycle from a random start", arguments: 0..<50)
    func roundRobin(seed: UInt64) {
        var rng = SplitMix(state: seed)
        var balancer = RoundRobinBalancer()
        let picks = Self.endpoints.withUnsafeBufferPointer { buffer in
            (0..<15).map { _ in balancer.pick(from: buffer, at: .zero, using: &rng)! }
        }
        for cycle in 0..<3 { #expect(Set(picks[(cycle * 5)..<(cycle * 5 + 5)]) == Set(0..<5)) }
        for i in 1..<picks.count { #expect(picks[i] == (picks[i - 1] + 1) % 5) }
    }

    @Test("round robin's start differs between seeds")
    func roundRobinStart() {
        var starts = Set<Int>()
        for seed in 0..<100 as Range<UInt64> {
            var rng = SplitMix(state: seed)
            var balancer = RoundRobinBalancer()
            starts.insert(Self.endpoints.withUnsafeBufferPointer { balancer.pick(from: $0, at: .zero, using: &rng)! })
        }
        #expect(starts == Set(0..<5))
    }

    @Test("random picks are uniform")
    func random() {
        var rng = SplitMix(state: 9)
        var balancer = RandomBalancer()
        var counts = [Int](repeating: 0, count: 5)
        Self.endpoints.withUnsafeBufferPointer { buffer in
            for _ in 0..<50_000 { counts[balancer.pick(from: buffer, at: .zero, using: &rng)!] += 1 }
        }
        for c in counts { #expect(abs(Double(c) / 10_000 - 1) < 0.05) }
    }

    @Test("no endpoints, no pick; the list shrinking keeps round robin in range")
    func edges() {
        var rng = SplitMix(state: 1)
        var rr = RoundRobinBalancer()
        var random = RandomBalancer()
        let empty: [EndpointState] = []
        empty.withUnsafeBufferPointer { buffer in
            #expect(rr.pick(from: buffer, at: .zero, using: &rng) == nil)
            #expect(random.pick(from: buffer, at: .zero, using: &rng) == nil)
        }
        _ = Self.endpoints.withUnsafeBufferPointer { rr.pick(from: $0, at: .zero, using: &rng) }
        let two = Array(Self.endpoints.prefix(2))
        two.withUnsafeBufferPointer { buffer in
            for _ in 0..<10 { #expect(rr.pick(from: buffer, at: .zero, using: &rng)! < 2) }
        }
    }
}
