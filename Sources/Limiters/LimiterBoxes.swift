//===----------------------------------------------------------------------===//
// meshsim — Limiters
//===----------------------------------------------------------------------===//

public import SimCore

// A box holds one policy state machine of several kinds without existentials. A payload is taken out, the box set
// to `.empty`, the payload mutated and put back: storage inside the payload (window buckets, logs) stays uniquely
// referenced and is never copied.

/// A rate limiter on a call edge.
public enum RateLimiterBox {
    case empty
    case tokenBucket(TokenBucket)
    case gcra(GCRALimiter)
    case fixedWindow(FixedWindowLimiter)
    case slidingLog(SlidingWindowLogLimiter)
    case slidingCounter(SlidingWindowCounterLimiter)

    /// Whether one more call may start at `now`.
    public mutating func admit(at now: SimInstant) -> Bool {
        switch self {
        case .empty: return true
        case .tokenBucket(var l):
            self = .empty
            defer { self = .tokenBucket(l) }
            return l.tryAcquire(permits: 1, at: now) == .admit
        case .gcra(var l):
            self = .empty
            defer { self = .gcra(l) }
            return l.tryAcquire(permits: 1, at: now) == .admit
        case .fixedWindow(var l):
            self = .empty
            defer { self = .fixedWindow(l) }
            return l.tryAcquire(permits: 1, at: now) == .admit
        case .slidingLog(var l):
            self = .empty
            defer { self = .slidingLog(l) }
            return l.tryAcquire(permits: 1, at: now) == .admit
        case .slidingCounter(var l):
            self = .empty
            defer { self = .slidingCounter(l) }
            return l.tryAcquire(permits: 1, at: now) == .admit
        }
    }
}

/// An adaptive concurrency limiter on a replica.
public enum ConcurrencyLimiterBox {
    case empty
    case aimd(ConcurrencyLimiter<AIMDLimit>)
    case vegas(ConcurrencyLimiter<VegasLimit>)
    case gradient2(ConcurrencyLimiter<Gradient2Limit>)

    /// The current limit.
    public var limit: Int {
        switch self {
        case .empty: return 0
        case .aimd(let l): return l.limit
        case .vegas(let l): return l.limit
        case .gradient2(let l): return l.limit
        }
    }

    /// A permit for one more request at `now`, or nil when at the limit.
    public mutating func acquire(at now: SimInstant) -> ConcurrencyPermit? {
        switch self {
        case .empty: return nil
        case .aimd(var l):
            self = .empty
            defer { self = .aimd(l) }
            return l.acquire(at: now)
        case .vegas(var l):
            self = .empty
            defer { self = .vegas(l) }
            return l.acquire(at: now)
        case .gradient2(var l):
            self = .empty
            defer { self = .gradient2(l) }
            return l.acquire(at: now)
        }
    }

    /// Returns a permit with the request's outcome; the limit learns from it.
    public mutating func release(
        _ permit: ConcurrencyPermit,
        at now: SimInstant,
        outcome: ConcurrencyOutcome,
        using rng: inout some RandomNumberGenerator
    ) {
        switch self {
        case .empty: return
        case .aimd(var l):
            self = .empty
            l.release(permit, at: now, outcome: outcome, using: &rng)
            self = .aimd(l)
        case .vegas(var l):
            self = .empty
            l.release(permit, at: now, outcome: outcome, using: &rng)
            self = .vegas(l)
        case .gradient2(var l):
            self = .empty
            l.release(permit, at: now, outcome: outcome, using: &rng)
            self = .gradient2(l)
        }
    }
}
