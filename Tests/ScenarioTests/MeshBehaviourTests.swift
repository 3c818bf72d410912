import Foundation
import MeshModel
import Reports
import Runner
import Scenario
import SimCore
import SimRandom
import Spec
import Testing

/// The mesh model's features, each checked against what it must do, through scenario text.
@Suite("Mesh model behaviour")
struct MeshBehaviourTests {
    /// Runs the first variant of `yaml` with `seed`; returns the summary and the time-series rows.
    static func run(_ yaml: String, seed: UInt64 = 1) throws -> (
        summary: MetricRow, windows: [[String]], result: Simulation.Result
    ) {
        let scenario = try Scenario.parse(yaml, file: "test.yaml")
        var simulation = Simulation(spec: scenario.variants[0].spec, seed: seed)
        let result = simulation.run()
        let windows = result.timeseries.split(separator: "\n").map {
            $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        }
        return (result.summary, windows, result)
    }

    /// Column `name` of a time-series row.
    static func column(_ row: [String], _ name: String) -> Double {
        let header = ReportCSV.timeseriesHeader.split(separator: ",").map(String.init)
        return Double(row[header.firstIndex(of: name)!]) ?? .nan
    }

    @Test("network delay and an added-latency fault add to the response time")
    func latency() throws {
        let yaml = """
            duration: 10s
            zones: [a, b]
            network:
              links: [{from: a, to: b, delay: "constant:3ms"}]
            services:
              api: {zones: [b], service_time: "constant:1ms", workers: 100}
            clients:
              users: {target: api, zone: a, rate: 200, arrival: constant}
            faults:
              - {at: 0s, kind: latency, zones: [a, b], delay: 2ms}
            """
        let (summary, _, _) = try Self.run(yaml)
        #expect(abs(summary.meanMs! - 11.0) < 0.02)
        #expect(summary.ok == summary.requests)
    }

    @Test("a full queue rejects with 503s; a retry to another replica gets through more often")
    func rejection() throws {
        let yaml = """
            duration: 10s
            services:
              api: {replicas: 2, service_time: "constant:10ms", workers: 1, queue: 0}
            clients:
              users: {target: api, rate: 200}
            """
        let (summary, _, _) = try Self.run(yaml)
        // Offered 2 per service time: most requests find the worker busy.
        #expect(summary.rejected > summary.requests / 4)
        #expect(summary.ok + summary.rejected == summary.requests)
        let retried = try Self.run(yaml.replacingOccurrences(of: "rate: 200}", with: "rate: 200, retries: 2}"))
        #expect(retried.summary.attemptsPerRequest! > 1.5)
        #expect(retried.summary.rejected < summary.rejected)
    }

    @Test("a per-attempt timeout with retries: every attempt times out, three attempts each")
    func timeoutsAndRetries() throws {
        let yaml = """
            duration: 5s
            services:
              api: {service_time: "constant:50ms", workers: 1000}
            clients:
              users: {target: api, rate: 100, timeout: 20ms, retries: 2}
            """
        let (summary, _, _) = try Self.run(yaml)
        #expect(summary.timedOut == summary.requests)
        #expect(summary.attemptsPerRequest == 3)
        #expect(abs(summary.meanMs! - 60) < 0.01)
    }

    @Test(
        "a crash resets running work and refuses connections until discovery removes the replica; restart brings it back"
    )
    func crashAndDiscovery() throws {
        let yaml = """
            duration: 20s
            discovery: {propagation_delay: 1s, refused_cost: 2ms}
            services:
              api: {replicas: 2, service_time: "constant:5ms", workers: 10}
            clients:
              users: {target: api, rate: 400, arrival: constant, balancer: round_robin}
            faults:
              - {at: 5s, for: 5s, kind: crash, service: api, replica: 0}
            """
        let (summary, windows, _) = try Self.run(yaml)
        // During the 1 s of propagation, half the requests go to the dead replica and are refused.
        #expect(abs(Double(summary.rejected) - 200) <= 5, "rejected \(summary.rejected)")
        // Requests running at the crash are reset (failed).
        #expect(summary.failed >= 1 && summary.failed <= 2)
        #expect(Self.column(windows[5], "rejected") > 150)
        #expect(Self.column(windows[7], "rejected") == 0)
        #expect(Self.column(windows[12], "ok") == 400)
        let retried = try Self.run(
            yaml.replacingOccurrences(of: "balancer: round_robin}", with: "balancer: round_robin, retries: 1}")
        )
        #expect(retried.summary.rejected == 0)
        #expect(retried.summary.ok >= summary.requests - 2)
    }

    @Test("a zone outage takes down every replica in the zone")
    func zoneOutage() throws {
        let yaml = """
            duration: 10s
            zones: [a, b]
            discovery: {propagation_delay: 500ms}
            services:
              api: {replicas: 4, zones: [a, b], service_time: "constant:1ms", workers: 10}
            clients:
              users: {target: api, rate: 400, arrival: constant, retries: 1}
            faults:
              - {at: 2s, for: 3s, kind: zone_outage, zone: b}
            """
        let (summary, windows, _) = try Self.run(yaml)
        #expect(summary.ok >= summary.requests - 2)
        #expect(Self.column(windows[2], "attempts_per_request") > 1.1)
        #expect(Self.column(windows[4], "attempts_per_request") == 1)
    }

    @Test("a slowdown raises latency only while it lasts")
    func slowdown() throws {
        let yaml = """
            duration: 10s
            services:
              api: {service_time: "constant:1ms", workers: 100}
            clients:
              users: {target: api, rate: 100, arrival: constant}
            faults:
              - {at: 3s, for: 2s, kind: slowdown, service: api, factor: 20}
            """
        let (_, windows, _) = try Self.run(yaml)
        #expect(Self.column(windows[1], "p50_ms") < 1.02)
        #expect(abs(Self.column(windows[3], "p50_ms") - 20) < 0.3)
        #expect(Self.column(windows[6], "p50_ms") < 1.02)
    }

    @Test("an error spike fails about its rate of requests")
    func errorSpike() throws {
        let yaml = """
            duration: 10s
            services:
              api: {service_time: "constant:1ms", workers: 100}
            clients:
              users: {target: api, rate: 1000}
            faults:
              - {at: 0s, kind: errors, service: api, rate: 0.25}
            """
        let (summary, _, _) = try Self.run(yaml)
        #expect(abs(Double(summary.failed) / Double(summary.requests) - 0.25) < 0.02)
    }

    @Test("a partition loses every message across it: callers time out")
    func partition() throws {
        let yaml = """
            duration: 10s
            zones: [a, b]
            services:
              api: {zones: [b], service_time: "constant:1ms", workers: 100}
            clients:
              users: {target: api, zone: a, rate: 100, arrival: constant, timeout: 200ms}
            faults:
              - {at: 4s, for: 2s, kind: partition, zones: [a, b]}
            """
        let (summary, _, _) = try Self.run(yaml)
        #expect(summary.timedOut == 200)
        #expect(summary.ok == summary.requests - 200)
    }

    @Test("stop-the-world pauses hold work until they end")
    func pauses() throws {
        let yaml = """
            duration: 10s
            services:
              api: {service_time: "constant:1ms", workers: 100}
            clients:
              users: {target: api, rate: 1000, arrival: constant}
            faults:
              - {at: 2s, for: 5s, kind: pause, service: api, every: 1s, length: 100ms}
            """
        let (summary, windows, _) = try Self.run(yaml)
        // 5 pauses of 100 ms: 10% of requests arrive in a pause and wait for its end.
        #expect(summary.maxMs! > 99 && summary.maxMs! <= 101.1)
        #expect(Self.column(windows[1], "max_ms") < 1.1)
        #expect(Self.column(windows[3], "p50_ms") < 1.1)
        #expect(Self.column(windows[3], "p99_ms") > 50)
        #expect(Self.column(windows[8], "max_ms") < 1.1)
    }

    @Test("a load spike multiplies the offered rate while it lasts; schedules step and ramp")
    func loadShape() throws {
        let yaml = """
            duration: 10s
            services:
              api: {service_time: "constant:1ms", workers: 100}
            clients:
              users:
                target: api
                arrival: constant
                schedule:
                  - {at: 0s, rate: 100}
                  - {at: 4s, rate: 100, ramp: true}
                  - {at: 6s, rate: 300}
            faults:
              - {at: 1s, for: 2s, kind: load_spike, client: users, factor: 3}
            """
        let (_, windows, _) = try Self.run(yaml)
        let offered = windows.map { Self.column($0, "offered_rps") }
        #expect(abs(offered[0] - 100) <= 1)
        #expect(abs(offered[1] - 300) <= 2)
        #expect(abs(offered[2] - 300) <= 2)
        #expect(abs(offered[3] - 100) <= 2)
        #expect(abs(offered[4] - 150) <= 3)
        #expect(abs(offered[5] - 250) <= 3)
        #expect(abs(offered[7] - 300) <= 1)
    }

    @Test("closed-loop users follow the interactive response-time law: X = N / (Z + R)")
    func closedLoop() throws {
        let yaml = """
            duration: 20s
            services:
              api: {service_time: "constant:10ms", workers: 1000}
            clients:
              users: {target: api, users: 50, think_time: "exponential:mean=90ms"}
            """
        let (summary, _, _) = try Self.run(yaml)
        #expect(abs(summary.offeredRPS! / 500 - 1) < 0.03, "throughput \(summary.offeredRPS!)")
        #expect(abs(summary.meanMs! - 10) < 0.01)
    }

    @Test("a fan-out step waits for all its calls; steps run in order")
    func fanOut() throws {
        let yaml = """
            duration: 10s
            services:
              front: {service_time: "constant:1ms", workers: 1000, calls: [{service: db, fanout: 3}, {service: cache}]}
              db: {replicas: 3, service_time: "uniform:min=1ms,max=9ms", workers: 1000}
              cache: {service_time: "constant:2ms", workers: 1000}
            clients:
              users: {target: front, rate: 200}
            """
        let (summary, _, _) = try Self.run(yaml)
        // 1 ms + max of three uniform(1, 9) ms (mean 1 + 8·3/4 = 7 ms) + 2 ms = 10 ms on average.
        #expect(abs(summary.meanMs! - 10) < 0.15, "mean \(summary.meanMs!)")
        #expect(summary.ok == summary.requests)
    }

    @Test("a failed downstream call fails the caller's request")
    func downstreamFailure() throws {
        let yaml = """
            duration: 10s
            services:
              front: {service_time: "constant:1ms", workers: 100, calls: [{service: db}]}
              db: {service_time: "constant:1ms", workers: 100, error_rate: 0.5}
            clients:
              users: {target: front, rate: 500}
            """
        let (summary, _, _) = try Self.run(yaml)
        #expect(abs(Double(summary.failed) / Double(summary.requests) - 0.5) < 0.03)
    }

    @Test("scaling out starts spares that then take traffic; scaling in stops replicas")
    func scaling() throws {
        let yaml = """
            duration: 12s
            discovery: {propagation_delay: 500ms}
            services:
              api: {replicas: 1, spares: 1, service_time: "constant:8ms", workers: 1, queue: 1000}
            clients:
              users: {target: api, rate: 150, arrival: constant}
            faults:
              - {at: 4s, kind: scale, service: api, delta: 1}
            """
        let (_, windows, _) = try Self.run(yaml)
        // One replica at 150/s × 8 ms = 1.2 > 1 is overloaded: latency grows; two replicas drain the backlog.
        #expect(Self.column(windows[3], "p50_ms") > 100)
        #expect(Self.column(windows[11], "p99_ms") < 9)
        #expect(Self.column(windows[11], "queue_depth") == 0)
    }

    @Test("lost messages cost a retransmission delay")
    func loss() throws {
        let yaml = """
            duration: 20s
            network:
              default: {delay: "constant:1ms", loss: 0.1, retransmit: 200ms}
            services:
              api: {service_time: "constant:1ms", workers: 1000}
            clients:
              users: {target: api, rate: 500}
            """
        let (summary, _, _) = try Self.run(yaml)
        // Each of two messages is lost a geometric number of times with mean 0.1/0.9: 3 ms + 2 × 0.111 × 200 ms.
        #expect(abs(summary.meanMs! - (3 + 2 * 200 * 0.1 / 0.9)) < 2.5, "mean \(summary.meanMs!)")
    }

    @Test("variants override settings of the base scenario")
    func variants() throws {
        let yaml = minimal(
            """
            variants:
              - name: base
              - name: slow
                set:
                  services.api.service_time: "constant:5ms"
                  clients.users: {timeout: 1s, retries: 1}
            """
        )
        let scenario = try Scenario.parse(yaml, file: "v.yaml")
        #expect(scenario.variants.map(\.name) == ["base", "slow"])
        #expect(scenario.variants[1].spec.services[0].serviceTime == .constant(5_000_000))
        #expect(scenario.variants[1].spec.clients[0].policy.retries == 1)
        #expect(scenario.variants[1].spec.clients[0].load == scenario.variants[0].spec.clients[0].load)
        #expect(scenario.variants[0].spec.services[0].serviceTime == .constant(1_000_000))
    }
}
