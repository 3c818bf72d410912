import Balancers
import Breakers
import Foundation
import Health
import Limiters
import NIOCore
import Proxy
import Retries
import SimCore
import SimRandom
import Spec
import Testing

/// The call-edge policies the proxy runs on the simulator's state machines, over loopback.
@Suite("Proxy policies on the shared call edge", .timeLimit(.minutes(1)))
struct PolicyTests {
    /// A cluster over `backends` with `policy` (the balancer round robin unless the policy says otherwise).
    func cluster(_ backends: [ProxyAddress], _ policy: CallPolicy) -> ProxyConfiguration {
        var configuration = oneCluster(backends)
        configuration.clusters[0].policy = policy
        configuration.threads = 1
        return configuration
    }

    @Test("outlier detection ejects a backend that answers 500 and returns it after the ejection time")
    func ejection() async throws {
        try await withScripted({ text in
            guard requestComplete(text) else { return .wait }
            return .respond("HTTP/1.1 500 Broken\r\nContent-Length: 0\r\n\r\n")
        }) { bad, badAddress in
            try await withBackends(replicas(1)) { good, _ in
                var policy = CallPolicy()
                policy.outlierDetection = try OutlierDetectionConfiguration(
                    interval: .milliseconds(100),
                    baseEjectionTime: .milliseconds(600),
                    maxEjectionPercent: 50,
                    consecutive5xx: 3
                )
                var configuration = cluster([badAddress, good[0]], policy)
                configuration.admin = ProxyAddress(host: "127.0.0.1", port: 0)
                try await withProxy(configuration) { server, port in
                    let client = try RawClient(port: port)
                    // Round robin alternates (from a random start): three of six go to the bad backend, and its
                    // third consecutive 500 ejects it.
                    var statuses: [Int] = []
                    for _ in 0..<6 {
                        client.send(get("/"))
                        statuses.append(client.readResponse()?.status ?? 0)
                    }
                    #expect(statuses.filter { $0 == 500 }.count == 3, "\(statuses)")
                    let sentBefore = bad.requests.count
                    for _ in 0..<20 {
                        client.send(get("/"))
                        #expect(client.readResponse()?.status == 200)
                    }
                    #expect(bad.requests.count == sentBefore, "an ejected backend got requests")
                    let report = try await server.endpoints().get()
                    #expect(report.clusters[0].endpoints[0].ejectedOnLoops == 1)
                    let adminPort = try #require(server.adminAddress?.port)
                    let metrics = try #require(try fetch(port: adminPort, get("/metrics")))
                    #expect(metrics.body.contains("meshsim_proxy_outlier_ejections_total{cluster=\"default\"} 1"))
                    // After the base ejection time, the next sweep returns it.
                    try await Task.sleep(for: .milliseconds(900))
                    for _ in 0..<4 {
                        client.send(get("/"))
                        _ = client.readResponse()
                    }
                    #expect(bad.requests.count > sentBefore, "the backend did not return")
                }
            }
        }
    }

    @Test("an Envoy breaker's max_requests answers 503 beyond it and counts the rejection")
    func envoyBreaker() async throws {
        try await withBackends(replicas(1, serviceTime: "constant:300ms")) { backends, _ in
            var policy = CallPolicy()
            policy.breaker = .envoy(try EnvoyCircuitBreakerThresholds(maxRequests: 2))
            var configuration = cluster(backends, policy)
            configuration.admin = ProxyAddress(host: "127.0.0.1", port: 0)
            try await withProxy(configuration) { server, port in
                let clients = try (0..<4).map { _ in try RawClient(port: port) }
                for client in clients { client.send(get("/")) }
                let statuses = clients.map { $0.readResponse()?.status ?? 0 }.sorted()
                #expect(statuses == [200, 200, 503, 503], "\(statuses)")
                let adminPort = try #require(server.adminAddress?.port)
                let metrics = try #require(try fetch(port: adminPort, get("/metrics")))
                #expect(metrics.body.contains("meshsim_proxy_rejections_total{reason=\"breaker_open\"} 2"))
            }
        }
    }

    @Test("a resilience4j breaker opens on failures and then rejects without asking the backend")
    func resilience4jBreaker() async throws {
        try await withScripted({ text in
            guard requestComplete(text) else { return .wait }
            return .respond("HTTP/1.1 500 Broken\r\nContent-Length: 0\r\n\r\n")
        }) { backend, address in
            var policy = CallPolicy()
            policy.breaker = .resilience4j(
                try Resilience4jCircuitBreakerConfiguration(
                    failureRateThreshold: 50,
                    slidingWindowSize: 4,
                    minimumNumberOfCalls: 4
                )
            )
            var configuration = cluster([address], policy)
            configuration.admin = ProxyAddress(host: "127.0.0.1", port: 0)
            try await withProxy(configuration) { server, port in
                var statuses: [Int] = []
                for _ in 0..<8 {
                    let c = try RawClient(port: port)
                    c.send(get("/"))
                    statuses.append(c.readResponse()?.status ?? 0)
                }
                #expect(statuses == [500, 500, 500, 500, 503, 503, 503, 503], "\(statuses)")
                #expect(backend.requests.count == 4)
                let adminPort = try #require(server.adminAddress?.port)
                let metrics = try #require(try fetch(port: adminPort, get("/metrics")))
                #expect(metrics.body.contains("meshsim_proxy_breaker_opens_total{cluster=\"default\"} 1"))
                // The breaker's state, read from the loop when /metrics and /endpoints are asked for.
                #expect(metrics.body.contains("meshsim_proxy_breaker_state{cluster=\"default\",state=\"open\"} 1"))
                #expect(metrics.body.contains("meshsim_proxy_breaker_state{cluster=\"default\",state=\"closed\"} 0"))
                let endpoints = try #require(try fetch(port: adminPort, get("/endpoints")))
                #expect(
                    endpoints.body.contains(
                        #""breaker":{"closed":0,"disabled":0,"forced_open":0,"half_open":0,"metrics_only":0,"open":1}"#
                    ),
                    "\(endpoints.body)"
                )
            }
        }
    }

    @Test("an adaptive concurrency limit answers 503 beyond it, learns from the answers, and shows its limit")
    func concurrencyLimit() async throws {
        try await withBackends(replicas(1, serviceTime: "constant:300ms", workers: 64)) { backends, _ in
            var configuration = cluster(backends, CallPolicy())
            configuration.clusters[0].concurrencyLimit = .aimd(try AIMDLimit.Configuration())  // limit 20 at first
            configuration.admin = ProxyAddress(host: "127.0.0.1", port: 0)
            try await withProxy(configuration) { server, port in
                var clients: [RawClient] = []
                for _ in 0..<30 {
                    let client = try RawClient(port: port)
                    client.send(get("/"))
                    clients.append(client)
                }
                let statuses = clients.map { $0.readResponse()?.status ?? 0 }
                #expect(statuses.filter { $0 == 200 }.count == 20, "\(statuses)")
                #expect(statuses.filter { $0 == 503 }.count == 10, "\(statuses)")
                let adminPort = try #require(server.adminAddress?.port)
                let metrics = try #require(try fetch(port: adminPort, get("/metrics"))).body
                #expect(metrics.contains("meshsim_proxy_rejections_total{reason=\"concurrency_limited\"} 10"))
                // Twenty successes with the limit in use: AIMD grew it past its start.
                let line = try #require(
                    metrics.split(separator: "\n").first {
                        $0.hasPrefix("meshsim_proxy_concurrency_limit{cluster=\"default\"}")
                    }
                )
                let limit = try #require(Double(line.split(separator: " ").last!))
                #expect(limit > 20, "\(line)")
            }
        }
    }

    @Test("a token bucket rate limit answers 503 once its tokens are spent")
    func rateLimit() async throws {
        try await withBackends(replicas(1)) { backends, _ in
            var policy = CallPolicy()
            policy.rateLimit = .tokenBucket(
                try TokenBucket.Configuration(
                    maxTokens: 5,
                    tokensPerFill: 1,
                    fillInterval: .seconds(60),
                    refill: .timer
                )
            )
            try await withProxy(cluster(backends, policy)) { _, port in
                var statuses: [Int] = []
                for _ in 0..<8 {
                    let c = try RawClient(port: port)
                    c.send(get("/"))
                    statuses.append(c.readResponse()?.status ?? 0)
                }
                #expect(statuses == [200, 200, 200, 200, 200, 503, 503, 503], "\(statuses)")
            }
        }
    }

    @Test("the per-try timeout of the cluster's policy answers 504 and releases the endpoint")
    func perTryTimeout() async throws {
        try await withBackends(replicas(1, serviceTime: "constant:2s")) { backends, _ in
            var policy = CallPolicy()
            policy.timeout = .milliseconds(150)
            try await withProxy(cluster(backends, policy)) { server, port in
                let started = Date()
                let response = try fetch(port: port, get("/"))
                #expect(response?.status == 504)
                #expect(Date().timeIntervalSince(started) < 1.9)  // well before the 2 s answer
                let report = try await server.endpoints().get()
                #expect(report.clusters[0].endpoints[0].active == 0)
            }
        }
    }

    @Test("release_on_timeout false: the client gets 504, the balancer counts the attempt until the answer comes")
    func holdOnTimeout() async throws {
        try await withBackends(replicas(1, serviceTime: "constant:800ms")) { backends, _ in
            var policy = CallPolicy()
            policy.timeout = .milliseconds(150)
            policy.releaseOnTimeout = false
            try await withProxy(cluster(backends, policy)) { server, port in
                let response = try fetch(port: port, get("/"))
                #expect(response?.status == 504)
                let during = try await server.endpoints().get()
                #expect(during.clusters[0].endpoints[0].active == 1)
                try await Task.sleep(for: .milliseconds(1_100))
                let after = try await server.endpoints().get()
                #expect(after.clusters[0].endpoints[0].active == 0)
                // The connection the late answer came on went back to the pool.
                #expect(await server.idleUpstreamConnections() == 1)
            }
        }
    }

    /// A backend that answers 500 to every request, and one that answers 200; `body` gets their addresses.
    func withFailingAndGood<T>(
        _ body: (ScriptedBackend, ProxyAddress, ScriptedBackend, ProxyAddress) async throws -> T
    ) async throws -> T {
        try await withScripted({ text in
            guard requestComplete(text) else { return .wait }
            return .respond("HTTP/1.1 500 Broken\r\nContent-Length: 6\r\n\r\nbroken")
        }) { bad, badAddress in
            try await withScripted({ text in
                guard requestComplete(text) else { return .wait }
                return .respond(ok())
            }) { good, goodAddress in
                try await body(bad, badAddress, good, goodAddress)
            }
        }
    }

    @Test("retries: a 500 is sent again (body included) to the next endpoint, and the client sees the 200")
    func retryOn500() async throws {
        try await withFailingAndGood { bad, badAddress, good, goodAddress in
            var policy = CallPolicy(retries: 1)
            policy.balancer = BalancerSpec(.roundRobin)
            var configuration = cluster([badAddress, goodAddress], policy)
            configuration.admin = ProxyAddress(host: "127.0.0.1", port: 0)
            try await withProxy(configuration) { server, port in
                let client = try RawClient(port: port)
                for i in 0..<6 {
                    client.send("POST /p HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nbody\(i)")
                    let response = client.readResponse()
                    #expect(response?.status == 200, "request \(i): \(response?.status ?? 0)")
                    #expect(response?.body == "hello")
                }
                // Round robin alternates, so after the first request each one meets the failing backend first and
                // is retried on the good one, with its body.
                let failed = bad.requests.count
                #expect(failed == 5 || failed == 6, "\(failed)")
                #expect(good.requests.count == 6)
                for i in 0..<6 { #expect(good.requests.filter { $0.hasSuffix("body\(i)") }.count == 1) }
                let adminPort = try #require(server.adminAddress?.port)
                let metrics = try #require(try fetch(port: adminPort, get("/metrics")))
                #expect(metrics.body.contains("meshsim_proxy_retries_total{cluster=\"default\"} \(failed)"))
            }
        }
    }

    @Test("retries: a refused connection is retried on another endpoint")
    func retryOnConnectFailure() async throws {
        try await withBackends(replicas(1)) { backends, _ in
            var policy = CallPolicy(retries: 2)
            policy.balancer = BalancerSpec(.roundRobin)
            // Port 9 (discard) on loopback refuses the connection.
            let dead = ProxyAddress(host: "127.0.0.1", port: 9)
            try await withProxy(cluster([dead, backends[0]], policy)) { _, port in
                for _ in 0..<4 {
                    let response = try fetch(port: port, get("/"))
                    #expect(response?.status == 200)
                }
            }
        }
    }

    @Test("retries: retry_on without 5xx passes the 500 on; a budget with no room denies the retry")
    func retryConditionsAndBudget() async throws {
        try await withFailingAndGood { bad, badAddress, _, _ in
            var policy = CallPolicy(retries: 1)
            policy.retryOn = [.connectFailure]
            var configuration = cluster([badAddress], policy)
            try await withProxy(configuration) { _, port in
                let response = try fetch(port: port, get("/"))
                #expect(response?.status == 500)
                #expect(response?.body == "broken")
            }
            #expect(bad.requests.count == 1)
            policy.retryOn = [.fiveXX]
            policy.budget = .envoy(budgetPercent: 0, minRetryConcurrency: 0)
            configuration = cluster([badAddress], policy)
            configuration.admin = ProxyAddress(host: "127.0.0.1", port: 0)
            try await withProxy(configuration) { server, port in
                let response = try fetch(port: port, get("/"))
                #expect(response?.status == 500)
                let adminPort = try #require(server.adminAddress?.port)
                let metrics = try #require(try fetch(port: adminPort, get("/metrics")))
                #expect(metrics.body.contains("meshsim_proxy_retries_denied_total{cluster=\"default\"} 1"))
            }
            #expect(bad.requests.count == 2)
        }
    }

    @Test("retries wait out the backoff; attempts are bounded by retries")
    func backoffAndBound() async throws {
        try await withFailingAndGood { bad, badAddress, _, _ in
            var policy = CallPolicy(retries: 2)
            policy.backoff = try Backoff(kind: .exponential, base: .milliseconds(100), cap: .seconds(1))
            try await withProxy(cluster([badAddress], policy)) { _, port in
                let started = Date()
                let response = try fetch(port: port, get("/"))
                let elapsed = Date().timeIntervalSince(started)
                #expect(response?.status == 500)
                // Three attempts, waits of 100 ms and 200 ms between them.
                #expect(bad.requests.count == 3)
                #expect(elapsed >= 0.29, "\(elapsed) s")
            }
        }
    }

    @Test("a deadline bounds the request with its retries, and its remaining time goes to the backend in a header")
    func deadlines() async throws {
        try await withScripted({ text in
            guard requestComplete(text) else { return .wait }
            return text.contains("/slow") ? .wait : .respond(ok())
        }) { backend, address in
            var policy = CallPolicy(retries: 5)
            policy.timeout = .milliseconds(200)
            policy.deadline = .milliseconds(450)
            try await withProxy(cluster([address], policy)) { _, port in
                // Fast: the backend sees the remaining time (at most the deadline).
                #expect(try fetch(port: port, get("/"))?.status == 200)
                let line = try #require(
                    backend.requests.last?.split(separator: "\r\n").first {
                        $0.lowercased().hasPrefix("x-meshsim-deadline-ms:")
                    }
                )
                let remaining = try #require(Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)))
                #expect(remaining > 300 && remaining <= 450, "\(line)")
                // Slow: per-try timeouts of 200 ms are retried until the deadline, then 504.
                let started = Date()
                #expect(try fetch(port: port, get("/slow"))?.status == 504)
                let elapsed = Date().timeIntervalSince(started)
                #expect(elapsed >= 0.4 && elapsed < 1.0, "\(elapsed) s")
                // A client's own, shorter deadline wins (passed on as what is left of it); an expired one fails at
                // once, without an attempt.
                #expect(try fetch(port: port, get("/", extra: "X-Meshsim-Deadline-Ms: 100\r\n"))?.status == 200)
                let passed = try #require(
                    backend.requests.last?.split(separator: "\r\n").first {
                        $0.lowercased().hasPrefix("x-meshsim-deadline-ms:")
                    }
                )
                let left = try #require(Int(passed.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)))
                #expect(left <= 100 && left > 50, "\(passed)")
                #expect(backend.requests.last?.lowercased().components(separatedBy: "x-meshsim-deadline-ms").count == 2)
                // A deadline the proxy cannot read is refused, never passed on or ignored.
                for bad in ["-5", "abc", "", "99999999999999999999", "1.5"] {
                    let refused = try fetch(port: port, get("/", extra: "x-meshsim-deadline-ms: \(bad)\r\n"))
                    #expect(refused?.status == 400, "x-meshsim-deadline-ms: \(bad)")
                }
                let before = backend.requests.count
                let expired = try fetch(port: port, get("/", extra: "x-meshsim-deadline-ms: 0\r\n"))
                #expect(expired?.status == 504)
                #expect(backend.requests.count == before)
            }
        }
    }

    @Test("active health checks take a backend whose health endpoint fails out of the view, and bring it back")
    func activeHealthChecks() async throws {
        final class Switch: @unchecked Sendable {
            private let lock = NSLock()
            private var on = false
            var value: Bool {
                get { lock.withLock { on } }
                set { lock.withLock { on = newValue } }
            }
        }
        let failing = Switch()
        try await withScripted({ text in
            guard requestComplete(text) else { return .wait }
            if text.hasPrefix("GET /health") {
                return failing.value
                    ? .respondAndClose("HTTP/1.1 503 No\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    : .respondAndClose("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            }
            return .respond(ok("a"))
        }) { a, aAddress in
            try await withScripted({ text in
                guard requestComplete(text) else { return .wait }
                return text.hasPrefix("GET /health")
                    ? .respondAndClose("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    : .respond(ok("b"))
            }) { _, bAddress in
                var policy = CallPolicy()
                policy.healthCheck = try ActiveHealthCheckConfiguration(
                    interval: .milliseconds(100),
                    timeout: .milliseconds(200),
                    unhealthyThreshold: 2,
                    healthyThreshold: 2
                )
                var configuration = cluster([aAddress, bAddress], policy)
                configuration.admin = ProxyAddress(host: "127.0.0.1", port: 0)
                try await withProxy(configuration) { server, port in
                    func bodies(_ n: Int) throws -> [String] {
                        try (0..<n).map { _ in try fetch(port: port, get("/"))?.body ?? "" }
                    }
                    try await Task.sleep(for: .milliseconds(300))
                    #expect(Set(try bodies(6)) == ["a", "b"])
                    failing.value = true
                    try await Task.sleep(for: .milliseconds(600))
                    #expect(Set(try bodies(6)) == ["b"], "the failing backend is still in the view")
                    failing.value = false
                    try await Task.sleep(for: .milliseconds(600))
                    #expect(Set(try bodies(6)) == ["a", "b"], "the backend did not come back")
                    let adminPort = try #require(server.adminAddress?.port)
                    let metrics = try #require(try fetch(port: adminPort, get("/metrics")))
                    #expect(
                        metrics.body.contains(
                            "meshsim_proxy_health_checks_total{cluster=\"default\",result=\"failed\"}"
                        )
                    )
                    _ = a
                }
            }
        }
    }

    @Test("zone-aware routing keeps traffic in the proxy's zone when that zone's share of backends allows it")
    func zoneAware() async throws {
        try await withBackends(replicas(2)) { backends, _ in
            var policy = CallPolicy()
            policy.zoneAware = try ZoneAwareRouting(routingEnabledPercent: 100, minClusterSize: 1)
            for zone in 0..<2 {
                var configuration = cluster(backends, policy)
                configuration.clusters[0].zones = [0, 1]
                configuration.clusters[0].localZone = zone
                configuration.clusters[0].callersByZone = [1, 1]
                configuration.admin = ProxyAddress(host: "127.0.0.1", port: 0)
                try await withProxy(configuration) { server, port in
                    for _ in 0..<20 { _ = try fetch(port: port, get("/")) }
                    let report = try await server.endpoints().get()
                    #expect(report.clusters[0].endpoints.map(\.requests) == (zone == 0 ? [20, 0] : [0, 20]))
                }
            }
        }
    }

    @Test("nginx passive health: a peer's failures make it unavailable for fail_timeout, then it is taken back")
    func nginxPassiveHealth() async throws {
        try await withFailingAndGood { bad, badAddress, _, goodAddress in
            var policy = CallPolicy()
            policy.passiveHealth = .nginx(
                try NginxPassiveHealthConfiguration(
                    maxFails: 1,
                    failTimeout: .milliseconds(500),
                    failureStatuses: .http500
                )
            )
            var configuration = cluster([badAddress, goodAddress], policy)
            configuration.admin = ProxyAddress(host: "127.0.0.1", port: 0)
            try await withProxy(configuration) { server, port in
                var statuses: [Int] = []
                for _ in 0..<10 { statuses.append(try fetch(port: port, get("/"))?.status ?? 0) }
                // One failure (max_fails 1) takes the failing peer out for 500 ms: one 500, then only 200s.
                #expect(statuses.filter { $0 == 500 }.count == 1, "\(statuses)")
                let adminPort = try #require(server.adminAddress?.port)
                let metrics = try #require(try fetch(port: adminPort, get("/metrics")))
                #expect(metrics.body.contains("meshsim_proxy_outlier_ejections_total{cluster=\"default\"} 1"))
                try await Task.sleep(for: .milliseconds(700))
                let before = bad.requests.count
                for _ in 0..<4 { _ = try fetch(port: port, get("/")) }
                #expect(bad.requests.count > before, "the peer was not taken back")
            }
        }
    }
}

@Suite("Proxy configuration from a scenario")
struct ScenarioConfigurationTests {
    func spec(_ routing: Routing, policy: CallPolicy = CallPolicy()) -> MeshSpec {
        var spec = MeshSpec(name: "s", duration: .seconds(1))
        spec.services = [
            ServiceSpec(name: "a", replicas: [ReplicaSpec(), ReplicaSpec(weight: 3)], serviceTime: .constant(1)),
            ServiceSpec(
                name: "b",
                replicas: [ReplicaSpec(), ReplicaSpec(initiallyActive: false), ReplicaSpec()],
                serviceTime: .constant(1)
            ),
        ]
        var client = ClientSpec(
            name: "users",
            target: 0,
            load: .open(arrival: .poisson, schedule: [RatePoint(at: .zero, rate: 1)]),
            policy: policy
        )
        client.routing = routing
        spec.clients = [client]
        return spec
    }

    let listen = ProxyAddress(host: "127.0.0.1", port: 0)

    @Test("a direct client: one cluster on its target's running replicas at serve's ports, with its policy")
    func direct() throws {
        var policy = CallPolicy(balancer: BalancerSpec(.leastRequest), timeout: .milliseconds(250))
        policy.rateLimit = .gcra(try GCRALimiter.Configuration(maxBurst: 10, count: 100, period: .seconds(1)))
        var s = spec(.direct, policy: policy)
        s.clients[0].target = 1
        let configuration = try ProxyConfiguration(spec: s, client: 0, backendPort: 9000, listen: listen)
        #expect(ProxyConfiguration.servePorts(of: s, base: 9000) == [[9000, 9001], [9002, 9003, 9004]])
        #expect(configuration.clusters.count == 1)
        #expect(configuration.clusters[0].name == "b")
        #expect(configuration.clusters[0].backends.map(\.port) == [9002, 9004])  // the spare is left out
        #expect(configuration.clusters[0].policy == policy)
        #expect(configuration.routes == [ProxyRoute(targets: [(cluster: 0, weight: 1)])])
        #expect(configuration.validate().isEmpty)
    }

    @Test("a split becomes a weighted route over one cluster per side; routes keep host, prefix and order")
    func splitsAndRoutes() throws {
        let split = try ProxyConfiguration(
            spec: spec(.split([RouteSpec(target: 0, weight: 9), RouteSpec(target: 1, weight: 1)])),
            client: 0,
            backendPort: 9000,
            listen: listen
        )
        #expect(split.clusters.map(\.name) == ["split0-a", "split1-b"])
        #expect(split.clusters[0].weights == [1, 3])
        #expect(split.routes == [ProxyRoute(targets: [(cluster: 0, weight: 9), (cluster: 1, weight: 1)])])
        let routed = try ProxyConfiguration(
            spec: spec(.routes([RouteSpec(target: 1, pathPrefix: "/b"), RouteSpec(target: 0, host: "a.example")])),
            client: 0,
            backendPort: 9000,
            listen: listen
        )
        #expect(
            routed.routes == [
                ProxyRoute(pathPrefix: "/b", targets: [(cluster: 0, weight: 1)]),
                ProxyRoute(host: "a.example", targets: [(cluster: 1, weight: 1)]),
            ]
        )
    }
}
