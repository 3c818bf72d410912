//===----------------------------------------------------------------------===//
// meshsim — Limiters
//===----------------------------------------------------------------------===//

public import SimCore

/// How a windowed limiter treats requests it rejects.
///
/// Source: the reference's section 8.3, which notes that implementations differ on whether rejected requests are
/// recorded (the sliding log's timestamps in particular) and asks for a knob; the same knob serves the counters.
public enum RejectedRequestCounting: String, Sendable, Equatable, CaseIterable {
    /// Rejected requests are not recorded; only admitted permits count toward the limit.
    case uncounted
    /// Rejected requests are recorded too (the increment-then-compare pattern), so a client that keeps sending
    /// while limited keeps itself limited.
    case counted
}

/// A fixed-window counter: at most `limit` permits per aligned window `[k·W, (k+1)·W)`.
///
/// Source: the reference's section 8.3 ("Fixed window: a counter per `floor(now/W)`"; Cloudflare, "How we built rate
/// limiting capable of scaling to millions of domains", J. Desgats, 2017). Windows are aligned to `SimInstant.zero`.
/// A request is admitted when `count + permits ≤ limit`. Bursts of up to `2 × limit` can straddle a window boundary.
/// Whether rejected requests are counted varies between implementations, so it is a knob
/// (``RejectedRequestCounting``).
public struct FixedWindowLimiter: RateLimiter {
    /// A validated fixed-window configuration.
    public struct Configuration: Sendable, Equatable {
        /// Permits allowed per window (`limit`, ≥ 1).
        public var limit: Int
        /// The window length (`window`, > 0).
        public var window: SimDuration
        /// Whether rejected requests count toward the window (default: they do not).
        public var rejected: RejectedRequestCounting

        /// Creates a configuration; throws `PolicyParameterError` for impossible values.
        public init(limit: Int, window: SimDuration, rejected: RejectedRequestCounting = .uncounted) throws {
            self.limit = limit
            self.window = window
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
    /// The index `⌊now / W⌋` of the window `count` belongs to.
    public private(set) var windowIndex: Int64 = .min
    /// Permits counted in the current window.
    public private(set) var count: Int = 0

    /// Creates a limiter with empty windows.
    public init(_ configuration: Configuration) throws {
        try configuration.validate()
        self.configuration = configuration
    }

    /// Asks for `permits` at `now`.
    ///
    /// - Complexity: O(1); no allocation.
    public mutating func tryAcquire(permits: Int, at now: SimInstant) -> RateDecision {
        guard permits >= 1 else { return .reject(retryAfter: nil) }
        let width = configuration.window.nanoseconds
        let index = floorDivide(now.nanoseconds, width)
        if index > windowIndex {
            windowIndex = index
            count = 0
        }
        let limit = configuration.limit
        if permits <= limit - count {
            count += permits
            return .admit
        }
        if configuration.rejected == .counted { count = saturatingAdd(count, permits) }
        guard permits <= limit else { return .reject(retryAfter: nil) }
        // The next window starts empty; with rejected requests counted it also starts empty.
        let nextWindow = SimInstant(nanoseconds: (windowIndex + 1) &* width)
        return .reject(retryAfter: max(.nanoseconds(1), nextWindow - now))
    }
}
