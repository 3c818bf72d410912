import MeshModel
import Reports
import Runner
import Scenario
import SimCore
import Spec
import Testing

/// The bundled queueing scenarios against closed forms (validation.md B1), over 10 seeds each.
@Suite("Queueing theory (validation.md B1)")
struct QueueingTheoryTests {
    static func run(_ file: String) throws -> Experiment {
        Experiment.run(try Scenario.load(path: bundled(file)), jobs: 2)
    }

    static func mean(_ e: Experiment, _ metric: String) -> Double {
        e.comparison[0].metrics[metric]!.mean!
    }

    @Test(
        "M/M/1 at rho 0.8: mean 5 ms (±2%), p50 3.466 ms and p99 23.03 ms (±3%), Little's law (±1%), utilization (±0.5%)"
    )
    func mm1() throws {
        let e = try Self.run("mm1.yaml")
        let completions = e.replications.reduce(0) { $0 + $1.result.summary.ok }
        #expect(completions >= 1_000_000)
        let meanMs = Self.mean(e, "mean_ms")
        #expect(abs(meanMs / 5.0 - 1) < 0.02, "mean \(meanMs)")
        let ci = e.comparison[0].metrics["mean_ms"]!.halfWidth!
        #expect(abs(meanMs - 5.0) <= ci * 1.5, "theory outside the CI: \(meanMs) ± \(ci)")
        #expect(abs(Self.mean(e, "p50_ms") / 3.466 - 1) < 0.03)
        #expect(abs(Self.mean(e, "p99_ms") / 23.026 - 1) < 0.03, "p99 \(Self.mean(e, "p99_ms"))")
        for r in e.replications {
            let s = r.result.summary
            let little = s.offeredRPS! * s.meanMs! / 1000
            #expect(abs(s.meanInFlight! / little - 1) < 0.01, "L \(s.meanInFlight!) vs λT \(little)")
            #expect(abs(s.utilization! / 0.8 - 1) < 0.02)
        }
        let utilization = e.replications.map { $0.result.summary.utilization! }.reduce(0, +) / 10
        #expect(abs(utilization / 0.8 - 1) < 0.005)
    }

    @Test("M/M/4 at rho 0.8 (Erlang C): mean response 1.7455 ms (±2%)")
    func mmc() throws {
        let e = try Self.run("mmc.yaml")
        let meanMs = Self.mean(e, "mean_ms")
        #expect(abs(meanMs / 1.7455 - 1) < 0.02, "mean \(meanMs)")
        // E[Wq] = 0.7455 ms within ±5%.
        #expect(abs((meanMs - 1.0) / 0.7455 - 1) < 0.05)
    }

    @Test("M/D/1 at rho 0.8 (Pollaczek-Khinchine): mean response 3.0 ms (±3%)")
    func md1() throws {
        let e = try Self.run("md1.yaml")
        let meanMs = Self.mean(e, "mean_ms")
        #expect(abs(meanMs / 3.0 - 1) < 0.03, "mean \(meanMs)")
    }

    @Test("a shared queue (M/M/10) beats ten random M/M/1 queues sixfold at rho 0.9 (B1.2 sanity check)")
    func sharedVersusSplit() throws {
        let shared = simulate(try singleService(rate: 9_000, serviceTime: "exponential:mean=1ms", workers: 10))
        let split = simulate(
            try singleService(
                rate: 9_000,
                serviceTime: "exponential:mean=1ms",
                replicas: 10,
                policy: CallPolicy(balancer: BalancerSpec(.random))
            )
        )
        #expect(abs(shared.summary.meanMs! / 1.6687 - 1) < 0.05, "M/M/10 \(shared.summary.meanMs!)")
        #expect(abs(split.summary.meanMs! / 10.0 - 1) < 0.15, "random split \(split.summary.meanMs!)")
    }
}
