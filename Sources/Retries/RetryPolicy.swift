//===----------------------------------------------------------------------===//
// meshsim — Retries
//===----------------------------------------------------------------------===//

public import SimCore

/// A retry policy: how many attempts a request may make, which failures are retried, the per-try timeout and the
/// backoff between attempts.
///
/// Two production shapes are offered:
/// - `RetryPolicy.envoy(…)`: Envoy's route `RetryPolicy` (`envoy/config/route/v3/route_components.proto`):
///   `num_retries` default 1, `retry_on` conditions, `per_try_timeout` unset by default (one attempt may use the
///   whole route timeout), and the jittered exponential `retry_back_off` (25 ms base, 10 × base max).
/// - `RetryPolicy.grpc(…)`: gRPC's service-config `retryPolicy` (gRFC A6): `maxAttempts` ≥ 2 and capped by the
///   client at 5 (grpc-go `defaultMaxCallAttempts`), `initialBackoff`, `maxBackoff`, `backoffMultiplier`, non-empty
///   `retryableStatusCodes`. gRPC's call deadline covers all attempts (see ``Deadline``); there is no per-attempt
///   timeout.
///
/// The policy decides only whether a failed attempt may be retried. Budgets and throttles (``RetryBudget``) are
/// asked separately, and gRPC's commit rules (no retry once response headers arrived) are the caller's to apply.
public struct RetryPolicy: Sendable, Equatable {
    /// The most attempts a request makes, the original included (Envoy: `num_retries` + 1; gRPC: `maxAttempts`).
    public let maxAttempts: Int
    /// The HTTP and connection-level failures that are retried.
    public let retryOn: RetryOn
    /// The HTTP statuses retried under ``RetryOn/retriableStatusCodes`` (Envoy `retriable_status_codes`).
    public let retriableStatusCodes: [Int]
    /// The gRPC statuses that are retried (gRPC `retryableStatusCodes`; Envoy's gRPC `retry_on` names).
    public let retryableStatusCodes: GRPCStatusCodes
    /// The timeout of each attempt, or `nil` when unset (Envoy `per_try_timeout`).
    public let perTryTimeout: SimDuration?
    /// The backoff between attempts; copy it per request, as some kinds are stateful.
    public let backoff: Backoff

    /// The most retries a request makes: `maxAttempts − 1`.
    public var maxRetries: Int { maxAttempts - 1 }

    /// Creates a policy, validating its parameters.
    ///
    /// - Parameters:
    ///   - maxAttempts: the most attempts, the original included; at least 1.
    ///   - retryOn: the retried HTTP and connection-level failures.
    ///   - retriableStatusCodes: HTTP statuses (100–599) retried under ``RetryOn/retriableStatusCodes``.
    ///   - retryableStatusCodes: the retried gRPC statuses.
    ///   - perTryTimeout: the timeout of each attempt; `nil` or zero means none (as in Envoy); negative throws.
    ///   - backoff: the backoff between attempts.
    /// - Throws: ``PolicyParameterError`` naming `max_attempts`, `retriable_status_codes` or `per_try_timeout`.
    public init(
        maxAttempts: Int,
        retryOn: RetryOn = [],
        retriableStatusCodes: [Int] = [],
        retryableStatusCodes: GRPCStatusCodes = [],
        perTryTimeout: SimDuration? = nil,
        backoff: Backoff
    ) throws {
        if maxAttempts < 1 {
            throw PolicyParameterError("max_attempts", "must be at least 1 (the original attempt), got \(maxAttempts)")
        }
        if let bad = retriableStatusCodes.first(where: { !(100...599).contains($0) }) {
            throw PolicyParameterError("retriable_status_codes", "must hold HTTP statuses 100–599, got \(bad)")
        }
        if let perTryTimeout, perTryTimeout < .zero {
            throw PolicyParameterError("per_try_timeout", "must not be negative, got \(perTryTimeout.nanoseconds)ns")
        }
        self.maxAttempts = maxAttempts
        self.retryOn = retryOn
        self.retriableStatusCodes = retriableStatusCodes
        self.retryableStatusCodes = retryableStatusCodes
        self.perTryTimeout = perTryTimeout == .zero ? nil : perTryTimeout
        self.backoff = backoff
    }

    /// Envoy's route retry policy.
    ///
    /// Source: Envoy `envoy/config/route/v3/route_components.proto` (`RetryPolicy`), router filter docs.
    /// - Parameters:
    ///   - numRetries: `num_retries`, default 1; at least 0.
    ///   - retryOn: `retry_on` conditions.
    ///   - retriableStatusCodes: `retriable_status_codes`, used with ``RetryOn/retriableStatusCodes``.
    ///   - retryableStatusCodes: the gRPC `retry_on` conditions (`cancelled`, `deadline-exceeded`, `internal`,
    ///     `resource-exhausted`, `unavailable`).
    ///   - perTryTimeout: `per_try_timeout`, unset by default.
    ///   - backoff: `retry_back_off`; default ``Backoff/envoy(baseInterval:maxInterval:)`` (25 ms, 250 ms).
    /// - Throws: ``PolicyParameterError`` naming `num_retries` or another invalid parameter.
    public static func envoy(
        numRetries: Int = 1,
        retryOn: RetryOn,
        retriableStatusCodes: [Int] = [],
        retryableStatusCodes: GRPCStatusCodes = [],
        perTryTimeout: SimDuration? = nil,
        backoff: Backoff? = nil
    ) throws -> RetryPolicy {
        if numRetries < 0 {
            throw PolicyParameterError("num_retries", "must not be negative, got \(numRetries)")
        }
        return try RetryPolicy(
            maxAttempts: numRetries + 1,
            retryOn: retryOn,
            retriableStatusCodes: retriableStatusCodes,
            retryableStatusCodes: retryableStatusCodes,
            perTryTimeout: perTryTimeout,
            backoff: backoff ?? Backoff.envoy()
        )
    }

    /// gRPC's service-config retry policy (gRFC A6 `retryPolicy`).
    ///
    /// Source: grpc/proposal `A6-client-retries.md`; grpc-go `service_config.go` and `stream.go`.
    /// - Parameters:
    ///   - maxAttempts: `maxAttempts`, at least 2; values above `maxCallAttempts` are capped to it, as clients do.
    ///   - initialBackoff: `initialBackoff`, greater than 0.
    ///   - maxBackoff: `maxBackoff`, at least `initialBackoff`.
    ///   - backoffMultiplier: `backoffMultiplier`, at least 1.
    ///   - retryableStatusCodes: `retryableStatusCodes`, not empty.
    ///   - originalJitter: use the original A6 full jitter, not the current ±20 % (``BackoffKind/grpcRetryOriginal``).
    ///   - maxCallAttempts: the client's cap on attempts, default 5 (grpc-go `defaultMaxCallAttempts`); at least 1.
    /// - Throws: ``PolicyParameterError`` naming `max_attempts`, `initial_backoff`, `max_backoff`,
    ///   `backoff_multiplier`, `retryable_status_codes` or `max_call_attempts`.
    public static func grpc(
        maxAttempts: Int,
        initialBackoff: SimDuration,
        maxBackoff: SimDuration,
        backoffMultiplier: Double,
        retryableStatusCodes: GRPCStatusCodes,
        originalJitter: Bool = false,
        maxCallAttempts: Int = 5
    ) throws -> RetryPolicy {
        if maxAttempts < 2 {
            throw PolicyParameterError("max_attempts", "must be at least 2, got \(maxAttempts)")
        }
        if maxCallAttempts < 1 {
            throw PolicyParameterError("max_call_attempts", "must be at least 1, got \(maxCallAttempts)")
        }
        if retryableStatusCodes.isEmpty {
            throw PolicyParameterError("retryable_status_codes", "must name at least one gRPC status code")
        }
        let backoff = try Backoff.grpcRetry(
            initialBackoff: initialBackoff,
            maxBackoff: maxBackoff,
            backoffMultiplier: backoffMultiplier,
            original: originalJitter
        )
        return try RetryPolicy(
            maxAttempts: min(maxAttempts, maxCallAttempts),
            retryableStatusCodes: retryableStatusCodes,
            backoff: backoff
        )
    }

    /// Whether `failure` is one the policy retries, attempts permitting.
    ///
    /// A reset, connect failure, refused stream or per-try timeout is a response-less failure, retried under `5xx`,
    /// `gateway-error` and `reset`; each is also retried under its own condition. OK is never retried.
    /// - Complexity: O(1), or O(n) in `retriableStatusCodes` for an HTTP status; no allocation.
    public func isRetryable(_ failure: AttemptFailure) -> Bool {
        let noResponse = RetryOn.fiveXX.union(.gatewayError).union(.reset)
        switch failure {
        case .httpStatus(let status):
            if retryOn.contains(.fiveXX) && (500...599).contains(status) { return true }
            if retryOn.contains(.gatewayError) && (502...504).contains(status) { return true }
            if retryOn.contains(.retriable4xx) && status == 409 { return true }
            guard retryOn.contains(.retriableStatusCodes) else { return false }
            // An index loop: `Array.contains` allocates when unspecialized (debug builds).
            var i = 0
            while i < retriableStatusCodes.count {
                if retriableStatusCodes[i] == status { return true }
                i += 1
            }
            return false
        case .grpcStatus(let code):
            return code != .ok && retryableStatusCodes.contains(code)
        case .reset:
            return !retryOn.isDisjoint(with: noResponse)
        case .connectFailure:
            return !retryOn.isDisjoint(with: noResponse.union(.connectFailure))
        case .refusedStream:
            return !retryOn.isDisjoint(with: noResponse.union(.refusedStream))
        case .perTryTimeout:
            return !retryOn.isDisjoint(with: noResponse.union(.timeout))
        }
    }

    /// Whether attempt number `attempt` (1 for the original), which failed with `failure`, may be retried.
    ///
    /// True when `attempt < maxAttempts` and the failure is retryable.
    /// - Complexity: as ``isRetryable(_:)``.
    public func shouldRetry(attempt: Int, failure: AttemptFailure) -> Bool {
        attempt < maxAttempts && isRetryable(failure)
    }
}
