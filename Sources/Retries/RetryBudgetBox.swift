//===----------------------------------------------------------------------===//
// meshsim — Retries
//===----------------------------------------------------------------------===//

public import SimCore

/// A retry budget without existentials.
public enum RetryBudgetBox {
    case envoy(EnvoyRetryBudget)
    case finagle(FinagleRetryBudget)
    case grpc(GRPCRetryThrottle)

    public mutating func requestStarted(at now: SimInstant) {
        switch self {
        case .envoy(var b):
            b.requestStarted(at: now)
            self = .envoy(b)
        case .finagle(var b):
            b.requestStarted(at: now)
            self = .finagle(b)
        case .grpc(var b):
            b.requestStarted(at: now)
            self = .grpc(b)
        }
    }

    public mutating func attemptFailed(at now: SimInstant) {
        switch self {
        case .envoy(var b):
            b.attemptFailed(at: now)
            self = .envoy(b)
        case .finagle(var b):
            b.attemptFailed(at: now)
            self = .finagle(b)
        case .grpc(var b):
            b.attemptFailed(at: now)
            self = .grpc(b)
        }
    }

    public mutating func tryRetry(at now: SimInstant) -> Bool {
        switch self {
        case .envoy(var b):
            let result = b.tryRetry(at: now)
            self = .envoy(b)
            return result
        case .finagle(var b):
            let result = b.tryRetry(at: now)
            self = .finagle(b)
            return result
        case .grpc(var b):
            let result = b.tryRetry(at: now)
            self = .grpc(b)
            return result
        }
    }

    public mutating func retryFinished(at now: SimInstant) {
        switch self {
        case .envoy(var b):
            b.retryFinished(at: now)
            self = .envoy(b)
        case .finagle(var b):
            b.retryFinished(at: now)
            self = .finagle(b)
        case .grpc(var b):
            b.retryFinished(at: now)
            self = .grpc(b)
        }
    }

    public mutating func requestFinished(success: Bool, at now: SimInstant) {
        switch self {
        case .envoy(var b):
            b.requestFinished(success: success, at: now)
            self = .envoy(b)
        case .finagle(var b):
            b.requestFinished(success: success, at: now)
            self = .finagle(b)
        case .grpc(var b):
            b.requestFinished(success: success, at: now)
            self = .grpc(b)
        }
    }
}
