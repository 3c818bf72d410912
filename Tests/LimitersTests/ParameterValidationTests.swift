//===----------------------------------------------------------------------===//
// meshsim — LimitersTests
//===----------------------------------------------------------------------===//

import Limiters
import SimCore
import Testing

@Suite("Parameter validation")
struct ParameterValidationTests {
    @Test("token bucket: max_tokens, tokens_per_fill, fill_interval")
    func tokenBucket() throws {
        expectParameterError("max_tokens") {
            _ = try TokenBucket.Configuration(maxTokens: 0, fillInterval: .seconds(1), refill: .timer)
        }
        expectParameterError("tokens_per_fill") {
            _ = try TokenBucket.Configuration(
                maxTokens: 1,
                tokensPerFill: 0,
                fillInterval: .seconds(1),
                refill: .atomic
            )
        }
        expectParameterError("fill_interval") {
            _ = try TokenBucket.Configuration(maxTokens: 1, fillInterval: .zero, refill: .continuous)
        }
        expectParameterError("fill_interval") {
            _ = try TokenBucket.Configuration(maxTokens: 1, fillInterval: .nanoseconds(-5), refill: .timer)
        }
        expectParameterError("fill_interval") {
            _ = try TokenBucket.Configuration.localRateLimitFilter(
                maxTokens: 1,
                fillInterval: .milliseconds(49),
                refill: .timer
            )
        }
        _ = try TokenBucket.Configuration.localRateLimitFilter(
            maxTokens: 1,
            fillInterval: .milliseconds(50),
            refill: .timer
        )
        expectParameterError("max_tokens") {
            _ = try TokenBucket.Configuration(maxTokens: Int.max, fillInterval: .seconds(1), refill: .timer)
        }
    }

    @Test("GCRA: max_burst, count, period")
    func gcra() {
        expectParameterError("max_burst") {
            _ = try GCRALimiter.Configuration(maxBurst: -1, count: 1, period: .seconds(1))
        }
        expectParameterError("count") { _ = try GCRALimiter.Configuration(maxBurst: 0, count: 0, period: .seconds(1)) }
        expectParameterError("period") { _ = try GCRALimiter.Configuration(maxBurst: 0, count: 1, period: .zero) }
        expectParameterError("count") {
            _ = try GCRALimiter.Configuration(maxBurst: 0, count: 2_000, period: .microseconds(1))
        }
        expectParameterError("max_burst") {
            _ = try GCRALimiter.Configuration(maxBurst: Int.max / 2, count: 1, period: .seconds(100))
        }
    }

    @Test("windows: limit and window")
    func windows() {
        expectParameterError("limit") { _ = try FixedWindowLimiter.Configuration(limit: 0, window: .seconds(1)) }
        expectParameterError("window") { _ = try FixedWindowLimiter.Configuration(limit: 1, window: .zero) }
        expectParameterError("limit") { _ = try SlidingWindowLogLimiter.Configuration(limit: -1, window: .seconds(1)) }
        expectParameterError("limit") {
            _ = try SlidingWindowLogLimiter.Configuration(limit: 2_000_000, window: .seconds(1))
        }
        expectParameterError("window") {
            _ = try SlidingWindowLogLimiter.Configuration(limit: 1, window: .nanoseconds(-1))
        }
        expectParameterError("limit") {
            _ = try SlidingWindowCounterLimiter.Configuration(limit: 0, window: .seconds(1))
        }
        expectParameterError("window") { _ = try SlidingWindowCounterLimiter.Configuration(limit: 1, window: .zero) }
        expectParameterError("previous_count") {
            let configuration = try SlidingWindowCounterLimiter.Configuration(limit: 1, window: .seconds(1))
            _ = try SlidingWindowCounterLimiter(configuration, previousCount: -1, currentCount: 0, at: .zero)
        }
    }

    @Test("AIMD: min_limit, initial_limit, backoff_ratio, timeout")
    func aimd() {
        expectParameterError("min_limit") { _ = try AIMDLimit.Configuration(initialLimit: 1, minLimit: 0) }
        expectParameterError("min_limit") { _ = try AIMDLimit.Configuration(minLimit: 300, maxLimit: 200) }
        expectParameterError("initial_limit") { _ = try AIMDLimit.Configuration(initialLimit: 10) }
        expectParameterError("initial_limit") { _ = try AIMDLimit.Configuration(initialLimit: 201) }
        for ratio in [0.49, 1.0, -1, .nan, .infinity] {
            expectParameterError("backoff_ratio") { _ = try AIMDLimit.Configuration(backoffRatio: ratio) }
        }
        expectParameterError("timeout") { _ = try AIMDLimit.Configuration(timeout: .zero) }
        expectParameterError("max_limit") { _ = try AIMDLimit.Configuration(maxLimit: Int(Int32.max) + 1) }
    }

    @Test("Vegas: max_concurrency, initial_limit, smoothing, probe_multiplier")
    func vegas() {
        expectParameterError("max_concurrency") { _ = try VegasLimit.Configuration(initialLimit: 1, maxConcurrency: 0) }
        expectParameterError("initial_limit") { _ = try VegasLimit.Configuration(initialLimit: 0) }
        expectParameterError("initial_limit") { _ = try VegasLimit.Configuration(initialLimit: 1_001) }
        for smoothing in [0, 1.01, -0.5, .nan] {
            expectParameterError("smoothing") { _ = try VegasLimit.Configuration(smoothing: smoothing) }
        }
        expectParameterError("probe_multiplier") { _ = try VegasLimit.Configuration(probeMultiplier: 0) }
        expectParameterError("max_concurrency") { _ = try VegasLimit.Configuration(maxConcurrency: Int.max) }
    }

    @Test("Gradient2: min_limit, initial_limit, smoothing, queue_size, long_window, rtt_tolerance")
    func gradient2() {
        expectParameterError("min_limit") { _ = try Gradient2Limit.Configuration(minLimit: 0) }
        expectParameterError("min_limit") { _ = try Gradient2Limit.Configuration(minLimit: 201) }
        expectParameterError("initial_limit") { _ = try Gradient2Limit.Configuration(initialLimit: 19) }
        expectParameterError("smoothing") { _ = try Gradient2Limit.Configuration(smoothing: 0) }
        expectParameterError("queue_size") { _ = try Gradient2Limit.Configuration(queueSize: -1) }
        expectParameterError("queue_size") { _ = try Gradient2Limit.Configuration(queueSize: .infinity) }
        expectParameterError("long_window") { _ = try Gradient2Limit.Configuration(longWindow: 0) }
        expectParameterError("rtt_tolerance") { _ = try Gradient2Limit.Configuration(rttTolerance: 0.99) }
        expectParameterError("max_concurrency") { _ = try Gradient2Limit.Configuration(maxConcurrency: Int.max) }
    }

    @Test("windowed limit: min_rtt_threshold, window_size, min_window_time, max_window_time")
    func windowed() {
        expectParameterError("min_rtt_threshold") {
            _ = try WindowedLimitConfiguration(minRttThreshold: .nanoseconds(-1))
        }
        expectParameterError("window_size") { _ = try WindowedLimitConfiguration(windowSize: 9) }
        expectParameterError("min_window_time") {
            _ = try WindowedLimitConfiguration(minWindowTime: .milliseconds(99))
        }
        expectParameterError("max_window_time") {
            _ = try WindowedLimitConfiguration(maxWindowTime: .milliseconds(99))
        }
        expectParameterError("min_window_time") {
            _ = try WindowedLimitConfiguration(minWindowTime: .seconds(2), maxWindowTime: .seconds(1))
        }
    }

    @Test("adaptive throttle: k, window, buckets, protection")
    func adaptiveThrottle() {
        for k in [0, -2, Double.nan, .infinity] {
            expectParameterError("k") { _ = try AdaptiveThrottle.Configuration(k: k) }
        }
        expectParameterError("window") { _ = try AdaptiveThrottle.Configuration(window: .zero) }
        expectParameterError("buckets") { _ = try AdaptiveThrottle.Configuration(buckets: 0) }
        expectParameterError("buckets") { _ = try AdaptiveThrottle.Configuration(window: .seconds(1), buckets: 7) }
        expectParameterError("protection") { _ = try AdaptiveThrottle.Configuration(protection: -1) }
    }

    @Test("a configuration edited into an impossible state is rejected by the limiter's initializer")
    func editedConfigurations() throws {
        var aimd = try AIMDLimit.Configuration()
        aimd.minLimit = 500
        expectParameterError("min_limit") { _ = try AIMDLimit(aimd) }
        var bucket = try TokenBucket.Configuration(maxTokens: 1, fillInterval: .seconds(1), refill: .timer)
        bucket.fillInterval = .zero
        expectParameterError("fill_interval") { _ = try TokenBucket(bucket) }
        var throttle = try AdaptiveThrottle.Configuration()
        throttle.k = 0
        expectParameterError("k") { _ = try AdaptiveThrottle(throttle) }
        var windowed = try WindowedLimitConfiguration()
        windowed.windowSize = 1
        let gradient = try Gradient2Limit(Gradient2Limit.Configuration())
        expectParameterError("window_size") { _ = try WindowedLimit(windowed, wrapping: gradient) }
    }
}
