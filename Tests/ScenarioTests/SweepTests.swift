import Foundation
import Runner
import Scenario
import SimCore
import Spec
import Testing

/// Parameter grids (`sweep`) expanded into named variants.
@Suite("Sweeps: parameter grids as variants")
struct SweepTests {
    /// The first schedule point's rate of the scenario's first client.
    static func rate(_ spec: MeshSpec) -> Double? {
        if case .open(_, let schedule) = spec.clients[0].load { return schedule.first?.rate }
        return nil
    }

    static let grid = minimal(
        """
        sweep:
          rate: {path: clients.users.rate, from: 100, to: 1000, step: 100}
          balancer: {path: clients.users.balancer, values: [round_robin, least_request]}
          budget:
            path: clients.users.budget
            values:
              envoy20: {kind: envoy, budget_percent: 20}
              grpc: {kind: grpc, max_tokens: 10, token_ratio: 0.1}
        """,
        client: "    retries: 2"
    )

    @Test("a grid of rate × balancer × retry budget becomes named variants, the first axis varying slowest")
    func grid() throws {
        let scenario = try Scenario.parse(Self.grid, file: "grid.yaml")
        #expect(scenario.variants.count == 10 * 2 * 2)
        #expect(scenario.sweepAxes == ["rate", "balancer", "budget"])
        let first = scenario.variants[0]
        #expect(first.name == "rate=100,balancer=round_robin,budget=envoy20")
        #expect(first.description == "rate 100, balancer round_robin, budget envoy20")
        #expect(first.axisLabels == ["100", "round_robin", "envoy20"])
        #expect(first.base == "base")
        #expect(scenario.variants[1].name == "rate=100,balancer=round_robin,budget=grpc")
        #expect(scenario.variants[2].name == "rate=100,balancer=least_request,budget=envoy20")
        #expect(scenario.variants[4].name == "rate=200,balancer=round_robin,budget=envoy20")
        #expect(scenario.variants.last?.name == "rate=1000,balancer=least_request,budget=grpc")
        for (i, variant) in scenario.variants.enumerated() {
            #expect(Self.rate(variant.spec) == Double(100 * (i / 4 + 1)), "\(variant.name)")
            let balancer = variant.spec.clients[0].policy.balancer.kind
            #expect(balancer == ((i / 2) % 2 == 0 ? .roundRobin : .leastRequest), "\(variant.name)")
            switch variant.spec.clients[0].policy.budget {
            case .envoy(let percent, _)?: #expect(i % 2 == 0 && percent == 20, "\(variant.name)")
            case .grpc(let tokens, let ratio)?: #expect(i % 2 == 1 && tokens == 10 && ratio == 0.1)
            default: Issue.record("\(variant.name): no budget")
            }
            #expect(variant.spec.clients[0].policy.retries == 2)
        }
    }

    @Test("a sweep crosses each listed variant, whose own changes come first")
    func crossesVariants() throws {
        let yaml = minimal(
            """
            variants:
              - {name: plain}
              - {name: retrying, description: three tries, set: {clients.users.retries: 2, clients.users.rate: 5}}
            sweep:
              rate: {path: clients.users.rate, values: [50, 150]}
            """
        )
        let scenario = try Scenario.parse(yaml, file: "t.yaml")
        #expect(
            scenario.variants.map(\.name) == [
                "plain,rate=50", "plain,rate=150", "retrying,rate=50", "retrying,rate=150",
            ]
        )
        #expect(scenario.variants.map(\.base) == ["plain", "plain", "retrying", "retrying"])
        #expect(scenario.variants[2].description == "three tries; rate 50")
        #expect(scenario.variants.map { Self.rate($0.spec) } == [50, 150, 50, 150])
        #expect(scenario.variants.map(\.spec.clients[0].policy.retries) == [0, 0, 2, 2])
    }

    @Test(
        "ranges: durations step in nanoseconds, decimals read as written, count and log spacing, descending steps",
        arguments: [
            ("{path: clients.users.timeout, from: 100ms, to: 300ms, step: 100ms}", ["100ms", "200ms", "300ms"]),
            ("{path: clients.users.timeout, from: 1ms, to: 2ms, step: 300us}", ["1ms", "1300us", "1600us", "1900us"]),
            ("{path: clients.users.timeout, from: 1ms, to: 100ms, count: 3, scale: log}", ["1ms", "10ms", "100ms"]),
            ("{path: clients.users.rate, from: 0.1, to: 0.3, step: 0.1}", ["0.1", "0.2", "0.3"]),
            ("{path: clients.users.rate, from: 10, to: 1000, count: 3, scale: log}", ["10", "100", "1000"]),
            ("{path: clients.users.rate, from: 0, to: 1, count: 5}", ["0", "0.25", "0.5", "0.75", "1"]),
            ("{path: clients.users.rate, from: 30, to: 10, step: -10}", ["30", "20", "10"]),
            ("{path: clients.users.rate, from: 1, to: 10, step: 4}", ["1", "5", "9"]),
        ]
    )
    func ranges(axis: String, labels: [String]) throws {
        let scenario = try Scenario.parse(minimal("sweep:\n  x: \(axis)"), file: "t.yaml")
        #expect(scenario.variants.map(\.axisLabels) == labels.map { [$0] })
        #expect(scenario.variants.map(\.name) == labels.map { "x=\($0)" })
        if axis.contains("timeout") {
            let timeouts = scenario.variants.map { $0.spec.clients[0].policy.timeout?.formatted }
            #expect(timeouts == labels.map(Optional.some))
        }
    }

    @Test("one axis can set the same value at several paths")
    func severalPaths() throws {
        let yaml = minimal(
            "sweep:\n  workers: {path: [services.api.workers, services.api.replicas], values: [2, 4]}"
        )
        let scenario = try Scenario.parse(yaml, file: "t.yaml")
        #expect(scenario.variants.map(\.spec.services[0].workers) == [2, 4])
        #expect(scenario.variants.map(\.spec.services[0].replicas.count) == [2, 4])
    }

    @Test(
        "a bad sweep is a located error",
        arguments: [
            ("sweep:\n  r: {path: clients.users.rate, from: 1, to: 5000, step: 1}", "sweep.r", "at most 1000"),
            (
                "sweep:\n  a: {path: clients.users.rate, from: 1, to: 100, step: 1}\n"
                    + "  b: {path: clients.users.retries, from: 0, to: 10, step: 1}",
                "sweep", "make 1100 variants; a scenario may have at most 1000"
            ),
            ("sweep:\n  r: {path: clients.users.rate, from: 1, to: 5, step: 0}", "sweep.r.step", "never reaches"),
            ("sweep:\n  r: {path: clients.users.rate, from: 5, to: 1, step: 1}", "sweep.r.step", "goes away"),
            ("sweep:\n  r: {path: clients.users.rate, from: 1, to: 5}", "sweep.r", "needs 'step' or 'count'"),
            ("sweep:\n  r: {path: clients.users.rate, from: 1, to: 5, step: 1, count: 3}", "sweep.r.count", "not both"),
            ("sweep:\n  r: {path: clients.users.rate, values: [1], from: 1}", "sweep.r.from", "not both"),
            ("sweep:\n  r: {values: [1, 2]}", "sweep.r.path", "needs the 'path'"),
            ("sweep:\n  r: {path: seeds, values: [1, 2]}", "sweep.r.path", "cannot change 'seeds'"),
            ("sweep:\n  r: {path: clients.users.rate, values: [1, 1]}", "sweep.r.values", "listed twice"),
            ("sweep:\n  r: {path: clients.users.rate, values: [{a: 1}]}", "sweep.r.values[0]", "name each one"),
            ("sweep:\n  r: {path: clients.users.rate, values: {'a,b': 1}}", "sweep.r.values", "contain ','"),
            ("sweep:\n  r: {path: clients.users.rate, vals: [1]}", "sweep.r.vals", "unknown key"),
            (
                "sweep:\n  r: {path: clients.users.rate, from: 1, to: 100, count: 3, scale: cubic}", "sweep.r.scale",
                "linear"
            ),
            (
                "sweep:\n  r: {path: clients.users.rate, from: 0, to: 100, count: 3, scale: log}", "sweep.r.from",
                "above 0"
            ),
            ("sweep:\n  r: {path: clients.users.timeout, from: 1ms, to: 2ms, step: 0ms}", "sweep.r.step", "above 0"),
            ("sweep:\n  r: {path: clients.users.rate, from: 1, to: 1.0000000000001, count: 3}", "sweep.r", "both 1"),
            ("sweep:\n  r: {path: 'clients.nobody.calls[2]', values: [1]}", "sweep.r", "to index into"),
            ("sweep: {}", "sweep", "at least one axis"),
        ]
    )
    func invalid(extra: String, keyPath: String, fragment: String) throws {
        let errors = problems(minimal(extra))
        let error = try #require(errors.first { $0.keyPath == keyPath }, "no error at \(keyPath): \(errors)")
        #expect(error.line != nil, "\(error)")
        #expect(error.description.contains(fragment), "\(error.description)")
    }

    @Test("a value the mesh refuses is reported once, under the first sweep point that has it, at the sweep's line")
    func badValueOnce() throws {
        let yaml = minimal(
            "sweep:\n  workers: {path: services.api.workers, values: [2, -1]}\n"
                + "  balancer: {path: clients.users.balancer, values: [round_robin, random, least_request]}"
        )
        let errors = problems(yaml)
        let bad = errors.filter { $0.message.contains("-1") }
        #expect(bad.count == 1, "\(errors)")
        #expect(bad.first?.keyPath == "sweep point 'workers=-1,balancer=round_robin': services.api.workers")
        #expect(
            bad.first?.line
                == yaml.split(separator: "\n", omittingEmptySubsequences: false).firstIndex {
                    $0.contains("workers: {path")
                }.map { $0 + 1 }
        )
    }

    @Test("sweep.csv names each variant's value on every axis, and every variant runs")
    func sweepCSV() throws {
        let yaml = minimal(
            """
            sweep:
              rate: {path: clients.users.rate, values: [20, 40]}
              balancer: {path: clients.users.balancer, values: [random, round_robin]}
            """
        ).replacingOccurrences(of: "duration: 10s", with: "duration: 2s")
        let experiment = Experiment.run(try Scenario.parse(yaml, file: "s.yaml"), jobs: 2)
        #expect(
            experiment.sweepCSV
                == """
                scenario,variant,base,rate,balancer
                s,"rate=20,balancer=random",base,20,random
                s,"rate=20,balancer=round_robin",base,20,round_robin
                s,"rate=40,balancer=random",base,40,random
                s,"rate=40,balancer=round_robin",base,40,round_robin

                """
        )
        #expect(experiment.comparison.count == 4)
        #expect(experiment.summaryCSV.split(separator: "\n").count == 5)
        let plain = Experiment.run(try Scenario.parse(minimal(), file: "p.yaml"), jobs: 1)
        #expect(plain.sweepCSV == nil)
    }
}
