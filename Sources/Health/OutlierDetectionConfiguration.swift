//===----------------------------------------------------------------------===//
// meshsim — Health
//===----------------------------------------------------------------------===//

public import SimCore

/// The settings of Envoy outlier detection, with Envoy's defaults, validated at creation.
///
/// Source: Envoy `envoy/config/cluster/v3/outlier_detection.proto`,
/// `docs/root/intro/arch_overview/upstream/outlier.rst` and `source/common/upstream/outlier_detection_impl.cc`, as
/// summarized in the project reference (`algorithms.md` §2.1). Parameter names in errors are the proto's snake_case
/// field names.
public struct OutlierDetectionConfiguration: Sendable, Equatable {
    /// How `max_ejection_percent` is compared before an ejection.
    public enum EjectionPercentRule: Sendable, Equatable {
        /// Current Envoy (PR #27909): eject only if `100 × (active + 1) / hosts ≤ max_ejection_percent`.
        case current
        /// Envoy before PR #27909: eject if `100 × active / hosts < max_ejection_percent`, so the first host is
        /// always ejectable while the percentage is above 0.
        case legacy
    }

    /// How the ejection time grows with repeated ejections.
    public enum EjectionTimeBackoff: Sendable, Equatable {
        /// Current Envoy: `min(base_ejection_time × multiplier, max_ejection_time)`; the multiplier grows by one at
        /// each ejection while `multiplier × base < max + base`, and drops by one at each interval sweep that finds
        /// the host not ejected (floor 0).
        case decaying
        /// Older Envoy: `base_ejection_time × number of ejections so far`, never decaying; `max_ejection_time` does
        /// not cap it.
        case numberOfEjections
    }

    /// The period of the sweep that unejects hosts and runs the success-rate and failure-percentage detectors
    /// (`interval`, default 10 s).
    public let interval: SimDuration
    /// The ejection time of a first ejection (`base_ejection_time`, default 30 s).
    public let baseEjectionTime: SimDuration
    /// The longest ejection time (`max_ejection_time`, default 300 s or `base_ejection_time` if that is larger).
    public let maxEjectionTime: SimDuration
    /// The upper bound of the uniform random time added to each ejection (`max_ejection_time_jitter`, default 0).
    public let maxEjectionTimeJitter: SimDuration
    /// The largest percentage of hosts that may be ejected at once (`max_ejection_percent`, default 10).
    public let maxEjectionPercent: Int
    /// Whether one host may always be ejected whatever `max_ejection_percent` says (`always_eject_one_host`,
    /// default false).
    public let alwaysEjectOneHost: Bool
    /// Which comparison `max_ejection_percent` uses (default `.current`).
    public let ejectionPercentRule: EjectionPercentRule
    /// How repeated ejections lengthen the ejection time (default `.decaying`).
    public let ejectionTimeBackoff: EjectionTimeBackoff

    /// Consecutive 5xx results that trigger an ejection (`consecutive_5xx`, default 5).
    public let consecutive5xx: Int
    /// The percentage of consecutive-5xx detections that are enforced (`enforcing_consecutive_5xx`, default 100).
    public let enforcingConsecutive5xx: Int
    /// Consecutive gateway errors (502, 503, 504, local-origin failures) that trigger an ejection
    /// (`consecutive_gateway_failure`, default 5).
    public let consecutiveGatewayFailure: Int
    /// The percentage of consecutive-gateway-failure detections that are enforced
    /// (`enforcing_consecutive_gateway_failure`, default 0: detected, not enforced).
    public let enforcingConsecutiveGatewayFailure: Int

    /// Whether local-origin failures (gateway failures without a response) are counted apart from HTTP results
    /// (`split_external_local_origin_errors`, default false).
    public let splitExternalLocalOriginErrors: Bool
    /// Consecutive local-origin failures that trigger an ejection when split (`consecutive_local_origin_failure`,
    /// default 5).
    public let consecutiveLocalOriginFailure: Int
    /// The percentage of consecutive-local-origin-failure detections that are enforced
    /// (`enforcing_consecutive_local_origin_failure`, default 100).
    public let enforcingConsecutiveLocalOriginFailure: Int

    /// The percentage of success-rate detections that are enforced (`enforcing_success_rate`, default 100).
    public let enforcingSuccessRate: Int
    /// The fewest hosts with enough requests for the success-rate detector to run (`success_rate_minimum_hosts`,
    /// default 5).
    public let successRateMinimumHosts: Int
    /// The fewest requests in an interval for a host to take part in the success-rate detector
    /// (`success_rate_request_volume`, default 100).
    public let successRateRequestVolume: Int
    /// The standard-deviation factor × 1000 of the success-rate threshold (`success_rate_stdev_factor`, default
    /// 1900, i.e. 1.9).
    public let successRateStdevFactor: Int

    /// The failure percentage at or above which a host is ejected (`failure_percentage_threshold`, default 85).
    public let failurePercentageThreshold: Int
    /// The percentage of failure-percentage detections that are enforced (`enforcing_failure_percentage`,
    /// default 0).
    public let enforcingFailurePercentage: Int
    /// The fewest hosts with enough requests for the failure-percentage detector to run
    /// (`failure_percentage_minimum_hosts`, default 5).
    public let failurePercentageMinimumHosts: Int
    /// The fewest requests in an interval for a host to take part in the failure-percentage detector
    /// (`failure_percentage_request_volume`, default 50).
    public let failurePercentageRequestVolume: Int

    /// The percentage of local-origin success-rate detections that are enforced when split
    /// (`enforcing_local_origin_success_rate`; default 100, like `enforcing_success_rate`).
    public let enforcingLocalOriginSuccessRate: Int
    /// The percentage of local-origin failure-percentage detections that are enforced when split
    /// (`enforcing_failure_percentage_local_origin`; default 0, like `enforcing_failure_percentage`).
    public let enforcingFailurePercentageLocalOrigin: Int

    /// Whether a passing active health check unejects the host and clears its counters
    /// (`successful_active_health_check_uneject_host`, default true).
    public let successfulActiveHealthCheckUnejectHost: Bool

    /// Creates a configuration; every argument defaults to Envoy's default.
    ///
    /// - Parameter maxEjectionTime: `nil` means Envoy's default, 300 s or `baseEjectionTime` if that is larger.
    /// - Throws: `PolicyParameterError` naming the field, for a non-positive `interval` or `base_ejection_time`, a
    ///   negative jitter, a `max_ejection_time` below `base_ejection_time`, a percentage outside [0, 100], a
    ///   consecutive-failure threshold, minimum host count or request volume below 1, or a negative stdev factor.
    public init(
        interval: SimDuration = .seconds(10),
        baseEjectionTime: SimDuration = .seconds(30),
        maxEjectionTime: SimDuration? = nil,
        maxEjectionTimeJitter: SimDuration = .zero,
        maxEjectionPercent: Int = 10,
        alwaysEjectOneHost: Bool = false,
        ejectionPercentRule: EjectionPercentRule = .current,
        ejectionTimeBackoff: EjectionTimeBackoff = .decaying,
        consecutive5xx: Int = 5,
        enforcingConsecutive5xx: Int = 100,
        consecutiveGatewayFailure: Int = 5,
        enforcingConsecutiveGatewayFailure: Int = 0,
        splitExternalLocalOriginErrors: Bool = false,
        consecutiveLocalOriginFailure: Int = 5,
        enforcingConsecutiveLocalOriginFailure: Int = 100,
        enforcingSuccessRate: Int = 100,
        successRateMinimumHosts: Int = 5,
        successRateRequestVolume: Int = 100,
        successRateStdevFactor: Int = 1900,
        failurePercentageThreshold: Int = 85,
        enforcingFailurePercentage: Int = 0,
        failurePercentageMinimumHosts: Int = 5,
        failurePercentageRequestVolume: Int = 50,
        enforcingLocalOriginSuccessRate: Int = 100,
        enforcingFailurePercentageLocalOrigin: Int = 0,
        successfulActiveHealthCheckUnejectHost: Bool = true
    ) throws {
        try Validate.positive(interval, "interval")
        try Validate.positive(baseEjectionTime, "base_ejection_time")
        try Validate.nonNegative(maxEjectionTimeJitter, "max_ejection_time_jitter")
        let resolvedMax = maxEjectionTime ?? max(.seconds(300), baseEjectionTime)
        if resolvedMax < baseEjectionTime {
            throw PolicyParameterError(
                "max_ejection_time",
                "must not be shorter than base_ejection_time (\(baseEjectionTime.formatted)), "
                    + "got \(resolvedMax.formatted)"
            )
        }
        try Validate.percent(maxEjectionPercent, "max_ejection_percent")
        try Validate.atLeast(consecutive5xx, 1, "consecutive_5xx")
        try Validate.percent(enforcingConsecutive5xx, "enforcing_consecutive_5xx")
        try Validate.atLeast(consecutiveGatewayFailure, 1, "consecutive_gateway_failure")
        try Validate.percent(enforcingConsecutiveGatewayFailure, "enforcing_consecutive_gateway_failure")
        try Validate.atLeast(consecutiveLocalOriginFailure, 1, "consecutive_local_origin_failure")
        try Validate.percent(enforcingConsecutiveLocalOriginFailure, "enforcing_consecutive_local_origin_failure")
        try Validate.percent(enforcingSuccessRate, "enforcing_success_rate")
        try Validate.atLeast(successRateMinimumHosts, 1, "success_rate_minimum_hosts")
        try Validate.atLeast(successRateRequestVolume, 1, "success_rate_request_volume")
        try Validate.atLeast(successRateStdevFactor, 0, "success_rate_stdev_factor")
        try Validate.percent(failurePercentageThreshold, "failure_percentage_threshold")
        try Validate.percent(enforcingFailurePercentage, "enforcing_failure_percentage")
        try Validate.atLeast(failurePercentageMinimumHosts, 1, "failure_percentage_minimum_hosts")
        try Validate.atLeast(failurePercentageRequestVolume, 1, "failure_percentage_request_volume")
        try Validate.percent(enforcingLocalOriginSuccessRate, "enforcing_local_origin_success_rate")
        try Validate.percent(enforcingFailurePercentageLocalOrigin, "enforcing_failure_percentage_local_origin")

        self.interval = interval
        self.baseEjectionTime = baseEjectionTime
        self.maxEjectionTime = resolvedMax
        self.maxEjectionTimeJitter = maxEjectionTimeJitter
        self.maxEjectionPercent = maxEjectionPercent
        self.alwaysEjectOneHost = alwaysEjectOneHost
        self.ejectionPercentRule = ejectionPercentRule
        self.ejectionTimeBackoff = ejectionTimeBackoff
        self.consecutive5xx = consecutive5xx
        self.enforcingConsecutive5xx = enforcingConsecutive5xx
        self.consecutiveGatewayFailure = consecutiveGatewayFailure
        self.enforcingConsecutiveGatewayFailure = enforcingConsecutiveGatewayFailure
        self.splitExternalLocalOriginErrors = splitExternalLocalOriginErrors
        self.consecutiveLocalOriginFailure = consecutiveLocalOriginFailure
        self.enforcingConsecutiveLocalOriginFailure = enforcingConsecutiveLocalOriginFailure
        self.enforcingSuccessRate = enforcingSuccessRate
        self.successRateMinimumHosts = successRateMinimumHosts
        self.successRateRequestVolume = successRateRequestVolume
        self.successRateStdevFactor = successRateStdevFactor
        self.failurePercentageThreshold = failurePercentageThreshold
        self.enforcingFailurePercentage = enforcingFailurePercentage
        self.failurePercentageMinimumHosts = failurePercentageMinimumHosts
        self.failurePercentageRequestVolume = failurePercentageRequestVolume
        self.enforcingLocalOriginSuccessRate = enforcingLocalOriginSuccessRate
        self.enforcingFailurePercentageLocalOrigin = enforcingFailurePercentageLocalOrigin
        self.successfulActiveHealthCheckUnejectHost = successfulActiveHealthCheckUnejectHost
    }
}
