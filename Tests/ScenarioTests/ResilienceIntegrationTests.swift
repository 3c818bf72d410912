import Foundation
import MeshModel
import Reports
import Scenario
import SimCore
import Spec
import Testing

/// Outlier detection, circuit breakers and limiters wired into the mesh.
@Suite("Health, breakers and limiters in the mesh")
struct ResilienceIntegrationTests {
    static func run(_ yaml: String) throws -> Simulation.Result { try simulate(yaml: yaml, file: "h.yaml") }

    static func mesh(replicas: Int = 10, client: String, service: String = "", faults: String = "") -> String {
        """
        duration: 30s
        services:
          api: {replicas: \(replicas), workers: 100, service_time: "constant:2ms"\(service)}
        clients:
          users: {target: api, rate: 500, arrival: constant\(client)}
        faults:
        \(faults)
        """
    }

    static let badReplica = "  - {at: 5s, for: 20s, kind: errors, service: api, replica: 0, rate: 1}"

    @Test("outlier detection ejects a failing replica after consecutive 5xx, and traffic avoids it")
    func outlierEjection() throws {
        let without = try Self.run(Self.mesh(client: "", faults: Self.badReplica))
        let with = try Self.run(
            Self.mesh(client: ", outlier_detection: {interval: 1s, base_ejection_time: 30s}", faults: Self.badReplica)
        )
        #expect(with.counters[.ejections] >= 1)
        // Without detection a tenth of the requests fail for 20 s (1,000); with it, only the 5 that trip it,
        // then once per re-admission.
        #expect(without.summary.failed >= 900)
        #expect(with.summary.failed < 30, "failed \(with.summary.failed)")
    }

    @Test("the panic threshold keeps traffic on ejected replicas when too few are healthy")
    func panic() throws {
        let allBad = "  - {at: 5s, for: 20s, kind: errors, service: api, rate: 1}"
        let detection = ", outlier_detection: {interval: 1s, max_ejection_percent: 100}"
        let panicking = try Self.run(Self.mesh(replicas: 2, client: detection, faults: allBad))
        // Both replicas fail; ejecting them leaves none healthy: in panic, traffic goes on to both.
        #expect(panicking.summary.rejected == 0)
        let noPanic = try Self.run(Self.mesh(replicas: 2, client: detection + ", panic_threshold: 0", faults: allBad))
        // Without panic mode, an empty healthy set means no endpoint: requests are rejected.
        #expect(noPanic.summary.rejected > 0)
    }

    @Test("a Hystrix breaker opens against a failing upstream and short-circuits calls")
    func hystrix() throws {
        let allBad = "  - {at: 5s, for: 20s, kind: errors, service: api, rate: 1}"
        let result = try Self.run(
            Self.mesh(client: ", circuit_breaker: {kind: hystrix, sleep_window: 5s}", faults: allBad)
        )
        #expect(result.counters[.breakerOpens] >= 2)
        #expect(result.counters[.breakerRejections] > 5_000)
        #expect(result.summary.ok > 2_400 * 5 / 10)
    }

    @Test("resilience4j opens at a 50% failure rate over its window")
    func resilience4j() throws {
        let half = "  - {at: 5s, for: 20s, kind: errors, service: api, rate: 0.6}"
        let result = try Self.run(
            Self.mesh(client: ", circuit_breaker: {kind: resilience4j, wait_duration_in_open_state: 2s}", faults: half)
        )
        #expect(result.counters[.breakerOpens] >= 1)
        #expect(result.counters[.breakerRejections] > 0)
    }

    @Test("Envoy's max_requests threshold bounds concurrent attempts; overflow is rejected at once")
    func envoyThresholds() throws {
        let yaml = """
            duration: 10s
            services:
              api: {workers: 1000, service_time: "constant:100ms"}
            clients:
              users: {target: api, rate: 1000, arrival: constant, circuit_breaker: {kind: envoy, max_requests: 50}}
            """
        let result = try Self.run(yaml)
        // 1,000/s × 100 ms = 100 concurrent wanted, 50 allowed: about half are rejected.
        let share = Double(result.summary.rejected) / Double(result.summary.requests)
        #expect(abs(share - 0.5) < 0.02, "\(share)")
        #expect(result.counters[.breakerRejections] == result.summary.rejected)
    }

    @Test("Envoy's max_connections and max_pending_requests bind: excess attempts wait for a connection, then overflow")
    func envoyPendingRequests() throws {
        func run(_ thresholds: String) throws -> Simulation.Result {
            try Self.run(
                """
                duration: 10s
                services:
                  api: {workers: 1000, service_time: "constant:100ms"}
                clients:
                  users: {target: api, rate: 200, arrival: constant, circuit_breaker: {kind: envoy\(thresholds)}}
                """
            )
        }
        // 200/s × 100 ms wants 20 connections; 10 serve 100/s.
        let bounded = try run(", max_connections: 10, max_pending_requests: 5")
        let share = Double(bounded.summary.rejected) / Double(bounded.summary.requests)
        #expect(abs(share - 0.5) < 0.03, "\(share)")
        #expect(bounded.counters[.breakerRejections] == bounded.summary.rejected)
        // The admitted wait for a connection behind at most 5 others (a connection frees every 10 ms); the
        // percentiles include the rejected requests at 0 ms, so the mean of the successful ones is worked out.
        let okMean =
            try #require(bounded.summary.meanMs) * Double(bounded.summary.requests) / Double(bounded.summary.ok)
        let maxMs = try #require(bounded.summary.maxMs)
        #expect(okMean > 130 && maxMs > 140 && maxMs < 180, "successful mean \(okMean), max \(maxMs)")
        // No pending slots: the same share fails, and nothing waits.
        let none = try run(", max_connections: 10, max_pending_requests: 0")
        #expect(try #require(none.summary.maxMs) < 100.5)
        #expect(abs(Double(none.summary.rejected) / Double(none.summary.requests) - 0.5) < 0.03)
        // The default 1,024 pending: nothing overflows in 10 s, and the queue keeps growing.
        let deep = try run(", max_connections: 10")
        #expect(deep.summary.rejected == 0)
        #expect(try #require(deep.summary.p99Ms) > 3_000)
    }

    @Test("a token bucket caps the client's rate; GCRA and windows likewise")
    func rateLimits() throws {
        for limit in [
            "{kind: token_bucket, max_tokens: 10, tokens_per_fill: 100, fill_interval: 1s}",
            "{kind: gcra, max_burst: 10, count: 100, period: 1s}", "{kind: fixed_window, limit: 100, window: 1s}",
            "{kind: sliding_log, limit: 100, window: 1s}", "{kind: sliding_window, limit: 100, window: 1s}",
        ] {
            let result = try Self.run(Self.mesh(client: ", rate_limit: \(limit)"))
            let admitted = Double(result.summary.ok) / 30
            #expect(admitted > 95 && admitted < 106, "\(limit): \(admitted)/s")
            #expect(result.counters[.limiterRejections] == result.summary.rejected)
        }
    }

    @Test("an AIMD concurrency limit sheds load on an overloaded replica and reports its limit")
    func aimd() throws {
        let yaml = """
            duration: 20s
            services:
              api: {workers: 10, queue: 10000, service_time: "constant:10ms", concurrency_limit: {kind: aimd, initial_limit: 50, min_limit: 5, max_limit: 100, timeout: 100ms}}
            clients:
              users: {target: api, rate: 1500}
            """
        let result = try Self.run(yaml)
        #expect(result.counters[.limiterRejections] > 0)
        let limit = try #require(result.concurrencyLimit)
        #expect(limit >= 5 && limit <= 100)
        // Without the limit the queue would grow without bound (1,500/s offered, 1,000/s capacity).
        #expect(result.summary.p99Ms! < 200, "p99 \(result.summary.p99Ms!)")
    }

    @Test(
        "bad resilience settings are scenario errors with key paths",
        arguments: [
            (
                ", outlier_detection: {max_ejection_percent: 120}",
                "clients.users.outlier_detection.max_ejection_percent"
            ),
            (", outlier_detection: {interval: 0}", "clients.users.outlier_detection.interval"),
            (
                ", circuit_breaker: {kind: hystrix, error_threshold_percentage: 150}",
                "clients.users.circuit_breaker.error_threshold_percentage"
            ),
            (
                ", circuit_breaker: {kind: resilience4j, failure_rate_threshold: 0}",
                "clients.users.circuit_breaker.failure_rate_threshold"
            ),
            (", circuit_breaker: {kind: envoy, max_requests: -1}", "clients.users.circuit_breaker.max_requests"),
            (", circuit_breaker: {kind: envoi}", "clients.users.circuit_breaker.kind"),
            (
                ", rate_limit: {kind: token_bucket, max_tokens: 0, fill_interval: 1s}",
                "clients.users.rate_limit.max_tokens"
            ),
            (", rate_limit: {kind: gcra, max_burst: 1, count: 0, period: 1s}", "clients.users.rate_limit.count"),
            (", rate_limit: {kind: fixed_window, limit: 10}", "clients.users.rate_limit.window"),
            (", panic_threshold: 150", "clients.users.panic_threshold"),
        ]
    )
    func badSettings(client: String, keyPath: String) throws {
        let errors = problems(Self.mesh(client: client))
        #expect(errors.contains { $0.keyPath == keyPath }, "\(errors)")
        #expect(errors.allSatisfy { $0.line != nil })
    }

    @Test("a concurrency limit with min above max is a scenario error")
    func badLimit() {
        let errors = problems(
            Self.mesh(client: "", service: ", concurrency_limit: {kind: aimd, min_limit: 50, max_limit: 10}")
        )
        #expect(errors.contains { $0.keyPath.hasPrefix("services.api.concurrency_limit.") }, "\(errors)")
    }
}

@Suite("SRE adaptive throttling in the mesh")
struct AdaptiveThrottleIntegrationTests {
    @Test("against an overloaded upstream the client throttles itself to about K × accepts")
    func throttles() throws {
        let yaml = """
            duration: 60s
            services:
              api: {workers: 1, queue: 0, service_time: "constant:10ms"}
            clients:
              users: {target: api, rate: 400, adaptive_throttle: {k: 2, window: 10s, buckets: 10}}
            """
        let result = try ResilienceIntegrationTests.run(yaml)
        // The backend accepts at most ~100/s of 400/s offered: the throttle rejects most of the excess locally.
        #expect(result.counters[.limiterRejections] > 8_000, "\(result.counters[.limiterRejections])")
        let unthrottled = try ResilienceIntegrationTests.run(
            yaml.replacingOccurrences(of: ", adaptive_throttle: {k: 2, window: 10s, buckets: 10}", with: "")
        )
        #expect(unthrottled.counters[.limiterRejections] == 0)
        #expect(
            problems(yaml.replacingOccurrences(of: "k: 2", with: "k: 0")).contains {
                $0.keyPath == "clients.users.adaptive_throttle.k"
            }
        )
    }
}
