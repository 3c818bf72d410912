//===----------------------------------------------------------------------===//
// meshsim — LimitersTests
//===----------------------------------------------------------------------===//

import Limiters
import SimCore
import Testing

@Suite("AdaptiveThrottle")
struct AdaptiveThrottleTests {
    @Test("the SRE book's configuration: K = 2 over the last 2 minutes, requests counted at attempt")
    func sreDefaults() throws {
        let configuration = try AdaptiveThrottle.Configuration.sreBook()
        #expect(configuration.k == 2 && configuration.window == .seconds(120) && configuration.protection == 0)
        #expect(configuration.counting == .atAttempt)
        #expect(configuration == (try AdaptiveThrottle.Configuration()))
    }

    @Test("P(reject) = max(0, (requests − K·accepts) / (requests + 1)); local rejections count as requests")
    func formula() throws {
        var throttle = try AdaptiveThrottle(AdaptiveThrottle.Configuration.sreBook())
        var high = ConstantRNG(unit: 0.999)  // rejects only when P > 0.999
        // 10 attempts, all accepted: requests 10 ≤ 2 × 10, so P = 0.
        for i in 0..<10 as Range<Int64> {
            #expect(!throttle.shouldReject(at: ms(100 * i), using: &high))
            throttle.record(accepted: true, at: ms(100 * i + 50))
        }
        #expect(throttle.rejectProbability(at: sec(1)) == 0)
        // The backend rejects the next 20: a failed request records no accept.
        for i in 0..<20 as Range<Int64> {
            #expect(!throttle.shouldReject(at: ms(1_000 + 100 * i), using: &high))
            throttle.record(accepted: false, at: ms(1_000 + 100 * i + 50))
        }
        #expect(throttle.requests == 30 && throttle.accepts == 10)
        #expect(throttle.rejectProbability(at: sec(4)) == 10.0 / 31)
        // A draw of 0.25 < 10/31 rejects; the attempt still counts, so P becomes 11/32.
        var low = ConstantRNG(unit: 0.25)
        #expect(throttle.shouldReject(at: sec(4), using: &low))
        #expect(throttle.requests == 31)
        #expect(throttle.rejectProbability(at: sec(4)) == 11.0 / 32)
        var middle = ConstantRNG(unit: 0.5)
        #expect(!throttle.shouldReject(at: sec(4), using: &middle))
        #expect(throttle.rejectProbability(at: sec(4)) == 12.0 / 33)
    }

    @Test("counts leave the window bucket by bucket after 2 minutes")
    func windowExpiry() throws {
        var throttle = try AdaptiveThrottle(AdaptiveThrottle.Configuration.sreBook())
        var rng = ConstantRNG(unit: 0.999)
        for _ in 0..<4 { _ = throttle.shouldReject(at: ms(500), using: &rng) }  // bucket 0
        #expect(throttle.rejectProbability(at: ms(500)) == 4.0 / 5)
        for _ in 0..<2 { _ = throttle.shouldReject(at: sec(60), using: &rng) }  // bucket 60
        throttle.record(accepted: true, at: sec(60))
        #expect(throttle.rejectProbability(at: ms(119_999)) == 4.0 / 7)  // buckets 0 … 119
        #expect(throttle.requests == 6 && throttle.accepts == 1)
        #expect(throttle.rejectProbability(at: sec(120)) == 0)  // buckets 1 … 120: bucket 0 is gone
        #expect(throttle.requests == 2 && throttle.accepts == 1)
        _ = throttle.rejectProbability(at: sec(180))  // buckets 61 … 180
        #expect(throttle.requests == 0 && throttle.accepts == 0)
    }

    @Test("go-zero variant: K = 1.5, protection 5, requests counted at completion in 40 buckets of 250 ms")
    func goZero() throws {
        let configuration = try AdaptiveThrottle.Configuration.goZero()
        #expect(configuration.k == 1.5 && configuration.window == .seconds(10) && configuration.buckets == 40)
        #expect(configuration.protection == 5 && configuration.counting == .atCompletion)
        var throttle = try AdaptiveThrottle(configuration)
        var rng = ConstantRNG(unit: 0.999)
        #expect(!throttle.shouldReject(at: .zero, using: &rng))
        #expect(throttle.requests == 0)  // an attempt is not counted
        for i in 0..<10 as Range<Int64> { throttle.record(accepted: i < 2, at: ms(10 * i)) }
        // (10 − 5 − 1.5 × 2) / 11 = 2/11.
        #expect(throttle.rejectProbability(at: ms(100)) == (5 - 1.5 * 2) / 11)
        #expect(throttle.rejectProbability(at: ms(9_999)) > 0)
        #expect(throttle.rejectProbability(at: sec(10)) == 0)  // all 10 were in the first 250 ms bucket
    }

    @Test("no draw is taken while the probability is 0")
    func noDrawAtZero() throws {
        struct CountingRNG: RandomNumberGenerator {
            var draws = 0
            mutating func next() -> UInt64 {
                draws += 1
                return 0
            }
        }
        var throttle = try AdaptiveThrottle(AdaptiveThrottle.Configuration.sreBook())
        var rng = CountingRNG()
        for _ in 0..<5 {
            #expect(!throttle.shouldReject(at: .zero, using: &rng))
            throttle.record(accepted: true, at: .zero)
        }
        // Attempts seeing 5 … 10 requests against 5 accepts: P = 0 each time.
        for _ in 0..<6 { #expect(!throttle.shouldReject(at: .zero, using: &rng)) }
        #expect(rng.draws == 0)
        // Now 11 requests, 5 accepts: P = 1/12 > 0, and a draw of 0 rejects.
        #expect(throttle.shouldReject(at: .zero, using: &rng))
        #expect(rng.draws == 1)
    }
}
