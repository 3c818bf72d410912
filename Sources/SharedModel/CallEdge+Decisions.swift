//===----------------------------------------------------------------------===//
// meshsim — SharedModel
//===----------------------------------------------------------------------===//

public import Breakers
public import Health
import Limiters
public import Retries
public import SimCore
import Spec

// The decisions of a call edge, in the order a request meets them: the call is admitted (retry budget, rate limit),
// each attempt is admitted (adaptive throttle, circuit breaker and its pool), an endpoint is picked (``pick``),
// the result teaches outlier detection, and a failure is retried, hedged or final (hedging, retry policy,
// deadline, budget, backoff). The simulator and `meshsim proxy` both go through these methods, so the same
// requests meet the same policy calls in the same order whatever the clock.

/// What became of an attempt asking to go out on an edge.
public enum AttemptAdmission: Equatable, Sendable {
    /// The SRE adaptive throttle rejected it locally (not retried).
    case throttled
    /// The circuit breaker is open, or an Envoy threshold overflowed (not retried).
    case breakerRejected
    /// It may go; `pool` is its place in an Envoy breaker's connection pool (`.pending`: wait for a connection).
    case admitted(pool: PoolState)
}

/// What to do after every outstanding attempt of a call has failed.
public enum RetryDecision: Equatable, Sendable {
    /// Send the next hedge at once (hedging allows more attempts and the failure is retryable).
    case hedge
    /// Retry after `wait` (zero: at once); `holdsBudget`: the retry holds a place in the edge's retry budget
    /// until ``CallEdge/retryFinished(at:)``.
    case retry(after: SimDuration, holdsBudget: Bool)
    /// The retry budget said no: the call fails with the last attempt's outcome.
    case budgetDenied
    /// No retry (attempts used up, failure not retryable, or the deadline passed): the call fails.
    case finish

    /// Whether the call goes out again (a retry or a hedge).
    public var sendsAgain: Bool {
        switch self {
        case .hedge, .retry: return true
        case .budgetDenied, .finish: return false
        }
    }
}

extension CallEdge {
    /// A call starts on the edge: the retry budget counts it, then the rate limiter admits it or not.
    ///
    /// - Returns: `false` when the rate limiter rejects the call.
    public mutating func admitCall(at now: SimInstant) -> Bool {
        if budget != nil { budget!.requestStarted(at: now) }
        if rateLimiter != nil && !rateLimiter!.admit(at: now) { return false }
        return true
    }

    /// An attempt asks to go out (a retry counts against Envoy's `max_retries` too): the adaptive throttle, then
    /// the circuit breaker and, for Envoy's thresholds, its connection pool.
    ///
    /// - Returns: the admission, and whether asking tripped the breaker open (Hystrix trips when a request asks).
    public mutating func admitAttempt(isRetry: Bool, at now: SimInstant) -> (AttemptAdmission, breakerOpened: Bool) {
        if throttle != nil {
            var stream = policyRng
            if throttle!.shouldReject(at: now, using: &stream) { return (.throttled, false) }
        }
        guard breaker != nil else { return (.admitted(pool: .none), false) }
        let (admitted, opened) = breaker!.acquire(isRetry: isRetry, at: now)
        guard admitted else { return (.breakerRejected, opened) }
        let (pool, permitted) = breaker!.connect()
        guard permitted else {
            breaker!.cancel(isRetry: isRetry, pool: .none, at: now)
            return (.breakerRejected, opened)
        }
        return (.admitted(pool: pool), opened)
    }

    /// Every outstanding attempt of a call has failed with `failure` after `attemptsMade` attempts: hedge, retry
    /// (after the backoff's wait), or give up.
    ///
    /// The budget learns of the failure first; hedging (when on and more attempts are allowed) sends the next
    /// attempt at once; otherwise the retry policy's attempts and `retry_on`, the call's deadline and then the
    /// budget decide, and the backoff draws the wait from the edge's policy stream.
    public mutating func afterFailure(
        attemptsMade: Int,
        failure: AttemptFailure,
        deadline: Deadline,
        backoff: inout Backoff?,
        at now: SimInstant
    ) -> RetryDecision {
        if budget != nil { budget!.attemptFailed(at: now) }
        if let hedging = policy.hedging, attemptsMade < hedging.maxAttempts, retryPolicy.isRetryable(failure) {
            return .hedge
        }
        guard retryPolicy.shouldRetry(attempt: attemptsMade, failure: failure), !deadline.isExpired(at: now) else {
            return .finish
        }
        var holdsBudget = false
        if budget != nil {
            guard budget!.tryRetry(at: now) else { return .budgetDenied }
            holdsBudget = true
        }
        var wait = SimDuration.zero
        if backoff != nil {
            var stream = policyRng
            wait = backoff!.next(attempt: attemptsMade, using: &stream)
        }
        return .retry(after: wait, holdsBudget: holdsBudget)
    }

    /// A hedged call's attempt failed with `failure` while others are still out: whether to send the next hedge
    /// now.
    public func hedgesAfter(attemptsMade: Int, failure: AttemptFailure) -> Bool {
        guard let hedging = policy.hedging else { return false }
        return attemptsMade < hedging.maxAttempts && retryPolicy.isRetryable(failure)
    }

    /// A retry admitted by the budget has ended (answered, failed or given up).
    public mutating func retryFinished(at now: SimInstant) {
        if budget != nil { budget!.retryFinished(at: now) }
    }

    /// A call on the edge has ended; the budget learns whether it succeeded.
    public mutating func callFinished(success: Bool, at now: SimInstant) {
        if budget != nil { budget!.requestFinished(success: success, at: now) }
    }

    /// Outlier detection learns the result of an attempt on replica `host`.
    ///
    /// - Returns: the event it raised, if any; pass it to ``applyOutlierEvent(_:at:)``.
    public mutating func recordOutlier(host: Int, result: RequestResult, at now: SimInstant) -> OutlierEvent? {
        guard outlier != nil else { return nil }
        var stream = policyRng
        return outlier!.record(host: host, result: result, at: now, using: &stream)
    }

    /// The periodic outlier-detection sweep (success-rate and failure-percentage detectors, unejections).
    public mutating func sweepOutliers(at now: SimInstant) -> [OutlierEvent] {
        guard outlier != nil else { return [] }
        var stream = policyRng
        return outlier!.sweep(at: now, using: &stream)
    }

    /// Applies an ejection or unejection to the edge's view.
    ///
    /// - Returns: whether it ejected a replica.
    @discardableResult
    public mutating func applyOutlierEvent(_ event: OutlierEvent, at now: SimInstant) -> Bool {
        let ejection: Bool
        switch event {
        case .ejected(let host, _, _):
            ejected[host] = true
            ejection = true
        case .unejected(let host):
            ejected[host] = false
            ejection = false
        case .notEnforced, .overflow:
            return false
        }
        setView(fullView, at: now)
        return ejection
    }

    /// An Envoy active health check of replica `host` ended with `result`: the checker records it, a passing check
    /// returns an ejected outlier to service (Envoy's `successful_active_health_check_uneject_host`), and the view
    /// follows a change of health.
    ///
    /// - Returns: the outlier event a pass caused (already applied to the view; `nil` if none), the health
    ///   transition (applied), and when the next check of `host` is due.
    public mutating func recordActiveCheck(host: Int, result: CheckResult, at now: SimInstant) -> (
        outlierEvent: OutlierEvent?, transition: HealthTransition?, next: SimInstant
    ) {
        guard activeCheck != nil else { return (nil, nil, .distantFuture) }
        let transition = activeCheck!.record(host: host, check: result, at: now)
        let next = activeCheck!.nextCheckDue(host: host)
        var event: OutlierEvent?
        if case .passed = result, outlier != nil {
            event = outlier!.activeHealthCheckPassed(host: host, at: now)
            if let event { applyOutlierEvent(event, at: now) }
        }
        if transition != nil { setView(fullView, at: now) }
        return (event, transition, next)
    }

    /// An HAProxy check of replica `host` (`check`, checker 1) ended with `result`: the server's health counter
    /// records it (`fall`, `rise`), and the view follows a change of health.
    ///
    /// - Returns: the transition (already applied to the view; `nil` if none; marking a server down counts as an
    ///   ejection), and when the next check of `host` is due (`inter`, `fastinter` or `downinter` from now).
    /// - Complexity: O(1), plus a rebuild of the view on a transition.
    public mutating func recordHAProxyCheck(host: Int, result: CheckResult, at now: SimInstant) -> (
        transition: HealthTransition?, next: SimInstant
    ) {
        guard haproxy != nil else { return (nil, .distantFuture) }
        let transition = haproxy!.recordCheck(host: host, result: result, at: now)
        let next = haproxy!.nextCheckDue(host: host)
        if transition != nil { setView(fullView, at: now) }
        return (transition, next)
    }

    /// HAProxy's `observe` learns an attempt's result on `host`: at `error-limit` consecutive errors `on-error`
    /// acts, and the view follows a change of health.
    ///
    /// - Returns: what `on-error` did (its transition already applied to the view), or `nil`. With `fastinter`
    ///   set, the next check of `host` is now due at the event's `nextCheck`: schedule it.
    /// - Complexity: O(1), plus a rebuild of the view on a transition.
    public mutating func observeHAProxy(host: Int, result: RequestResult, at now: SimInstant) -> HAProxyErrorLimitEvent?
    {
        guard haproxy != nil, let event = haproxy!.observe(host: host, result: result, at: now) else { return nil }
        if event.transition != nil { setView(fullView, at: now) }
        return event
    }

    /// nginx's round-robin peer accounting learns that the balancer picked `host`: a peer picked after its
    /// `fail_timeout` is a probe, unavailable again at once until a success clears its failures.
    public mutating func nginxSelected(host: Int, at now: SimInstant) {
        guard nginx != nil, nginx!.configuration.variant == .roundRobinModule else { return }
        nginx!.selected(host: host, at: now)
        if !inPanic && positionOf[host] >= 0 && !nginx!.isUsable(host: host, at: now) { setView(fullView, at: now) }
    }

    /// nginx passive health (`max_fails`, `fail_timeout`) learns an attempt's result on `host`; the view follows
    /// a change of the peer's availability.
    ///
    /// - Returns: when a new unavailability begun by this result ends (re-apply the view then, with
    ///   ``setView(_:at:)`` on ``fullView``), and whether it is new (an ejection) rather than one extended by a
    ///   failure that was still in flight.
    public mutating func recordNginxPassive(host: Int, result: RequestResult, at now: SimInstant) -> (
        recoverAt: SimInstant?, newUnavailability: Bool
    ) {
        guard nginx != nil else { return (nil, false) }
        let wasUsable = nginx!.isUsable(host: host, at: now)
        let until = nginx!.record(host: host, result: result, at: now)
        var fresh = false
        if let until {
            fresh = now >= passiveDownUntil[host]
            passiveDownUntil[host] = until
        }
        if wasUsable != nginx!.isUsable(host: host, at: now) { setView(fullView, at: now) }
        return (until, fresh)
    }
}
