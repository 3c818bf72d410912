import MeshModel
import Reports
import Runner
import Scenario
import SimCore
import Spec
import Testing

/// Zone-aware routing, active health checks and nginx / HAProxy passive health, selected per call edge in
/// scenario text and run in the mesh.
@Suite("Zone-aware routing and health checks in the mesh")
struct HealthAndZoneIntegrationTests {
    static func run(_ yaml: String) throws -> (summary: MetricRow, windows: [[String]], result: Simulation.Result) {
        try MeshBehaviourTests.run(yaml)
    }

    /// The `rejected` count of the time-series window that starts at `t` seconds.
    static func rejected(_ windows: [[String]], at t: Int) -> Double {
        let row = windows.first { MeshBehaviourTests.column($0, "t_s") == Double(t) }
        return row.map { MeshBehaviourTests.column($0, "rejected") } ?? .nan
    }

    // MARK: - Zone-aware routing

    /// Three zones 10 ms apart (one way), nothing within a zone; a client per zone calls `frontend`, which calls
    /// `backend`; both spread over the three zones.
    static func zones(_ policy: String) -> String {
        """
        duration: 20s
        zones: [a, b, c]
        network:
          default: {delay: "constant:10ms"}
          links:
            - {from: a, to: a, delay: 0}
            - {from: b, to: b, delay: 0}
            - {from: c, to: c, delay: 0}
        services:
          frontend:
            replicas: 3
            zones: [a, b, c]
            workers: 50
            service_time: "constant:1ms"
            calls: [{service: backend\(policy)}]
          backend: {replicas: 9, zones: [a, b, c], workers: 50, service_time: "constant:1ms"}
        clients:
          ua: {target: frontend, zone: a, rate: 100, arrival: constant\(policy)}
          ub: {target: frontend, zone: b, rate: 100, arrival: constant\(policy)}
          uc: {target: frontend, zone: c, rate: 100, arrival: constant\(policy)}
        """
    }

    @Test("zone-aware routing keeps calls in the caller's zone, from clients and from services")
    func zoneAwareKeepsTrafficLocal() throws {
        let without = try Self.run(Self.zones(""))
        let with = try Self.run(Self.zones(", zone_aware: {routing_enabled: 100, min_cluster_size: 3}"))
        // Local: 1 ms + 1 ms of work and no network. Without it two calls in three cross zones each way (20 ms).
        let localMean = try #require(with.summary.meanMs)
        let spreadMean = try #require(without.summary.meanMs)
        #expect(localMean < 2.5, "zone-aware mean \(localMean) ms")
        #expect(spreadMean > 20, "round-robin mean \(spreadMean) ms")
        #expect(with.summary.ok == without.summary.ok)
    }

    @Test("zone-aware routing follows min_cluster_size and routing_enabled")
    func zoneAwareParameters() throws {
        // The frontend has 3 replicas: below the default min_cluster_size of 6 the client edges balance over all
        // zones, while the frontend's calls to the 9 backends stay local.
        let clientsSpread = try Self.run(Self.zones(", zone_aware: {}"))
        let mean = try #require(clientsSpread.summary.meanMs)
        #expect(mean > 12 && mean < 16, "\(mean) ms: about 2 ms + 2/3 × 20 ms")
        // routing_enabled: 50 routes about half the calls by zone.
        let half = try Self.run(Self.zones(", zone_aware: {routing_enabled: 50, min_cluster_size: 3}"))
        let halfMean = try #require(half.summary.meanMs)
        #expect(halfMean > 10 && halfMean < 17, "\(halfMean) ms: about 2 ms + 2 × 1/2 × 2/3 × 20 ms")
    }

    // MARK: - Active health checks

    /// Ten replicas; replica 0 crashes from 5 s to 15 s and again from 30 s to 35 s. Discovery is slow (100 s), so
    /// only health checking can take it out of the view.
    static func crashes(_ policy: String) -> String {
        """
        duration: 40s
        discovery: {propagation_delay: 100s}
        services:
          api: {replicas: 10, workers: 100, service_time: "constant:2ms"}
        clients:
          users: {target: api, rate: 500, arrival: constant\(policy)}
        faults:
          - {at: 5s, for: 10s, kind: crash, service: api, replica: 0}
          - {at: 30500ms, for: 4s, kind: crash, service: api, replica: 0}
        """
    }

    @Test("active health checks take a crashed replica out after unhealthy_threshold and back after a restart")
    func activeHealthCheck() throws {
        let without = try Self.run(Self.crashes(""))
        // 50 requests/s go to replica 0: refused for 14 s in all.
        #expect(without.summary.rejected >= 650)
        let policy = ", health_check: {interval: 1s, timeout: 100ms, unhealthy_threshold: 2, healthy_threshold: 1}"
        let with = try Self.run(Self.crashes(policy))
        #expect(with.summary.rejected < 250, "rejected \(with.summary.rejected)")
        #expect(with.result.counters[.ejections] == 2)
        // Out of the view during the rest of the first crash…
        for t in 8..<15 { #expect(Self.rejected(with.windows, at: t) == 0, "window \(t)") }
        // …back after the restart: the second crash is felt until the checks catch it again.
        #expect(Self.rejected(with.windows, at: 30) > 10)
        #expect(Self.rejected(with.windows, at: 33) == 0)
    }

    @Test("a health check times out on a paused replica")
    func healthCheckTimeout() throws {
        func yaml(_ policy: String) -> String {
            """
            duration: 20s
            services:
              api: {replicas: 10, workers: 100, service_time: "constant:2ms"}
            clients:
              users: {target: api, rate: 500, arrival: constant, timeout: 50ms\(policy)}
            faults:
              - {at: 5s, for: 10s, kind: pause, service: api, replica: 0, every: 20s, length: 10s}
            """
        }
        // A paused replica is still in discovery: without checks a tenth of 10 s of requests time out.
        let without = try Self.run(yaml(""))
        #expect(without.summary.timedOut >= 450)
        let checks = ", health_check: {interval: 500ms, timeout: 100ms, unhealthy_threshold: 1, healthy_threshold: 1}"
        let with = try Self.run(yaml(checks))
        #expect(with.summary.timedOut < 100, "timed out \(with.summary.timedOut)")
        #expect(with.result.counters[.ejections] >= 1)
    }

    // MARK: - Passive health

    /// Ten replicas; replica 0 answers every request with a 500 from 5 s to 25 s.
    static func failing(_ policy: String) -> String {
        """
        duration: 30s
        services:
          api: {replicas: 10, workers: 100, service_time: "constant:2ms"}
        clients:
          users: {target: api, rate: 500, arrival: constant\(policy)}
        faults:
          - {at: 5s, for: 20s, kind: errors, service: api, replica: 0, rate: 1}
        """
    }

    @Test("nginx max_fails / fail_timeout takes a failing replica out for fail_timeout")
    func nginxPassiveHealth() throws {
        let without = try Self.run(Self.failing(""))
        #expect(without.summary.failed >= 900)
        // nginx counts a 500 only when proxy_next_upstream lists http_500.
        let notCounted = try Self.run(Self.failing(", passive_health: {kind: nginx}"))
        #expect(notCounted.summary.failed == without.summary.failed)
        let with = try Self.run(
            Self.failing(", passive_health: {kind: nginx, max_fails: 1, fail_timeout: 10s, next_upstream: http_500}")
        )
        // One failure per 10 s of unavailability: about 2 in 20 s.
        #expect(with.summary.failed <= 5, "failed \(with.summary.failed)")
        #expect(with.result.counters[.ejections] >= 2)
        // nginx's round-robin peer accounting: three failures, then one probe per fail_timeout that fails again.
        let moduleCounting = try Self.run(
            Self.failing(
                ", passive_health: {kind: nginx, max_fails: 3, fail_timeout: 5s, next_upstream: \"error timeout http_500\", counting: round_robin_module}"
            )
        )
        #expect(moduleCounting.summary.failed <= 8, "failed \(moduleCounting.summary.failed)")
    }

    @Test("HAProxy observe layer7 with error-limit marks a failing replica down until its checks pass")
    func haproxyPassiveHealth() throws {
        let without = try Self.run(Self.failing(""))
        let with = try Self.run(
            Self.failing(
                ", passive_health: {kind: haproxy, observe: layer7, error_limit: 10, on_error: mark-down, inter: 1s, fall: 3, rise: 2}"
            )
        )
        // 10 consecutive errors mark it down; its checks fail while it fails, so it stays down.
        #expect(with.summary.failed <= 20, "failed \(with.summary.failed) of \(without.summary.failed)")
        #expect(with.result.counters[.ejections] == 1)
        // With the default on-error (fail-check) one burst only costs one health point of `fall`; checks then finish
        // the job.
        let failCheck = try Self.run(Self.failing(", passive_health: {kind: haproxy, error_limit: 5, inter: 1s}"))
        #expect(failCheck.summary.failed < 200, "failed \(failCheck.summary.failed)")
    }

    @Test("the bundled zones-and-health scenario is deterministic across --jobs, and each policy beats the baseline")
    func bundledScenario() throws {
        let scenario = try Scenario.load(path: bundled("zones-and-health.yaml")).withDuration(.seconds(45))
        let one = runWithOneAndTwoJobs(scenario)
        let rows = one.summaryCSV.split(separator: "\n").dropFirst().map { $0.split(separator: ",").map(String.init) }
        let header = one.summaryCSV.prefix { $0 != "\n" }.split(separator: ",").map(String.init)
        let variant = header.firstIndex(of: "variant")!
        let failed = header.firstIndex(of: "failed")!
        func failures(_ name: String) -> Int { rows.filter { $0[variant] == name }.reduce(0) { $0 + Int($1[failed])! } }
        let baseline = failures("baseline")
        #expect(baseline > 1_000)
        for name in ["active_health_check", "nginx_max_fails", "haproxy_observe"] {
            #expect(failures(name) * 5 < baseline, "\(name): \(failures(name)) vs \(baseline)")
        }
    }

    // MARK: - Bad input

    @Test(
        "impossible zone-aware, health and Envoy backoff parameters are scenario errors at their key",
        arguments: [
            (
                "zone_aware: {routing_enabled: 150}", "clients.users.zone_aware.routing_enabled",
                ScenarioError.Code.outOfRange
            ),
            ("zone_aware: {min_cluster_size: -1}", "clients.users.zone_aware.min_cluster_size", .outOfRange),
            (
                "health_check: {interval: 0s, timeout: 1s, unhealthy_threshold: 2, healthy_threshold: 2}",
                "clients.users.health_check.interval", .outOfRange
            ),
            ("health_check: {interval: 1s}", "clients.users.health_check.timeout", .missingField),
            (
                "health_check: {interval: 1s, timeout: 1s, unhealthy_threshold: 0, healthy_threshold: 2}",
                "clients.users.health_check.unhealthy_threshold", .outOfRange
            ),
            ("passive_health: {kind: nginx, max_fails: -1}", "clients.users.passive_health.max_fails", .outOfRange),
            (
                "passive_health: {kind: nginx, next_upstream: http_501}", "clients.users.passive_health.next_upstream",
                .unknownName
            ),
            (
                "passive_health: {kind: haproxy, on_error: markdown}", "clients.users.passive_health.on_error",
                .unknownName
            ),
            ("passive_health: {kind: haproxy, rise: 0}", "clients.users.passive_health.rise", .outOfRange),
            ("passive_health: {kind: haproxy, inter: 0s}", "clients.users.passive_health.inter", .outOfRange),
            ("passive_health: {kind: haproxy, max_fails: 3}", "clients.users.passive_health.max_fails", .unknownKey),
            ("passive_health: {kind: envoy}", "clients.users.passive_health.kind", .unknownName),
            ("backoff: {kind: envoy, multiplier: 3}", "clients.users.backoff.multiplier", .unknownKey),
            ("backoff: {kind: envoy, jitter: 0.5}", "clients.users.backoff.jitter", .unknownKey),
        ]
    )
    func invalid(policy: String, keyPath: String, code: ScenarioError.Code) throws {
        let errors = problems(minimal(client: "    " + policy))
        let error = try #require(errors.first { $0.keyPath == keyPath }, "no error at \(keyPath): \(errors)")
        #expect(error.code == code)
        #expect(error.line != nil)
    }
}
