//===----------------------------------------------------------------------===//
// meshsim — Retries
//===----------------------------------------------------------------------===//

public import SimCore

/// A limit on retries shared by the requests of one client or proxy, asked before each retry.
///
/// Three production designs conform: Envoy's concurrency-based ``EnvoyRetryBudget``, Finagle's rate-based
/// ``FinagleRetryBudget`` and gRPC's token-based ``GRPCRetryThrottle``. Each listens to the events it needs and
/// ignores the rest, so a caller drives all three the same way.
///
/// ## Call sequence, per request
/// 1. ``requestStarted(at:)`` when the request's first attempt is sent (Finagle deposits; Envoy counts it active).
/// 2. ``attemptFailed(at:)`` for each attempt that fails in a way the budget counts: a failure the retry policy
///    retries, a gRPC non-fatal status under hedging, or gRPC "do not retry" pushback. Call it whether or not a
///    retry follows, including for the last attempt, and before ``tryRetry(at:)`` (gRPC takes a token first, then
///    checks).
/// 3. ``tryRetry(at:)`` before each retry the policy allows; `true` admits the retry and reserves it (Envoy counts
///    it active, Finagle withdraws), `false` means the request ends with its failure.
/// 4. ``retryFinished(at:)`` when an admitted retry's attempt ends, however it ended.
/// 5. ``requestFinished(success:at:)`` once, when the request ends.
///
/// ## Implementation requirements
/// Conforming types are value types whose calls take the time as an argument, never read a clock, never allocate
/// and never trap on any sequence of calls.
public protocol RetryBudget: Sendable {
    /// A request (not a retry) started at `now`.
    mutating func requestStarted(at now: SimInstant)
    /// An attempt failed at `now` in a way the budget counts (see the call sequence).
    mutating func attemptFailed(at now: SimInstant)
    /// Whether a retry may be sent at `now`; `true` reserves it.
    mutating func tryRetry(at now: SimInstant) -> Bool
    /// A retry admitted by ``tryRetry(at:)`` ended at `now`.
    mutating func retryFinished(at now: SimInstant)
    /// A request ended at `now`; `success` when its final attempt succeeded.
    mutating func requestFinished(success: Bool, at now: SimInstant)
}

/// Envoy's retry budget: active retries may not exceed `max(min_retry_concurrency, budget_percent × active requests)`.
///
/// Source: Envoy `CircuitBreakers.Thresholds.RetryBudget` (`envoy/config/cluster/v3/circuit_breaker.proto`) and the
/// cluster resource manager. `budget_percent` defaults to 20 % and `min_retry_concurrency` to 3; when set, the budget
/// replaces the `max_retries` threshold. The limit is
/// `max(budget_percent / 100 × (active_requests + pending_requests), min_retry_concurrency)`, truncated to a whole
/// number of retries, and a retry is admitted while `active_retries` is below it. Envoy PR #9069's example: 20 % with
/// a minimum of 3 allows 5 retries at 25 active requests and 3 at 2.
///
/// Modelling choices: active requests are the requests between ``requestStarted(at:)`` and
/// ``requestFinished(success:at:)`` (Envoy counts upstream requests, so it also counts a retry in flight and not a
/// request waiting in backoff); a retry is counted active from ``tryRetry(at:)``, through its backoff, to
/// ``retryFinished(at:)``, which is newer Envoy's accounting (`retries_in_backoff`) rather than the older one that let
/// retries parked in backoff escape the budget (envoy#30205). State is per Envoy process and cluster.
public struct EnvoyRetryBudget: RetryBudget, Equatable {
    /// `budget_percent`: the share of active requests that may be retries, in percent (0–100).
    public let budgetPercent: Double
    /// `min_retry_concurrency`: the retries always allowed, however few requests are active.
    public let minRetryConcurrency: Int
    /// Requests started and not yet finished.
    public private(set) var activeRequests: Int = 0
    /// Retries admitted and not yet finished.
    public private(set) var activeRetries: Int = 0

    /// Creates a budget with Envoy's defaults unless given.
    ///
    /// - Throws: ``PolicyParameterError`` naming `budget_percent` (outside 0–100) or `min_retry_concurrency`
    ///   (negative).
    public init(budgetPercent: Double = 20, minRetryConcurrency: Int = 3) throws {
        if !(budgetPercent >= 0 && budgetPercent <= 100) {
            throw PolicyParameterError("budget_percent", "must be between 0 and 100, got \(budgetPercent)")
        }
        if minRetryConcurrency < 0 {
            throw PolicyParameterError("min_retry_concurrency", "must not be negative, got \(minRetryConcurrency)")
        }
        self.budgetPercent = budgetPercent
        self.minRetryConcurrency = minRetryConcurrency
    }

    /// The most retries that may be active now: `max(min_retry_concurrency, ⌊budget_percent / 100 × active⌋)`.
    /// - Complexity: O(1).
    public var maxActiveRetries: Int {
        max(minRetryConcurrency, Int(budgetPercent / 100 * Double(activeRequests)))
    }

    /// Counts a request active.
    /// - Complexity: O(1).
    public mutating func requestStarted(at now: SimInstant) {
        activeRequests += 1
    }

    /// Does nothing: Envoy's budget counts concurrency, not failures.
    public mutating func attemptFailed(at now: SimInstant) {}

    /// Admits a retry, counting it active, when active retries are below ``maxActiveRetries``.
    /// - Complexity: O(1).
    public mutating func tryRetry(at now: SimInstant) -> Bool {
        guard activeRetries < maxActiveRetries else { return false }
        activeRetries += 1
        return true
    }

    /// Counts a retry no longer active.
    /// - Complexity: O(1).
    public mutating func retryFinished(at now: SimInstant) {
        activeRetries = max(0, activeRetries - 1)
    }

    /// Counts a request no longer active.
    /// - Complexity: O(1).
    public mutating func requestFinished(success: Bool, at now: SimInstant) {
        activeRequests = max(0, activeRequests - 1)
    }
}
