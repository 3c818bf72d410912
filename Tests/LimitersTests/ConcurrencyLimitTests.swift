//===----------------------------------------------------------------------===//
// meshsim — LimitersTests
//===----------------------------------------------------------------------===//

import Limiters
import SimCore
import Testing

/// A limit that records the samples it receives and keeps a fixed limit.
struct RecordingLimit: ConcurrencyLimit {
    struct Sample: Equatable {
        var startTime: SimInstant
        var rtt: SimDuration
        var inflight: Int
        var didDrop: Bool
    }

    var limit: Int
    var samples: [Sample] = []

    mutating func onSample(
        startTime: SimInstant,
        rtt: SimDuration,
        inflight: Int,
        didDrop: Bool,
        using rng: inout some RandomNumberGenerator
    ) {
        samples.append(Sample(startTime: startTime, rtt: rtt, inflight: inflight, didDrop: didDrop))
    }
}

@Suite("AIMDLimit")
struct AIMDLimitTests {
    @Test("Netflix defaults: 20 / 20 / 200, backoff 0.9, timeout 5 s")
    func defaults() throws {
        let configuration = try AIMDLimit.Configuration()
        #expect(configuration.initialLimit == 20 && configuration.minLimit == 20 && configuration.maxLimit == 200)
        #expect(configuration.backoffRatio == 0.9 && configuration.timeout == .seconds(5))
        var limit = try AIMDLimit(configuration)
        // ⌊20 × 0.9⌋ = 18, clamped back up to the minimum 20.
        limit.onSample(startTime: .zero, rtt: .milliseconds(10), inflight: 20, didDrop: true)
        #expect(limit.limit == 20)
    }

    @Test("+1 on a good sample at ≥ half the limit in use, ×0.9 (truncated) on a drop or timeout, within bounds")
    func workedExample() throws {
        var limit = try AIMDLimit(AIMDLimit.Configuration(initialLimit: 10, minLimit: 5, maxLimit: 12))
        let rtt = SimDuration.milliseconds(20)
        limit.onSample(startTime: .zero, rtt: rtt, inflight: 5, didDrop: false)  // 5 × 2 ≥ 10 → 11
        #expect(limit.limit == 11)
        limit.onSample(startTime: .zero, rtt: rtt, inflight: 5, didDrop: false)  // 10 < 11: app-limited
        #expect(limit.limit == 11)
        limit.onSample(startTime: .zero, rtt: rtt, inflight: 6, didDrop: false)  // → 12
        limit.onSample(startTime: .zero, rtt: rtt, inflight: 12, didDrop: false)  // 13 clamped to 12
        #expect(limit.limit == 12)
        limit.onSample(startTime: .zero, rtt: rtt, inflight: 1, didDrop: true)  // ⌊10.8⌋ = 10
        #expect(limit.limit == 10)
        // An RTT over the timeout counts as a drop; exactly the timeout does not.
        limit.onSample(startTime: .zero, rtt: .seconds(5) + .nanoseconds(1), inflight: 10, didDrop: false)
        #expect(limit.limit == 9)
        limit.onSample(startTime: .zero, rtt: .seconds(5), inflight: 10, didDrop: false)
        #expect(limit.limit == 10)
        limit.onSample(startTime: .zero, rtt: rtt, inflight: 0, didDrop: true)  // 9
        limit.onSample(startTime: .zero, rtt: rtt, inflight: 0, didDrop: true)  // ⌊8.1⌋ = 8
        limit.onSample(startTime: .zero, rtt: rtt, inflight: 0, didDrop: true)  // ⌊7.2⌋ = 7
        limit.onSample(startTime: .zero, rtt: rtt, inflight: 0, didDrop: true)  // ⌊6.3⌋ = 6
        limit.onSample(startTime: .zero, rtt: rtt, inflight: 0, didDrop: true)  // ⌊5.4⌋ = 5
        limit.onSample(startTime: .zero, rtt: rtt, inflight: 0, didDrop: true)  // ⌊4.5⌋ = 4 → min 5
        #expect(limit.limit == 5)
    }
}

@Suite("VegasLimit")
struct VegasLimitTests {
    @Test("L(x) = max(1, ⌊log10 x⌋)")
    func log10Floor() {
        let cases: [(Int, Int)] = [
            (0, 1), (1, 1), (9, 1), (10, 1), (99, 1), (100, 2), (999, 2), (1_000, 3), (12_345, 4),
        ]
        for (x, expected) in cases { #expect(VegasLimit.log10Floor(x) == expected) }
    }

    @Test("worked example: baseline, aggressive increase, decrease on queueing, sweet spot, increase, app-limited")
    func workedExample() throws {
        var rng = ConstantRNG(unit: 0)  // jitter 0.5: the probe would come after 0.5 × 30 × limit samples
        var limit = try VegasLimit(VegasLimit.Configuration())
        func sample(_ rttMs: Double, inflight: Int, drop: Bool = false) {
            let rtt = SimDuration(nanoseconds: Int64(rttMs * 1e6))
            limit.onSample(startTime: .zero, rtt: rtt, inflight: inflight, didDrop: drop, using: &rng)
        }
        sample(10, inflight: 10)  // first sample: rtt_noload = 10 ms, skipped
        #expect(limit.limit == 20 && limit.noLoadRTT == .milliseconds(10))
        sample(10, inflight: 10)  // queue ⌈20 × 0⌉ = 0 ≤ threshold 1 → 20 + beta 6
        #expect(limit.limit == 26)
        sample(20, inflight: 13)  // queue ⌈26 × 0.5⌉ = 13 > beta 6 → 26 − 1
        #expect(limit.limit == 25)
        sample(12, inflight: 13)  // queue ⌈25 × (1 − 10/12)⌉ = ⌈4.17⌉ = 5: alpha 3 ≤ 5 ≤ beta 6 → no change
        #expect(limit.limit == 25)
        sample(10.5, inflight: 13)  // queue ⌈25 × (1 − 10/10.5)⌉ = ⌈1.19⌉ = 2 < alpha 3 → 25 + 1
        #expect(limit.limit == 26)
        sample(30, inflight: 12)  // 12 × 2 < 26: app-limited, no change even though queueing
        #expect(limit.limit == 26)
        sample(30, inflight: 12, drop: true)  // a drop decreases regardless: 26 − 1
        #expect(limit.limit == 25)
        sample(5, inflight: 20)  // a new minimum: rtt_noload = 5 ms, skipped
        #expect(limit.limit == 25 && limit.noLoadRTT == .milliseconds(5))
        #expect(limit.probeCount == 8)
    }

    @Test("thresholds scale with log10 of the limit; smoothing blends old and new; max caps")
    func scaling() throws {
        var rng = ConstantRNG(unit: 0)
        var big = try VegasLimit(VegasLimit.Configuration(initialLimit: 200))
        big.onSample(startTime: .zero, rtt: .milliseconds(10), inflight: 100, didDrop: false, using: &rng)
        big.onSample(startTime: .zero, rtt: .milliseconds(10), inflight: 100, didDrop: false, using: &rng)
        #expect(big.limit == 212)  // beta = 6 × L(200) = 12
        big.onSample(startTime: .zero, rtt: .milliseconds(10), inflight: 1, didDrop: true, using: &rng)
        #expect(big.limit == 210)  // decrease by L(212) = 2

        var smooth = try VegasLimit(VegasLimit.Configuration(smoothing: 0.5))
        smooth.onSample(startTime: .zero, rtt: .milliseconds(10), inflight: 10, didDrop: false, using: &rng)
        smooth.onSample(startTime: .zero, rtt: .milliseconds(10), inflight: 10, didDrop: false, using: &rng)
        #expect(smooth.estimatedLimit == 23)  // 0.5 × 20 + 0.5 × 26

        var capped = try VegasLimit(VegasLimit.Configuration(maxConcurrency: 22))
        capped.onSample(startTime: .zero, rtt: .milliseconds(10), inflight: 10, didDrop: false, using: &rng)
        capped.onSample(startTime: .zero, rtt: .milliseconds(10), inflight: 10, didDrop: false, using: &rng)
        #expect(capped.limit == 22)
    }

    @Test("probe: after jitter × multiplier × limit samples the baseline is reset to the current RTT")
    func probe() throws {
        var rng = ConstantRNG(unit: 0)  // jitter 0.5
        var limit = try VegasLimit(VegasLimit.Configuration(initialLimit: 4, probeMultiplier: 1))
        // Probe when probeCount ≥ 0.5 × 1 × 4 = 2.
        limit.onSample(startTime: .zero, rtt: .milliseconds(10), inflight: 2, didDrop: false, using: &rng)
        #expect(limit.noLoadRTT == .milliseconds(10) && limit.probeJitter == 0.5)
        limit.onSample(startTime: .zero, rtt: .milliseconds(30), inflight: 2, didDrop: false, using: &rng)
        #expect(limit.noLoadRTT == .milliseconds(30) && limit.probeCount == 0 && limit.limit == 4)
        // Against the new baseline 30 ms there is no queue: 4 + 6.
        limit.onSample(startTime: .zero, rtt: .milliseconds(30), inflight: 2, didDrop: false, using: &rng)
        #expect(limit.limit == 10)
    }

    @Test("the probe jitter is drawn uniformly in [0.5, 1) from the caller's generator")
    func jitterDraw() throws {
        var rng = ConstantRNG(unit: 0.5)
        var limit = try VegasLimit(VegasLimit.Configuration())
        #expect(limit.probeJitter == nil)
        limit.onSample(startTime: .zero, rtt: .milliseconds(1), inflight: 1, didDrop: false, using: &rng)
        #expect(limit.probeJitter == 0.75)
        limit.onSample(startTime: .zero, rtt: .zero, inflight: 1, didDrop: false, using: &rng)  // ignored
        #expect(limit.probeCount == 1)
    }
}

@Suite("Gradient2Limit")
struct Gradient2LimitTests {
    static func configuration() throws -> Gradient2Limit.Configuration {
        try Gradient2Limit.Configuration(minLimit: 1)
    }

    @Test("Netflix defaults: 20 / 20 / 200, smoothing 0.2, queue 4, long window 600, tolerance 1.5")
    func defaults() throws {
        let c = try Gradient2Limit.Configuration()
        #expect(c.initialLimit == 20 && c.minLimit == 20 && c.maxConcurrency == 200 && c.smoothing == 0.2)
        #expect(c.queueSize == 4 && c.longWindow == 600 && c.rttTolerance == 1.5)
    }

    @Test("worked example: warm-up mean as the long RTT, gradient, queue size, smoothing")
    func workedExample() throws {
        var limit = try Gradient2Limit(Self.configuration())
        // longRtt = 100; gradient = min(1, 1.5 × 1) = 1; new = 20 + 4 = 24; 20 × 0.8 + 24 × 0.2 = 20.8.
        limit.onSample(startTime: .zero, rtt: .milliseconds(100), inflight: 10, didDrop: false)
        #expect(abs(limit.estimatedLimit - 20.8) < 1e-9)
        // 11 ≥ 20.8 / 2. longRtt = 200; gradient = 1.5 × 200/300 = 1; new = 24.8; 16.64 + 4.96 = 21.6.
        limit.onSample(startTime: .zero, rtt: .milliseconds(300), inflight: 11, didDrop: false)
        #expect(abs(limit.estimatedLimit - 21.6) < 1e-9)
        // longRtt = 1400/3; gradient = 1.5 × 466.67/1000 = 0.7; new = 21.6 × 0.7 + 4 = 19.12; 17.28 + 3.824.
        limit.onSample(startTime: .zero, rtt: .milliseconds(1_000), inflight: 11, didDrop: false)
        #expect(abs(limit.estimatedLimit - 21.104) < 1e-9)
        #expect(limit.limit == 21)
        #expect(abs(limit.longRTT - 1_400e6 / 3) < 1e-3)
        // inflight 10 < 21.104 / 2: app-limited; the long RTT still moves.
        limit.onSample(startTime: .zero, rtt: .milliseconds(600), inflight: 10, didDrop: false)
        #expect(abs(limit.estimatedLimit - 21.104) < 1e-9)
        #expect(abs(limit.longRTT - 500e6) < 1e-3)
    }

    @Test("the gradient is floored at 0.5, and drops are ignored")
    func gradientFloorAndDrops() throws {
        var a = try Gradient2Limit(Self.configuration())
        var b = a
        a.onSample(startTime: .zero, rtt: .milliseconds(100), inflight: 20, didDrop: false)
        b.onSample(startTime: .zero, rtt: .milliseconds(100), inflight: 20, didDrop: true)
        #expect(a.estimatedLimit == b.estimatedLimit)
        // longRtt = (100 + 10000)/2 = 5050; 1.5 × 5050/10000 = 0.7575.
        a.onSample(startTime: .zero, rtt: .seconds(10), inflight: 20, didDrop: false)
        let before = 20.8
        #expect(abs(a.estimatedLimit - (before * 0.8 + (before * 0.7575 + 4) * 0.2)) < 1e-9)
        // After warm-up at 100 ms, a 10 s sample: long ≈ 132.9 ms, 1.5 × 0.0133 → floored at 0.5.
        var c = try Gradient2Limit(Self.configuration())
        for _ in 0..<10 { c.onSample(startTime: .zero, rtt: .milliseconds(100), inflight: 20, didDrop: false) }
        let limitBefore = c.estimatedLimit
        c.onSample(startTime: .zero, rtt: .seconds(10), inflight: 20, didDrop: false)
        #expect(abs(c.estimatedLimit - (limitBefore * 0.8 + (limitBefore * 0.5 + 4) * 0.2)) < 1e-9)
    }

    @Test("after warm-up the long RTT is an EMA with factor 2/601, cut by 0.95 when over twice the short RTT")
    func longRttRecovery() throws {
        var limit = try Gradient2Limit(Self.configuration())
        for _ in 0..<10 { limit.onSample(startTime: .zero, rtt: .seconds(1), inflight: 1, didDrop: false) }
        #expect(abs(limit.longRTT - 1e9) < 1e-3)
        let factor = 2.0 / 601
        let ema = 1e9 * (1 - factor) + 100e6 * factor
        limit.onSample(startTime: .zero, rtt: .milliseconds(100), inflight: 1, didDrop: false)
        #expect(abs(limit.longRTT - ema * 0.95) < 1e-3)
        // The gradient used the value before the cut: 1.5 × ema / 100 ms > 1, so it is 1.
        var grow = limit
        grow.onSample(startTime: .zero, rtt: .milliseconds(100), inflight: 100, didDrop: false)
        #expect(grow.estimatedLimit > limit.estimatedLimit)
    }
}

@Suite("WindowedLimit")
struct WindowedLimitTests {
    @Test("samples aggregate per window; the delegate gets (avg rtt, max inflight, any drop) from ≥ 10 samples")
    func windows() throws {
        var rng = SplitMix64(seed: 1)
        var windowed = try WindowedLimit(WindowedLimitConfiguration(), wrapping: RecordingLimit(limit: 7))
        #expect(windowed.limit == 7)
        // The first sample closes the (empty) initial window at once: 1 sample, not enough.
        windowed.onSample(startTime: .zero, rtt: .milliseconds(10), inflight: 1, didDrop: false, using: &rng)
        #expect(windowed.delegate.samples.isEmpty)
        #expect(windowed.nextUpdateTime == ms(1_010))  // 10 ms + clamp(2 × 10 ms, 1 s, 1 s)
        // Faster than 100 µs: ignored.
        windowed.onSample(startTime: ms(20), rtt: .microseconds(99), inflight: 50, didDrop: true, using: &rng)
        #expect(windowed.samplesInWindow == 0)
        for i in 0..<10 {
            let rtt = SimDuration.milliseconds(10 + Int64(i))
            let start = ms(100 + 50 * Int64(i))
            windowed.onSample(startTime: start, rtt: rtt, inflight: i + 1, didDrop: i == 3, using: &rng)
        }
        #expect(windowed.delegate.samples.isEmpty && windowed.samplesInWindow == 10)
        // Ends at 1.02 s > 1.01 s: the window closes with 11 samples.
        windowed.onSample(startTime: ms(1_000), rtt: .milliseconds(20), inflight: 3, didDrop: false, using: &rng)
        let sum: Int64 = (0..<10 as Range<Int64>).reduce(0) { $0 + (10 + $1) * 1_000_000 } + 20_000_000
        #expect(
            windowed.delegate.samples == [
                RecordingLimit.Sample(
                    startTime: ms(1_000),
                    rtt: .nanoseconds(sum / 11),
                    inflight: 10,
                    didDrop: true
                )
            ]
        )
        #expect(windowed.nextUpdateTime == ms(2_020))
        #expect(windowed.samplesInWindow == 0)
    }

    @Test("a short window (2 × min RTT inside [min, max]) closes sooner")
    func adaptiveWindowLength() throws {
        var rng = SplitMix64(seed: 2)
        let configuration = try WindowedLimitConfiguration(
            minWindowTime: .milliseconds(100),
            maxWindowTime: .seconds(1)
        )
        var windowed = try WindowedLimit(configuration, wrapping: RecordingLimit(limit: 1))
        windowed.onSample(startTime: .zero, rtt: .milliseconds(70), inflight: 1, didDrop: false, using: &rng)
        #expect(windowed.nextUpdateTime == ms(210))  // 70 ms + 2 × 70 ms
        windowed.onSample(startTime: ms(300), rtt: .milliseconds(30), inflight: 1, didDrop: false, using: &rng)
        #expect(windowed.nextUpdateTime == ms(430))  // 330 ms + max(60 ms, 100 ms)
    }
}

@Suite("ConcurrencyLimiter")
struct ConcurrencyLimiterTests {
    @Test("admits while inflight < limit; completions feed (rtt, inflight at acquire, didDrop) to the limit")
    func admitsAndFeeds() throws {
        var rng = SplitMix64(seed: 3)
        var limiter = ConcurrencyLimiter(RecordingLimit(limit: 2))
        let firstPermit = limiter.acquire(at: ms(0))
        let first = try #require(firstPermit)
        let secondPermit = limiter.acquire(at: ms(5))
        let second = try #require(secondPermit)
        #expect(first.inflight == 1 && second.inflight == 2)
        #expect(limiter.acquire(at: ms(6)) == nil)
        limiter.release(first, at: ms(30), outcome: .success, using: &rng)
        limiter.release(second, at: ms(40), outcome: .dropped, using: &rng)
        #expect(limiter.inflight == 0)
        let thirdPermit = limiter.acquire(at: ms(50))
        let third = try #require(thirdPermit)
        limiter.release(third, at: ms(51), outcome: .ignored, using: &rng)
        limiter.release(third, at: ms(52), outcome: .ignored, using: &rng)  // one release too many
        #expect(limiter.inflight == 0)
        #expect(
            limiter.algorithm.samples == [
                RecordingLimit.Sample(startTime: ms(0), rtt: .milliseconds(30), inflight: 1, didDrop: false),
                RecordingLimit.Sample(startTime: ms(5), rtt: .milliseconds(35), inflight: 2, didDrop: true),
            ]
        )
    }

    @Test("with AIMD: the limit grows on success and backs off on a drop")
    func withAIMD() throws {
        var rng = SplitMix64(seed: 4)
        let configuration = try AIMDLimit.Configuration(initialLimit: 2, minLimit: 1, maxLimit: 3)
        var limiter = ConcurrencyLimiter(try AIMDLimit(configuration))
        let aPermit = limiter.acquire(at: .zero)
        let a = try #require(aPermit)
        let bPermit = limiter.acquire(at: .zero)
        let b = try #require(bPermit)
        #expect(limiter.acquire(at: .zero) == nil)
        limiter.release(a, at: ms(10), outcome: .success, using: &rng)  // inflight at acquire 1: 1 × 2 ≥ 2 → 3
        #expect(limiter.limit == 3)
        let cPermit = limiter.acquire(at: ms(10))
        let c = try #require(cPermit)
        let dPermit = limiter.acquire(at: ms(10))
        let d = try #require(dPermit)
        #expect(limiter.acquire(at: ms(10)) == nil)
        limiter.release(b, at: ms(20), outcome: .dropped, using: &rng)  // ⌊2.7⌋ = 2
        #expect(limiter.limit == 2 && limiter.inflight == 2)
        #expect(limiter.acquire(at: ms(20)) == nil)
        limiter.release(c, at: ms(30), outcome: .ignored, using: &rng)
        #expect(limiter.limit == 2 && limiter.inflight == 1)
        #expect(limiter.acquire(at: ms(30)) != nil)
        _ = d
    }
}
