//===----------------------------------------------------------------------===//
// meshsim — Health
//===----------------------------------------------------------------------===//

public import SimCore

/// Envoy outlier detection for one cluster: the consecutive-5xx, consecutive-gateway-failure, success-rate and
/// failure-percentage detectors, ejection with back-off, `max_ejection_percent`, and the interval sweep.
///
/// Source: Envoy `source/common/upstream/outlier_detection_impl.cc`,
/// `envoy/config/cluster/v3/outlier_detection.proto` and `docs/root/intro/arch_overview/upstream/outlier.rst`, as
/// the project reference gives them (`algorithms.md` §2.1).
///
/// The caller drives it with two events:
/// - `record(host:result:at:using:)` for every response. The consecutive detectors act at once: when a counter
///   *equals* its threshold an ejection is requested and the counter is reset (unless the host is already ejected).
/// - `sweep(at:using:into:)` every `interval`. It unejects each host whose ejection time has passed (and resets
///   its consecutive counters), decrements the ejection multiplier of every host it finds not ejected, closes the
///   interval's success-rate buckets, and runs the success-rate and failure-percentage detectors over the interval
///   that just ended, leaving out hosts already ejected.
///
/// Every ejection request goes through the same gate, in Envoy's order: first `max_ejection_percent` (refused
/// requests count as overflow), then the detector's enforcing percentage, drawn from the caller's generator
/// (0 % and 100 % draw nothing). Results map as Envoy maps them when local-origin errors are not split: a gateway
/// failure counts as a 503/504, so as a 5xx and a gateway error. Any status outside 500–599 is a success.
///
/// A host stays ejected until a sweep unejects it (or a passing active health check does, when
/// `successful_active_health_check_uneject_host` is set), as in Envoy; `isUsable` does not look at the time.
///
/// Storage is sized once for `hostCount` hosts; `record` and `isUsable` do not allocate.
public struct OutlierDetectorStateMachine: HostHealth {
    /// The configuration the detector runs with.
    public let configuration: OutlierDetectionConfiguration
    private var hosts: [HostState]
    /// The number of hosts currently ejected.
    public private(set) var ejectedHostCount = 0
    /// What the detector has done so far.
    public private(set) var statistics = OutlierDetectionStatistics()
    /// The success-rate ejection threshold computed by the last sweep that ran the external success-rate
    /// detector, or `nil` if none has.
    public private(set) var lastSuccessRateThreshold: Double?

    /// Creates a detector for `hostCount` hosts, all in service.
    ///
    /// - Throws: `PolicyParameterError` (`host_count`) if `hostCount` is negative.
    public init(hostCount: Int, configuration: OutlierDetectionConfiguration) throws {
        try Validate.atLeast(hostCount, 0, "host_count")
        self.configuration = configuration
        self.hosts = [HostState](repeating: HostState(), count: hostCount)
    }

    // MARK: - Queries

    /// The number of hosts the detector covers.
    public var hostCount: Int { hosts.count }

    /// Whether `host` is not ejected (ejection ends only at a sweep, so `now` is not consulted).
    ///
    /// - Complexity: O(1).
    public func isUsable(host: Int, at now: SimInstant) -> Bool {
        hosts.indices.contains(host) && !hosts[host].ejected
    }

    /// Whether `host` is ejected.
    public func isEjected(host: Int) -> Bool {
        hosts.indices.contains(host) && hosts[host].ejected
    }

    /// The instant from which a sweep unejects `host`, or `nil` if it is not ejected.
    public func ejectionEnd(host: Int) -> SimInstant? {
        guard hosts.indices.contains(host), hosts[host].ejected else { return nil }
        return hosts[host].ejectedUntil
    }

    /// The ejection-time multiplier of `host` (Envoy's `ejectTimeBackoff`; with the `.numberOfEjections` back-off,
    /// the number of ejections so far).
    public func ejectionMultiplier(host: Int) -> Int {
        guard hosts.indices.contains(host) else { return 0 }
        switch configuration.ejectionTimeBackoff {
        case .decaying: return hosts[host].multiplier
        case .numberOfEjections: return hosts[host].ejections
        }
    }

    /// How many times `host` has been ejected.
    public func ejectionCount(host: Int) -> Int {
        hosts.indices.contains(host) ? hosts[host].ejections : 0
    }

    /// The success rate in percent of `host` over the last complete interval (HTTP results only when local-origin
    /// errors are split), or `nil` if it had no requests.
    public func successRate(host: Int) -> Double? {
        guard hosts.indices.contains(host), hosts[host].lastExternalTotal > 0 else { return nil }
        return Double(hosts[host].lastExternalSuccess) * 100 / Double(hosts[host].lastExternalTotal)
    }

    /// The success-rate ejection threshold `mean − (stdevFactor / 1000) × stdev` of `rates`, with the population
    /// standard deviation; `nil` for no rates.
    ///
    /// Envoy's worked example: rates {50, 100, 100, 100, 100} with factor 1900 give mean 90, stdev 20 and
    /// threshold 52.
    public static func successRateThreshold(rates: some Collection<Double>, stdevFactor: Int) -> Double? {
        guard !rates.isEmpty else { return nil }
        let n = Double(rates.count)
        let mean = rates.reduce(0, +) / n
        let variance = rates.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n
        return mean - Double(stdevFactor) / 1000 * SimMath.sqrt(variance)
    }

    // MARK: - Per-request events

    /// Records the result of one request to `host` at `now`, and ejects the host if a consecutive-failure
    /// detector fires.
    ///
    /// A 5xx increments the consecutive-5xx counter; a gateway error also increments the gateway counter, while any
    /// other 5xx resets it; anything else resets both. With `split_external_local_origin_errors`, a gateway failure
    /// increments only the local-origin counter, and every other result resets it. The gateway detector is asked
    /// before the 5xx one, as in Envoy.
    ///
    /// - Returns: The ejection if one happened, else the first refused or unenforced detection, else `nil`. A host
    ///   index out of range is ignored.
    /// - Complexity: O(1); does not allocate.
    public mutating func record(
        host: Int,
        result: RequestResult,
        at now: SimInstant,
        using rng: inout some RandomNumberGenerator
    ) -> OutlierEvent? {
        guard hosts.indices.contains(host) else { return nil }
        var gatewayFired = false
        var serverErrorFired = false
        var localOriginFired = false
        if configuration.splitExternalLocalOriginErrors, result == .gatewayFailure {
            hosts[host].localTotal += 1
            hosts[host].consecutiveLocalOrigin += 1
            localOriginFired = hosts[host].consecutiveLocalOrigin == configuration.consecutiveLocalOriginFailure
        } else {
            if configuration.splitExternalLocalOriginErrors {
                // A response means the connection succeeded: a local-origin success.
                hosts[host].localTotal += 1
                hosts[host].localSuccess += 1
                hosts[host].consecutiveLocalOrigin = 0
            }
            hosts[host].externalTotal += 1
            if result.isServerError {
                if result.isGatewayError {
                    hosts[host].consecutiveGateway += 1
                    gatewayFired = hosts[host].consecutiveGateway == configuration.consecutiveGatewayFailure
                } else {
                    hosts[host].consecutiveGateway = 0
                }
                hosts[host].consecutive5xx += 1
                serverErrorFired = hosts[host].consecutive5xx == configuration.consecutive5xx
            } else {
                hosts[host].externalSuccess += 1
                hosts[host].consecutive5xx = 0
                hosts[host].consecutiveGateway = 0
            }
        }
        var event: OutlierEvent?
        if gatewayFired {
            event = Self.merge(event, consecutiveFailure(host, .consecutiveGatewayFailure, now, &rng))
        }
        if serverErrorFired {
            event = Self.merge(event, consecutiveFailure(host, .consecutive5xx, now, &rng))
        }
        if localOriginFired {
            event = Self.merge(event, consecutiveFailure(host, .consecutiveLocalOriginFailure, now, &rng))
        }
        return event
    }

    /// Reports a passing active health check of `host`: with `successful_active_health_check_uneject_host`, an
    /// ejected host is unejected and its counters cleared.
    ///
    /// - Returns: `.unejected` if the host was returned to service.
    /// - Complexity: O(1).
    public mutating func activeHealthCheckPassed(host: Int, at now: SimInstant) -> OutlierEvent? {
        guard configuration.successfulActiveHealthCheckUnejectHost, hosts.indices.contains(host),
            hosts[host].ejected
        else { return nil }
        uneject(host)
        return .unejected(host: host)
    }

    // MARK: - Interval sweep

    /// Runs the interval sweep at `now`, appending what it did to `events` (reserve capacity to avoid allocating).
    ///
    /// Call it every `configuration.interval`. In order: each ejected host whose ejection time has passed is
    /// unejected and its consecutive counters reset, and every host found not ejected has its ejection multiplier
    /// decremented (floor 0); the interval's success-rate counters become "the last interval"; then the
    /// success-rate detector (if at least `success_rate_minimum_hosts` non-ejected hosts had
    /// `success_rate_request_volume` requests) and the failure-percentage detector (likewise with its own minimum
    /// and volume) run on them. A host the success-rate detector ejects is not considered again by the
    /// failure-percentage detector in the same sweep. With split local-origin errors, both detectors then run
    /// again on the local-origin counters.
    ///
    /// - Complexity: O(hosts).
    public mutating func sweep(
        at now: SimInstant,
        using rng: inout some RandomNumberGenerator,
        into events: inout [OutlierEvent]
    ) {
        for host in hosts.indices {
            if hosts[host].ejected {
                if now >= hosts[host].ejectedUntil {
                    uneject(host)
                    events.append(.unejected(host: host))
                }
            } else if configuration.ejectionTimeBackoff == .decaying, hosts[host].multiplier > 0 {
                hosts[host].multiplier -= 1
            }
            hosts[host].closeInterval()
        }
        runRateDetectors(localOrigin: false, now: now, rng: &rng, events: &events)
        if configuration.splitExternalLocalOriginErrors {
            runRateDetectors(localOrigin: true, now: now, rng: &rng, events: &events)
        }
    }

    /// Runs the interval sweep at `now` and returns what it did.
    ///
    /// - Complexity: O(hosts).
    public mutating func sweep(at now: SimInstant, using rng: inout some RandomNumberGenerator) -> [OutlierEvent] {
        var events: [OutlierEvent] = []
        sweep(at: now, using: &rng, into: &events)
        return events
    }

    // MARK: - Internals

    private mutating func runRateDetectors(
        localOrigin: Bool,
        now: SimInstant,
        rng: inout some RandomNumberGenerator,
        events: inout [OutlierEvent]
    ) {
        let srVolume = configuration.successRateRequestVolume
        let fpVolume = configuration.failurePercentageRequestVolume
        var srHosts = 0
        var fpHosts = 0
        var srSum = 0.0
        for host in hosts.indices where !hosts[host].ejected {
            let (total, rate) = hosts[host].lastInterval(localOrigin: localOrigin)
            if total >= srVolume {
                srHosts += 1
                srSum += rate
            }
            if total >= fpVolume { fpHosts += 1 }
        }

        if srHosts > 0, srHosts >= configuration.successRateMinimumHosts {
            let mean = srSum / Double(srHosts)
            var squares = 0.0
            for host in hosts.indices where !hosts[host].ejected {
                let (total, rate) = hosts[host].lastInterval(localOrigin: localOrigin)
                if total >= srVolume { squares += (rate - mean) * (rate - mean) }
            }
            let stdev = SimMath.sqrt(squares / Double(srHosts))
            let threshold = mean - Double(configuration.successRateStdevFactor) / 1000 * stdev
            if !localOrigin { lastSuccessRateThreshold = threshold }
            let reason: OutlierEjectionReason = localOrigin ? .successRateLocalOrigin : .successRate
            for host in hosts.indices where !hosts[host].ejected {
                let (total, rate) = hosts[host].lastInterval(localOrigin: localOrigin)
                if total >= srVolume, rate < threshold {
                    statistics.detected[reason] += 1
                    events.append(requestEjection(host, reason, now, &rng))
                }
            }
        }

        if fpHosts > 0, fpHosts >= configuration.failurePercentageMinimumHosts {
            let threshold = Double(configuration.failurePercentageThreshold)
            let reason: OutlierEjectionReason = localOrigin ? .failurePercentageLocalOrigin : .failurePercentage
            for host in hosts.indices where !hosts[host].ejected {
                let (total, rate) = hosts[host].lastInterval(localOrigin: localOrigin)
                if total >= fpVolume, 100 - rate >= threshold {
                    statistics.detected[reason] += 1
                    events.append(requestEjection(host, reason, now, &rng))
                }
            }
        }
    }

    /// A consecutive-failure detector fired: if the host is not already ejected, request an ejection and reset
    /// the detector's counter.
    private mutating func consecutiveFailure(
        _ host: Int,
        _ reason: OutlierEjectionReason,
        _ now: SimInstant,
        _ rng: inout some RandomNumberGenerator
    ) -> OutlierEvent? {
        guard !hosts[host].ejected else { return nil }
        statistics.detected[reason] += 1
        let event = requestEjection(host, reason, now, &rng)
        switch reason {
        case .consecutive5xx: hosts[host].consecutive5xx = 0
        case .consecutiveGatewayFailure: hosts[host].consecutiveGateway = 0
        case .consecutiveLocalOriginFailure: hosts[host].consecutiveLocalOrigin = 0
        default: break
        }
        return event
    }

    /// The gate every ejection request goes through: `max_ejection_percent`, then the enforcing draw.
    private mutating func requestEjection(
        _ host: Int,
        _ reason: OutlierEjectionReason,
        _ now: SimInstant,
        _ rng: inout some RandomNumberGenerator
    ) -> OutlierEvent {
        guard ejectionAllowed() else {
            statistics.overflow += 1
            return .overflow(host: host, reason: reason)
        }
        guard enforce(percent: enforcingPercent(reason), using: &rng) else {
            return .notEnforced(host: host, reason: reason)
        }
        let until = eject(host, now, &rng)
        statistics.enforced[reason] += 1
        return .ejected(host: host, reason: reason, until: until)
    }

    private func ejectionAllowed() -> Bool {
        let active = ejectedHostCount
        let limit = configuration.maxEjectionPercent * hosts.count
        if configuration.alwaysEjectOneHost, active == 0 { return true }
        switch configuration.ejectionPercentRule {
        case .current: return 100 * (active + 1) <= limit
        case .legacy: return 100 * active < limit
        }
    }

    private func enforcingPercent(_ reason: OutlierEjectionReason) -> Int {
        switch reason {
        case .consecutive5xx: return configuration.enforcingConsecutive5xx
        case .consecutiveGatewayFailure: return configuration.enforcingConsecutiveGatewayFailure
        case .consecutiveLocalOriginFailure: return configuration.enforcingConsecutiveLocalOriginFailure
        case .successRate: return configuration.enforcingSuccessRate
        case .failurePercentage: return configuration.enforcingFailurePercentage
        case .successRateLocalOrigin: return configuration.enforcingLocalOriginSuccessRate
        case .failurePercentageLocalOrigin: return configuration.enforcingFailurePercentageLocalOrigin
        }
    }

    /// Ejects `host` at `now` and returns the instant from which a sweep unejects it.
    private mutating func eject(_ host: Int, _ now: SimInstant, _ rng: inout some RandomNumberGenerator) -> SimInstant {
        let base = configuration.baseEjectionTime.nanoseconds
        let maximum = configuration.maxEjectionTime.nanoseconds
        hosts[host].ejected = true
        hosts[host].ejections += 1
        var duration: Int64
        switch configuration.ejectionTimeBackoff {
        case .decaying:
            if Int64(hosts[host].multiplier) * base < maximum + base { hosts[host].multiplier += 1 }
            duration = min(base * Int64(hosts[host].multiplier), maximum)
        case .numberOfEjections:
            let (product, overflow) = base.multipliedReportingOverflow(by: Int64(hosts[host].ejections))
            let longest = SimInstant.distantFuture.nanoseconds
            duration = overflow ? longest : min(product, longest)
        }
        let jitter = configuration.maxEjectionTimeJitter.nanoseconds
        if jitter > 0 {
            duration += Int64(uniformBelow(UInt64(jitter) + 1, using: &rng))
        }
        let until = now + SimDuration(nanoseconds: duration)
        hosts[host].ejectedUntil = until
        ejectedHostCount += 1
        return until
    }

    private mutating func uneject(_ host: Int) {
        hosts[host].ejected = false
        hosts[host].consecutive5xx = 0
        hosts[host].consecutiveGateway = 0
        hosts[host].consecutiveLocalOrigin = 0
        ejectedHostCount -= 1
    }

    /// Prefers an ejection over a refused or unenforced detection, else keeps the first event.
    private static func merge(_ current: OutlierEvent?, _ new: OutlierEvent?) -> OutlierEvent? {
        guard let current else { return new }
        if case .ejected = current { return current }
        if let new, case .ejected = new { return new }
        return current
    }
}

/// The per-host counters and ejection state of `OutlierDetectorStateMachine`.
private struct HostState: Sendable {
    var consecutive5xx = 0
    var consecutiveGateway = 0
    var consecutiveLocalOrigin = 0
    // Success-rate counters of the current interval, and of the last complete one.
    var externalTotal = 0
    var externalSuccess = 0
    var localTotal = 0
    var localSuccess = 0
    var lastExternalTotal = 0
    var lastExternalSuccess = 0
    var lastLocalTotal = 0
    var lastLocalSuccess = 0
    // Ejection.
    var ejected = false
    var ejectedUntil = SimInstant.zero
    var multiplier = 0
    var ejections = 0

    /// Makes the current interval's counters the last interval's, and starts a new interval.
    mutating func closeInterval() {
        lastExternalTotal = externalTotal
        lastExternalSuccess = externalSuccess
        lastLocalTotal = localTotal
        lastLocalSuccess = localSuccess
        externalTotal = 0
        externalSuccess = 0
        localTotal = 0
        localSuccess = 0
    }

    /// The request count and success rate (percent; 0 with no requests) of the last complete interval.
    func lastInterval(localOrigin: Bool) -> (total: Int, rate: Double) {
        let total = localOrigin ? lastLocalTotal : lastExternalTotal
        let success = localOrigin ? lastLocalSuccess : lastExternalSuccess
        return (total, total > 0 ? Double(success) * 100 / Double(total) : 0)
    }
}
