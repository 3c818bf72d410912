import Foundation
import MeshModel
import Reports
import Scenario
import Spec
import Testing

/// What a partition does to requests and responses: every attempt ends, no worker leaks, and a `hold` partition
/// delivers what it held when it heals.
@Suite("Partitions: drop and hold, and every attempt ends")
struct NetworkFaultTests {
    /// Two tiers across two zones: users in a call frontend in a, which calls api in b (50 ms of work).
    static func twoTiers(partition: String, callTimeout: String = "100ms", clientTimeout: String = "2s") -> String {
        """
        duration: 10s
        drain: 5s
        zones: [a, b]
        network:
          default: {delay: "constant:1ms"}
        services:
          frontend:
            zones: [a]
            workers: 16
            service_time: "constant:1ms"
            calls: [{service: api, timeout: \(callTimeout)}]
          api: {zones: [b], service_time: "constant:50ms", workers: 100}
        clients:
          users: {target: frontend, zone: a, rate: 200, arrival: constant, timeout: \(clientTimeout)}
        faults:
          - \(partition)
        """
    }

    /// Users in zone a call api in zone b directly for 4 s (1 ms of work), with `timeout` and `partition`.
    static func oneHop(partition: String, timeout: String = "") -> String {
        """
        duration: 4s
        drain: 1s
        zones: [a, b]
        services:
          api: {zones: [b], service_time: "constant:1ms", workers: 10}
        clients:
          users: {target: api, zone: a, rate: 100, arrival: constant\(timeout.isEmpty ? "" : ", timeout: " + timeout)}
        faults:
          - \(partition)
        """
    }

    /// A check shared by the two-tier runs: after the partition, every request succeeds again, as fast as before
    /// it: frontend has all its 16 workers back (a leak of the 10 or so held by lost answers would leave it 6, too
    /// few for 200 requests/s of 51 ms, and its queue would grow without end).
    static func recovered(_ windows: [[String]]) {
        for second in 5..<10 {
            #expect(MeshBehaviourTests.column(windows[second], "success_rate") == 1, "window \(second)")
        }
        for second in 6..<10 {
            #expect(MeshBehaviourTests.column(windows[second], "p99_ms") < 100, "window \(second)")
        }
    }

    @Test("responses lost in a partition end at the caller's timeout and free the caller's worker")
    func lostResponsesEnd() throws {
        let (summary, windows, _) = try MeshBehaviourTests.run(
            Self.twoTiers(partition: "{at: 3s, for: 1s, kind: partition, zones: [a, b]}")
        )
        // Every request ended; none is left unfinished at the run's end.
        #expect(summary.unfinished == 0, "\(summary)")
        // About 10 responses were on their way back when the partition began (200/s × 50 ms): they were lost, and
        // their calls timed out like the ones lost on the way out. Before the fix they held 10 of frontend's
        // 16 workers for ever; now, after the partition, every request succeeds again.
        // In the partition, each of frontend's 16 workers holds a call for its 100 ms timeout: about 160 calls fail
        // (the rest wait in frontend's queue and succeed after it).
        #expect(summary.failed + summary.timedOut >= 150, "\(summary)")
        Self.recovered(windows)
    }

    @Test("without a timeout, a lost attempt waits until the run's end, and is counted unfinished")
    func lostWithoutTimeoutIsUnfinished() throws {
        let yaml = Self.oneHop(partition: "{at: 1s, for: 1s, kind: partition, zones: [a, b]}")
        let (summary, _, _) = try MeshBehaviourTests.run(yaml)
        #expect(summary.unfinished == 100, "\(summary)")
        #expect(summary.ok == summary.requests - 100)
    }

    @Test("a hold partition delivers what it held when it heals: nothing is lost, the wait shows in latency")
    func holdDelivers() throws {
        let yaml = """
            duration: 6s
            zones: [a, b]
            network:
              default: {delay: "constant:1ms"}
            services:
              api: {zones: [b], service_time: "constant:2ms", workers: 200}
            clients:
              users: {target: api, zone: a, rate: 100, arrival: constant, timeout: 5s}
            faults:
              - {at: 2s, for: 1s, kind: partition, zones: [a, b], mode: hold}
            """
        let (summary, windows, _) = try MeshBehaviourTests.run(yaml)
        #expect(summary.ok == summary.requests, "\(summary)")
        #expect(summary.unfinished == 0)
        // The first request sent in the partition (at 2.005 s: constant arrivals sit mid-gap) is held until it heals
        // at 3 s, then takes 1 + 2 + 1 ms: 999 ms.
        let max = try #require(summary.maxMs)
        #expect(abs(max - 999) < 0.5, "max \(max) ms")
        #expect(MeshBehaviourTests.column(windows[1], "max_ms") < 5)
        #expect(MeshBehaviourTests.column(windows[4], "max_ms") < 5)
    }

    @Test("a hold partition longer than the timeout: callers time out, and late answers are ignored")
    func holdPastTimeout() throws {
        let (summary, windows, _) = try MeshBehaviourTests.run(
            Self.twoTiers(
                partition: "{at: 3s, for: 1s, kind: partition, zones: [a, b], mode: hold}",
                callTimeout: "200ms"
            )
        )
        #expect(summary.unfinished == 0, "\(summary)")
        // 16 workers, each holding a call for its 200 ms timeout: about 80 fail in the second of the partition.
        #expect(summary.timedOut + summary.failed >= 70, "\(summary)")
        Self.recovered(windows)
    }

    @Test("a hold partition to the run's end holds for ever: callers with a timeout time out")
    func holdForEver() throws {
        let yaml = Self.oneHop(partition: "{at: 3s, kind: partition, zones: [a, b], mode: hold}", timeout: "100ms")
        let (summary, _, _) = try MeshBehaviourTests.run(yaml)
        #expect(summary.timedOut == 100, "\(summary)")
        #expect(summary.unfinished == 0)
    }

    @Test("a partition's mode must be drop or hold")
    func badMode() {
        let errors = problems(
            minimal("zones: [a, b]\nfaults: [{at: 1s, kind: partition, zones: [a, b], mode: hang}]")
        )
        #expect(errors.contains { $0.keyPath == "faults[0].mode" && $0.message.contains("drop") }, "\(errors)")
    }

    @Test("a variant removes a policy by setting it to null")
    func variantRemovesPolicies() throws {
        let yaml = minimal(
            """
            variants:
              - {name: all}
              - name: none
                set:
                  clients.users.hedging: null
                  clients.users.circuit_breaker: null
                  clients.users.budget: null
                  clients.users.timeout: null
            """,
            client: "    timeout: 1s\n    retries: 2\n    hedging: {delay: 10ms, max_attempts: 2}\n"
                + "    circuit_breaker: {kind: hystrix}\n    budget: {kind: envoy, budget_percent: 20}"
        )
        let scenario = try Scenario.parse(yaml, file: "t.yaml")
        let all = scenario.variants[0].spec.clients[0].policy
        let none = scenario.variants[1].spec.clients[0].policy
        #expect(all.hedging != nil && all.breaker != nil && all.budget != nil && all.timeout != nil)
        #expect(none.hedging == nil && none.breaker == nil && none.budget == nil && none.timeout == nil)
        #expect(none.retries == 2)
    }
}
