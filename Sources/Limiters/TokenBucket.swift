//===----------------------------------------------------------------------===//
// meshsim — Limiters
//===----------------------------------------------------------------------===//

public import SimCore

/// A token bucket as Envoy implements it, with its three refill variants.
///
/// Source: Envoy `envoy/type/v3/token_bucket.proto` (`max_tokens` > 0, the bucket starts full; `tokens_per_fill`
/// default 1; `fill_interval` > 0), as described in the reference's section 8.1. The variants differ in how tokens
/// come back:
///
/// - ``Refill/continuous``: `source/common/common/token_bucket_impl.cc` (`TokenBucketImpl`). Fractional tokens at
///   `tokens_per_fill / fill_interval` per second, added lazily on each consume. Envoy advances `last_fill` only
///   when the bucket is below `max_tokens`, so a consume that finds the bucket full leaves `last_fill` stale and the
///   next consume is credited for the time the bucket sat full. That refill is still capped at `max_tokens`, so the
///   effect is bounded by the tokens the first consume took: once after start-up when permits never exceed
///   `max_tokens`. This model keeps that behaviour.
/// - ``Refill/atomic``: newer Envoy's `AtomicTokenBucketImpl` (same file), also continuous, but its state is a single
///   instant: the bucket holds `min(max_tokens, (now − origin) × rate)` tokens, and a consume moves `origin`
///   forward by the tokens it takes. A call at or before `origin` finds the bucket empty.
/// - ``Refill/timer``: the local rate limit filter's classic implementation
///   (`source/extensions/filters/common/local_ratelimit/local_ratelimit_impl.cc`). Integer tokens; a timer every
///   `fill_interval`, first firing one interval after creation, sets `tokens = min(max_tokens, tokens +
///   tokens_per_fill)`. The ticks are applied lazily here, on the next call at or after each tick.
///
/// A request asks for `permits` tokens and is admitted only if all of them are available (Envoy's
/// `allow_partial = false`); ``consume(_:allowPartial:at:)`` gives the partial form too. The local rate limit filter
/// additionally requires `fill_interval` ≥ 50 ms, which
/// ``Configuration/localRateLimitFilter(maxTokens:tokensPerFill:fillInterval:refill:)`` checks.
/// Envoy's own retry hint (`nextTokenAvailable`) is coarser (whole milliseconds, one token); the `retryAfter` given
/// here is the exact time until `permits` tokens are available if nothing else consumes.
public struct TokenBucket: RateLimiter {
    /// How tokens return to the bucket; each case is one Envoy implementation.
    public enum Refill: String, Sendable, Equatable, CaseIterable {
        /// Envoy `TokenBucketImpl`: continuous fractional refill, with `last_fill` kept while the bucket is full.
        case continuous
        /// Envoy `AtomicTokenBucketImpl`: continuous refill stored as one "empty at" instant.
        case atomic
        /// Envoy local rate limit timer: `tokens_per_fill` whole tokens every `fill_interval`.
        case timer
    }

    /// A validated token-bucket configuration (field names as in `token_bucket.proto`).
    public struct Configuration: Sendable, Equatable {
        /// The bucket's capacity and initial content (`max_tokens`).
        public var maxTokens: Int
        /// Tokens added per fill interval (`tokens_per_fill`, default 1).
        public var tokensPerFill: Int
        /// The fill interval (`fill_interval`).
        public var fillInterval: SimDuration
        /// Which Envoy refill implementation to model.
        public var refill: Refill

        /// Creates a configuration; throws `PolicyParameterError` for impossible values.
        public init(maxTokens: Int, tokensPerFill: Int = 1, fillInterval: SimDuration, refill: Refill) throws {
            self.maxTokens = maxTokens
            self.tokensPerFill = tokensPerFill
            self.fillInterval = fillInterval
            self.refill = refill
            try validate()
        }

        /// A configuration for Envoy's local rate limit filter, which also rejects a `fill_interval` under 50 ms.
        public static func localRateLimitFilter(
            maxTokens: Int,
            tokensPerFill: Int = 1,
            fillInterval: SimDuration,
            refill: Refill
        ) throws -> Configuration {
            let configuration = try Configuration(
                maxTokens: maxTokens,
                tokensPerFill: tokensPerFill,
                fillInterval: fillInterval,
                refill: refill
            )
            if fillInterval < .milliseconds(50) {
                throw PolicyParameterError("fill_interval", "must be at least 50ms for the local rate limit filter")
            }
            return configuration
        }

        /// The refill rate in tokens per second (`tokens_per_fill / fill_interval`).
        public var fillRate: Double { Double(tokensPerFill) / fillInterval.seconds }

        /// Throws `PolicyParameterError` naming the first impossible field.
        public func validate() throws {
            if maxTokens < 1 {
                throw PolicyParameterError("max_tokens", "must be at least 1 (got \(maxTokens))")
            }
            if tokensPerFill < 1 {
                throw PolicyParameterError("tokens_per_fill", "must be at least 1 (got \(tokensPerFill))")
            }
            if fillInterval <= .zero {
                throw PolicyParameterError("fill_interval", "must be positive")
            }
            let timeToFill = Double(maxTokens) * Double(fillInterval.nanoseconds) / Double(tokensPerFill)
            if timeToFill >= 1e18 {
                throw PolicyParameterError("max_tokens", "filling the bucket would take more than 30 years")
            }
        }
    }

    /// The configuration this bucket runs.
    public let configuration: Configuration

    /// `fill_interval` in nanoseconds and `tokens_per_fill`, as `Double`s for the continuous variants.
    private let intervalNanoseconds: Double
    private let perFill: Double
    /// `TokenBucketImpl`: current (fractional) tokens and the last refill instant.
    private var tokens: Double
    private var lastFill: SimInstant
    /// `AtomicTokenBucketImpl`: the instant at which the bucket was (or will be) empty.
    private var origin: SimInstant
    /// Timer variant: whole tokens and the next timer tick.
    private var wholeTokens: Int
    private var nextTick: SimInstant

    /// Creates a full bucket at `start` (when Envoy would construct it and arm its fill timer).
    public init(_ configuration: Configuration, startingAt start: SimInstant = .zero) throws {
        try configuration.validate()
        self.configuration = configuration
        let max = configuration.maxTokens
        intervalNanoseconds = Double(configuration.fillInterval.nanoseconds)
        perFill = Double(configuration.tokensPerFill)
        tokens = Double(max)
        lastFill = start
        // Starting full: the bucket was empty max_tokens / rate ago (Envoy's `init_fill`), truncated to whole ns.
        origin = start - SimDuration(nanoseconds: Int64(Double(max) * intervalNanoseconds / perFill))
        wholeTokens = max
        nextTick = start + configuration.fillInterval
    }

    /// Takes `permits` tokens at `now` if all are available.
    ///
    /// - Complexity: O(1); no allocation.
    public mutating func tryAcquire(permits: Int, at now: SimInstant) -> RateDecision {
        guard permits >= 1 else { return .reject(retryAfter: nil) }
        if consume(permits, allowPartial: false, at: now) == permits { return .admit }
        return .reject(retryAfter: retryAfter(permits: permits, at: now))
    }

    /// Takes up to `count` tokens at `now` and returns how many were taken (Envoy's `consume`).
    ///
    /// With `allowPartial`, takes `min(count, ⌊tokens⌋)`; otherwise all `count` or none.
    /// - Complexity: O(1); no allocation.
    public mutating func consume(_ count: Int, allowPartial: Bool, at now: SimInstant) -> Int {
        guard count >= 0 else { return 0 }
        switch configuration.refill {
        case .continuous:
            return consumeContinuous(count, allowPartial: allowPartial, at: now)
        case .atomic:
            return consumeAtomic(count, allowPartial: allowPartial, at: now)
        case .timer:
            return consumeTimer(count, allowPartial: allowPartial, at: now)
        }
    }

    /// The tokens a consume at `now` would find, without changing the bucket.
    ///
    /// - Complexity: O(1).
    public func availableTokens(at now: SimInstant) -> Double {
        let max = Double(configuration.maxTokens)
        switch configuration.refill {
        case .continuous:
            guard tokens < max else { return tokens }
            let elapsed = Swift.max(0, (now - lastFill).nanoseconds)
            return Swift.min(max, tokens + tokensFor(nanoseconds: elapsed))
        case .atomic:
            guard now > origin else { return 0 }
            return Swift.min(max, tokensFor(nanoseconds: (now - origin).nanoseconds))
        case .timer:
            guard now >= nextTick else { return Double(wholeTokens) }
            let ticks = (now - nextTick).nanoseconds / configuration.fillInterval.nanoseconds + 1
            return Double(addingTicks(ticks, to: wholeTokens))
        }
    }

    // MARK: - Variants

    private mutating func consumeContinuous(_ count: Int, allowPartial: Bool, at now: SimInstant) -> Int {
        let max = Double(configuration.maxTokens)
        if tokens < max {
            let elapsed = Swift.max(0, (now - lastFill).nanoseconds)
            tokens = Swift.min(max, tokens + tokensFor(nanoseconds: elapsed))
            if now > lastFill { lastFill = now }
        }
        var count = count
        if allowPartial { count = Swift.min(count, Int(tokens.rounded(.down))) }
        if tokens < Double(count) { return 0 }
        tokens -= Double(count)
        return count
    }

    private mutating func consumeAtomic(_ count: Int, allowPartial: Bool, at now: SimInstant) -> Int {
        guard now > origin else { return 0 }
        let total = Swift.min(Double(configuration.maxTokens), tokensFor(nanoseconds: (now - origin).nanoseconds))
        var count = count
        if total.rounded(.down) < Double(count) {
            guard allowPartial else { return 0 }
            count = Int(total.rounded(.down))
        }
        let remaining = total - Double(count)
        origin = now - SimDuration(nanoseconds: nanosecondsFor(tokens: remaining))
        return count
    }

    private mutating func consumeTimer(_ count: Int, allowPartial: Bool, at now: SimInstant) -> Int {
        if now >= nextTick {
            let interval = configuration.fillInterval.nanoseconds
            let ticks = (now - nextTick).nanoseconds / interval + 1
            wholeTokens = addingTicks(ticks, to: wholeTokens)
            nextTick = nextTick + SimDuration(nanoseconds: ticks * interval)
        }
        var count = count
        if allowPartial { count = Swift.min(count, wholeTokens) }
        if wholeTokens < count { return 0 }
        wholeTokens -= count
        return count
    }

    /// The tokens that `nanoseconds` of continuous refill add (`elapsed × tokens_per_fill / fill_interval`).
    private func tokensFor(nanoseconds: Int64) -> Double {
        Double(nanoseconds) * perFill / intervalNanoseconds
    }

    /// The whole nanoseconds (truncated, as Envoy converts) that refilling `tokens` takes.
    private func nanosecondsFor(tokens: Double) -> Int64 {
        Int64(tokens * intervalNanoseconds / perFill)
    }

    /// `tokens` after `ticks` timer fills, each capped at `max_tokens`.
    private func addingTicks(_ ticks: Int64, to tokens: Int) -> Int {
        let max = configuration.maxTokens
        let missing = Int64(max - tokens)
        let perFill = Int64(configuration.tokensPerFill)
        if ticks >= (missing + perFill - 1) / perFill { return max }
        return tokens + Int(ticks * perFill)
    }

    /// The time from `now` until `permits` tokens are available, after a failed consume at `now`.
    private func retryAfter(permits: Int, at now: SimInstant) -> SimDuration? {
        guard permits <= configuration.maxTokens else { return nil }
        switch configuration.refill {
        case .continuous:
            let deficit = Double(permits) - tokens
            let stale = Swift.max(0, (lastFill - now).nanoseconds)
            let wait = ceilNanoseconds(deficit * intervalNanoseconds / perFill)
            return SimDuration(nanoseconds: Swift.max(1, stale + wait))
        case .atomic:
            let refill = ceilNanoseconds(Double(permits) * intervalNanoseconds / perFill)
            let ready = origin + SimDuration(nanoseconds: refill)
            return SimDuration(nanoseconds: Swift.max(1, (ready - now).nanoseconds))
        case .timer:
            let perFill = configuration.tokensPerFill
            let ticksNeeded = Int64((permits - wholeTokens + perFill - 1) / perFill)
            let ready = nextTick + SimDuration(nanoseconds: (ticksNeeded - 1) * configuration.fillInterval.nanoseconds)
            return SimDuration(nanoseconds: Swift.max(1, (ready - now).nanoseconds))
        }
    }
}
