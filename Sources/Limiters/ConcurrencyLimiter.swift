//===----------------------------------------------------------------------===//
// meshsim — Limiters
//===----------------------------------------------------------------------===//

public import SimCore

/// Proof that a request was admitted by a ``ConcurrencyLimiter``: hand it back when the request completes.
///
/// Source: Netflix/concurrency-limits `limiter/AbstractLimiter.java`, whose listener captures the start time and
/// the in-flight count at acquire for the completion sample.
public struct ConcurrencyPermit: Sendable, Equatable {
    /// When the request was admitted.
    public let startTime: SimInstant
    /// Requests in flight right after this one was admitted (itself included).
    public let inflight: Int
}

/// How a request admitted by a ``ConcurrencyLimiter`` ended, as Netflix's limiter listener reports it.
///
/// Source: Netflix/concurrency-limits `Limiter.Listener` (`onSuccess`, `onDropped`, `onIgnore`) as implemented in
/// `limiter/AbstractLimiter.java`.
public enum ConcurrencyOutcome: String, Sendable, Equatable, CaseIterable {
    /// The request succeeded: the limit gets a sample with `didDrop = false` (`onSuccess`).
    case success
    /// The request timed out or the server signalled overload: a sample with `didDrop = true` (`onDropped`).
    case dropped
    /// The request says nothing about capacity (e.g. a client error): no sample (`onIgnore`).
    case ignored
}

/// Admits a request when fewer than `limit` are in flight, and feeds completions back to the limit algorithm.
///
/// Source: Netflix/concurrency-limits `concurrency-limits-core/…/limiter/SimpleLimiter.java` (an adjustable
/// semaphore: admit if `inflight < limit`, otherwise reject) and `limiter/AbstractLimiter.java` (the listener:
/// on success or drop, one sample `(startTime, now − startTime, inflight at acquire, didDrop)`; on ignore none),
/// reference section 5. The sample's `inflight` is the count right after this request was admitted, so
/// ``acquire(at:)`` returns a ``ConcurrencyPermit`` that carries it to ``release(_:at:outcome:using:)``.
///
/// When the limit falls below the requests already in flight, those requests continue; new ones are rejected until
/// enough complete. So every admission keeps `inflight ≤ limit`, though a later drop of the limit may leave more in
/// flight than the new limit.
public struct ConcurrencyLimiter<Limit: ConcurrencyLimit>: Sendable {
    /// The limit algorithm.
    public private(set) var algorithm: Limit
    /// Requests admitted and not yet released.
    public private(set) var inflight = 0

    /// Creates a limiter with nothing in flight.
    public init(_ algorithm: Limit) {
        self.algorithm = algorithm
    }

    /// The algorithm's current limit.
    public var limit: Int { algorithm.limit }

    /// Admits a request at `now` if `inflight < limit`; returns its permit, or `nil` if rejected.
    ///
    /// - Complexity: O(1); no allocation.
    public mutating func acquire(at now: SimInstant) -> ConcurrencyPermit? {
        guard inflight < algorithm.limit else { return nil }
        inflight += 1
        return ConcurrencyPermit(startTime: now, inflight: inflight)
    }

    /// Releases the request holding `permit` at `now`, feeding the limit a sample unless the outcome is ignored.
    ///
    /// The sample's RTT is `now − permit.startTime`. Releasing more permits than were acquired leaves `inflight`
    /// at 0.
    /// - Complexity: O(1) plus the algorithm's `onSample`; no allocation.
    public mutating func release(
        _ permit: ConcurrencyPermit,
        at now: SimInstant,
        outcome: ConcurrencyOutcome,
        using rng: inout some RandomNumberGenerator
    ) {
        if inflight > 0 { inflight -= 1 }
        guard outcome != .ignored else { return }
        algorithm.onSample(
            startTime: permit.startTime,
            rtt: now - permit.startTime,
            inflight: permit.inflight,
            didDrop: outcome == .dropped,
            using: &rng
        )
    }
}
