//===----------------------------------------------------------------------===//
// meshsim — Health
//===----------------------------------------------------------------------===//

public import SimCore

/// The detector that found a host to be an outlier.
///
/// Source: Envoy `envoy/data/cluster/v3/outlier_detection_event.proto` ejection types, as listed in the project
/// reference (`algorithms.md` §2.1).
public enum OutlierEjectionReason: Int, Sendable, Equatable, CaseIterable {
    /// `consecutive_5xx` consecutive 5xx results.
    case consecutive5xx
    /// `consecutive_gateway_failure` consecutive gateway errors.
    case consecutiveGatewayFailure
    /// `consecutive_local_origin_failure` consecutive local-origin failures (split mode only).
    case consecutiveLocalOriginFailure
    /// A success rate below the success-rate threshold of the last interval.
    case successRate
    /// A failure percentage at or above `failure_percentage_threshold` in the last interval.
    case failurePercentage
    /// A local-origin success rate below its threshold (split mode only).
    case successRateLocalOrigin
    /// A local-origin failure percentage at or above the threshold (split mode only).
    case failurePercentageLocalOrigin
}

/// Something outlier detection did to one host.
public enum OutlierEvent: Sendable, Equatable {
    /// The host was ejected; the first interval sweep at or after `until` unejects it.
    case ejected(host: Int, reason: OutlierEjectionReason, until: SimInstant)
    /// The host was returned to service (by a sweep, or by a passing active health check).
    case unejected(host: Int)
    /// An outlier was detected but the enforcing percentage's draw said not to eject it (Envoy only logs it).
    case notEnforced(host: Int, reason: OutlierEjectionReason)
    /// An outlier was detected but ejecting it would exceed `max_ejection_percent` (`ejections_overflow`).
    case overflow(host: Int, reason: OutlierEjectionReason)

    /// The host the event is about.
    public var host: Int {
        switch self {
        case .ejected(let host, _, _), .unejected(let host), .notEnforced(let host, _), .overflow(let host, _):
            return host
        }
    }
}

/// One counter per ejection reason.
public struct OutlierReasonCounts: Sendable, Equatable {
    private var consecutive5xx = 0
    private var consecutiveGatewayFailure = 0
    private var consecutiveLocalOriginFailure = 0
    private var successRate = 0
    private var failurePercentage = 0
    private var successRateLocalOrigin = 0
    private var failurePercentageLocalOrigin = 0

    /// Creates counters at zero.
    public init() {}

    /// The count for `reason`.
    public internal(set) subscript(reason: OutlierEjectionReason) -> Int {
        get {
            switch reason {
            case .consecutive5xx: return consecutive5xx
            case .consecutiveGatewayFailure: return consecutiveGatewayFailure
            case .consecutiveLocalOriginFailure: return consecutiveLocalOriginFailure
            case .successRate: return successRate
            case .failurePercentage: return failurePercentage
            case .successRateLocalOrigin: return successRateLocalOrigin
            case .failurePercentageLocalOrigin: return failurePercentageLocalOrigin
            }
        }
        set {
            switch reason {
            case .consecutive5xx: consecutive5xx = newValue
            case .consecutiveGatewayFailure: consecutiveGatewayFailure = newValue
            case .consecutiveLocalOriginFailure: consecutiveLocalOriginFailure = newValue
            case .successRate: successRate = newValue
            case .failurePercentage: failurePercentage = newValue
            case .successRateLocalOrigin: successRateLocalOrigin = newValue
            case .failurePercentageLocalOrigin: failurePercentageLocalOrigin = newValue
            }
        }
    }

    /// The sum over all reasons.
    public var total: Int {
        consecutive5xx + consecutiveGatewayFailure + consecutiveLocalOriginFailure + successRate + failurePercentage
            + successRateLocalOrigin + failurePercentageLocalOrigin
    }
}

/// Counters of what outlier detection did, after Envoy's `outlier_detection.ejections_*` statistics.
public struct OutlierDetectionStatistics: Sendable, Equatable {
    /// Outliers detected, per reason (`ejections_detected_*`), enforced or not.
    public internal(set) var detected = OutlierReasonCounts()
    /// Ejections carried out, per reason (`ejections_enforced_*`).
    public internal(set) var enforced = OutlierReasonCounts()
    /// Detections refused by `max_ejection_percent` (`ejections_overflow`).
    public internal(set) var overflow = 0

    /// Creates statistics at zero.
    public init() {}
}
