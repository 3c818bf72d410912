//===----------------------------------------------------------------------===//
// meshsim — LimitersTests
//===----------------------------------------------------------------------===//

import Limiters
import SimCore
import Testing

@Suite("GCRALimiter")
struct GCRALimiterTests {
    /// redis-cell's README example: `CL.THROTTLE user123 15 30 60` (30 per 60 s, burst 15, so T = 2 s, τ = 32 s).
    static func redisCellExample() throws -> GCRALimiter {
        try GCRALimiter(GCRALimiter.Configuration(maxBurst: 15, count: 30, period: .seconds(60)))
    }

    @Test("redis-cell's example: the first request replies 0, 16, 15, -1, 2")
    func firstRequest() throws {
        var limiter = try Self.redisCellExample()
        #expect(limiter.configuration.emissionInterval == .seconds(2))
        let result = limiter.throttle(quantity: 1, at: sec(100))
        #expect(
            result
                == GCRALimiter.Result(
                    limited: false,
                    limit: 16,
                    remaining: 15,
                    retryAfter: nil,
                    resetAfter: .seconds(2)
                )
        )
        #expect(limiter.theoreticalArrivalTime == sec(102))
    }

    @Test("a burst of max_burst + 1 is allowed at once; the next waits one emission interval")
    func burstThenRetry() throws {
        var limiter = try Self.redisCellExample()
        for expectedRemaining in stride(from: 15, through: 0, by: -1) {
            let result = limiter.throttle(quantity: 1, at: sec(100))
            #expect(!result.limited)
            #expect(result.remaining == expectedRemaining)
        }
        // TAT = 100 + 16 × 2 = 132 s; newTAT = 134 s; allowAt = 134 − 32 = 102 s.
        let limited = limiter.throttle(quantity: 1, at: sec(100))
        #expect(
            limited
                == GCRALimiter.Result(
                    limited: true,
                    limit: 16,
                    remaining: 0,
                    retryAfter: .seconds(2),
                    resetAfter: .seconds(32)
                )
        )
        #expect(limiter.theoreticalArrivalTime == sec(132))  // a rejection consumes nothing
        #expect(limiter.tryAcquire(at: ms(101_999)) == .reject(retryAfter: .milliseconds(1)))
        #expect(limiter.tryAcquire(at: sec(102)) == .admit)
        #expect(limiter.theoreticalArrivalTime == sec(134))
    }

    @Test("quantities: q·T is added at once; q > max_burst + 1 is never allowed")
    func quantities() throws {
        var limiter = try Self.redisCellExample()
        #expect(limiter.tryAcquire(permits: 10, at: .zero) == .admit)  // TAT = 20 s
        // newTAT = 20 + 14 = 34 s, allowAt = 2 s.
        #expect(limiter.tryAcquire(permits: 7, at: .zero) == .reject(retryAfter: .seconds(2)))
        #expect(limiter.tryAcquire(permits: 6, at: .zero) == .admit)  // TAT = 32 s
        let never = limiter.throttle(quantity: 17, at: sec(1))
        #expect(never.limited && never.retryAfter == nil)
        #expect(limiter.tryAcquire(permits: 17, at: sec(1_000)) == .reject(retryAfter: nil))
        #expect(limiter.tryAcquire(permits: 0, at: sec(1_000)) == .reject(retryAfter: nil))
    }

    @Test("after idling the TAT falls behind now and the full burst is back")
    func idleRecovery() throws {
        var limiter = try GCRALimiter(GCRALimiter.Configuration(maxBurst: 0, count: 1, period: .seconds(1)))
        #expect(limiter.tryAcquire(at: .zero) == .admit)
        #expect(limiter.tryAcquire(at: ms(999)) == .reject(retryAfter: .milliseconds(1)))
        // B = 0: τ = T, so one request per second, admitted exactly on the emission interval.
        #expect(limiter.tryAcquire(at: sec(1)) == .admit)
        #expect(limiter.tryAcquire(at: sec(60)) == .admit)
        let result = limiter.throttle(quantity: 1, at: sec(60))
        #expect(result.limited && result.remaining == 0 && result.resetAfter == .seconds(1))
    }
}

@Suite("FixedWindowLimiter")
struct FixedWindowLimiterTests {
    @Test("at most limit permits per aligned window; retry at the next window")
    func perWindow() throws {
        var limiter = try FixedWindowLimiter(FixedWindowLimiter.Configuration(limit: 3, window: .seconds(1)))
        for _ in 0..<3 { #expect(limiter.tryAcquire(at: ms(100)) == .admit) }
        #expect(limiter.tryAcquire(at: ms(100)) == .reject(retryAfter: .milliseconds(900)))
        #expect(limiter.tryAcquire(at: ms(999)) == .reject(retryAfter: .milliseconds(1)))
        #expect(limiter.tryAcquire(permits: 3, at: sec(1)) == .admit)
        #expect(limiter.tryAcquire(permits: 4, at: sec(5)) == .reject(retryAfter: nil))
        #expect(limiter.tryAcquire(permits: 2, at: sec(5)) == .admit)
        #expect(limiter.tryAcquire(permits: 2, at: sec(5)) == .reject(retryAfter: .seconds(1)))
        #expect(limiter.count == 2)
    }

    @Test("a burst straddling the boundary gets 2 × limit through in a short span")
    func boundaryBurst() throws {
        var limiter = try FixedWindowLimiter(FixedWindowLimiter.Configuration(limit: 3, window: .seconds(1)))
        var admitted = 0
        for instant in [ms(950), ms(1_050)] {
            for _ in 0..<5 {
                if limiter.tryAcquire(at: instant).isAdmitted { admitted += 1 }
            }
        }
        #expect(admitted == 6)
    }

    @Test("counting rejected requests fills the window but the next one starts empty")
    func countedRejections() throws {
        let configuration = try FixedWindowLimiter.Configuration(limit: 2, window: .seconds(1), rejected: .counted)
        var limiter = try FixedWindowLimiter(configuration)
        #expect(limiter.tryAcquire(at: .zero) == .admit)
        #expect(limiter.tryAcquire(permits: 2, at: .zero) == .reject(retryAfter: .seconds(1)))
        #expect(limiter.count == 3)
        #expect(limiter.tryAcquire(at: ms(10)) == .reject(retryAfter: .milliseconds(990)))
        #expect(limiter.tryAcquire(permits: 2, at: sec(1)) == .admit)
    }
}

@Suite("SlidingWindowLogLimiter")
struct SlidingWindowLogLimiterTests {
    @Test("exact: at most limit permits in any window [now − W, now]; retry when the oldest entry leaves")
    func exactWindow() throws {
        var limiter = try SlidingWindowLogLimiter(SlidingWindowLogLimiter.Configuration(limit: 3, window: .seconds(1)))
        #expect(limiter.tryAcquire(at: .zero) == .admit)
        #expect(limiter.tryAcquire(at: ms(200)) == .admit)
        #expect(limiter.tryAcquire(at: ms(400)) == .admit)
        // The entry at 0 leaves once now − 1 s > 0.
        #expect(limiter.tryAcquire(at: ms(500)) == .reject(retryAfter: .nanoseconds(500_000_001)))
        #expect(limiter.tryAcquire(at: sec(1)) == .reject(retryAfter: .nanoseconds(1)))
        #expect(limiter.tryAcquire(at: SimInstant(nanoseconds: 1_000_000_001)) == .admit)
        // Two permits need the entries at 200 and 400 ms to leave.
        #expect(limiter.tryAcquire(permits: 2, at: ms(1_300)) == .reject(retryAfter: .nanoseconds(100_000_001)))
        #expect(limiter.tryAcquire(permits: 2, at: ms(1_401)) == .admit)
        #expect(limiter.loggedCount == 3)
        #expect(limiter.tryAcquire(permits: 4, at: sec(10)) == .reject(retryAfter: nil))
    }

    @Test("logging rejected requests keeps a persistent client limited")
    func countedRejections() throws {
        let configuration = try SlidingWindowLogLimiter.Configuration(
            limit: 2,
            window: .seconds(1),
            rejected: .counted
        )
        var limiter = try SlidingWindowLogLimiter(configuration)
        #expect(limiter.tryAcquire(at: .zero) == .admit)
        #expect(limiter.tryAcquire(at: ms(500)) == .admit)
        // Rejected at 900 ms and logged: the newest two entries are now 500 and 900 ms.
        #expect(limiter.tryAcquire(at: ms(900)) == .reject(retryAfter: .nanoseconds(600_000_001)))
        // Without logging, 1.2 s would be admitted (only 500 ms in the window); here 900 ms is still in it.
        #expect(limiter.tryAcquire(at: ms(1_200)) == .reject(retryAfter: .nanoseconds(700_000_001)))
        #expect(limiter.tryAcquire(at: ms(2_300)) == .admit)
    }
}

@Suite("SlidingWindowCounterLimiter")
struct SlidingWindowCounterLimiterTests {
    static func example(_ comparison: SlidingWindowCounterLimiter.Comparison) throws -> SlidingWindowCounterLimiter {
        let configuration = try SlidingWindowCounterLimiter.Configuration(
            limit: 50,
            window: .seconds(60),
            comparison: comparison
        )
        // Cloudflare's example: 42 requests in the previous minute, 18 so far in this one, 15 s in.
        return try SlidingWindowCounterLimiter(configuration, previousCount: 42, currentCount: 18, at: sec(75))
    }

    @Test("Cloudflare's example: 42 × 45/60 + 18 = 49.5 < 50, so the request is allowed")
    func cloudflareExample() throws {
        var limiter = try Self.example(.estimateBelowLimit)
        #expect(limiter.estimate(at: sec(75)) == 49.5)
        #expect(limiter.tryAcquire(at: sec(75)) == .admit)
        #expect(limiter.currentCount == 19)
        #expect(limiter.estimate(at: sec(75)) == 50.5)
        // 42 × (60 − e)/60 + 19 < 50 once e > 60 − 31 × 60/42 ≈ 15.714 s.
        guard case .reject(let retry?) = limiter.tryAcquire(at: sec(75)) else {
            Issue.record("expected a rejection with a retry time")
            return
        }
        #expect(abs(retry.seconds - (60 - 31.0 * 60 / 42 - 15)) < 1e-8)
        var before = limiter
        #expect(!before.tryAcquire(at: sec(75) + (retry - .nanoseconds(1))).isAdmitted)
        #expect(limiter.tryAcquire(at: sec(75) + retry) == .admit)
    }

    @Test("the stricter reading counts the request itself: 49.5 + 1 > 50 is rejected")
    func strictComparison() throws {
        var limiter = try Self.example(.estimateWithRequestWithinLimit)
        #expect(!limiter.tryAcquire(at: sec(75)).isAdmitted)
        // 42 × (60 − e)/60 + 19 ≤ 50 once e ≥ 60 − 31 × 60/42.
        #expect(limiter.tryAcquire(at: sec(76)) == .admit)
    }

    @Test("windows roll: the current count becomes the previous one, and a gap clears both")
    func rolling() throws {
        let configuration = try SlidingWindowCounterLimiter.Configuration(limit: 4, window: .seconds(10))
        var limiter = try SlidingWindowCounterLimiter(configuration)
        for _ in 0..<4 { #expect(limiter.tryAcquire(at: sec(5)) == .admit) }
        // 5 s into the next window: 4 × 5/10 + 0 = 2 → two more admitted, then 4 × 0.5 + 2 = 4 is not below 4.
        #expect(limiter.tryAcquire(at: sec(15)) == .admit)
        #expect(limiter.tryAcquire(at: sec(15)) == .admit)
        #expect(limiter.previousCount == 4 && limiter.currentCount == 2)
        // At 17.5 s: 4 × 0.25 + 2 = 3 → admitted.
        #expect(!limiter.tryAcquire(at: sec(15)).isAdmitted)
        #expect(limiter.tryAcquire(at: ms(17_500)) == .admit)
        #expect(limiter.estimate(at: sec(35)) == 0)
        #expect(limiter.tryAcquire(permits: 5, at: sec(35)) == .reject(retryAfter: nil))
        #expect(limiter.tryAcquire(permits: 4, at: sec(35)) == .admit)
        #expect(limiter.previousCount == 0 && limiter.currentCount == 4)
    }

    @Test("a rejection late in the window retries in the next one")
    func retryInNextWindow() throws {
        let configuration = try SlidingWindowCounterLimiter.Configuration(limit: 2, window: .seconds(10))
        var limiter = try SlidingWindowCounterLimiter(configuration)
        #expect(limiter.tryAcquire(permits: 2, at: sec(8)) == .admit)
        // Next window: 2 × (10 − e)/10 < 2 for any e > 0, so 1 ns into it.
        #expect(limiter.tryAcquire(at: sec(8)) == .reject(retryAfter: .nanoseconds(2_000_000_001)))
    }
}
