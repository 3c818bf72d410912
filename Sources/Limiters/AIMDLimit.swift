//===----------------------------------------------------------------------===//
// meshsim — Limiters
//===----------------------------------------------------------------------===//

public import SimCore

/// Loss-based additive-increase / multiplicative-decrease concurrency limit.
///
/// Source: Netflix/concurrency-limits `concurrency-limits-core/…/limit/AIMDLimit.java` (reference section 5.1).
/// Defaults: initial limit 20, min limit 20, max limit 200, backoff ratio 0.9 (allowed range [0.5, 1)), timeout 5 s.
/// On each sample:
/// - if `didDrop` or `rtt > timeout`: `limit = ⌊limit × backoffRatio⌋`;
/// - else if `inflight × 2 ≥ limit`: `limit += 1`;
/// - else nothing changes (the "app-limited" guard: no growth while less than half the limit is in use);
///
/// then the limit is clamped to `[minLimit, maxLimit]`.
public struct AIMDLimit: ConcurrencyLimit {
    /// A validated AIMD configuration with Netflix's defaults.
    public struct Configuration: Sendable, Equatable {
        /// The limit before any sample (`initial_limit`, default 20).
        public var initialLimit: Int
        /// The lowest limit (`min_limit`, default 20).
        public var minLimit: Int
        /// The highest limit (`max_limit`, default 200).
        public var maxLimit: Int
        /// The factor applied on a drop or timeout (`backoff_ratio`, default 0.9, in [0.5, 1)).
        public var backoffRatio: Double
        /// An RTT above this counts as a drop (`timeout`, default 5 s, > 0).
        public var timeout: SimDuration

        /// Creates a configuration; throws `PolicyParameterError` for impossible values.
        public init(
            initialLimit: Int = 20,
            minLimit: Int = 20,
            maxLimit: Int = 200,
            backoffRatio: Double = 0.9,
            timeout: SimDuration = .seconds(5)
        ) throws {
            self.initialLimit = initialLimit
            self.minLimit = minLimit
            self.maxLimit = maxLimit
            self.backoffRatio = backoffRatio
            self.timeout = timeout
            try validate()
        }

        /// Throws `PolicyParameterError` naming the first impossible field.
        public func validate() throws {
            if minLimit < 1 { throw PolicyParameterError("min_limit", "must be at least 1 (got \(minLimit))") }
            if maxLimit > Int(Int32.max) {
                throw PolicyParameterError("max_limit", "must fit a 32-bit integer, as Netflix's limits do")
            }
            if minLimit > maxLimit {
                throw PolicyParameterError("min_limit", "must not exceed max_limit (\(minLimit) > \(maxLimit))")
            }
            if initialLimit < minLimit || initialLimit > maxLimit {
                throw PolicyParameterError(
                    "initial_limit",
                    "must be within [min_limit, max_limit] (got \(initialLimit))"
                )
            }
            if !(backoffRatio >= 0.5 && backoffRatio < 1) {
                throw PolicyParameterError("backoff_ratio", "must be in [0.5, 1) (got \(backoffRatio))")
            }
            if timeout <= .zero { throw PolicyParameterError("timeout", "must be positive") }
        }
    }

    /// The configuration this limit runs.
    public let configuration: Configuration
    /// The current concurrency limit.
    public private(set) var limit: Int

    /// Creates the limit at its initial value.
    public init(_ configuration: Configuration) throws {
        try configuration.validate()
        self.configuration = configuration
        limit = configuration.initialLimit
    }

    /// Feeds one sample (the Netflix shape; AIMD draws no random numbers).
    ///
    /// - Complexity: O(1); no allocation.
    public mutating func onSample(startTime: SimInstant, rtt: SimDuration, inflight: Int, didDrop: Bool) {
        var next = limit
        if didDrop || rtt > configuration.timeout {
            next = Int((Double(limit) * configuration.backoffRatio).rounded(.towardZero))
        } else if Double(inflight) * 2 >= Double(limit) {
            next = limit + 1
        }
        limit = min(configuration.maxLimit, max(configuration.minLimit, next))
    }

    /// Feeds one sample; `rng` is not used.
    ///
    /// - Complexity: O(1); no allocation.
    public mutating func onSample(
        startTime: SimInstant,
        rtt: SimDuration,
        inflight: Int,
        didDrop: Bool,
        using rng: inout some RandomNumberGenerator
    ) {
        onSample(startTime: startTime, rtt: rtt, inflight: inflight, didDrop: didDrop)
    }
}
