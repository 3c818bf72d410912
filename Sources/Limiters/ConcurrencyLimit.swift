//===----------------------------------------------------------------------===//
// meshsim — Limiters
//===----------------------------------------------------------------------===//

public import SimCore

/// An adaptive concurrency-limit algorithm: turns completed-request samples into a concurrency limit.
///
/// Source: Netflix/concurrency-limits, `concurrency-limits-core/…/Limit.java` and `limit/AbstractLimit.java`
/// (`onSample(startTime, rtt, inflight, didDrop)` → new integer limit), as in the reference's section 5. Time comes
/// in as arguments, so the algorithms never read a clock. Unlike the Java interface, `onSample` also takes the random
/// number generator, because Vegas draws its probe jitter from one; limits that draw nothing ignore it.
///
/// ## Implementation requirements
/// `onSample` must not allocate or trap, and `limit` must stay at least 1 and within the algorithm's documented
/// bounds whatever the samples are.
public protocol ConcurrencyLimit: Sendable {
    /// The current concurrency limit.
    var limit: Int { get }

    /// Feeds one sample: a request that started at `startTime`, took `rtt`, saw `inflight` requests in flight
    /// (itself included) when it was admitted, and was dropped (timed out or rejected as overload) if `didDrop`.
    mutating func onSample(
        startTime: SimInstant,
        rtt: SimDuration,
        inflight: Int,
        didDrop: Bool,
        using rng: inout some RandomNumberGenerator
    )
}
