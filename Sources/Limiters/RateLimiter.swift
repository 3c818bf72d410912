//===----------------------------------------------------------------------===//
// meshsim — Limiters
//===----------------------------------------------------------------------===//

public import SimCore

/// What a rate limiter decided about one request.
///
/// Source: meshsim's house style for algorithm protocols: a plain `admit` / `reject(retryAfter:)` enum, no throwing
/// on the hot path.
public enum RateDecision: Sendable, Equatable {
    /// The request may proceed; its permits were taken.
    case admit
    /// The request must not proceed now.
    ///
    /// `retryAfter` is the earliest time from now at which the same request would be admitted if nothing else
    /// happened in between, or `nil` when it can never be admitted (it asks for more permits than the limiter can
    /// ever hold, or fewer than one).
    case reject(retryAfter: SimDuration?)

    /// Whether the request was admitted.
    @inlinable public var isAdmitted: Bool {
        if case .admit = self { return true }
        return false
    }
}

/// A request-rate limiter: admits or rejects each request by the permits it asks for and the current time.
///
/// Limiters are clock-agnostic state machines: the caller passes the current time, so the simulator drives them in
/// virtual time and a live proxy in wall time with the same code. They import only SimCore. Source: meshsim's house
/// style (`tryAcquire(permits:at:)`, with time as a parameter, as Netflix's `Limit.onSample` takes it).
///
/// ## Implementation requirements
/// `tryAcquire` must not allocate and must not trap, whatever `permits` and `now` are. A request for fewer than one
/// permit is rejected with `retryAfter: nil` and leaves the state unchanged. Time is expected to be monotonic; an
/// instant earlier than one already seen must not corrupt the state.
public protocol RateLimiter: Sendable {
    /// Asks for `permits` permits at `now`; takes them and returns `.admit` when the limit allows it.
    mutating func tryAcquire(permits: Int, at now: SimInstant) -> RateDecision
}

extension RateLimiter {
    /// Asks for one permit at `now`.
    ///
    /// - Complexity: that of `tryAcquire(permits:at:)`.
    @inlinable
    public mutating func tryAcquire(at now: SimInstant) -> RateDecision {
        tryAcquire(permits: 1, at: now)
    }
}
