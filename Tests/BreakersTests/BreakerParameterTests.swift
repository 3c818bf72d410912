import Breakers
import SimCore
import Testing

@Suite("Breaker parameter validation")
struct BreakerParameterTests {
    static func expectParameter(_ name: String, _ body: () throws -> Void) {
        let error = #expect(throws: PolicyParameterError.self) { try body() }
        #expect(error?.parameter == name)
    }

    @Test("Envoy thresholds reject negative limits")
    func envoy() {
        Self.expectParameter("max_connections") { _ = try EnvoyCircuitBreakerThresholds(maxConnections: -1) }
        Self.expectParameter("max_pending_requests") { _ = try EnvoyCircuitBreakerThresholds(maxPendingRequests: -1) }
        Self.expectParameter("max_requests") { _ = try EnvoyCircuitBreakerThresholds(maxRequests: -5) }
        Self.expectParameter("max_retries") { _ = try EnvoyCircuitBreakerThresholds(maxRetries: -1) }
        Self.expectParameter("max_connection_pools") { _ = try EnvoyCircuitBreakerThresholds(maxConnectionPools: -1) }
    }

    @Test("resilience4j rejects impossible values")
    func resilience4j() {
        typealias Config = Resilience4jCircuitBreakerConfiguration
        Self.expectParameter("failure_rate_threshold") { _ = try Config(failureRateThreshold: 0) }
        Self.expectParameter("failure_rate_threshold") { _ = try Config(failureRateThreshold: 100.5) }
        Self.expectParameter("failure_rate_threshold") { _ = try Config(failureRateThreshold: .nan) }
        Self.expectParameter("slow_call_rate_threshold") { _ = try Config(slowCallRateThreshold: -1) }
        Self.expectParameter("slow_call_duration_threshold") { _ = try Config(slowCallDurationThreshold: .seconds(-1)) }
        Self.expectParameter("sliding_window_size") { _ = try Config(slidingWindowSize: 0) }
        Self.expectParameter("minimum_number_of_calls") { _ = try Config(minimumNumberOfCalls: 0) }
        Self.expectParameter("wait_duration_in_open_state") {
            _ = try Config(waitIntervalInOpenState: .fixed(.seconds(-1)))
        }
        Self.expectParameter("wait_interval_multiplier") {
            _ = try Config(waitIntervalInOpenState: .exponential(initial: .seconds(1), multiplier: 0.5, maximum: nil))
        }
        Self.expectParameter("max_wait_interval") {
            _ = try Config(
                waitIntervalInOpenState: .exponential(initial: .seconds(2), multiplier: 2, maximum: .seconds(1))
            )
        }
        Self.expectParameter("permitted_number_of_calls_in_half_open_state") {
            _ = try Config(permittedNumberOfCallsInHalfOpenState: 0)
        }
        Self.expectParameter("max_wait_duration_in_half_open_state") {
            _ = try Config(maxWaitDurationInHalfOpenState: .seconds(-1))
        }
        Self.expectParameter("transition_to_state_after_wait_duration") {
            _ = try Config(transitionToStateAfterWaitDuration: .halfOpen)
        }
    }

    @Test("Hystrix rejects impossible values")
    func hystrix() {
        typealias Config = HystrixCircuitBreakerConfiguration
        Self.expectParameter("request_volume_threshold") { _ = try Config(requestVolumeThreshold: 0) }
        Self.expectParameter("error_threshold_percentage") { _ = try Config(errorThresholdPercentage: 101) }
        Self.expectParameter("error_threshold_percentage") { _ = try Config(errorThresholdPercentage: -1) }
        Self.expectParameter("sleep_window") { _ = try Config(sleepWindow: .seconds(-5)) }
        Self.expectParameter("rolling_statistical_window") { _ = try Config(rollingStatisticalWindow: .zero) }
        Self.expectParameter("rolling_statistical_window_buckets") {
            _ = try Config(rollingStatisticalWindowBuckets: 0)
        }
        Self.expectParameter("rolling_statistical_window_buckets") {
            _ = try Config(rollingStatisticalWindow: .nanoseconds(10), rollingStatisticalWindowBuckets: 3)
        }
        Self.expectParameter("health_snapshot_interval") { _ = try Config(healthSnapshotInterval: .seconds(-1)) }
        Self.expectParameter("execution_timeout") { _ = try Config(executionTimeout: .zero) }
    }
}
