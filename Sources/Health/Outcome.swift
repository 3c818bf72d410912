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

extension RequestResult {
    /// Whether the result is a 5xx response, counting a gateway failure as one (Envoy maps it to 503 or 504).
    public var isServerError: Bool {
        switch self {
        case .success: return false
        case .httpError(let status): return (500...599).contains(status)
        case .gatewayFailure: return true
        }
    }

    /// Whether the result is a gateway error: 502, 503, 504, or a gateway failure without a response.
    public var isGatewayError: Bool {
        switch self {
        case .success: return false
        case .httpError(let status): return status == 502 || status == 503 || status == 504
        case .gatewayFailure: return true
        }
    }
}
