//===----------------------------------------------------------------------===//
// meshsim — Limiters
//===----------------------------------------------------------------------===//

public import SimCore

/// The Generic Cell Rate Algorithm: one theoretical arrival time (TAT) per key, no background refill.
///
/// Source: throttled/throttled `rate.go` (`GCRARateLimiterCtx.RateLimitCtx`, `NewGCRARateLimiterCtx`) and
/// brandur/redis-cell `src/cell/mod.rs` and README (`CL.THROTTLE key max_burst count period [quantity]`), as in the
/// reference's section 8.2. With rate `count` per `period`, the emission interval is `T = period / count` (whole
/// nanoseconds, truncated as both implementations do with integer durations), the delay variation tolerance is
/// `τ = T × (max_burst + 1)`, and the advertised limit is `max_burst + 1`. For `q` permits at `now`:
/// `newTAT = max(TAT, now) + q·T` and `allowAt = newTAT − τ`. The request is limited when `now < allowAt`; the
/// state is then unchanged and `retry_after = allowAt − now` (never, if `q·T > τ`). Otherwise `TAT = newTAT`.
/// `remaining = ⌊(τ − ttl) / T⌋` when `τ − ttl > −T` (else 0), with `ttl = newTAT − now` when allowed and
/// `TAT − now` when limited; `reset_after = ttl`.
///
/// This is a token bucket of capacity `max_burst + 1` refilled at `1/T`: in any closed window of length `W` it admits
/// at most `max_burst + 1 + ⌊W / T⌋` permits. A rejected request consumes nothing. The stored key's TTL is not
/// modelled: an expired key reads as `TAT = now`, which `max(TAT, now)` already gives.
public struct GCRALimiter: RateLimiter {
    /// A validated GCRA configuration (redis-cell's argument names).
    public struct Configuration: Sendable, Equatable {
        /// Extra requests allowed in a burst beyond the first (`max_burst`, ≥ 0).
        public var maxBurst: Int
        /// Requests per `period` (`count`, ≥ 1).
        public var count: Int
        /// The period over which `count` requests are allowed (`period`, > 0).
        public var period: SimDuration

        /// Creates a configuration; throws `PolicyParameterError` for impossible values.
        public init(maxBurst: Int, count: Int, period: SimDuration) throws {
            self.maxBurst = maxBurst
            self.count = count
            self.period = period
            try validate()
        }

        /// The emission interval `T = period / count`, truncated to whole nanoseconds.
        public var emissionInterval: SimDuration { SimDuration(nanoseconds: period.nanoseconds / Int64(count)) }

        /// The advertised limit, `max_burst + 1`.
        public var limit: Int { maxBurst + 1 }

        /// Throws `PolicyParameterError` naming the first impossible field.
        public func validate() throws {
            if maxBurst < 0 { throw PolicyParameterError("max_burst", "must be at least 0 (got \(maxBurst))") }
            if count < 1 { throw PolicyParameterError("count", "must be at least 1 (got \(count))") }
            if period <= .zero { throw PolicyParameterError("period", "must be positive") }
            if period.nanoseconds / Int64(count) < 1 {
                throw PolicyParameterError("count", "gives an emission interval under 1ns for this period")
            }
            let (_, overflow) = emissionInterval.nanoseconds.multipliedReportingOverflow(by: Int64(maxBurst) + 1)
            if overflow || emissionInterval.nanoseconds * (Int64(maxBurst) + 1) > Int64.max / 4 {
                throw PolicyParameterError("max_burst", "makes the delay variation tolerance overflow")
            }
        }
    }

    /// The reply of one throttle call, as redis-cell's `CL.THROTTLE` returns it.
    public struct Result: Sendable, Equatable {
        /// Whether the request was limited (rejected).
        public var limited: Bool
        /// The advertised limit, `max_burst + 1`.
        public var limit: Int
        /// Requests that could still be made right now.
        public var remaining: Int
        /// When limited, the time until the request would be allowed; `nil` when allowed or when it never will be.
        public var retryAfter: SimDuration?
        /// The time until the limiter is back to its full burst (clamped at zero).
        public var resetAfter: SimDuration

        /// Creates a reply.
        public init(limited: Bool, limit: Int, remaining: Int, retryAfter: SimDuration?, resetAfter: SimDuration) {
            self.limited = limited
            self.limit = limit
            self.remaining = remaining
            self.retryAfter = retryAfter
            self.resetAfter = resetAfter
        }
    }

    /// The configuration this limiter runs.
    public let configuration: Configuration
    /// The emission interval `T`, in nanoseconds.
    private let interval: Int64
    /// The delay variation tolerance `τ`, in nanoseconds.
    private let tolerance: Int64
    /// The stored theoretical arrival time; `nil` until the first allowed request.
    public private(set) var theoreticalArrivalTime: SimInstant?

    /// Creates a limiter with no stored state.
    public init(_ configuration: Configuration) throws {
        try configuration.validate()
        self.configuration = configuration
        interval = configuration.emissionInterval.nanoseconds
        tolerance = interval * (Int64(configuration.maxBurst) + 1)
    }

    /// Asks for `permits` at `now`.
    ///
    /// - Complexity: O(1); no allocation.
    public mutating func tryAcquire(permits: Int, at now: SimInstant) -> RateDecision {
        guard permits >= 1 else { return .reject(retryAfter: nil) }
        let result = throttle(quantity: permits, at: now)
        return result.limited ? .reject(retryAfter: result.retryAfter) : .admit
    }

    /// Runs one GCRA step for `quantity` permits at `now` (redis-cell's `CL.THROTTLE`).
    ///
    /// A quantity of 0 only queries (and may move the TAT up to `now`, as both implementations do); a negative one
    /// is limited and never allowed.
    /// - Complexity: O(1); no allocation.
    public mutating func throttle(quantity: Int, at now: SimInstant) -> Result {
        let limit = configuration.limit
        let tat = theoreticalArrivalTime ?? now
        guard quantity >= 0, quantity <= limit else {
            // q·T > τ (or nonsense): limited, never allowed, state unchanged.
            return Result(
                limited: true,
                limit: limit,
                remaining: remaining(ttl: (tat - now).nanoseconds),
                retryAfter: nil,
                resetAfter: clampedDuration((tat - now).nanoseconds)
            )
        }
        let increment = Int64(quantity) * interval
        let newTAT = max(tat, now) + SimDuration(nanoseconds: increment)
        let allowAt = newTAT - SimDuration(nanoseconds: tolerance)
        if now < allowAt {
            let ttl = (tat - now).nanoseconds
            return Result(
                limited: true,
                limit: limit,
                remaining: remaining(ttl: ttl),
                retryAfter: allowAt - now,
                resetAfter: clampedDuration(ttl)
            )
        }
        theoreticalArrivalTime = newTAT
        let ttl = (newTAT - now).nanoseconds
        return Result(
            limited: false,
            limit: limit,
            remaining: remaining(ttl: ttl),
            retryAfter: nil,
            resetAfter: clampedDuration(ttl)
        )
    }

    /// `⌊(τ − ttl) / T⌋` when `τ − ttl > −T`, else 0 (integer division truncating toward zero, as in Go).
    private func remaining(ttl: Int64) -> Int {
        let next = tolerance &- ttl
        guard next > -interval else { return 0 }
        return Int(next / interval)
    }

    private func clampedDuration(_ nanoseconds: Int64) -> SimDuration {
        SimDuration(nanoseconds: max(0, nanoseconds))
    }
}
