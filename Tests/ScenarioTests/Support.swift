import Foundation
import MeshModel
import Runner
import Scenario
import SimCore
import SimRandom
import Spec
import Testing

/// The repository's root folder, found from this file's path.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// A bundled scenario's path.
func bundled(_ name: String) -> String { repositoryRoot + "/scenarios/" + name }

/// Parses scenario text, or returns the problems found.
func problems(_ yaml: String) -> [ScenarioError] {
    do {
        _ = try Scenario.parse(yaml, file: "test.yaml")
        return []
    } catch let failure as ScenarioValidationFailure {
        return failure.errors
    } catch {
        return [ScenarioError(.unreadable, file: "test.yaml", keyPath: "", message: "unexpected \(error)")]
    }
}

/// A minimal valid scenario with `extra` appended to the text.
func minimal(_ extra: String = "", service: String = "", client: String = "", serviceTime: String = "constant:1ms")
    -> String
{
    """
    duration: 10s
    services:
      api:
        service_time: "\(serviceTime)"
    \(service)
    clients:
      users:
        target: api
        rate: 100
    \(client)
    \(extra)
    """
}

/// Runs `scenario` with one job and with two, expects byte-identical CSVs, and returns the one-job output.
func runWithOneAndTwoJobs(_ scenario: Scenario) -> Experiment {
    let one = Experiment.run(scenario, jobs: 1)
    let two = Experiment.run(scenario, jobs: 2)
    #expect(one.summaryCSV == two.summaryCSV)
    #expect(one.timeseriesCSV == two.timeseriesCSV)
    #expect(one.comparisonCSV == two.comparisonCSV)
    return one
}

/// Parses scenario text (named `file` in errors) and runs its first variant's replication with seed 1.
func simulate(yaml: String, file: String = "t.yaml") throws -> Simulation.Result {
    let scenario = try Scenario.parse(yaml, file: file)
    var simulation = Simulation(spec: scenario.variants[0].spec, seed: 1)
    return simulation.run()
}

/// Runs a spec's replication and returns its result.
func simulate(_ spec: MeshSpec, seed: UInt64 = 1) -> Simulation.Result {
    var simulation = Simulation(spec: spec, seed: seed)
    return simulation.run()
}

/// A one-service spec: `replicas` replicas, `workers` workers each, one Poisson client at `rate`.
func singleService(
    rate: Double,
    serviceTime: String,
    replicas: Int = 1,
    workers: Int = 1,
    duration: SimDuration = .seconds(20),
    policy: CallPolicy = CallPolicy()
) throws -> MeshSpec {
    var spec = MeshSpec(name: "test", duration: duration)
    spec.services = [
        ServiceSpec(
            name: "api",
            replicas: Array(repeating: ReplicaSpec(), count: replicas),
            workers: workers,
            serviceTime: try Distribution.parse(serviceTime)
        )
    ]
    spec.clients = [
        ClientSpec(
            name: "users",
            target: 0,
            load: .open(arrival: .poisson, schedule: [RatePoint(at: .zero, rate: rate)]),
            policy: policy
        )
    ]
    return spec
}
