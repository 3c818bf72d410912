//===----------------------------------------------------------------------===//
// meshsim — Health
//===----------------------------------------------------------------------===//

public import SimCore

/// The settings of threshold-based active health checking, validated at creation.
///
/// Source: Envoy `envoy/config/core/v3/health_check.proto` fields `interval`, `timeout`, `unhealthy_threshold` and
/// `healthy_threshold` (Envoy requires all four, so none has a default here). HAProxy's `inter`, `fall` and
/// `rise` play the same roles (`loadgen-and-proxies.md` §5.2); see `HAProxyServerHealthStateMachine` for HAProxy's
/// own health counter.
public struct ActiveHealthCheckConfiguration: Sendable, Equatable {
    /// The time between the end of one check and the start of the next (`interval`).
    public let interval: SimDuration
    /// The longest a check may take before it counts as failed (`timeout`).
    public let timeout: SimDuration
    /// Consecutive failed checks that make a healthy host unhealthy (`unhealthy_threshold`).
    public let unhealthyThreshold: Int
    /// Consecutive passed checks that make an unhealthy host healthy (`healthy_threshold`).
    public let healthyThreshold: Int
    /// Whether hosts start healthy (before their first check).
    public let initiallyHealthy: Bool

    /// Creates a configuration.
    ///
    /// - Throws: `PolicyParameterError` for a non-positive `interval` or `timeout`, or a threshold below 1.
    public init(
        interval: SimDuration,
        timeout: SimDuration,
        unhealthyThreshold: Int,
        healthyThreshold: Int,
        initiallyHealthy: Bool = true
    ) throws {
        try Validate.positive(interval, "interval")
        try Validate.positive(timeout, "timeout")
        try Validate.atLeast(unhealthyThreshold, 1, "unhealthy_threshold")
        try Validate.atLeast(healthyThreshold, 1, "healthy_threshold")
        self.interval = interval
        self.timeout = timeout
        self.unhealthyThreshold = unhealthyThreshold
        self.healthyThreshold = healthyThreshold
        self.initiallyHealthy = initiallyHealthy
    }
}

/// Active health checking of each host: `unhealthy_threshold` consecutive failures mark a healthy host unhealthy,
/// `healthy_threshold` consecutive passes mark an unhealthy host healthy.
///
/// Source: Envoy `envoy/config/core/v3/health_check.proto` (`interval`, `timeout`, `unhealthy_threshold`,
/// `healthy_threshold`); the project reference mentions active checks in `algorithms.md` §2.1 (a passing check
/// unejects an outlier, see `OutlierDetectorStateMachine.activeHealthCheckPassed(host:at:)`).
///
/// The caller runs the checks: it starts one when `nextCheckDue(host:)` arrives, gives up at
/// `checkDeadline(startedAt:)`, and reports each result with `record(host:check:at:)`. A pass slower than
/// `timeout` counts as a timeout, and a timeout counts as a failure.
public struct ActiveHealthCheckStateMachine: HostHealth {
    /// The configuration the checker runs with.
    public let configuration: ActiveHealthCheckConfiguration
    private var healthy: [Bool]
    private var streak: [Int]
    private var nextDue: [SimInstant]

    /// Creates a checker for `hostCount` hosts, each due for a check at `start`.
    ///
    /// - Throws: `PolicyParameterError` (`host_count`) if `hostCount` is negative.
    public init(hostCount: Int, configuration: ActiveHealthCheckConfiguration, start: SimInstant = .zero) throws {
        try Validate.atLeast(hostCount, 0, "host_count")
        self.configuration = configuration
        self.healthy = [Bool](repeating: configuration.initiallyHealthy, count: hostCount)
        self.streak = [Int](repeating: 0, count: hostCount)
        self.nextDue = [SimInstant](repeating: start, count: hostCount)
    }

    /// The number of hosts checked.
    public var hostCount: Int { healthy.count }

    /// Whether `host` is healthy (state changes only when a check result is recorded).
    ///
    /// - Complexity: O(1).
    public func isUsable(host: Int, at now: SimInstant) -> Bool {
        healthy.indices.contains(host) && healthy[host]
    }

    /// The instant the next check of `host` is due: `interval` after the last recorded result.
    public func nextCheckDue(host: Int) -> SimInstant {
        nextDue.indices.contains(host) ? nextDue[host] : .distantFuture
    }

    /// The instant a check started at `start` times out.
    public func checkDeadline(startedAt start: SimInstant) -> SimInstant {
        start + configuration.timeout
    }

    /// Records the result of a check of `host` that ended at `now`.
    ///
    /// A result opposite to the host's state extends the streak; one matching it resets the streak. A host index
    /// out of range is ignored.
    ///
    /// - Returns: The transition, if the result crossed a threshold.
    /// - Complexity: O(1).
    public mutating func record(host: Int, check: CheckResult, at now: SimInstant) -> HealthTransition? {
        guard healthy.indices.contains(host) else { return nil }
        nextDue[host] = now + configuration.interval
        let passed: Bool
        switch check {
        case .passed(let responseTime): passed = responseTime <= configuration.timeout
        case .failed, .timedOut: passed = false
        }
        if passed == healthy[host] {
            streak[host] = 0
            return nil
        }
        streak[host] += 1
        let threshold = healthy[host] ? configuration.unhealthyThreshold : configuration.healthyThreshold
        guard streak[host] >= threshold else { return nil }
        streak[host] = 0
        healthy[host] = passed
        return passed ? .becameHealthy(host: host) : .becameUnhealthy(host: host)
    }
}
