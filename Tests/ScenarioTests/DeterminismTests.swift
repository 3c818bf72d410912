import Foundation
import MeshModel
import Runner
import Scenario
import SimCore
import SimRandom
import Spec
import Testing

@Suite("Determinism and common random numbers")
struct DeterminismTests {
    @Test("the same scenario and seed give byte-identical CSVs with --jobs 1 and --jobs 2")
    func jobsInvariant() throws {
        let scenario = try Scenario.load(path: bundled("quickstart.yaml")).withDuration(.seconds(15))
        let one = runWithOneAndTwoJobs(scenario)
        #expect(one.summaryCSV.split(separator: "\n").count == 1 + 3 * 5)
        // And the files written are those bytes.
        let directory = NSTemporaryDirectory() + "meshsim-determinism-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try one.write(to: directory)
        #expect(try String(contentsOfFile: directory + "/summary.csv", encoding: .utf8) == one.summaryCSV)
        #expect(FileManager.default.fileExists(atPath: directory + "/run.json"))
    }

    @Test("different seeds give different results")
    func seedsDiffer() throws {
        let spec = try singleService(rate: 500, serviceTime: "exponential:mean=1ms")
        #expect(simulate(spec, seed: 1).summary != simulate(spec, seed: 2).summary)
        #expect(simulate(spec, seed: 1).summary == simulate(spec, seed: 1).summary)
    }

    /// The arrival times of client requests in a run of `spec`.
    static func arrivals(_ spec: MeshSpec, seed: UInt64) -> [Int64] {
        var times: [Int64] = []
        var simulation = Simulation(spec: spec, seed: seed)
        simulation.trace = { now, event in
            if case .arrival = event { times.append(now.nanoseconds) }
        }
        _ = simulation.run()
        return times
    }

    @Test("two variants see identical arrival sequences (common random numbers)")
    func commonRandomNumbers() throws {
        let scenario = try Scenario.load(path: bundled("quickstart.yaml")).withDuration(.seconds(10))
        let a = Self.arrivals(scenario.variants[0].spec, seed: 3)
        let b = Self.arrivals(scenario.variants[1].spec, seed: 3)
        let c = Self.arrivals(scenario.variants[2].spec, seed: 3)
        #expect(a.count > 3_000)
        #expect(a == b)
        #expect(a == c)
        #expect(a != Self.arrivals(scenario.variants[0].spec, seed: 4))
    }

    @Test("adding a component leaves the other components' streams unchanged")
    func addingAComponent() throws {
        var spec = try singleService(rate: 300, serviceTime: "exponential:mean=1ms")
        let before = Self.arrivals(spec, seed: 5)
        spec.services.append(ServiceSpec(name: "other", replicas: [ReplicaSpec()], serviceTime: .constant(1_000_000)))
        spec.clients.append(
            ClientSpec(
                name: "second",
                target: 1,
                load: .open(arrival: .poisson, schedule: [RatePoint(at: .zero, rate: 50)])
            )
        )
        var firstClient: [Int64] = []
        var simulation = Simulation(spec: spec, seed: 5)
        simulation.trace = { now, event in
            if case .arrival(let client, _) = event, client == 0 { firstClient.append(now.nanoseconds) }
        }
        _ = simulation.run()
        #expect(firstClient == before)
    }

    @Test("an M/M/1 request costs exactly two events")
    func twoEventsPerRequest() throws {
        let result = simulate(try singleService(rate: 800, serviceTime: "exponential:mean=1ms"))
        let requests = result.completed
        #expect(result.events == 2 * requests || result.events == 2 * requests + 1)
    }
}
