import Breakers
import Foundation
import Health
import Live
import NIOCore
import Proxy
import Retries
import SharedModel
import SimCore
import SimRandom
import Spec
import Testing

/// The value of the series `series` (its name with labels, as the metrics text writes it), or 0 when absent.
func metric(_ text: String, _ series: String) -> Int {
    for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
        return Int(Double(line.dropFirst(series.count + 1).trimmingCharacters(in: .whitespaces)) ?? 0)
    }
    return 0
}

/// A switch that tests flip while backends read it.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var on = false
    var value: Bool {
        get { lock.withLock { on } }
        set { lock.withLock { on = newValue } }
    }
}

/// Hedging (gRFC A6) and HAProxy server health (`check`, `observe`, `error-limit`, `on-error`) in `meshsim proxy`,
/// over loopback.
@Suite("Proxy hedging and HAProxy health", .timeLimit(.minutes(1)))
struct HedgingAndHAProxyTests {
    /// A one-loop cluster over `backends` with `policy`, and an admin listener.
    func cluster(_ backends: [ProxyAddress], _ policy: CallPolicy) -> ProxyConfiguration {
        var configuration = oneCluster(backends)
        configuration.clusters[0].policy = policy
        configuration.threads = 1
        configuration.admin = ProxyAddress(host: "127.0.0.1", port: 0)
        return configuration
    }

    /// The proxy's metrics text.
    func metrics(_ server: ProxyServer) throws -> String {
        let port = try #require(server.adminAddress?.port)
        return try #require(try fetch(port: port, get("/metrics"))).body
    }

    let hedges = "meshsim_proxy_hedges_total{cluster=\"default\"}"
    let hedgesWon = "meshsim_proxy_hedges_won_total{cluster=\"default\"}"

    @Test("hedging: a request picked onto a slow backend is answered by the hedge to the fast one")
    func hedgeAnswersSlowRequests() async throws {
        let slow = BackendReplica(
            service: "test",
            index: 0,
            port: 0,
            workers: 64,
            serviceTime: try Distribution.parse("constant:400ms")
        )
        let fast = BackendReplica(
            service: "test",
            index: 1,
            port: 0,
            workers: 64,
            serviceTime: try Distribution.parse("constant:0ms")
        )
        try await withBackends([slow, fast]) { backends, _ in
            var policy = CallPolicy()
            policy.hedging = try HedgingSpec(delay: .milliseconds(60), maxAttempts: 2)
            try await withProxy(cluster(backends, policy)) { server, port in
                let count = 6
                var latencies: [Double] = []
                for _ in 0..<count {
                    let started = Date()
                    let response = try fetch(port: port, get("/"))
                    latencies.append(Date().timeIntervalSince(started))
                    #expect(response?.status == 200)
                }
                // Every request picked onto the slow backend was hedged to the fast one after 60 ms, and the hedge
                // won: no client waited for the 400 ms answer.
                #expect(latencies.allSatisfy { $0 < 0.38 }, "\(latencies)")
                let report = try await server.endpoints().get()
                let onSlow = report.clusters[0].endpoints[0].requests
                let onFast = report.clusters[0].endpoints[1].requests
                // Round robin: the hedge takes the fast backend's turn, so after the first request every request
                // starts on the slow one.
                #expect(onSlow >= count - 1 && onSlow <= count, "\(onSlow)")
                #expect(onFast == count)
                let text = try metrics(server)
                #expect(metric(text, hedges) == onSlow, "\(text)")
                #expect(metric(text, hedgesWon) == onSlow)
                #expect(metric(text, "meshsim_proxy_retries_total{cluster=\"default\"}") == 0)
                // The losers were cancelled: nothing is counted as active any more.
                #expect(report.clusters[0].endpoints.map(\.active) == [0, 0])
                let cancelled = metric(
                    text,
                    "meshsim_proxy_requests_total{cluster=\"default\",upstream=\"\(backends[0])\",outcome=\"cancelled\"}"
                )
                #expect(cancelled == onSlow)
            }
        }
    }

    @Test("hedging: the loser's upstream connection is closed and the breaker and balancer let go of it")
    func loserIsCancelled() async throws {
        try await withScripted({ _ in .wait }) { silent, silentAddress in
            try await withScripted({ text in
                guard requestComplete(text) else { return .wait }
                return .respond(ok("fast"))
            }) { _, fastAddress in
                var policy = CallPolicy()
                policy.hedging = try HedgingSpec(delay: .milliseconds(40), maxAttempts: 2)
                // Two attempts may be out at once: a loser the breaker kept counting would refuse the next hedge.
                policy.breaker = .envoy(try EnvoyCircuitBreakerThresholds(maxRequests: 2))
                try await withProxy(cluster([silentAddress, fastAddress], policy)) { server, port in
                    for _ in 0..<8 {
                        let response = try fetch(port: port, get("/"))
                        #expect(response?.status == 200)
                        #expect(response?.body == "fast")
                    }
                    let report = try await server.endpoints().get()
                    let onSilent = report.clusters[0].endpoints[0].requests
                    // Round robin: the hedge takes the fast backend's turn, so after the first request every
                    // request starts on the silent one.
                    #expect(onSilent >= 7, "\(onSilent)")
                    let text = try metrics(server)
                    #expect(metric(text, hedges) == onSilent)
                    #expect(metric(text, hedgesWon) == onSilent)
                    #expect(metric(text, "meshsim_proxy_rejections_total{reason=\"breaker_open\"}") == 0)
                    #expect(report.clusters[0].endpoints.map(\.active) == [0, 0])
                    // Every connection the silent backend got was closed by the proxy when its attempt lost.
                    #expect(await silent.wait { silent.closed == silent.opened }, "\(silent.closed)/\(silent.opened)")
                    #expect(silent.opened == onSilent)
                }
            }
        }
    }

    @Test("hedging: a hedged attempt answered 500 (retry_on 5xx) sends the next hedge at once")
    func failedHedgeSendsNextAtOnce() async throws {
        try await withScripted({ _ in .wait }) { _, silentAddress in
            try await withFailingAndGood { bad, badAddress, good, goodAddress in
                var policy = CallPolicy()
                policy.retryOn = [.fiveXX]
                policy.hedging = try HedgingSpec(delay: .milliseconds(300), maxAttempts: 3)
                let configuration = cluster([silentAddress, badAddress, goodAddress], policy)
                try await withProxy(configuration) { server, port in
                    // Round robin over silent, failing, good: after the first request each one starts on the silent
                    // backend, is hedged after 300 ms to the failing one, whose 500 sends the third attempt to the
                    // good one at once instead of after another 300 ms.
                    #expect(try fetch(port: port, get("/"))?.status == 200)
                    let before = try metrics(server)
                    let badBefore = bad.requests.count
                    let count = 3
                    for _ in 0..<count {
                        let started = Date()
                        let response = try fetch(port: port, get("/"))
                        let elapsed = Date().timeIntervalSince(started)
                        #expect(response?.status == 200)
                        #expect(response?.body == "hello")
                        #expect(elapsed >= 0.29 && elapsed < 0.58, "\(elapsed) s")
                    }
                    let after = try metrics(server)
                    #expect(metric(after, hedges) - metric(before, hedges) == 2 * count)
                    #expect(metric(after, hedgesWon) - metric(before, hedgesWon) == count)
                    #expect(bad.requests.count - badBefore == count)
                    #expect(good.requests.count >= count)
                    let report = try await server.endpoints().get()
                    #expect(report.clusters[0].endpoints.map(\.active) == [0, 0, 0])
                }
            }
        }
    }

    @Test("hedging: a failed only attempt is hedged at once when more attempts are allowed (afterFailure)")
    func failedOnlyAttemptHedges() async throws {
        try await withFailingAndGood { bad, badAddress, good, goodAddress in
            var policy = CallPolicy()
            policy.hedging = try HedgingSpec(delay: .seconds(5), maxAttempts: 2)
            try await withProxy(cluster([badAddress, goodAddress], policy)) { server, port in
                for _ in 0..<4 {
                    let started = Date()
                    #expect(try fetch(port: port, get("/"))?.status == 200)
                    #expect(Date().timeIntervalSince(started) < 1)
                }
                let text = try metrics(server)
                #expect(metric(text, hedges) == bad.requests.count)
                #expect(metric(text, hedgesWon) == bad.requests.count)
                #expect(bad.requests.count >= 1 && good.requests.count == 4)
            }
        }
    }

    /// A backend that answers 500 to every request, and one that answers 200; `body` gets their addresses.
    func withFailingAndGood<T>(
        _ body: (ScriptedBackend, ProxyAddress, ScriptedBackend, ProxyAddress) async throws -> T
    ) async throws -> T {
        try await withScripted({ text in
            guard requestComplete(text) else { return .wait }
            if text.hasPrefix("GET /health") {
                return .respondAndClose("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            }
            return .respond("HTTP/1.1 500 Broken\r\nContent-Length: 6\r\n\r\nbroken")
        }) { bad, badAddress in
            try await withScripted({ text in
                guard requestComplete(text) else { return .wait }
                if text.hasPrefix("GET /health") {
                    return .respondAndClose("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                }
                return .respond(ok())
            }) { good, goodAddress in
                try await body(bad, badAddress, good, goodAddress)
            }
        }
    }

    /// Polls the proxy's endpoints report until `condition` holds (at most `seconds`).
    func waitFor(
        _ server: ProxyServer,
        seconds: Double = 3,
        _ condition: (EndpointsReport) -> Bool
    ) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition(try await server.endpoints().get()) { return true }
            try await Task.sleep(for: .milliseconds(5))
        }
        return false
    }

    @Test("HAProxy checks mark a backend down after fall failed checks and up after rise passed ones")
    func haproxyChecks() async throws {
        let failing = Flag()
        try await withScripted({ text in
            guard requestComplete(text) else { return .wait }
            if text.hasPrefix("GET /health") {
                return failing.value
                    ? .respondAndClose("HTTP/1.1 500 No\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    : .respondAndClose("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            }
            return .respond(ok("a"))
        }) { _, aAddress in
            try await withScripted({ text in
                guard requestComplete(text) else { return .wait }
                return text.hasPrefix("GET /health")
                    ? .respondAndClose("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    : .respond(ok("b"))
            }) { _, bAddress in
                var policy = CallPolicy()
                policy.passiveHealth = .haproxy(
                    try HAProxyServerHealthConfiguration(inter: .milliseconds(150), fall: 3, rise: 2)
                )
                try await withProxy(cluster([aAddress, bAddress], policy)) { server, port in
                    let failed = "meshsim_proxy_health_checks_total{cluster=\"default\",result=\"failed\"}"
                    let passed = "meshsim_proxy_health_checks_total{cluster=\"default\",result=\"passed\"}"
                    // The first checks pass (each endpoint fully up: `fall` failures to go down).
                    try await Task.sleep(for: .milliseconds(250))
                    #expect(
                        Set(try (0..<6).map { _ in try fetch(port: port, get("/"))?.body ?? "" }) == ["a", "b"]
                    )
                    failing.value = true
                    // While it is still up, fewer than `fall` checks have failed; once it is down, at least `fall`
                    // have (the count is read before the state while up, after it once down, so a check ending in
                    // between cannot make either wrong).
                    var failedWhenDown: Int?
                    let deadline = Date().addingTimeInterval(3)
                    while Date() < deadline {
                        let before = metric(try metrics(server), failed)
                        if try await server.endpoints().get().clusters[0].endpoints[0].downOnLoops == 1 {
                            failedWhenDown = metric(try metrics(server), failed)
                            break
                        }
                        #expect(before <= 2, "still up after \(before) failed checks")
                        try await Task.sleep(for: .milliseconds(5))
                    }
                    let downAt = try #require(failedWhenDown, "never marked down")
                    #expect(downAt >= 3)
                    #expect(Set(try (0..<6).map { _ in try fetch(port: port, get("/"))?.body ?? "" }) == ["b"])
                    let passedWhileDown = metric(try metrics(server), passed)
                    failing.value = false
                    #expect(try await waitFor(server) { $0.clusters[0].endpoints[0].downOnLoops == 0 })
                    // Back after `rise` passed checks of it (b's checks pass meanwhile too); one ejection.
                    let text = try metrics(server)
                    #expect(metric(text, "meshsim_proxy_outlier_ejections_total{cluster=\"default\"}") == 1)
                    #expect(metric(text, passed) - passedWhileDown >= 2)
                    #expect(
                        Set(try (0..<6).map { _ in try fetch(port: port, get("/"))?.body ?? "" }) == ["a", "b"]
                    )
                }
            }
        }
    }

    @Test("HAProxy observe layer7: error-limit 500s on traffic mark a backend down (on-error mark-down)")
    func haproxyObserveMarksDown() async throws {
        try await withFailingAndGood { bad, badAddress, _, goodAddress in
            var policy = CallPolicy()
            policy.passiveHealth = .haproxy(
                try HAProxyServerHealthConfiguration(
                    inter: .seconds(30),
                    fall: 3,
                    rise: 2,
                    observe: .layer7,
                    errorLimit: 3,
                    onError: .markDown
                )
            )
            try await withProxy(cluster([badAddress, goodAddress], policy)) { server, port in
                var statuses: [Int] = []
                for _ in 0..<12 { statuses.append(try fetch(port: port, get("/"))?.status ?? 0) }
                // Three consecutive errors on the failing backend mark it down at once; then only 200s.
                #expect(statuses.filter { $0 == 500 }.count == 3, "\(statuses)")
                #expect(Array(statuses.suffix(6)) == Array(repeating: 200, count: 6), "\(statuses)")
                let report = try await server.endpoints().get()
                #expect(report.clusters[0].endpoints.map(\.downOnLoops) == [1, 0])
                #expect(report.clusters[0].endpoints[0].ejectedOnLoops == 0)
                let text = try metrics(server)
                #expect(metric(text, "meshsim_proxy_outlier_ejections_total{cluster=\"default\"}") == 1)
                // `inter` is 30 s and no `fastinter`: the next check is far off, so it stays down.
                try await Task.sleep(for: .milliseconds(300))
                let before = bad.requests.count
                for _ in 0..<4 { _ = try fetch(port: port, get("/")) }
                #expect(bad.requests.count == before)
            }
        }
    }

    @Test("HAProxy on-error with fastinter brings the next check forward, and passing checks bring it back")
    func haproxyFastinter() async throws {
        try await withFailingAndGood { bad, badAddress, _, goodAddress in
            var policy = CallPolicy()
            policy.passiveHealth = .haproxy(
                try HAProxyServerHealthConfiguration(
                    inter: .seconds(30),
                    fastinter: .milliseconds(100),
                    fall: 3,
                    rise: 2,
                    observe: .layer7,
                    errorLimit: 2,
                    onError: .markDown
                )
            )
            try await withProxy(cluster([badAddress, goodAddress], policy)) { server, port in
                // The first checks (due at start) end before any traffic.
                try await Task.sleep(for: .milliseconds(100))
                var statuses: [Int] = []
                for _ in 0..<8 { statuses.append(try fetch(port: port, get("/"))?.status ?? 0) }
                #expect(statuses.filter { $0 == 500 }.count == 2, "\(statuses)")
                let report = try await server.endpoints().get()
                #expect(report.clusters[0].endpoints[0].downOnLoops == 1)
                // The health path passes: checks every `fastinter` (not `inter`) take it back after `rise` of them.
                #expect(try await waitFor(server, seconds: 2) { $0.clusters[0].endpoints[0].downOnLoops == 0 })
                let passed = "meshsim_proxy_health_checks_total{cluster=\"default\",result=\"passed\"}"
                // Two first checks at start, then the two brought-forward ones of the failing backend.
                #expect(metric(try metrics(server), passed) == 4)
                _ = bad
            }
        }
    }

    @Test("CallEdge's HAProxy decisions with manual time: checks, observed errors, the view and the next check")
    func callEdgeHAProxy() throws {
        var policy = CallPolicy()
        let configuration = try HAProxyServerHealthConfiguration(
            inter: .seconds(2),
            fastinter: .milliseconds(500),
            downinter: .seconds(5),
            fall: 2,
            rise: 2,
            observe: .layer7,
            errorLimit: 2,
            onError: .failCheck
        )
        policy.passiveHealth = .haproxy(configuration)
        var edge = CallEdge(
            target: 0,
            policy: policy,
            replicaZones: [0, 0],
            zoneCount: 1,
            stream: { RandomStream(seed: 1, replication: 0, key: $0) },
            key: "test"
        )
        edge.setView([EndpointState(index: 0, weight: 1), EndpointState(index: 1, weight: 1)], at: .zero)
        let t0 = SimInstant.zero
        // Starts at `rise` (up, one failure from down); a pass makes it fully up, next check after `inter`.
        var (change, next) = edge.recordHAProxyCheck(host: 0, result: .passed(responseTime: .zero), at: t0)
        #expect(change == nil)
        #expect(next == t0 + .seconds(2))
        // Two consecutive observed 500s: `fail-check` once (still up: fall 2), next check brought to `fastinter`.
        let t1 = t0 + .milliseconds(100)
        var results: [HAProxyErrorLimitEvent?] = []
        for result: RequestResult in [.httpError(status: 500), .success, .httpError(status: 500)] {
            results.append(edge.observeHAProxy(host: 0, result: result, at: t1))
        }
        // A success resets the count: no event yet.
        #expect(results == [nil, nil, nil])
        let limit = edge.observeHAProxy(host: 0, result: .httpError(status: 503), at: t1)
        let event = try #require(limit)
        #expect(event.transition == nil)
        #expect(event.nextCheck == t1 + .milliseconds(500))
        #expect(edge.endpoints.count == 2)
        // Two more errors: the second failed check marks it down, and the view drops it.
        let first = edge.observeHAProxy(host: 0, result: .gatewayFailure, at: t1)
        #expect(first == nil)
        let second = edge.observeHAProxy(host: 0, result: .gatewayFailure, at: t1)
        let down = try #require(second)
        #expect(down.transition == .becameUnhealthy(host: 0))
        #expect(edge.endpoints.map(\.index) == [1])
        // While down, checks follow `downinter`; `rise` passes bring it back into the view.
        (change, next) = edge.recordHAProxyCheck(host: 0, result: .failed, at: t1 + .seconds(1))
        #expect(change == nil)
        #expect(next == t1 + .seconds(6))
        (change, next) = edge.recordHAProxyCheck(host: 0, result: .passed(responseTime: .zero), at: t1 + .seconds(6))
        #expect(change == nil)
        #expect(next == t1 + .seconds(6) + .milliseconds(500))
        #expect(edge.endpoints.map(\.index) == [1])
        (change, _) = edge.recordHAProxyCheck(host: 0, result: .passed(responseTime: .zero), at: t1 + .seconds(7))
        #expect(change == .becameHealthy(host: 0))
        #expect(edge.endpoints.map(\.index) == [0, 1])
    }

    @Test("hedging and HAProxy passive health are run, not refused")
    func accepted() throws {
        var policy = CallPolicy(retries: 2)
        policy.hedging = try HedgingSpec(delay: .milliseconds(10), maxAttempts: 2)
        policy.passiveHealth = .haproxy(try HAProxyServerHealthConfiguration())
        #expect(ProxyConfiguration.unsupported(policy).isEmpty)
        let configuration = cluster([ProxyAddress(host: "127.0.0.1", port: 9000)], policy)
        #expect(configuration.validate().isEmpty)
    }
}
