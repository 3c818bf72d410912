//===----------------------------------------------------------------------===//
// meshsim — Limiters
//===----------------------------------------------------------------------===//

public import SimCore

/// Cloudflare's sliding-window counter: the previous and current fixed windows, weighted by overlap.
///
/// Source: Cloudflare, "How we built rate limiting capable of scaling to millions of domains" (J. Desgats,
/// 2017-06-07, https://blog.cloudflare.com/counting-things-a-lot-of-different-things/), as in the reference's
/// section 8.3. Counts are kept for the current fixed window `[k·W, (k+1)·W)` and the previous one, and the rate over
/// the last `W` is estimated as `prev × (W − elapsed) / W + curr`, where `elapsed` is the time since the current
/// window began. This assumes the previous window's requests were spread evenly. Example: limit 50 per minute,
/// prev 42, curr 18, 15 s into the window: 42 × 45/60 + 18 = 49.5, so the request is allowed.
///
/// The comparison is a named variant (``Comparison``), since the example only says that 49.5 against 50 is allowed.
/// Whether rejected requests are counted is a knob (``RejectedRequestCounting``).
public struct SlidingWindowCounterLimiter: RateLimiter {
    /// How the estimate is compared with the limit.
    public enum Comparison: String, Sendable, Equatable, CaseIterable {
        /// Admit when the estimate before this request is below the limit: `estimate + permits − 1 < limit`
        /// (for one permit, `estimate < limit`; the reading that allows 49.5 of 50 in Cloudflare's example).
        case estimateBelowLimit
        /// Admit when the estimate including this request stays within the limit: `estimate + permits ≤ limit`.
        case estimateWithRequestWithinLimit
    }

    /// A validated sliding-counter configuration.
    public struct Configuration: Sendable, Equatable {
        /// Permits allowed per window (`limit`, ≥ 1).
        public var limit: Int
        /// The window length (`window`, > 0).
        public var window: SimDuration
        /// How the estimate is compared with the limit.
        public var comparison: Comparison
        /// Whether rejected requests count toward the current window (default: they do not).
        public var rejected: RejectedRequestCounting

        /// Creates a configuration; throws `PolicyParameterError` for impossible values.
        public init(
            limit: Int,
            window: SimDuration,
            comparison: Comparison = .estimateBelowLimit,
            rejected: RejectedRequestCounting = .uncounted
        ) throws {
            self.limit = limit
            self.window = window
            self.comparison = comparison
            self.rejected = rejected
            try validate()
        }

        /// Throws `PolicyParameterError` naming the first impossible field.
        public func validate() throws {
            if limit < 1 { throw PolicyParameterError("limit", "must be at least 1 (got \(limit))") }
            if window <= .zero { throw PolicyParameterError("window", "must be positive") }
        }
    }

    /// The configuration this limiter runs.
    public let configuration: Configuration
    /// The index `⌊now / W⌋` of the current window.
    public private(set) var windowIndex: Int64 = .min
    /// Permits counted in the current window.
    public private(set) var currentCount = 0
    /// Permits counted in the window before it.
    public private(set) var previousCount = 0

    /// Creates a limiter with empty windows.
    public init(_ configuration: Configuration) throws {
        try configuration.validate()
        self.configuration = configuration
    }

    /// Creates a limiter whose current window (the one holding `now`) and previous window hold the given counts.
    ///
    /// For worked examples and for restoring state; throws when a count is negative.
    public init(_ configuration: Configuration, previousCount: Int, currentCount: Int, at now: SimInstant) throws {
        try self.init(configuration)
        if previousCount < 0 { throw PolicyParameterError("previous_count", "must be at least 0") }
        if currentCount < 0 { throw PolicyParameterError("current_count", "must be at least 0") }
        windowIndex = floorDivide(now.nanoseconds, configuration.window.nanoseconds)
        self.previousCount = previousCount
        self.currentCount = currentCount
    }

    /// The estimated permits in the window ending at `now`: `prev × (W − elapsed) / W + curr`.
    ///
    /// - Complexity: O(1).
    public func estimate(at now: SimInstant) -> Double {
        let (previous, current, elapsed) = counts(at: now)
        let width = Double(configuration.window.nanoseconds)
        return Double(previous) * (width - Double(elapsed)) / width + Double(current)
    }

    /// Asks for `permits` at `now`.
    ///
    /// - Complexity: O(1) when admitted; O(log W) on rejection, to find the retry time; no allocation.
    public mutating func tryAcquire(permits: Int, at now: SimInstant) -> RateDecision {
        guard permits >= 1 else { return .reject(retryAfter: nil) }
        let width = configuration.window.nanoseconds
        let index = floorDivide(now.nanoseconds, width)
        if index > windowIndex {
            previousCount = index == windowIndex &+ 1 ? currentCount : 0
            currentCount = 0
            windowIndex = index
        }
        let elapsed = max(0, now.nanoseconds &- windowIndex &* width)
        if admits(previous: previousCount, current: currentCount, elapsed: elapsed, permits: permits) {
            currentCount = saturatingAdd(currentCount, permits)
            return .admit
        }
        if configuration.rejected == .counted { currentCount = saturatingAdd(currentCount, permits) }
        return .reject(retryAfter: retryAfter(permits: permits, elapsed: elapsed))
    }

    /// Counts as a request at `now` would see them, without changing state.
    private func counts(at now: SimInstant) -> (previous: Int, current: Int, elapsed: Int64) {
        let width = configuration.window.nanoseconds
        let index = floorDivide(now.nanoseconds, width)
        if index <= windowIndex {
            return (previousCount, currentCount, max(0, now.nanoseconds &- windowIndex &* width))
        }
        let previous = index == windowIndex &+ 1 ? currentCount : 0
        return (previous, 0, now.nanoseconds &- index &* width)
    }

    /// The admission test for `permits` given the counts and the time into the current window.
    private func admits(previous: Int, current: Int, elapsed: Int64, permits: Int) -> Bool {
        let width = Double(configuration.window.nanoseconds)
        let estimate = Double(previous) * (width - Double(elapsed)) / width + Double(current)
        let limit = Double(configuration.limit)
        switch configuration.comparison {
        case .estimateBelowLimit: return estimate + Double(permits) - 1 < limit
        case .estimateWithRequestWithinLimit: return estimate + Double(permits) <= limit
        }
    }

    /// The earliest time from now at which the same request would pass with no other traffic, or `nil` for never.
    private func retryAfter(permits: Int, elapsed: Int64) -> SimDuration? {
        // With both windows empty either comparison admits exactly the requests of at most `limit` permits.
        guard permits <= configuration.limit else { return nil }
        let width = configuration.window.nanoseconds
        // Within the current window the estimate only falls through the previous window's weight.
        if let wait = waitWithin(previous: previousCount, current: currentCount, from: elapsed, permits: permits) {
            return .nanoseconds(max(1, wait))
        }
        // Otherwise at the next window the current count becomes the previous one.
        let toNext = width - elapsed
        let wait = waitWithin(previous: currentCount, current: 0, from: 0, permits: permits) ?? width
        return .nanoseconds(max(1, toNext + wait))
    }

    /// The first offset `t ≥ 0` after `from` within one window at which the request is admitted, or `nil`.
    private func waitWithin(previous: Int, current: Int, from elapsed: Int64, permits: Int) -> Int64? {
        let width = configuration.window.nanoseconds
        if admits(previous: previous, current: current, elapsed: elapsed, permits: permits) { return 0 }
        guard previous > 0, admits(previous: previous, current: current, elapsed: width - 1, permits: permits) else {
            return nil
        }
        // The estimate falls monotonically with elapsed time: bisect the first admitted nanosecond.
        var low = elapsed  // rejected
        var high = width - 1  // admitted
        while high - low > 1 {
            let mid = low + (high - low) / 2
            if admits(previous: previous, current: current, elapsed: mid, permits: permits) {
                high = mid
            } else {
                low = mid
            }
        }
        return high - elapsed
    }
}
