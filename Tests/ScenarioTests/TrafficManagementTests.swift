import Foundation
import MeshModel
import Reports
import Scenario
import SimCore
import Spec
import Testing

/// Weighted splits between service versions, and routes by path or host with per-route policies.
@Suite("Traffic management")
struct TrafficManagementTests {
    static func run(_ yaml: String) throws -> Simulation.Result { try simulate(yaml: yaml, file: "t.yaml") }

    @Test("a 90/10 canary split sends a tenth of the calls to the new version")
    func canary() throws {
        let yaml = """
            duration: 20s
            services:
              v1: {workers: 100, service_time: "constant:1ms"}
              v2: {workers: 100, service_time: "constant:1ms", error_rate: 1}
            clients:
              users:
                rate: 1000
                split:
                  - {service: v1, weight: 90}
                  - {service: v2, weight: 10, retries: 0}
            """
        let result = try Self.run(yaml)
        // Every v2 call fails: the failure share is v2's share.
        let share = Double(result.summary.failed) / Double(result.summary.requests)
        #expect(abs(share - 0.10) < 0.01, "\(share)")
    }

    @Test("an ingress routes by path prefix (first match wins), with per-route timeouts; no route is a failure")
    func ingress() throws {
        let yaml = """
            duration: 20s
            services:
              hello: {workers: 100, service_time: "constant:5ms"}
              world: {workers: 100, service_time: "constant:50ms"}
            clients:
              users:
                rate: 1000
                paths: {"/": 0.7, "/world/x": 0.2, "/other": 0.1}
                routes:
                  - {path_prefix: /world, service: world, timeout: 20ms}
                  - {path_prefix: /other, service: hello, host: admin.example}
                  - {path_prefix: /, service: hello}
            """
        let result = try Self.run(yaml)
        // /world goes to the 50 ms service with a 20 ms timeout: 20% time out. /other matches the second route's
        // prefix but not its host, and falls through to "/".
        let timedOut = Double(result.summary.timedOut) / Double(result.summary.requests)
        #expect(abs(timedOut - 0.2) < 0.01, "\(timedOut)")
        #expect(result.summary.failed == 0)
        #expect(abs(result.summary.p50Ms! - 5) < 0.01)
    }

    @Test("routes by host, and a request no route takes fails at once")
    func hosts() throws {
        let yaml = """
            duration: 10s
            services:
              api: {workers: 100, service_time: "constant:1ms"}
            clients:
              users:
                rate: 100
                host: www.example
                routes:
                  - {host: api.example, service: api}
            """
        let result = try Self.run(yaml)
        #expect(result.summary.failed == result.summary.requests)
        #expect(result.summary.maxMs == 0)
        let matching = try Self.run(yaml.replacingOccurrences(of: "host: www.example", with: "host: api.example"))
        #expect(matching.summary.ok == matching.summary.requests)
    }

    @Test("call steps split and route too, with the request's path inherited down the call graph")
    func downstream() throws {
        let yaml = """
            duration: 10s
            services:
              gateway:
                workers: 100
                service_time: "constant:1ms"
                calls:
                  - routes:
                      - {path_prefix: /slow, service: slow}
                      - {service: fast}
              slow: {workers: 100, service_time: "constant:30ms"}
              fast: {workers: 100, service_time: "constant:2ms"}
            clients:
              users: {target: gateway, rate: 500, paths: {"/slow": 1, "/fast": 1}}
            """
        let result = try Self.run(yaml)
        #expect(abs(result.summary.meanMs! - (1 + (30 + 2) / 2.0)) < 0.5, "\(result.summary.meanMs!)")
    }

    @Test(
        "bad routing is a scenario error with a key path",
        arguments: [
            ("split: [{service: a, weight: 1}]\n    target: a", "clients.users.split"),
            ("split: [{service: a}]", "clients.users.split[0].weight"),
            ("split: [{service: zz, weight: 1}]", "clients.users.split[0].service"),
            ("routes: [{path_prefix: nope, service: a}]", "clients.users.routes[0].path_prefix"),
            ("routes: [{service: a, weight: 2}]", "clients.users.routes[0].weight"),
            ("target: a\n    paths: {nope: 1}", "clients.users.paths.nope"),
        ]
    )
    func bad(client: String, keyPath: String) {
        let yaml = """
            duration: 5s
            services:
              a: {service_time: "constant:1ms"}
            clients:
              users:
                rate: 10
                \(client)
            """
        let errors = problems(yaml)
        #expect(errors.contains { $0.keyPath == keyPath }, "\(errors)")
    }
}
