import Foundation
import MeshModel
import Reports
import Runner
import Scenario
import SimCore
import Spec
import Testing

/// Published results the simulator must reproduce (validation.md B7).
@Suite("Published results")
struct PublishedResultTests {
    @Test(
        "Linkerd 'Beyond Round Robin': success at a 1 s timeout is ~95% (RR), ~99.5% (least loaded), ≥ 99.8% (peak EWMA)"
    )
    func linkerdBeyondRoundRobin() throws {
        let scenario = try Scenario.load(path: bundled("linkerd-beyond-round-robin.yaml"))
        let experiment = Experiment.run(scenario, jobs: 2)
        func success(_ name: String) -> Double {
            experiment.comparison.first { $0.variant == name }!.metrics["success_rate"]!.mean!
        }
        func p999(_ name: String) -> Double {
            experiment.comparison.first { $0.variant == name }!.metrics["p999_ms"]!.mean!
        }
        // Round robin: 1 of 11 backends fails every request for half the run: 1 − (30/60)/11 = 0.95455.
        #expect(abs(success("round_robin") - 0.95455) <= 0.002, "RR \(success("round_robin"))")
        #expect(
            success("least_request") >= 0.990 && success("least_request") <= 0.997,
            "LL \(success("least_request"))"
        )
        #expect(success("p2c_peak_ewma") >= 0.998, "EWMA \(success("p2c_peak_ewma"))")
        // Where latency jumps to the timeout: about p95.5 for RR, p99.5 for LL, beyond p99.9 for peak EWMA.
        #expect(p999("p2c_peak_ewma") < 250)
        #expect(p999("least_request") >= 999)
        #expect(experiment.comparison.map(\.variant) == ["p2c_peak_ewma", "least_request", "round_robin"])
    }
}

@Suite("Balancers in the mesh")
struct MeshBalancerTests {
    static func run(_ balancer: String, seed: UInt64 = 1) throws -> MetricRow {
        let yaml = """
            duration: 20s
            services:
              api: {replicas: 4, workers: 4, queue: 1000, service_time: "exponential:mean=4ms"}
            clients:
              users: {target: api, rate: 2000, balancer: \(balancer)}
            faults:
              - {at: 0s, kind: slowdown, service: api, replica: 0, factor: 3}
            """
        let scenario = try Scenario.parse(yaml, file: "b.yaml")
        var simulation = Simulation(spec: scenario.variants[0].spec, seed: seed)
        return simulation.run().summary
    }

    @Test("load-aware balancers beat round robin around a slow replica")
    func loadAware() throws {
        let rr = try Self.run("round_robin").meanMs!
        for name in [
            "least_request", "p2c_peak_ewma", "nginx_least_conn", "haproxy_leastconn", "nginx_random_two_least_conn",
            "{kind: least_request, selection: full_scan}",
        ] {
            let mean = try Self.run(name).meanMs!
            #expect(mean < rr * 0.8, "\(name): \(mean) ms vs round robin \(rr) ms")
        }
    }

    @Test("every balancer runs in a mesh; load-blind ones fill the slow replica's queue (503s), none errs")
    func allKinds() throws {
        for kind in BalancerKind.allCases {
            let summary = try Self.run(kind.rawValue)
            #expect(summary.failed == 0 && summary.timedOut == 0, "\(kind.rawValue)")
            #expect(summary.ok + summary.rejected + summary.unfinished == summary.requests, "\(kind.rawValue)")
            #expect(summary.requests > 39_000)
        }
    }

    @Test(
        "impossible balancer parameters are scenario errors with key paths",
        arguments: [
            ("{kind: maglev, table_size: 65536}", "clients.users.balancer.table_size", "not prime"),
            (
                "{kind: least_request, active_request_bias: -1}", "clients.users.balancer.active_request_bias",
                "out of range"
            ),
            ("{kind: least_request, choice_count: 1}", "clients.users.balancer.choice_count", "out of range"),
            (
                "{kind: ring_hash, hash_balance_factor: 50}", "clients.users.balancer.hash_balance_factor",
                "out of range"
            ),
            ("{kind: p2c_peak_ewma, decay: -1s}", "clients.users.balancer.decay", "negative"),
            ("{kind: p2c_peak_ewma, decy: 1s}", "clients.users.balancer.decy", "did you mean 'decay'"),
            ("least_requests", "clients.users.balancer", "did you mean 'least_request'"),
            (
                "{kind: weighted_round_robin, slow_start: {window: 0}}", "clients.users.balancer.slow_start.window",
                "out of range"
            ),
        ]
    )
    func badParameters(balancer: String, keyPath: String, fragment: String) throws {
        let errors = problems(minimal(client: "    balancer: \(balancer)"))
        let error = try #require(errors.first { $0.keyPath == keyPath }, "\(errors)")
        #expect(error.description.contains(fragment), "\(error)")
    }
}
