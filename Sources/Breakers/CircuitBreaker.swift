//===----------------------------------------------------------------------===//
// meshsim — Breakers
//===----------------------------------------------------------------------===//

public import SimCore

/// The state of a circuit breaker.
///
/// `closed`, `open` and `halfOpen` are common to resilience4j and Hystrix; `disabled`, `forcedOpen` and
/// `metricsOnly` exist only in resilience4j and are entered only by an explicit transition.
public enum BreakerState: Sendable, Equatable, CaseIterable {
    /// Calls pass and outcomes are measured against the thresholds.
    case closed
    /// Calls are rejected until the wait is over.
    case open
    /// A limited number of trial calls pass; their outcomes decide between closed and open.
    case halfOpen
    /// resilience4j `DISABLED`: every call passes and nothing is measured.
    case disabled
    /// resilience4j `FORCED_OPEN`: every call is rejected.
    case forcedOpen
    /// resilience4j `METRICS_ONLY`: every call passes and outcomes are measured, but the state never changes.
    case metricsOnly
}

/// Whether a call may proceed.
public enum Permission: Sendable, Equatable {
    /// The call may proceed; report its outcome (or release the permission) later.
    case permitted
    /// The call is rejected without being attempted (short-circuited).
    case rejected
}

/// A change of breaker state.
public struct BreakerTransition: Sendable, Equatable {
    /// The state before.
    public var from: BreakerState
    /// The state after.
    public var to: BreakerState

    /// Creates a transition from `from` to `to`.
    public init(from: BreakerState, to: BreakerState) {
        self.from = from
        self.to = to
    }
}

/// A circuit breaker driven by explicit instants: asks permission before each call, and is told each outcome.
///
/// ## Implementation requirements
/// `acquire` and `record` must not allocate and must not read a clock: `now` is the only time they see.
public protocol CircuitBreaker: Sendable {
    /// The current state (as of the last event; time-driven transitions happen on the next event).
    var state: BreakerState { get }

    /// Asks whether a call may start at `now`.
    ///
    /// - Complexity: O(1) amortized.
    mutating func acquire(at now: SimInstant) -> Permission

    /// Records the outcome of a permitted call that ended at `now` after `duration`.
    ///
    /// - Returns: The state change the outcome caused, if any.
    /// - Complexity: O(1) amortized.
    mutating func record(success: Bool, duration: SimDuration, at now: SimInstant) -> BreakerTransition?
}
