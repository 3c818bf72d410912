import Foundation
import Live
import MeshModel
import NIOCore
import NIOPosix
import Reports
import Retries
import SharedModel
import SimCore
import SimRandom
import Spec
import Testing

/// The simulator and `serve` + `load` run the same replica state machine and arrival generator: with the same seed
/// and the same requests, they make the same decisions.
@Suite("One model, two clocks")
struct SharedModelLiveTests {
    /// One replica (one worker, 1 ms of work, 30% errors; 90% between 1.0 s and 1.5 s), one client at 100
    /// requests/s with constant spacing for 2 s: every request is served alone, so both halves see the same order.
    func spec() -> MeshSpec {
        var spec = MeshSpec(name: "same-decisions", duration: .seconds(2))
        var service = ServiceSpec(name: "svc", replicas: [ReplicaSpec()], workers: 1, serviceTime: .constant(1_000_000))
        service.errorRate = 0.3
        service.queueCapacity = 16
        spec.services = [service]
        spec.clients = [
            ClientSpec(
                name: "c",
                target: 0,
                load: .open(arrival: .constant, schedule: [RatePoint(at: .zero, rate: 100)])
            )
        ]
        spec.faults = [
            FaultSpec(
                at: .seconds(1),
                duration: .milliseconds(500),
                kind: .errors(ReplicaSelection(service: 0), rate: 0.9)
            )
        ]
        spec.drain = .seconds(2)
        return spec
    }

    @Test("serve and load make the simulator's decisions: the same requests fail for the same seed")
    func sameDecisions() async throws {
        let spec = spec()
        let seed: UInt64 = 5
        var simulation = Simulation(spec: spec, seed: seed)
        let simulated = simulation.run().summary
        #expect(simulated.requests == 200)
        // The error draws themselves: 100 requests at 30% and 50 at 90% and 50 at 30%, in order, from the stream.
        let keys = ReplicaStateMachine.streamKeys(service: "svc", index: 0)
        let errors = RandomStream(seed: seed, replication: 0, key: keys.errors)
        var expectedFailures: UInt64 = 0
        for k in 0..<200 where errors.bernoulli(k >= 100 && k < 150 ? 0.9 : 0.3) { expectedFailures += 1 }
        #expect(simulated.failed == expectedFailures)

        var backends = try LivePlan.backends(spec: spec, services: [0], seed: seed, basePort: 20000)
        backends.replicas[0].port = 0
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let server = BackendServer(configuration: backends, group: group)
        let live: LoadResult
        do {
            try await server.start(schedulingFaults: false)
            let port = try #require(await server.listeningPorts().first ?? nil)
            var load = LoadConfiguration(
                host: "127.0.0.1",
                port: port,
                mode: .open(ArrivalSchedule(client: 0, of: spec)!)
            )
            load.client = "c"
            load.seed = seed
            load.duration = spec.duration.nanoseconds
            load.connections = 2
            load.drain = 2_000_000_000
            let generatorGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            live = try await LoadGenerator(configuration: load, group: generatorGroup).run(onStart: { start in
                server.scheduleFaults(from: start)
            })
            try await generatorGroup.shutdownGracefully()
        } catch {
            await server.stop()
            try? await group.shutdownGracefully()
            throw error
        }
        await server.stop()
        try await group.shutdownGracefully()
        #expect(live.total.arrivals == 200)
        #expect(live.total.response.count(.failed) == simulated.failed)
        #expect(live.total.response.count(.ok) == simulated.ok)
    }

    @Test("retries through meshsim proxy are the simulator's: the same requests fail, the same retries are sent")
    func sameRetries() async throws {
        var spec = spec()
        spec.faults = []
        spec.clients[0].policy.retries = 2
        spec.clients[0].policy.retryOn = [.fiveXX]
        let seed: UInt64 = 9
        var simulation = Simulation(spec: spec, seed: seed)
        let simulated = simulation.run()
        let retries = simulated.counters[.retries]
        #expect(retries > 30, "\(retries) retries")

        let plan = try LivePlan(spec: spec, seed: seed, backendPort: 20401, proxyPort: 20400, threads: 1)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshsim-retries-\(getpid())")
            .path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let live = try await LiveRunner.run(
            plan: plan,
            proxy: .meshsim,
            proxyPort: 20400,
            directory: directory,
            threads: 1
        )
        #expect(live.total.arrivals == 200)
        #expect(live.total.response.count(.failed) == simulated.summary.failed)
        #expect(live.total.response.count(.ok) == simulated.summary.ok)
        let metrics = try String(contentsOfFile: directory + "/metrics.prom", encoding: .utf8)
        #expect(metrics.contains("meshsim_proxy_retries_total{cluster=\"svc\"} \(retries)"), "\(metrics)")
    }

    @Test("hedging through meshsim proxy is the simulator's: the same requests fail, the same hedges are sent and win")
    func sameHedges() async throws {
        var spec = spec()
        spec.faults = []
        // The delay is far above the 1 ms of work: every hedge follows a failed attempt (afterFailure's `.hedge`),
        // so the replica sees the same requests in the same order in both clocks.
        spec.clients[0].policy.hedging = try HedgingSpec(delay: .milliseconds(500), maxAttempts: 3)
        spec.clients[0].policy.retryOn = [.fiveXX]
        let seed: UInt64 = 9
        var simulation = Simulation(spec: spec, seed: seed)
        let simulated = simulation.run()
        let hedges = simulated.counters[.hedgesSent]
        let won = simulated.counters[.hedgesWon]
        #expect(hedges > 30, "\(hedges) hedges")
        #expect(won > 20, "\(won) hedges won")

        let plan = try LivePlan(spec: spec, seed: seed, backendPort: 20411, proxyPort: 20410, threads: 1)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshsim-hedges-\(getpid())")
            .path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let live = try await LiveRunner.run(
            plan: plan,
            proxy: .meshsim,
            proxyPort: 20410,
            directory: directory,
            threads: 1
        )
        #expect(live.total.arrivals == 200)
        #expect(live.total.response.count(.failed) == simulated.summary.failed)
        #expect(live.total.response.count(.ok) == simulated.summary.ok)
        let metrics = try String(contentsOfFile: directory + "/metrics.prom", encoding: .utf8)
        #expect(metrics.contains("meshsim_proxy_hedges_total{cluster=\"svc\"} \(hedges)"), "\(metrics)")
        #expect(metrics.contains("meshsim_proxy_hedges_won_total{cluster=\"svc\"} \(won)"), "\(metrics)")
        #expect(metrics.contains("meshsim_proxy_retries_total{cluster=\"svc\"} 0"), "\(metrics)")
    }
}
