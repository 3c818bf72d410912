//===----------------------------------------------------------------------===//
// meshsim — Health
//===----------------------------------------------------------------------===//

/// What happened to one request, as health checks and outlier detection see it.
public enum RequestResult: Sendable, Equatable {
    /// A success (2xx, or any status the policy does not count as a failure).
    case success
    /// An error response with an HTTP status (e.g. 500, 503).
    case httpError(status: Int)
    /// A gateway failure without a response: connection refused, reset, or timeout (Envoy "local origin" errors).
    case gatewayFailure
}
