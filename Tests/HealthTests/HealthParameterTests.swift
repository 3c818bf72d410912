import Health
import SimCore
import Testing

@Suite("Health parameter validation")
struct HealthParameterTests {
    static func expectParameter(_ name: String, _ body: () throws -> Void) {
        let error = #expect(throws: PolicyParameterError.self) { try body() }
        #expect(error?.parameter == name)
    }

    @Test("outlier detection rejects impossible values, naming the field")
    func outlierDetection() {
        Self.expectParameter("interval") { _ = try OutlierDetectionConfiguration(interval: .zero) }
        Self.expectParameter("base_ejection_time") {
            _ = try OutlierDetectionConfiguration(baseEjectionTime: .seconds(-1))
        }
        Self.expectParameter("max_ejection_time") {
            _ = try OutlierDetectionConfiguration(baseEjectionTime: .seconds(30), maxEjectionTime: .seconds(10))
        }
        Self.expectParameter("max_ejection_time_jitter") {
            _ = try OutlierDetectionConfiguration(maxEjectionTimeJitter: .nanoseconds(-1))
        }
        Self.expectParameter("max_ejection_percent") { _ = try OutlierDetectionConfiguration(maxEjectionPercent: 101) }
        Self.expectParameter("consecutive_5xx") { _ = try OutlierDetectionConfiguration(consecutive5xx: 0) }
        Self.expectParameter("enforcing_consecutive_5xx") {
            _ = try OutlierDetectionConfiguration(enforcingConsecutive5xx: -1)
        }
        Self.expectParameter("consecutive_gateway_failure") {
            _ = try OutlierDetectionConfiguration(consecutiveGatewayFailure: 0)
        }
        Self.expectParameter("success_rate_minimum_hosts") {
            _ = try OutlierDetectionConfiguration(successRateMinimumHosts: 0)
        }
        Self.expectParameter("success_rate_request_volume") {
            _ = try OutlierDetectionConfiguration(successRateRequestVolume: 0)
        }
        Self.expectParameter("success_rate_stdev_factor") {
            _ = try OutlierDetectionConfiguration(successRateStdevFactor: -1)
        }
        Self.expectParameter("failure_percentage_threshold") {
            _ = try OutlierDetectionConfiguration(failurePercentageThreshold: 200)
        }
        Self.expectParameter("enforcing_failure_percentage") {
            _ = try OutlierDetectionConfiguration(enforcingFailurePercentage: 101)
        }
        Self.expectParameter("host_count") {
            _ = try OutlierDetectorStateMachine(hostCount: -1, configuration: OutlierDetectionConfiguration())
        }
    }

    @Test("outlier detection defaults are Envoy's")
    func outlierDefaults() throws {
        let c = try OutlierDetectionConfiguration()
        #expect(c.interval == .seconds(10))
        #expect(c.baseEjectionTime == .seconds(30))
        #expect(c.maxEjectionTime == .seconds(300))
        #expect(c.maxEjectionTimeJitter == .zero)
        #expect(c.maxEjectionPercent == 10)
        #expect(!c.alwaysEjectOneHost)
        #expect(c.consecutive5xx == 5 && c.enforcingConsecutive5xx == 100)
        #expect(c.consecutiveGatewayFailure == 5 && c.enforcingConsecutiveGatewayFailure == 0)
        #expect(c.consecutiveLocalOriginFailure == 5 && c.enforcingConsecutiveLocalOriginFailure == 100)
        #expect(c.successRateMinimumHosts == 5 && c.successRateRequestVolume == 100)
        #expect(c.successRateStdevFactor == 1900 && c.enforcingSuccessRate == 100)
        #expect(c.failurePercentageThreshold == 85 && c.enforcingFailurePercentage == 0)
        #expect(c.failurePercentageMinimumHosts == 5 && c.failurePercentageRequestVolume == 50)
        // max_ejection_time defaults to base_ejection_time when that is larger than 300 s.
        #expect(try OutlierDetectionConfiguration(baseEjectionTime: .seconds(400)).maxEjectionTime == .seconds(400))
    }

    @Test("active checks, nginx and HAProxy reject impossible values, naming the parameter")
    func others() {
        Self.expectParameter("interval") {
            _ = try ActiveHealthCheckConfiguration(
                interval: .zero,
                timeout: .seconds(1),
                unhealthyThreshold: 1,
                healthyThreshold: 1
            )
        }
        Self.expectParameter("timeout") {
            _ = try ActiveHealthCheckConfiguration(
                interval: .seconds(1),
                timeout: .seconds(-1),
                unhealthyThreshold: 1,
                healthyThreshold: 1
            )
        }
        Self.expectParameter("unhealthy_threshold") {
            _ = try ActiveHealthCheckConfiguration(
                interval: .seconds(1),
                timeout: .seconds(1),
                unhealthyThreshold: 0,
                healthyThreshold: 1
            )
        }
        Self.expectParameter("healthy_threshold") {
            _ = try ActiveHealthCheckConfiguration(
                interval: .seconds(1),
                timeout: .seconds(1),
                unhealthyThreshold: 1,
                healthyThreshold: 0
            )
        }
        Self.expectParameter("max_fails") { _ = try NginxPassiveHealthConfiguration(maxFails: -1) }
        Self.expectParameter("fail_timeout") { _ = try NginxPassiveHealthConfiguration(failTimeout: .seconds(-10)) }
        Self.expectParameter("inter") { _ = try HAProxyServerHealthConfiguration(inter: .zero) }
        Self.expectParameter("fastinter") { _ = try HAProxyServerHealthConfiguration(fastinter: .zero) }
        Self.expectParameter("downinter") { _ = try HAProxyServerHealthConfiguration(downinter: .seconds(-1)) }
        Self.expectParameter("fall") { _ = try HAProxyServerHealthConfiguration(fall: 0) }
        Self.expectParameter("rise") { _ = try HAProxyServerHealthConfiguration(rise: 0) }
        Self.expectParameter("error_limit") { _ = try HAProxyServerHealthConfiguration(errorLimit: 0) }
        Self.expectParameter("host_count") {
            _ = try NginxPassiveHealthStateMachine(hostCount: -3, configuration: NginxPassiveHealthConfiguration())
        }
    }
}
