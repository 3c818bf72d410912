//===----------------------------------------------------------------------===//
// meshsim — Health
//===----------------------------------------------------------------------===//

public import SimCore

/// A per-host health state a balancer can ask, cheaply, whether a host may receive traffic.
///
/// Hosts are numbered `0..<hostCount`, in the order of the service's endpoints.
///
/// ## Implementation requirements
/// `isUsable(host:at:)` must be O(1), must not allocate, and must return `false` for a host index out of range.
public protocol HostHealth: Sendable {
    /// The number of hosts the state covers.
    var hostCount: Int { get }

    /// Whether host `host` may receive traffic at `now`.
    ///
    /// - Complexity: O(1).
    func isUsable(host: Int, at now: SimInstant) -> Bool
}

/// The result of one active health check, as the caller reports it.
public enum CheckResult: Sendable, Equatable {
    /// The check got a passing response after `responseTime`; slower than the configured timeout, it counts as
    /// a timeout.
    case passed(responseTime: SimDuration)
    /// The check got a failing response (or the connection failed).
    case failed
    /// The check got no response within its timeout.
    case timedOut
}

/// A change of a host between usable and unusable.
public enum HealthTransition: Sendable, Equatable {
    /// The host became usable.
    case becameHealthy(host: Int)
    /// The host became unusable.
    case becameUnhealthy(host: Int)
}
