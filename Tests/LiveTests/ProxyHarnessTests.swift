import Foundation
import Live
import NIOCore
import Reports
import Scenario
import SimRandom
import Spec
import Testing

/// A small scenario: three replicas at 5 ms behind the proxy, 200 requests/s for 2 s.
let proxyScenario = """
    name: live-small
    duration: 2500ms
    warmup: 500ms
    seed: 7
    services:
      api:
        replicas: 3
        workers: 8
        queue: 64
        service_time: "constant:5ms"
    clients:
      users:
        target: api
        rate: 200
        arrival: constant
        timeout: 1s
        balancer: least_request
    variants:
      - name: least_request
      - name: round_robin
        set:
          clients.users.balancer: round_robin
    """

/// The live plan of `text`'s first variant, with backends from 9001 and the proxy on 8080.
func smallPlan(_ text: String = proxyScenario) throws -> LivePlan {
    let scenario = try Scenario.parse(text, file: "live-small.yaml")
    return try LivePlan(spec: scenario.variants[0].spec, seed: 1, backendPort: 9001, proxyPort: 8080, threads: 1)
}

@Suite("Live runs through real proxies", .serialized)
struct ProxyHarnessTests {
    @Test("a small scenario runs live through meshsim proxy, nginx and HAProxy", arguments: ProxyKind.allCases)
    func smallScenario(proxy: ProxyKind) async throws {
        let scenario = try Scenario.parse(proxyScenario, file: "live-small.yaml")
        let offset = [ProxyKind.nginx: 0, .haproxy: 1, .meshsim: 2][proxy]!
        let port = 20280 + 10 * offset
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "meshsim-live-\(proxy)-\(getpid())"
        ).path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var runs: [LiveRun] = []
        for (v, variant) in scenario.variants.enumerated() {
            let plan = try LivePlan(
                spec: variant.spec,
                seed: scenario.seed,
                backendPort: 20201 + 10 * v + 40 * offset,
                proxyPort: port,
                threads: 1
            )
            let result = try await LiveRunner.run(
                plan: plan,
                proxy: proxy,
                proxyPort: port,
                directory: directory + "/\(variant.name)",
                threads: 1
            )
            runs.append(LiveRun(scenario: scenario.name, variant: variant.name, seed: scenario.seed, result: result))
            let row = result.summaryRow
            #expect(row.requests == 400, "\(proxy) \(variant.name): \(row.requests) requests")
            #expect(row.successRate == 1, "\(proxy) \(variant.name): success \(row.successRate ?? -1)")
            let p50 = try #require(row.p50Ms)
            #expect(p50 >= 5 && p50 < 25, "\(proxy) \(variant.name): p50 \(p50)")
            if proxy == .meshsim {
                // meshsim proxy's own counters: every request answered 2xx through the scenario's service.
                let metrics = try String(contentsOfFile: directory + "/\(variant.name)/metrics.prom", encoding: .utf8)
                let answered = metrics.split(separator: "\n").filter {
                    $0.hasPrefix("meshsim_proxy_requests_total{cluster=\"api\"") && $0.contains("outcome=\"2xx\"")
                }
                let total = answered.compactMap { Int($0.split(separator: " ").last ?? "") }.reduce(0, +)
                #expect(total >= 400, "\(metrics)")
            }
        }
        // The proxy is gone once the run returns.
        #expect(!ProxyProbe.listening(port: port))
        try LoadReport.write(runs, to: directory, version: "test")
        let summary = try String(contentsOfFile: directory + "/summary.csv", encoding: .utf8)
        #expect(summary.contains("live-small,least_request,7,live,400,400,"))
        #expect(FileManager.default.fileExists(atPath: directory + "/least_request-7-latency.hgrm"))
    }

    @Test(
        "the generated configurations use the scenario's balancer",
        arguments: [
            (BalancerKind.leastRequest, ProxyKind.nginx, "least_conn;"),
            (.nginxRandomTwoLeastConn, .nginx, "random two least_conn;"),
            (.haproxyRandom, .haproxy, "balance random(2)"),
            (.roundRobin, .haproxy, "balance roundrobin"),
            (.haproxyLeastConn, .haproxy, "balance leastconn"),
        ]
    )
    func configurations(balancer: BalancerKind, proxy: ProxyKind, directive: String) throws {
        var plan = try smallPlan()
        plan.balancer = balancer
        let text = try ProxyProcess.configuration(for: proxy, plan: plan, port: 8080, directory: "/tmp/x")
        #expect(text.contains(directive))
        #expect(text.contains("127.0.0.1:9003"))
        plan.balancer = .maglev
        #expect(throws: LiveError.self) {
            _ = try ProxyProcess.configuration(for: proxy, plan: plan, port: 8080, directory: "/tmp/x")
        }
    }

    @Test("spares are not upstream servers; weights and draws reach the configuration")
    func sparesAndWeights() throws {
        let text = proxyScenario.replacingOccurrences(
            of: "    replicas: 3\n",
            with: "    replicas: [{weight: 1}, {weight: 2}, {weight: 3}]\n    spares: 1\n"
        )
        #expect(text != proxyScenario)
        var plan = try smallPlan(text)
        #expect(plan.backends.replicas.count == 4)
        plan.balancer = .weightedRoundRobin
        let nginx = try ProxyProcess.configuration(for: .nginx, plan: plan, port: 8080, directory: "/tmp/x")
        #expect(nginx.contains("127.0.0.1:9003 weight=3") && !nginx.contains("127.0.0.1:9004"))
        plan.balancer = .haproxyRandom
        plan.draws = 3
        let haproxy = try ProxyProcess.configuration(for: .haproxy, plan: plan, port: 8080, directory: "/tmp/x")
        #expect(haproxy.contains("balance random(3)") && haproxy.contains("127.0.0.1:9002 weight 2"))
    }

    @Test("a proxy port already in use is refused before starting, not measured")
    func portInUse() async throws {
        let scenario = try Scenario.parse(proxyScenario, file: "live-small.yaml")
        let plan = try LivePlan(
            spec: scenario.variants[0].spec,
            seed: 1,
            backendPort: 20301,
            proxyPort: 20311,
            threads: 1
        )
        let replica = BackendReplica(service: "squatter", index: 0, port: 20311, serviceTime: .constant(0))
        try await withBackends([replica]) { _ in
            #expect(throws: LiveError.self) {
                _ = try ProxyProcess(
                    kind: .nginx,
                    plan: plan,
                    port: 20311,
                    directory: NSTemporaryDirectory() + "meshsim-squat"
                )
            }
        }
    }

    @Test("scenarios that cannot run live are clear errors")
    func notLive() throws {
        let twoTier = proxyScenario.replacingOccurrences(
            of: "    service_time: \"constant:5ms\"\n",
            with:
                "    service_time: \"constant:5ms\"\n    calls:\n      - {service: db}\n  db:\n    replicas: 1\n    service_time: \"constant:1ms\"\n"
        )
        #expect(twoTier != proxyScenario)
        let scenario = try Scenario.parse(twoTier, file: "two.yaml")
        #expect(throws: LiveError.self) {
            _ = try LivePlan(spec: scenario.variants[0].spec, seed: 1, backendPort: 9001, proxyPort: 8080, threads: 1)
        }
    }
}

/// Checks whether something listens on a loopback port.
enum ProxyProbe {
    static func listening(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        guard let address = try? SocketAddress(ipAddress: "127.0.0.1", port: port) else { return false }
        return address.withSockAddr { pointer, size in connect(fd, pointer, socklen_t(size)) } == 0
    }
}
