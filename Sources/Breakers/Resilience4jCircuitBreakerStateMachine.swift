//===----------------------------------------------------------------------===//
// meshsim — Breakers
//===----------------------------------------------------------------------===//

public import SimCore

/// The outcome of a call, as resilience4j records it.
public enum Resilience4jCallOutcome: Sendable, Equatable {
    /// The call succeeded (slow if it took longer than `slowCallDurationThreshold`).
    case success
    /// The call failed with a recorded exception (slow if it took longer than `slowCallDurationThreshold`).
    case failure
    /// The call failed with an ignored exception: not recorded; the permission is released.
    case ignored
}

/// What a resilience4j breaker's current window holds, and its rates.
public struct Resilience4jMetrics: Sendable, Equatable {
    /// Calls in the window.
    public var calls: Int
    /// Failed calls in the window.
    public var failedCalls: Int
    /// Slow calls in the window.
    public var slowCalls: Int
    /// Calls both slow and failed in the window.
    public var slowFailedCalls: Int
    /// The failure rate in percent, or `nil` below the minimum number of calls (resilience4j reports −1).
    public var failureRate: Double?
    /// The slow-call rate in percent, or `nil` below the minimum number of calls.
    public var slowCallRate: Double?
    /// Calls rejected since the breaker was created or reset.
    public var notPermittedCalls: Int
}

/// The resilience4j CircuitBreaker: CLOSED, OPEN and HALF_OPEN driven by failure and slow-call rates over a
/// sliding window, plus the manually entered DISABLED, FORCED_OPEN and METRICS_ONLY.
///
/// Source: resilience4j `resilience4j-circuitbreaker/…/CircuitBreakerConfig.java`,
/// `internal/CircuitBreakerStateMachine.java` and `internal/CircuitBreakerMetrics.java`, as the project reference
/// gives them (`algorithms.md` §7.1):
/// - CLOSED: every call passes. After each recorded call, if the window holds at least the minimum number of calls
///   (`min(minimumNumberOfCalls, slidingWindowSize)` for COUNT_BASED, `minimumNumberOfCalls` for TIME_BASED),
///   the breaker opens when `failed / total × 100 ≥ failureRateThreshold` or `slow / total × 100 ≥
///   slowCallRateThreshold`. A call is slow when its duration exceeds `slowCallDurationThreshold`.
/// - OPEN: every call is rejected (counted as not permitted). Each entry increments `attempts`, and the wait is
///   `waitIntervalInOpenState.duration(attempts:)`. Once `now > openedAt + wait`, the next call attempt moves to
///   HALF_OPEN and is judged there; with `automaticTransitionFromOpenToHalfOpenEnabled`, the move happens at
///   `openedAt + wait` as if a scheduler fired (on the next event at or after it, or `poll(at:)`).
/// - HALF_OPEN: a fresh COUNT_BASED window of `permittedNumberOfCallsInHalfOpenState` calls; that many permits,
///   taken by admitted calls and returned by `release(at:)`. After each recorded call, with at least
///   `min(minimumNumberOfCalls, permitted)` calls, an exceeded threshold reopens the breaker and otherwise it
///   closes with a fresh window. With `maxWaitDurationInHalfOpenState` > 0, the breaker leaves HALF_OPEN for
///   `transitionToStateAfterWaitDuration` that long after entering it; with 0 it can stay there forever if the
///   permitted calls never complete.
/// - Outcomes recorded while OPEN (calls admitted before it opened) go to the window OPEN inherited and change
///   nothing.
/// - DISABLED (everything passes, nothing recorded), FORCED_OPEN (everything rejected) and METRICS_ONLY (everything
///   passes and is recorded, no transitions) are entered only with `transition(to:at:)`; their meaning is
///   resilience4j's, which the reference lists without detail.
///
/// Storage is sized at creation; `acquire` and `record` do not allocate.
public struct Resilience4jCircuitBreakerStateMachine: CircuitBreaker {
    /// The configuration the breaker runs with.
    public let configuration: Resilience4jCircuitBreakerConfiguration
    /// The current state.
    public private(set) var state: BreakerState = .closed
    /// Consecutive OPEN entries since the breaker last closed (the argument of the wait interval function).
    public private(set) var attempts = 0
    /// Calls rejected since creation or the last `reset()`.
    public private(set) var notPermittedCalls = 0
    private var closedWindow: SlidingWindowMetrics
    private var halfOpenWindow: SlidingWindowMetrics
    private var measuringHalfOpen = false
    private var retryAfter = SimInstant.zero
    private var halfOpenDeadline: SimInstant?
    private var halfOpenPermits = 0

    /// Creates a CLOSED breaker.
    public init(configuration: Resilience4jCircuitBreakerConfiguration) {
        self.configuration = configuration
        closedWindow = SlidingWindowMetrics(
            timeBased: configuration.slidingWindowType == .timeBased,
            size: configuration.slidingWindowSize
        )
        halfOpenWindow = SlidingWindowMetrics(
            timeBased: false,
            size: configuration.permittedNumberOfCallsInHalfOpenState
        )
    }

    // MARK: - Queries

    /// The instant the OPEN wait ends (calls are admitted strictly after it), or `nil` when not OPEN.
    public var openUntil: SimInstant? { state == .open ? retryAfter : nil }

    /// Permits left in HALF_OPEN (0 in other states).
    public var availableHalfOpenPermits: Int { state == .halfOpen ? halfOpenPermits : 0 }

    /// The next instant at which time alone changes the state (automatic OPEN→HALF_OPEN, or the HALF_OPEN
    /// maximum wait), or `nil`; call `poll(at:)` then if nothing else will.
    public var nextTimerDeadline: SimInstant? {
        switch state {
        case .open where configuration.automaticTransitionFromOpenToHalfOpenEnabled: return retryAfter
        case .halfOpen: return halfOpenDeadline
        default: return nil
        }
    }

    /// The current window's counts and rates as of `now`.
    public func metrics(at now: SimInstant) -> Resilience4jMetrics {
        let window = measuringHalfOpen ? halfOpenWindow : closedWindow
        let minimum =
            measuringHalfOpen ? configuration.halfOpenMinimumNumberOfCalls : configuration.closedMinimumNumberOfCalls
        let totals = window.snapshot(at: now)
        let rated = totals.calls > 0 && totals.calls >= minimum
        return Resilience4jMetrics(
            calls: totals.calls,
            failedCalls: totals.failed,
            slowCalls: totals.slow,
            slowFailedCalls: totals.slowFailed,
            failureRate: rated ? Double(totals.failed) * 100 / Double(totals.calls) : nil,
            slowCallRate: rated ? Double(totals.slow) * 100 / Double(totals.calls) : nil,
            notPermittedCalls: notPermittedCalls
        )
    }

    // MARK: - Events

    /// Asks whether a call may start at `now`.
    ///
    /// - Complexity: O(1) amortized; does not allocate.
    public mutating func acquire(at now: SimInstant) -> Permission {
        _ = runTimers(at: now)
        switch state {
        case .closed, .disabled, .metricsOnly:
            return .permitted
        case .forcedOpen:
            notPermittedCalls += 1
            return .rejected
        case .open:
            guard now > retryAfter else {
                notPermittedCalls += 1
                return .rejected
            }
            _ = toHalfOpen(at: now)
            return acquireHalfOpenPermit()
        case .halfOpen:
            return acquireHalfOpenPermit()
        }
    }

    /// Returns the permission of a call that will not be recorded (cancelled, or ended by an ignored exception);
    /// in HALF_OPEN this gives the permit back.
    ///
    /// - Complexity: O(1).
    public mutating func release(at now: SimInstant) {
        if state == .halfOpen, halfOpenPermits < configuration.permittedNumberOfCallsInHalfOpenState {
            halfOpenPermits += 1
        }
    }

    /// Records a call that ended at `now` after `duration`.
    ///
    /// - Returns: The last state change during the call (a timer-driven one, or the one the outcome caused).
    /// - Complexity: O(1) amortized (a TIME_BASED window may reset up to `slidingWindowSize` stale buckets);
    ///   does not allocate.
    public mutating func record(
        _ outcome: Resilience4jCallOutcome,
        duration: SimDuration,
        at now: SimInstant
    ) -> BreakerTransition? {
        let timerTransition = runTimers(at: now)
        let failed: Bool
        switch outcome {
        case .success: failed = false
        case .failure: failed = true
        case .ignored:
            release(at: now)
            return timerTransition
        }
        let slow = duration > configuration.slowCallDurationThreshold
        switch state {
        case .disabled, .forcedOpen:
            return timerTransition
        case .metricsOnly:
            closedWindow.record(failed: failed, slow: slow, at: now)
            return timerTransition
        case .open:
            if measuringHalfOpen {
                halfOpenWindow.record(failed: failed, slow: slow, at: now)
            } else {
                closedWindow.record(failed: failed, slow: slow, at: now)
            }
            return timerTransition
        case .closed:
            closedWindow.record(failed: failed, slow: slow, at: now)
            if evaluate(closedWindow.totals, minimumCalls: configuration.closedMinimumNumberOfCalls) == .exceeded {
                return toOpen(at: now)
            }
            return timerTransition
        case .halfOpen:
            halfOpenWindow.record(failed: failed, slow: slow, at: now)
            switch evaluate(halfOpenWindow.totals, minimumCalls: configuration.halfOpenMinimumNumberOfCalls) {
            case .exceeded: return toOpen(at: now)
            case .belowThresholds: return toClosed()
            case .belowMinimum: return timerTransition
            }
        }
    }

    /// Records a call that ended at `now` after `duration`, as a success or a (recorded) failure.
    ///
    /// - Complexity: O(1) amortized; does not allocate.
    public mutating func record(success: Bool, duration: SimDuration, at now: SimInstant) -> BreakerTransition? {
        record(success ? .success : .failure, duration: duration, at: now)
    }

    /// Applies the time-driven transitions due by `now` (automatic OPEN→HALF_OPEN, HALF_OPEN maximum wait).
    ///
    /// - Returns: The last transition applied, if any.
    /// - Complexity: O(1) amortized.
    public mutating func poll(at now: SimInstant) -> BreakerTransition? {
        runTimers(at: now)
    }

    /// Moves the breaker to `target` at `now`, as resilience4j's `transitionTo…State()` methods do; the target
    /// state starts with a fresh window (OPEN keeps the current one).
    ///
    /// - Returns: The transition, or `nil` if the breaker is already in `target`.
    public mutating func transition(to target: BreakerState, at now: SimInstant) -> BreakerTransition? {
        guard target != state else { return nil }
        switch target {
        case .closed: return toClosed()
        case .open: return toOpen(at: now)
        case .halfOpen: return toHalfOpen(at: now)
        case .disabled, .forcedOpen, .metricsOnly:
            let transition = BreakerTransition(from: state, to: target)
            closedWindow.reset()
            measuringHalfOpen = false
            halfOpenDeadline = nil
            state = target
            return transition
        }
    }

    /// Returns the breaker to CLOSED with a fresh window, no attempts and no rejected calls.
    public mutating func reset() {
        _ = toClosed()
        notPermittedCalls = 0
    }

    // MARK: - Internals

    private enum Evaluation {
        case belowMinimum, belowThresholds, exceeded
    }

    /// resilience4j's threshold check; rates are compared in single precision, as resilience4j computes them.
    private func evaluate(_ totals: CallAggregate, minimumCalls: Int) -> Evaluation {
        guard totals.calls > 0, totals.calls >= minimumCalls else { return .belowMinimum }
        let failureRate = Float(totals.failed) * 100 / Float(totals.calls)
        let slowRate = Float(totals.slow) * 100 / Float(totals.calls)
        if failureRate >= Float(configuration.failureRateThreshold)
            || slowRate >= Float(configuration.slowCallRateThreshold)
        {
            return .exceeded
        }
        return .belowThresholds
    }

    private mutating func acquireHalfOpenPermit() -> Permission {
        guard halfOpenPermits > 0 else {
            notPermittedCalls += 1
            return .rejected
        }
        halfOpenPermits -= 1
        return .permitted
    }

    private mutating func runTimers(at now: SimInstant) -> BreakerTransition? {
        var last: BreakerTransition?
        // Each step moves a deadline forward; the bound only guards against zero-length waits.
        for _ in 0..<1024 {
            if state == .open, configuration.automaticTransitionFromOpenToHalfOpenEnabled, now >= retryAfter {
                last = toHalfOpen(at: retryAfter)
            } else if state == .halfOpen, let deadline = halfOpenDeadline, now >= deadline {
                last = configuration.transitionToStateAfterWaitDuration == .closed ? toClosed() : toOpen(at: deadline)
            } else {
                break
            }
        }
        return last
    }

    private mutating func toOpen(at now: SimInstant) -> BreakerTransition {
        let transition = BreakerTransition(from: state, to: .open)
        attempts += 1
        retryAfter = now + configuration.waitIntervalInOpenState.duration(attempts: attempts)
        halfOpenDeadline = nil
        state = .open
        return transition
    }

    private mutating func toHalfOpen(at now: SimInstant) -> BreakerTransition {
        let transition = BreakerTransition(from: state, to: .halfOpen)
        halfOpenWindow.reset()
        measuringHalfOpen = true
        halfOpenPermits = configuration.permittedNumberOfCallsInHalfOpenState
        let maxWait = configuration.maxWaitDurationInHalfOpenState
        halfOpenDeadline = maxWait > .zero ? now + maxWait : nil
        state = .halfOpen
        return transition
    }

    private mutating func toClosed() -> BreakerTransition {
        let transition = BreakerTransition(from: state, to: .closed)
        closedWindow.reset()
        measuringHalfOpen = false
        halfOpenDeadline = nil
        attempts = 0
        state = .closed
        return transition
    }
}
