//===----------------------------------------------------------------------===//
// meshsim — RetriesTests
//===----------------------------------------------------------------------===//

import Retries
import SimCore
import Testing

@Suite("Backoff")
struct BackoffTests {
    static let seeds: Range<UInt64> = 0..<1_000

    /// Draws retries 1…`attempts` from a fresh copy of `backoff` seeded with `seed`, in milliseconds (as Doubles).
    static func sleeps(_ backoff: Backoff, attempts: Int, seed: UInt64) -> [Double] {
        var backoff = backoff
        var rng = SplitMix64(seed: seed)
        return (1...attempts).map { backoff.next(attempt: $0, using: &rng).milliseconds }
    }

    @Test("kind names round-trip; an unknown name lists the valid ones and the likely one")
    func kindNames() throws {
        for kind in BackoffKind.allCases {
            #expect(BackoffKind(name: kind.name) == kind)
            #expect(try BackoffKind.parse(kind.name) == kind)
        }
        #expect(BackoffKind(name: "Full_Jitter") == nil)
        let error = #expect(throws: PolicyParameterError.self) { try BackoffKind.parse("ful_jitter") }
        #expect(error?.parameter == "kind")
        #expect(error?.message.contains("did you mean 'full_jitter'?") == true)
        for name in BackoffKind.names { #expect(error?.message.contains(name) == true) }
        let keyed = #expect(throws: PolicyParameterError.self) {
            try BackoffKind.parse("linear", parameter: "retry_back_off.kind")
        }
        #expect(keyed?.parameter == "retry_back_off.kind")
    }

    @Test("exponential without jitter: min(cap, base·2^n) from n = 1, as in AWS's study (5 ms, 2 s)")
    func exponentialSequence() throws {
        let backoff = try Backoff(kind: .exponential, base: ms(5), cap: ms(2_000))
        #expect(Self.sleeps(backoff, attempts: 10, seed: 0) == [10, 20, 40, 80, 160, 320, 640, 1_280, 2_000, 2_000])
        var copy = backoff
        var rng = SplitMix64(seed: 0)
        #expect(copy.next(attempt: 10_000, using: &rng) == ms(2_000))
        #expect(copy.next(attempt: 0, using: &rng) == ms(10))
        var none = try Backoff(kind: .none, base: ms(5), cap: ms(2_000))
        #expect(none.next(attempt: 3, using: &rng) == .zero)
    }

    @Test("full jitter lies in [0, min(cap, base·2^n)) and averages half of it")
    func fullJitter() throws {
        let backoff = try Backoff(kind: .fullJitter, base: ms(5), cap: ms(2_000))
        var sumAtThree = 0.0
        for seed in Self.seeds {
            let sleeps = Self.sleeps(backoff, attempts: 12, seed: seed)
            for (i, sleep) in sleeps.enumerated() {
                let expo = min(2_000, 5 * Double(1 << (i + 1)))
                #expect(sleep >= 0 && sleep < expo)
            }
            sumAtThree += sleeps[2]
        }
        #expect(abs(sumAtThree / 1_000 - 20) < 1)
    }

    @Test("equal jitter lies in [expo/2, expo]")
    func equalJitter() throws {
        let backoff = try Backoff(kind: .equalJitter, base: ms(5), cap: ms(2_000))
        for seed in Self.seeds {
            for (i, sleep) in Self.sleeps(backoff, attempts: 12, seed: seed).enumerated() {
                let expo = min(2_000, 5 * Double(1 << (i + 1)))
                #expect(sleep >= expo / 2 && sleep <= expo)
            }
        }
    }

    @Test("decorrelated jitter lies in [base, min(cap, 3·previous)], previous starting at base; retry 1 restarts")
    func decorrelatedJitter() throws {
        let backoff = try Backoff(kind: .decorrelatedJitter, base: ms(5), cap: ms(2_000))
        var reachedCap = false
        for seed in Self.seeds {
            var previous = 5.0
            for sleep in Self.sleeps(backoff, attempts: 20, seed: seed) {
                #expect(sleep >= 5 && sleep <= min(2_000, 3 * previous))
                previous = sleep
                reachedCap = reachedCap || sleep == 2_000
            }
        }
        #expect(reachedCap)
        var b = backoff
        var rng = SplitMix64(seed: 7)
        for k in 1...15 { _ = b.next(attempt: k, using: &rng) }
        let restarted = b.next(attempt: 1, using: &rng).milliseconds
        #expect(restarted >= 5 && restarted < 15)
    }

    @Test("Envoy: 25 ms base, 250 ms max by default; retry k sleeps U[0, min(2^(k−1)·25 ms, 250 ms))")
    func envoy() throws {
        let backoff = try Backoff.envoy()
        #expect(backoff.base == ms(25) && backoff.cap == ms(250) && backoff.kind == .envoy)
        let bounds: [Double] = [25, 50, 100, 200, 250, 250, 250]
        var highest = [Double](repeating: 0, count: bounds.count)
        for seed in Self.seeds {
            for (i, sleep) in Self.sleeps(backoff, attempts: bounds.count, seed: seed).enumerated() {
                #expect(sleep >= 0 && sleep < bounds[i])
                highest[i] = max(highest[i], sleep)
            }
        }
        // The ranges are used up to their tops: the cap is 250 ms, not 400 ms.
        for (i, top) in highest.enumerated() { #expect(top > bounds[i] * 0.98) }
        let custom = try Backoff.envoy(baseInterval: ms(10), maxInterval: ms(30))
        for seed in Self.seeds.prefix(100) {
            let sleeps = Self.sleeps(custom, attempts: 4, seed: seed)
            #expect(sleeps[0] < 10 && sleeps[1] < 20 && sleeps[2] < 30 && sleeps[3] < 30)
        }
    }

    @Test("gRPC retry (current A6): min(initial·mult^(n−1), max) × [0.8, 1.2], up to 20 % past max")
    func grpcRetry() throws {
        let backoff = try Backoff.grpcRetry(initialBackoff: ms(100), maxBackoff: ms(1_000), backoffMultiplier: 2)
        #expect(backoff.kind == .grpcRetry)
        let centres: [Double] = [100, 200, 400, 800, 1_000, 1_000]
        var pastMax = false
        for seed in Self.seeds {
            for (i, sleep) in Self.sleeps(backoff, attempts: centres.count, seed: seed).enumerated() {
                #expect(sleep >= centres[i] * 0.8 && sleep <= centres[i] * 1.2)
                pastMax = pastMax || sleep > 1_000
            }
        }
        #expect(pastMax)
    }

    @Test("gRPC retry (original A6): U[0, min(initial·mult^(n−1), max))")
    func grpcRetryOriginal() throws {
        let backoff = try Backoff.grpcRetry(
            initialBackoff: ms(100),
            maxBackoff: ms(1_000),
            backoffMultiplier: 2,
            original: true
        )
        #expect(backoff.kind == .grpcRetryOriginal)
        let tops: [Double] = [100, 200, 400, 800, 1_000, 1_000]
        for seed in Self.seeds {
            for (i, sleep) in Self.sleeps(backoff, attempts: tops.count, seed: seed).enumerated() {
                #expect(sleep >= 0 && sleep < tops[i])
            }
        }
    }

    @Test("gRPC connection backoff (new): 1 s, then min(1.6^(k−1) s, 120 s) ± 20 %")
    func grpcConnectionNew() throws {
        let backoff = try Backoff.grpcConnection()
        #expect(backoff.kind == .grpcConnectionNew && backoff.base == .seconds(1) && backoff.cap == .seconds(120))
        for seed in Self.seeds {
            let sleeps = Self.sleeps(backoff, attempts: 14, seed: seed)
            #expect(sleeps[0] == 1_000)
            for k in 2...14 {
                let centre = min(120_000, 1_000 * SimMath.pow(1.6, Double(k - 1)))
                #expect(sleeps[k - 1] >= centre * 0.8 - 1e-6 && sleeps[k - 1] <= centre * 1.2 + 1e-6)
            }
            // 1.6^11 > 120, so from retry 12 the waits lie in [96 s, 144 s].
            #expect(sleeps[13] >= 96_000 && sleeps[13] <= 144_000)
        }
    }

    @Test("gRPC connection backoff (old): each wait grows from the last, clamped to [1 s, 120 s]; at the cap it stays")
    func grpcConnectionOld() throws {
        let backoff = try Backoff.grpcConnection(old: true)
        #expect(backoff.kind == .grpcConnectionOld)
        for seed in Self.seeds {
            let sleeps = Self.sleeps(backoff, attempts: 25, seed: seed)
            #expect(sleeps[0] == 1_000)
            for k in 1..<sleeps.count {
                let grown = 1.6 * sleeps[k - 1]
                let low = min(max(grown * 0.8, 1_000), 120_000)
                let high = min(max(grown * 1.2, 1_000), 120_000)
                #expect(sleeps[k] >= low - 1e-6 && sleeps[k] <= high + 1e-6)
                if sleeps[k - 1] == 120_000 { #expect(sleeps[k] == 120_000) }
            }
            // 1.6 × 0.8 = 1.28 per step at least, so 25 steps reach the cap.
            #expect(sleeps[24] == 120_000)
        }
    }

    @Test("the same seed gives the same sleeps; stateful kinds restart on reset()")
    func determinism() throws {
        for kind in BackoffKind.allCases {
            let backoff = try Backoff(kind: kind, base: ms(10), cap: ms(5_000))
            #expect(Self.sleeps(backoff, attempts: 8, seed: 42) == Self.sleeps(backoff, attempts: 8, seed: 42))
        }
        var a = try Backoff(kind: .decorrelatedJitter, base: ms(10), cap: ms(5_000))
        var b = a
        var rngA = SplitMix64(seed: 3)
        var rngB = SplitMix64(seed: 3)
        _ = a.next(attempt: 1, using: &rngA)
        _ = a.next(attempt: 2, using: &rngA)
        a.reset()
        rngA = SplitMix64(seed: 3)
        #expect(a.next(attempt: 2, using: &rngA) == b.next(attempt: 2, using: &rngB))
    }

    @Test("impossible parameters throw PolicyParameterError naming the parameter")
    func badParameters() {
        func parameter(_ make: () throws -> Backoff) -> String? {
            #expect(throws: PolicyParameterError.self) { _ = try make() }?.parameter
        }
        #expect(parameter { try Backoff(kind: .fullJitter, base: ms(-1), cap: ms(10)) } == "base")
        #expect(parameter { try Backoff(kind: .fullJitter, base: ms(20), cap: ms(10)) } == "cap")
        #expect(
            parameter { try Backoff(kind: .exponential, base: ms(1), cap: ms(10), multiplier: 0.5) } == "multiplier"
        )
        #expect(parameter { try Backoff.envoy(baseInterval: .zero) } == "base_interval")
        #expect(parameter { try Backoff.envoy(baseInterval: ms(-25)) } == "base_interval")
        #expect(parameter { try Backoff.envoy(baseInterval: ms(25), maxInterval: ms(10)) } == "max_interval")
        #expect(parameter { try Backoff(kind: .envoy, base: ms(25), cap: ms(250), multiplier: 3) } == "multiplier")
        #expect(
            parameter { try Backoff.grpcRetry(initialBackoff: .zero, maxBackoff: ms(1), backoffMultiplier: 2) }
                == "initial_backoff"
        )
        #expect(
            parameter { try Backoff.grpcRetry(initialBackoff: ms(5), maxBackoff: ms(1), backoffMultiplier: 2) }
                == "max_backoff"
        )
        #expect(
            parameter { try Backoff.grpcRetry(initialBackoff: ms(1), maxBackoff: ms(5), backoffMultiplier: 0.9) }
                == "backoff_multiplier"
        )
        #expect(
            parameter { try Backoff.grpcRetry(initialBackoff: ms(1), maxBackoff: ms(5), backoffMultiplier: .nan) }
                == "backoff_multiplier"
        )
        #expect(parameter { try Backoff.grpcConnection(jitter: 1.5) } == "jitter")
        #expect(parameter { try Backoff.grpcConnection(jitter: -0.1) } == "jitter")
        #expect(parameter { try Backoff.grpcConnection(multiplier: .infinity) } == "multiplier")
    }
}
