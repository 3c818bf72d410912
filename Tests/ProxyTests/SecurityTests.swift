import Foundation
import Live
import MeshTLS
import Proxy
import Spec
import Testing

/// Mutual TLS between meshsim proxy, `serve`'s backends and another proxy, and authorization, over loopback.
@Suite("Mesh security: mutual TLS and authorization", .timeLimit(.minutes(1)))
struct SecurityTests {
    /// Credentials for the workloads of these tests.
    static let credentials = try! MeshCredentials.generate(names: ["web", "api", "db"])

    /// Backends of service `api` serving mutual TLS, with `rules`.
    func apiBackends(_ count: Int, rules: [AuthorizationRule]? = nil) throws -> ([BackendReplica], BackendSecurity) {
        let replicas = replicas(count).map {
            var replica = $0
            replica.service = "api"
            return replica
        }
        let security = try BackendSecurity(
            credentials: Self.credentials,
            services: ["api"],
            authorization: rules.map { AuthorizationPolicy(rules: $0) }
        )
        return (replicas, security)
    }

    /// A proxy calling `backends` (service `service`) with web's identity over mutual TLS.
    func webProxy(_ backends: [ProxyAddress], service: String?) -> ProxyConfiguration {
        var configuration = oneCluster(backends)
        configuration.threads = 1
        configuration.clusters[0].service = service
        configuration.tls = ProxyTLS(credentials: Self.credentials, identity: "web")
        return configuration
    }

    func counter(_ text: String, _ series: String) -> Int? {
        for line in text.split(separator: "\n") where line.hasPrefix(series + " ") {
            return Int(Double(line.split(separator: " ").last!)!)
        }
        return nil
    }

    @Test("the proxy calls serve over mutual TLS: one handshake per kept-alive connection, the right identity")
    func upstreamMutualTLS() async throws {
        let (replicas, security) = try apiBackends(1)
        try await withBackends(replicas, security: security) { backends, _ in
            try await withProxy(webProxy(backends, service: "api")) { server, port in
                let client = try RawClient(port: port)
                for _ in 0..<20 {
                    client.send(get("/api"))
                    let response = try #require(client.readResponse())
                    #expect(response.status == 200)
                }
                let metrics = server.metricsText()
                #expect(counter(metrics, #"meshsim_proxy_tls_handshakes_total{side="upstream",result="ok"}"#) == 1)
                #expect(counter(metrics, #"meshsim_proxy_tls_handshakes_total{side="upstream",result="failed"}"#) == 0)
            }
        }
    }

    @Test("a backend whose certificate names another service is refused: 502, and the handshake counts as failed")
    func wrongIdentity() async throws {
        let (replicas, security) = try apiBackends(1)
        try await withBackends(replicas, security: security) { backends, _ in
            try await withProxy(webProxy(backends, service: "db")) { server, port in
                let response = try #require(try fetch(port: port, get("/api")))
                #expect(response.status == 502)
                let metrics = server.metricsText()
                #expect(counter(metrics, #"meshsim_proxy_tls_handshakes_total{side="upstream",result="failed"}"#) == 1)
            }
        }
    }

    @Test("a plain-HTTP caller cannot reach a mutual-TLS backend")
    func plainCallerRefused() async throws {
        let (replicas, security) = try apiBackends(1)
        try await withBackends(replicas, security: security) { backends, _ in
            var configuration = oneCluster(backends)
            configuration.threads = 1
            try await withProxy(configuration) { _, port in
                let response = try #require(try fetch(port: port, get("/api")))
                #expect(response.status == 502)
            }
        }
    }

    @Test("serve denies what the rules deny (403 before any work) and allows the rest")
    func backendAuthorization() async throws {
        let rules = [
            AuthorizationRule(action: .allow, from: ["web"], to: "api", paths: ["/api"]),
            AuthorizationRule(action: .deny, from: ["web"], to: "api", paths: ["/api/admin"]),
        ]
        let (replicas, security) = try apiBackends(2, rules: rules)
        try await withBackends(replicas, security: security) { backends, server in
            try await withProxy(webProxy(backends, service: "api")) { _, port in
                let client = try RawClient(port: port)
                var statuses: [String: Int] = [:]
                for path in ["/api/users", "/api/admin/keys", "/other", "/api"] {
                    client.send(get(path))
                    statuses[path] = try #require(client.readResponse()).status
                }
                #expect(statuses == ["/api/users": 200, "/api/admin/keys": 403, "/other": 403, "/api": 200])
            }
            #expect(await server.deniedCount() == 2)
        }
    }

    @Test("proxy to proxy: the back proxy requires mutual TLS and enforces the rules with the caller's identity")
    func proxyToProxy() async throws {
        try await withBackends(replicas(1)) { backends, _ in
            // api's own proxy: a mutual-TLS listener with the rules, plain HTTP to its local backend.
            var back = oneCluster(backends)
            back.threads = 1
            back.clusters[0].service = "api"
            back.tls = ProxyTLS(
                credentials: Self.credentials,
                identity: "api",
                upstream: false,
                listener: true,
                authorization: AuthorizationPolicy(rules: [
                    AuthorizationRule(action: .allow, from: ["web"], to: "api", paths: ["/public"])
                ])
            )
            try await withProxy(back) { backServer, backPort in
                let backAddress = ProxyAddress(host: "127.0.0.1", port: backPort)
                try await withProxy(webProxy([backAddress], service: "api")) { _, port in
                    let client = try RawClient(port: port)
                    client.send(get("/public/page"))
                    #expect(try #require(client.readResponse()).status == 200)
                    let denied = try #require(try fetch(port: port, get("/private")))
                    #expect(denied.status == 403)
                }
                // A caller without a certificate never gets a request through the back proxy.
                let plain = try RawClient(port: backPort)
                plain.send(get("/public/page"))
                #expect(plain.readResponse() == nil)
                let metrics = backServer.metricsText()
                #expect(counter(metrics, #"meshsim_proxy_authz_denials_total{cluster="default"}"#) == 1)
                #expect(
                    (counter(metrics, #"meshsim_proxy_tls_handshakes_total{side="downstream",result="ok"}"#) ?? 0) >= 1
                )
                #expect(
                    counter(metrics, #"meshsim_proxy_tls_handshakes_total{side="downstream",result="failed"}"#) == 1
                )
            }
        }
    }

    @Test("a rule set on a plain listener is refused: callers there have no identity")
    func rulesNeedTLSListener() throws {
        var configuration = oneCluster([ProxyAddress(host: "127.0.0.1", port: 1)])
        configuration.tls = ProxyTLS(
            credentials: Self.credentials,
            identity: "web",
            authorization: AuthorizationPolicy(rules: [AuthorizationRule(action: .deny, to: "api")])
        )
        #expect(configuration.validate().contains { $0.contains("mutual-TLS listener") })
        configuration.tls = ProxyTLS(credentials: Self.credentials, identity: "nobody")
        #expect(configuration.validate().contains { $0.contains("no identity 'nobody'") })
    }
}
