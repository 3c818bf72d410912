//===----------------------------------------------------------------------===//
// meshsim — LimitersTests
//===----------------------------------------------------------------------===//

import Limiters
import SimCore
import Testing

@Suite("TokenBucket")
struct TokenBucketTests {
    @Test("timer refill: starts full, adds tokens_per_fill at each tick, capped at max_tokens")
    func timerRefill() throws {
        let configuration = try TokenBucket.Configuration(
            maxTokens: 3,
            fillInterval: .milliseconds(100),
            refill: .timer
        )
        var bucket = try TokenBucket(configuration)
        for _ in 0..<3 { #expect(bucket.tryAcquire(at: .zero) == .admit) }
        // Empty: the next tick is at 100 ms.
        #expect(bucket.tryAcquire(at: .zero) == .reject(retryAfter: .milliseconds(100)))
        #expect(bucket.tryAcquire(at: ms(50)) == .reject(retryAfter: .milliseconds(50)))
        // Two permits need two ticks: 100 ms and 200 ms.
        #expect(bucket.tryAcquire(permits: 2, at: ms(50)) == .reject(retryAfter: .milliseconds(150)))
        #expect(bucket.tryAcquire(at: ms(100)) == .admit)
        #expect(bucket.tryAcquire(at: ms(199)) == .reject(retryAfter: .milliseconds(1)))
        // Ticks at 200 and 300 ms give 2 tokens; the next tick is at 400 ms.
        #expect(bucket.availableTokens(at: ms(350)) == 2)
        #expect(bucket.tryAcquire(permits: 2, at: ms(350)) == .admit)
        #expect(bucket.tryAcquire(at: ms(350)) == .reject(retryAfter: .milliseconds(50)))
        // Seven ticks later the bucket is capped at 3.
        #expect(bucket.availableTokens(at: sec(1)) == 3)
        #expect(bucket.tryAcquire(permits: 4, at: sec(1)) == .reject(retryAfter: nil))
        #expect(bucket.consume(5, allowPartial: true, at: sec(1)) == 3)
    }

    @Test("timer refill with tokens_per_fill 2 and a start offset")
    func timerTokensPerFill() throws {
        let configuration = try TokenBucket.Configuration(
            maxTokens: 5,
            tokensPerFill: 2,
            fillInterval: .seconds(1),
            refill: .timer
        )
        var bucket = try TokenBucket(configuration, startingAt: ms(300))
        #expect(bucket.tryAcquire(permits: 5, at: ms(300)) == .admit)
        // Ticks at 1.3 s, 2.3 s, …; three permits need two ticks.
        #expect(bucket.tryAcquire(permits: 3, at: ms(800)) == .reject(retryAfter: .milliseconds(1_500)))
        #expect(bucket.tryAcquire(permits: 3, at: ms(2_299)) == .reject(retryAfter: .milliseconds(1)))
        #expect(bucket.tryAcquire(permits: 3, at: ms(2_300)) == .admit)
        #expect(bucket.availableTokens(at: ms(2_300)) == 1)
    }

    @Test("continuous refill (TokenBucketImpl): fractional tokens at tokens_per_fill / fill_interval per second")
    func continuousRefill() throws {
        let configuration = try TokenBucket.Configuration(maxTokens: 2, fillInterval: .seconds(1), refill: .continuous)
        #expect(configuration.fillRate == 1)
        var bucket = try TokenBucket(configuration)
        #expect(bucket.tryAcquire(at: .zero) == .admit)
        #expect(bucket.tryAcquire(at: .zero) == .admit)
        #expect(bucket.tryAcquire(at: .zero) == .reject(retryAfter: .seconds(1)))
        #expect(bucket.tryAcquire(at: ms(500)) == .reject(retryAfter: .milliseconds(500)))
        #expect(bucket.availableTokens(at: ms(750)) == 0.75)
        #expect(bucket.tryAcquire(at: sec(1)) == .admit)
        #expect(bucket.tryAcquire(permits: 2, at: sec(1)) == .reject(retryAfter: .seconds(2)))
        #expect(bucket.consume(2, allowPartial: true, at: ms(2_500)) == 1)
        #expect(bucket.availableTokens(at: ms(2_500)) == 0.5)
    }

    @Test("continuous refill keeps Envoy's stale last_fill after a consume that found the bucket full")
    func continuousStaleLastFill() throws {
        let continuous = try TokenBucket.Configuration(maxTokens: 2, fillInterval: .seconds(1), refill: .continuous)
        var bucket = try TokenBucket(continuous)
        // Idle for 10 s, full: the first consume does not move last_fill (still 0), so the second refills 10 s worth.
        #expect(bucket.tryAcquire(at: sec(10)) == .admit)
        #expect(bucket.tryAcquire(at: sec(10)) == .admit)
        #expect(bucket.tryAcquire(at: sec(10)) == .admit)
        #expect(bucket.tryAcquire(at: sec(10)) == .reject(retryAfter: .seconds(1)))

        // The atomic implementation has no such credit: exactly max_tokens at the same instant.
        let atomic = try TokenBucket.Configuration(maxTokens: 2, fillInterval: .seconds(1), refill: .atomic)
        var other = try TokenBucket(atomic)
        #expect(other.tryAcquire(at: sec(10)) == .admit)
        #expect(other.tryAcquire(at: sec(10)) == .admit)
        #expect(other.tryAcquire(at: sec(10)) == .reject(retryAfter: .seconds(1)))
    }

    @Test("atomic refill (AtomicTokenBucketImpl): one 'empty at' instant moved forward by each consume")
    func atomicRefill() throws {
        let configuration = try TokenBucket.Configuration(
            maxTokens: 4,
            tokensPerFill: 2,
            fillInterval: .seconds(1),
            refill: .atomic
        )
        var bucket = try TokenBucket(configuration)
        #expect(bucket.availableTokens(at: .zero) == 4)
        #expect(bucket.tryAcquire(permits: 3, at: .zero) == .admit)
        #expect(bucket.availableTokens(at: .zero) == 1)
        // 2 tokens per second: two more permits need one more token, half a second.
        #expect(bucket.tryAcquire(permits: 2, at: .zero) == .reject(retryAfter: .milliseconds(500)))
        #expect(bucket.tryAcquire(permits: 2, at: ms(499)) == .reject(retryAfter: .milliseconds(1)))
        #expect(bucket.tryAcquire(permits: 2, at: ms(500)) == .admit)
        // Empty at exactly 500 ms: a call at that instant finds nothing.
        #expect(bucket.tryAcquire(at: ms(500)) == .reject(retryAfter: .milliseconds(500)))
        #expect(bucket.consume(3, allowPartial: true, at: ms(1_750)) == 2)
        #expect(bucket.availableTokens(at: ms(1_750)) == 0.5)
        #expect(bucket.tryAcquire(permits: 5, at: sec(100)) == .reject(retryAfter: nil))
    }

    @Test("fewer than one permit is rejected without touching the bucket", arguments: TokenBucket.Refill.allCases)
    func nonPositivePermits(refill: TokenBucket.Refill) throws {
        var bucket = try TokenBucket(TokenBucket.Configuration(maxTokens: 1, fillInterval: .seconds(1), refill: refill))
        #expect(bucket.tryAcquire(permits: 0, at: .zero) == .reject(retryAfter: nil))
        #expect(bucket.tryAcquire(permits: -3, at: .zero) == .reject(retryAfter: nil))
        #expect(bucket.consume(-1, allowPartial: true, at: .zero) == 0)
        #expect(bucket.tryAcquire(at: .zero) == .admit)
    }

    @Test("time running backwards never adds tokens", arguments: TokenBucket.Refill.allCases)
    func backwardsTime(refill: TokenBucket.Refill) throws {
        var bucket = try TokenBucket(TokenBucket.Configuration(maxTokens: 1, fillInterval: .seconds(1), refill: refill))
        #expect(bucket.tryAcquire(at: .zero) == .admit)
        #expect(bucket.tryAcquire(at: sec(5)) == .admit)
        #expect(!bucket.tryAcquire(at: sec(4)).isAdmitted)
        #expect(!bucket.tryAcquire(at: sec(5)).isAdmitted)
        #expect(bucket.tryAcquire(at: sec(6)) == .admit)
    }
}
