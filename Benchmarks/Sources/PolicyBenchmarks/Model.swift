// The whole model: allocations and time per event of an M/M/1 replication in steady state.

import CMallocCounter
import MeshModel
import Scenario

/// Runs the M/M/1 model (Poisson 800/s, exponential 1 ms service, 10 s windows) for `seconds` of simulated time;
/// returns its events, the heap allocations made during the run, and its wall nanoseconds.
func runMM1(seconds: Int) -> (events: UInt64, allocations: UInt64, nanoseconds: UInt64) {
    let yaml = """
        duration: \(seconds)s
        window: 10s
        services:
          api: {service_time: "exponential:mean=1ms"}
        clients:
          users: {target: api, rate: 800}
        """
    let scenario = try! Scenario.parse(yaml, file: "mm1-benchmark.yaml")
    var simulation = Simulation(spec: scenario.variants[0].spec, seed: 1)
    let allocationsBefore = meshsim_allocation_count()
    let start = nanoseconds()
    let result = simulation.run()
    let elapsed = nanoseconds() - start
    return (result.events, meshsim_allocation_count() - allocationsBefore, elapsed)
}

/// Steady state: the difference between a long and a short run, per event, so that setting up the model and its
/// first growth of the slabs and heap do not count. Allocations that remain come from the time series (a row of
/// text per 10 s window) — thousands of events apart — not from events.
func benchmarkModel() {
    let name = "M/M/1 model, steady state, per event"
    guard Options.selects(name) else { return }
    print("Model: an M/M/1 replication")
    let short = runMM1(seconds: Options.quick ? 50 : 200)
    let long = runMM1(seconds: Options.quick ? 500 : 2_000)
    let events = long.events - short.events
    let allocations = long.allocations &- short.allocations
    let perEvent = Double(long.nanoseconds - short.nanoseconds) / Double(events)
    measurements.append(
        Measurement(
            name: name,
            nanosecondsPerCall: perEvent,
            allocations: allocations,
            calls: Int(events),
            relative: perEvent / referenceNanoseconds
        )
    )
    print(
        "\(name.padding(58)) \(String(format1(perEvent)).leftPadding(8)) ns/call   \(allocations) allocations in \(events) calls"
    )
}
