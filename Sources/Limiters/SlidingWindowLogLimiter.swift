//===----------------------------------------------------------------------===//
// meshsim — Limiters
//===----------------------------------------------------------------------===//

public import SimCore

/// The exact sliding-window log: at most `limit` permits in any window `[now − W, now]`.
///
/// Source: the reference's section 8.3 (sliding window log, contrasted with Cloudflare's sliding window counter in
/// "How we built rate limiting capable of scaling to millions of domains", J. Desgats, 2017). One timestamp is kept
/// per permit; on each request, entries older than `now − W` are evicted and the request is admitted when
/// `count + permits ≤ limit`. Whether rejected requests are logged too varies between implementations, so it is a
/// knob (``RejectedRequestCounting``).
///
/// The log is a ring buffer of `limit` timestamps, allocated once. Keeping only the newest `limit` entries is exact
/// for both knobs: the window holds `limit` or more entries exactly when the oldest kept entry is still inside it.
/// An instant earlier than one already seen is treated as the latest instant seen.
public struct SlidingWindowLogLimiter: RateLimiter {
    /// The largest `limit` accepted: the log keeps one 8-byte timestamp per permit.
    public static let maximumLimit = 1_000_000

    /// A validated sliding-log configuration.
    public struct Configuration: Sendable, Equatable {
        /// Permits allowed in any window (`limit`, 1 … ``SlidingWindowLogLimiter/maximumLimit``).
        public var limit: Int
        /// The window length (`window`, > 0).
        public var window: SimDuration
        /// Whether rejected requests are logged too (default: they are not).
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
            if limit > SlidingWindowLogLimiter.maximumLimit {
                throw PolicyParameterError("limit", "must be at most \(SlidingWindowLogLimiter.maximumLimit) for a log")
            }
            if window <= .zero { throw PolicyParameterError("window", "must be positive") }
        }
    }

    /// The configuration this limiter runs.
    public let configuration: Configuration
    /// Timestamps (ns), oldest at `head`; capacity `limit`.
    private var stamps: [Int64]
    private var head = 0
    private var size = 0
    private var latest = Int64.min

    /// Creates a limiter with an empty log (allocates the ring of `limit` timestamps).
    public init(_ configuration: Configuration) throws {
        try configuration.validate()
        self.configuration = configuration
        stamps = [Int64](repeating: 0, count: configuration.limit)
    }

    /// Entries currently in the log (after the last call's eviction).
    public var loggedCount: Int { size }

    /// Asks for `permits` at `now`.
    ///
    /// - Complexity: O(permits + evicted entries), amortized O(permits); no allocation.
    public mutating func tryAcquire(permits: Int, at now: SimInstant) -> RateDecision {
        guard permits >= 1 else { return .reject(retryAfter: nil) }
        latest = max(latest, now.nanoseconds)
        let now = latest
        let capacity = configuration.limit
        let window = configuration.window.nanoseconds
        let oldestKept = now &- window
        while size > 0 && stamps[head] < oldestKept {
            head = head + 1 == capacity ? 0 : head + 1
            size -= 1
        }
        if permits <= capacity - size {
            append(now, times: permits)
            return .admit
        }
        if configuration.rejected == .counted { append(now, times: min(permits, capacity)) }
        guard permits <= capacity else { return .reject(retryAfter: nil) }
        // The (size + permits − limit)-th oldest entry must leave the window: it does once now − W passes it.
        let position = (head + size + permits - capacity - 1) % capacity
        let ready = stamps[position] &+ window &+ 1
        return .reject(retryAfter: .nanoseconds(max(1, ready &- now)))
    }

    /// Appends `count` copies of `stamp`, overwriting the oldest entries when the ring is full.
    private mutating func append(_ stamp: Int64, times count: Int) {
        let capacity = configuration.limit
        for _ in 0..<count {
            var tail = head + size
            if tail >= capacity { tail -= capacity }
            stamps[tail] = stamp
            if size == capacity {
                head = head + 1 == capacity ? 0 : head + 1
            } else {
                size += 1
            }
        }
    }
}
