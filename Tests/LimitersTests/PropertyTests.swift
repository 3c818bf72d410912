//===----------------------------------------------------------------------===//
// meshsim — LimitersTests
//===----------------------------------------------------------------------===//

import Limiters
import SimCore
import Testing

/// Invariants checked over 1,000 seeded random request streams each.
@Suite("Properties over 1,000 seeds")
struct PropertyTests {
    static let seeds: Range<UInt64> = 0..<1_000

    /// Window lengths to check: a few multiples of `unit` and one random length.
    static func windows(unit: Int64, using rng: inout SplitMix64) -> [Int64] {
        [unit, 3 * unit, 10 * unit, rng.int64(in: 1_000_000...2_000_000_000)]
    }

    @Test("token bucket: never more than rate × window + burst in any window", arguments: TokenBucket.Refill.allCases)
    func tokenBucketBound(refill: TokenBucket.Refill) throws {
        var rejections = 0
        for seed in Self.seeds {
            var rng = SplitMix64(seed: seed)
            let maxTokens = rng.int(in: 1...10)
            let perFill = rng.int(in: 1...3)
            let interval = Int64([10, 50, 100, 250][rng.int(in: 0...3)]) * 1_000_000
            let configuration = try TokenBucket.Configuration(
                maxTokens: maxTokens,
                tokensPerFill: perFill,
                fillInterval: .nanoseconds(interval),
                refill: refill
            )
            let start = rng.int64(in: 0...1_000_000_000)
            var bucket = try TokenBucket(configuration, startingAt: SimInstant(nanoseconds: start))
            // About twice the refill rate, in bursts.
            let arrivals = randomArrivals(count: 300, meanGap: interval / Int64(2 * perFill), using: &rng)
            var admitted: [(time: Int64, permits: Int)] = []
            for offset in arrivals {
                let permits = rng.int(in: 1...min(3, maxTokens))
                let now = SimInstant(nanoseconds: start + offset)
                if bucket.tryAcquire(permits: permits, at: now).isAdmitted {
                    admitted.append((now.nanoseconds, permits))
                } else {
                    rejections += 1
                }
            }
            // Envoy's TokenBucketImpl credits the consume after one that found the bucket full (start-up) with
            // the idle time: at most the first admitted request's permits once.
            let quirk = refill == .continuous ? (admitted.first?.permits ?? 0) : 0
            for window in Self.windows(unit: interval, using: &rng) {
                let bound: Int
                if refill == .timer {
                    // Ticks in (t, t + W] come at most ⌈W / interval⌉ times; = rate × W when W is a multiple.
                    let ticks = (window + interval - 1) / interval
                    bound = maxTokens + perFill * Int(ticks)
                } else {
                    let refilled = Double(window) * Double(perFill) / Double(interval)
                    bound = maxTokens + Int((refilled + 1e-9).rounded(.down)) + quirk
                }
                let seen = maxPermitsInAnyWindow(admitted, window: window)
                #expect(seen <= bound, "seed \(seed): \(seen) permits in a \(window) ns window, bound \(bound)")
            }
        }
        #expect(rejections > 0)
    }

    @Test("GCRA: never more than max_burst + 1 + window / T in any window")
    func gcraBound() throws {
        var rejections = 0
        for seed in Self.seeds {
            var rng = SplitMix64(seed: seed)
            let maxBurst = rng.int(in: 0...10)
            let count = rng.int(in: 1...20)
            let period = SimDuration.seconds([1, 10, 60][rng.int(in: 0...2)])
            var limiter = try GCRALimiter(GCRALimiter.Configuration(maxBurst: maxBurst, count: count, period: period))
            let interval = limiter.configuration.emissionInterval.nanoseconds
            let arrivals = randomArrivals(count: 300, meanGap: interval / 2, using: &rng)
            var admitted: [(time: Int64, permits: Int)] = []
            for time in arrivals {
                let permits = rng.int(in: 1...3)
                switch limiter.tryAcquire(permits: permits, at: SimInstant(nanoseconds: time)) {
                case .admit:
                    admitted.append((time, permits))
                case .reject(let retryAfter):
                    rejections += 1
                    // Retrying exactly when told succeeds (nothing else happened in between).
                    if let retryAfter {
                        var copy = limiter
                        let later = SimInstant(nanoseconds: time) + retryAfter
                        #expect(copy.tryAcquire(permits: permits, at: later) == .admit, "seed \(seed)")
                    } else {
                        #expect(permits > maxBurst + 1, "seed \(seed)")
                    }
                }
            }
            for window in Self.windows(unit: interval, using: &rng) + [period.nanoseconds] {
                let bound = maxBurst + 1 + Int(window / interval)
                let seen = maxPermitsInAnyWindow(admitted, window: window)
                #expect(seen <= bound, "seed \(seed): \(seen) permits in a \(window) ns window, bound \(bound)")
            }
        }
        #expect(rejections > 0)
    }

    @Test("fixed window: never more than limit per window", arguments: RejectedRequestCounting.allCases)
    func fixedWindowBound(rejected: RejectedRequestCounting) throws {
        for seed in Self.seeds {
            var rng = SplitMix64(seed: seed)
            let limit = rng.int(in: 1...10)
            let window = Int64([100, 1_000][rng.int(in: 0...1)]) * 1_000_000
            var limiter = try FixedWindowLimiter(
                FixedWindowLimiter.Configuration(limit: limit, window: .nanoseconds(window), rejected: rejected)
            )
            var perWindow: [Int64: Int] = [:]
            for time in randomArrivals(count: 300, meanGap: window / Int64(2 * limit), using: &rng) {
                let permits = rng.int(in: 1...3)
                if limiter.tryAcquire(permits: permits, at: SimInstant(nanoseconds: time)).isAdmitted {
                    perWindow[time / window, default: 0] += permits
                }
            }
            #expect(perWindow.values.allSatisfy { $0 <= limit }, "seed \(seed)")
        }
    }

    @Test("sliding log: never more than limit in any window of its length", arguments: RejectedRequestCounting.allCases)
    func slidingLogBound(rejected: RejectedRequestCounting) throws {
        for seed in Self.seeds {
            var rng = SplitMix64(seed: seed)
            let limit = rng.int(in: 1...10)
            let window = Int64([100, 1_000][rng.int(in: 0...1)]) * 1_000_000
            var limiter = try SlidingWindowLogLimiter(
                SlidingWindowLogLimiter.Configuration(limit: limit, window: .nanoseconds(window), rejected: rejected)
            )
            var admitted: [(time: Int64, permits: Int)] = []
            for time in randomArrivals(count: 300, meanGap: window / Int64(2 * limit), using: &rng) {
                let permits = rng.int(in: 1...3)
                if limiter.tryAcquire(permits: permits, at: SimInstant(nanoseconds: time)).isAdmitted {
                    admitted.append((time, permits))
                }
            }
            let seen = maxPermitsInAnyWindow(admitted, window: window)
            #expect(seen <= limit, "seed \(seed): \(seen) permits in one window, limit \(limit)")
        }
    }

    /// The concurrency limits under test, each with the bounds its limit must stay within.
    enum LimitKind: String, CaseIterable, Sendable {
        case aimd, vegas, gradient2, windowedGradient2
    }

    @Test(
        "concurrency limiter: an admission never takes inflight above the limit; limits stay in bounds",
        arguments: LimitKind.allCases
    )
    func concurrencyLimiter(kind: LimitKind) throws {
        for seed in Self.seeds {
            switch kind {
            case .aimd:
                let limit = try AIMDLimit(AIMDLimit.Configuration(initialLimit: 10, minLimit: 2, maxLimit: 30))
                try runConcurrency(limit, bounds: 2...30, seed: seed)
            case .vegas:
                let limit = try VegasLimit(VegasLimit.Configuration(initialLimit: 10, maxConcurrency: 50))
                try runConcurrency(limit, bounds: 1...50, seed: seed)
            case .gradient2:
                let configuration = try Gradient2Limit.Configuration(initialLimit: 10, minLimit: 2, maxConcurrency: 40)
                try runConcurrency(try Gradient2Limit(configuration), bounds: 2...40, seed: seed)
            case .windowedGradient2:
                let configuration = try Gradient2Limit.Configuration(initialLimit: 10, minLimit: 2, maxConcurrency: 40)
                let window = try WindowedLimitConfiguration(
                    minWindowTime: .milliseconds(100),
                    maxWindowTime: .milliseconds(100)
                )
                let limit = try WindowedLimit(window, wrapping: try Gradient2Limit(configuration))
                try runConcurrency(limit, bounds: 2...40, seed: seed)
            }
        }
    }

    /// Drives `limit` through a closed loop where latency grows with concurrency, checking the invariants.
    private func runConcurrency<L: ConcurrencyLimit>(_ limit: L, bounds: ClosedRange<Int>, seed: UInt64) throws {
        var rng = SplitMix64(seed: seed)
        var limiter = ConcurrencyLimiter(limit)
        var outstanding: [(permit: ConcurrencyPermit, finish: Int64)] = []
        var now: Int64 = 0
        let slowChance = [0.02, 0.1, 0.3][rng.int(in: 0...2)]  // requests pushed past the timeout
        let timeout: Int64 = 60_000_000
        for _ in 0..<1_000 {
            now += rng.int64(in: 0...2_000_000)
            var index = 0
            while index < outstanding.count {
                let request = outstanding[index]
                if request.finish <= now {
                    outstanding.swapAt(index, outstanding.count - 1)
                    outstanding.removeLast()
                    let rtt = now - request.permit.startTime.nanoseconds
                    let outcome: ConcurrencyOutcome =
                        rtt > timeout ? .dropped : (rng.chance(0.1) ? .ignored : .success)
                    limiter.release(request.permit, at: SimInstant(nanoseconds: now), outcome: outcome, using: &rng)
                    #expect(bounds.contains(limiter.limit), "seed \(seed): limit \(limiter.limit)")
                } else {
                    index += 1
                }
            }
            for _ in 0..<rng.int(in: 0...4) {
                guard let permit = limiter.acquire(at: SimInstant(nanoseconds: now)) else { continue }
                #expect(limiter.inflight <= limiter.limit, "seed \(seed): inflight above the limit")
                #expect(permit.inflight == limiter.inflight)
                // Latency: 2 ms per 4 requests in flight plus noise; slow spells push it past the timeout.
                let service = 2_000_000 * Int64(1 + limiter.inflight / 4) + rng.int64(in: 0...5_000_000)
                let slow: Int64 = rng.chance(slowChance) ? 100_000_000 : 0
                outstanding.append((permit, now + service + slow))
            }
            #expect(limiter.inflight == outstanding.count)
        }
    }

    @Test("adaptive throttle: bucketed counts match a recount of the window, and 0 ≤ P < 1")
    func adaptiveThrottleCounts() throws {
        for seed in Self.seeds {
            var rng = SplitMix64(seed: seed)
            let buckets = [1, 4, 10, 40][rng.int(in: 0...3)]
            let width = Int64([10, 250, 1_000][rng.int(in: 0...2)]) * 1_000_000
            let configuration = try AdaptiveThrottle.Configuration(
                k: [1.1, 1.5, 2][rng.int(in: 0...2)],
                window: .nanoseconds(width * Int64(buckets)),
                buckets: buckets,
                protection: rng.int(in: 0...5),
                counting: rng.chance(0.5) ? .atAttempt : .atCompletion
            )
            var throttle = try AdaptiveThrottle(configuration)
            var requestTimes: [Int64] = []
            var acceptTimes: [Int64] = []
            var firstRequest = 0
            var firstAccept = 0
            for time in randomArrivals(count: 300, meanGap: width / 2, using: &rng) {
                let now = SimInstant(nanoseconds: time)
                let rejected = throttle.shouldReject(at: now, using: &rng)
                if configuration.counting == .atAttempt { requestTimes.append(time) }
                if !rejected {
                    let accepted = rng.chance(0.3)
                    throttle.record(accepted: accepted, at: now)
                    if configuration.counting == .atCompletion { requestTimes.append(time) }
                    if accepted { acceptTimes.append(time) }
                }
                // Recount: events whose bucket is within the last `buckets` buckets (times never decrease).
                let oldest = time / width - Int64(buckets) + 1
                while firstRequest < requestTimes.count && requestTimes[firstRequest] / width < oldest {
                    firstRequest += 1
                }
                while firstAccept < acceptTimes.count && acceptTimes[firstAccept] / width < oldest { firstAccept += 1 }
                let requests = requestTimes.count - firstRequest
                let accepts = acceptTimes.count - firstAccept
                #expect(throttle.requests == requests && throttle.accepts == accepts, "seed \(seed)")
                let p = throttle.rejectProbability(at: now)
                let expected = max(
                    0,
                    (Double(requests - configuration.protection) - configuration.k * Double(accepts))
                        / Double(requests + 1)
                )
                #expect(p == expected && p >= 0 && p < 1, "seed \(seed)")
            }
        }
    }
}
