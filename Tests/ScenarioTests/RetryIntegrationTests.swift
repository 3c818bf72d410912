import Foundation
import MeshModel
import Reports
import Scenario
import SimCore
import Spec
import Testing

/// Retry conditions, backoff and budgets on call edges.
@Suite("Retries in the mesh")
struct RetryIntegrationTests {
    static func run(_ yaml: String) throws -> Simulation.Result { try simulate(yaml: yaml, file: "r.yaml") }

    static func dead(_ policy: String) -> String {
        """
        duration: 10s
        services:
          api: {replicas: 2, service_time: "constant:1ms", workers: 100, error_rate: 1}
        clients:
          users: {target: api, rate: 100, arrival: constant, retries: 3\(policy)}
        """
    }

    @Test("against a failing upstream every request makes all its attempts, and the counters say so")
    func amplification() throws {
        let result = try Self.run(Self.dead(""))
        #expect(result.summary.failed == result.summary.requests)
        #expect(result.summary.attemptsPerRequest == 4)
        #expect(result.counters[.retries] == 3 * result.summary.requests)
        #expect(result.counters.retryAmplification == 4)
    }

    @Test("retry_on limits which failures are retried")
    func conditions() throws {
        let noFiveXX = try Self.run(Self.dead(", retry_on: \"reset,connect-failure\""))
        #expect(noFiveXX.summary.attemptsPerRequest == 1)
        let fiveXX = try Self.run(Self.dead(", retry_on: \"5xx\""))
        #expect(fiveXX.summary.attemptsPerRequest == 4)
    }

    @Test("a constant backoff spaces the retries")
    func backoff() throws {
        let result = try Self.run(Self.dead(", backoff: {kind: exponential, base: 10ms, cap: 10ms}"))
        // Four attempts of 1 ms with three waits of 10 ms.
        #expect(abs(result.summary.meanMs! - 34) < 0.01, "\(result.summary.meanMs!)")
        let jittered = try Self.run(Self.dead(", backoff: {kind: full_jitter, base: 10ms, cap: 10ms}"))
        #expect(jittered.summary.meanMs! > 4 && jittered.summary.meanMs! < 34)
    }

    @Test("retry budgets cap retries: Envoy's concurrency budget, Finagle's 20% + 10/s, gRPC's token throttle")
    func budgets() throws {
        // 100 requests/s, all failing, 10 s: Finagle allows 20% of requests plus 10/s within each 10 s window.
        let finagle = try Self.run(Self.dead(", budget: {kind: finagle}"))
        #expect(finagle.counters[.retries] <= 300 && finagle.counters[.retries] >= 250, "\(finagle.counters[.retries])")
        #expect(finagle.counters[.retriesDenied] > 0)
        let grpc = try Self.run(Self.dead(", budget: {kind: grpc, max_tokens: 10, token_ratio: 0.1}"))
        #expect(grpc.counters[.retries] <= 5, "\(grpc.counters[.retries])")
        // Envoy: retries run one at a time here (each takes 1 ms, requests 10 ms apart), so min_retry_concurrency
        // 3 never binds and every retry is admitted.
        let envoy = try Self.run(Self.dead(", budget: {kind: envoy}"))
        #expect(envoy.counters[.retriesDenied] == 0)
        #expect(envoy.counters[.retries] == 3 * envoy.summary.requests)
    }

    @Test(
        "bad retry settings are scenario errors with key paths",
        arguments: [
            (", retry_on: \"5xx,timout\"", "clients.users.retry_on", "did you mean 'timeout'"),
            (", backoff: {kind: full_jiter}", "clients.users.backoff.kind", "did you mean 'full_jitter'"),
            (", backoff: {kind: exponential, base: 10ms, cap: 1ms}", "clients.users.backoff.cap", "at least"),
            (", budget: {kind: envoy, budget_percent: 150}", "clients.users.budget.budget_percent", "out of range"),
            (", budget: {kind: finagle, ttl: 100s}", "clients.users.budget.ttl", "out of range"),
            (", budget: {kind: grpc}", "clients.users.budget", "needs 'max_tokens'"),
        ]
    )
    func badSettings(policy: String, keyPath: String, fragment: String) throws {
        let errors = problems(Self.dead(policy))
        let error = try #require(errors.first { $0.keyPath == keyPath }, "\(errors)")
        #expect(error.description.contains(fragment), "\(error)")
    }
}

/// Hedged requests.
@Suite("Hedging in the mesh")
struct HedgingIntegrationTests {
    static func mesh(_ client: String) -> String {
        """
        duration: 20s
        services:
          api:
            replicas: 10
            workers: 1000
            service_time: "mixture:0.95*constant:10ms|0.05*constant:500ms"
        clients:
          users: {target: api, rate: 500\(client)}
        """
    }

    @Test("a hedge after 50 ms cuts the tail from 500 ms to about 60 ms, and hedges are counted")
    func tail() throws {
        let plain = try RetryIntegrationTests.run(Self.mesh(""))
        let hedged = try RetryIntegrationTests.run(Self.mesh(", hedging: {delay: 50ms, max_attempts: 3}"))
        #expect(plain.summary.p99Ms! > 490)
        #expect(hedged.summary.p99Ms! < 70, "p99 \(hedged.summary.p99Ms!)")
        // About 5% of requests are slow and get a hedge; nearly all of those win.
        let sent = Double(hedged.counters[.hedgesSent]) / Double(hedged.summary.requests)
        #expect(sent > 0.04 && sent < 0.07, "\(sent)")
        #expect(Double(hedged.counters[.hedgesWon]) > 0.9 * Double(hedged.counters[.hedgesSent]) * 0.95)
        #expect(hedged.summary.ok == hedged.summary.requests)
        #expect(hedged.counters[.retries] == 0)
    }

    @Test("hedging parameters are checked")
    func parameters() {
        #expect(
            problems(Self.mesh(", hedging: {delay: 10ms, max_attempts: 1}")).contains {
                $0.keyPath == "clients.users.hedging.max_attempts"
            }
        )
        #expect(
            problems(Self.mesh(", hedging: {max_attempts: 2}")).contains { $0.keyPath == "clients.users.hedging.delay" }
        )
    }
}

/// Deadlines propagated down the call graph.
@Suite("Deadlines in the mesh")
struct DeadlineIntegrationTests {
    @Test("a client deadline bounds retries and is inherited by downstream calls")
    func propagation() throws {
        let yaml = """
            duration: 10s
            services:
              front: {workers: 1000, service_time: "constant:5ms", calls: [{service: back, timeout: 1s, retries: 5}]}
              back: {workers: 1000, service_time: "constant:300ms"}
            clients:
              users: {target: front, rate: 100, arrival: constant, deadline: 100ms}
            """
        let result = try RetryIntegrationTests.run(yaml)
        // The back call gets the 95 ms left of the client's 100 ms deadline, not its own 1 s: every request times
        // out at 100 ms, and no retry starts after the deadline.
        #expect(result.summary.timedOut == result.summary.requests)
        #expect(abs(result.summary.maxMs! - 100) < 0.01, "max \(result.summary.maxMs!)")
        #expect(result.counters[.retries] == 0)
    }

    @Test("per-try timeouts and retries run inside the deadline, which cuts the last attempt short")
    func perTryInsideDeadline() throws {
        let yaml = """
            duration: 5s
            services:
              back: {workers: 1000, service_time: "constant:300ms"}
            clients:
              users: {target: back, rate: 100, arrival: constant, timeout: 100ms, retries: 2, deadline: 250ms}
            """
        let result = try RetryIntegrationTests.run(yaml)
        // Attempts at 0 and 100 ms time out; the third is cut at the 250 ms deadline.
        #expect(abs(result.summary.meanMs! - 250) < 0.01)
        #expect(result.summary.attemptsPerRequest == 3)
    }
}
