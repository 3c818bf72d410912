import Foundation
import NIOCore
import Proxy
import SimRandom
import Spec
import Testing

@Suite("Proxy routing", .timeLimit(.minutes(1)))
struct RoutingTests {
    static let table = RouteTable([
        ProxyRoute(host: "api.example", pathPrefix: "/v2", targets: [(cluster: 2, weight: 1)]),
        ProxyRoute(host: "API.example", targets: [(cluster: 0, weight: 1)]),
        ProxyRoute(pathPrefix: "/static", targets: [(cluster: 1, weight: 1)]),
    ])

    @Test("first match by host (port ignored, case-insensitive) and path prefix; no match is nil")
    func matching() {
        func match(_ host: String, _ path: String) -> Int? {
            Self.table.match(host: Array(host.utf8), path: Array(path.utf8))
        }
        #expect(match("api.example", "/v2/users") == 0)
        #expect(match("Api.Example:8080", "/v1") == 1)
        #expect(match("api.example", "/v") == 1)
        #expect(match("other", "/static/app.js") == 2)
        #expect(match("other", "/stat") == nil)
        #expect(match("api.example.com", "/") == nil)
        #expect(match("[::1]:80", "/static") == 2)
        #expect(match("", "/") == nil)
    }

    @Test("a weighted split draws clusters in proportion to their weights (chi-square, fixed seed)")
    func splitProportions() {
        let table = RouteTable([
            ProxyRoute(targets: [(cluster: 0, weight: 1), (cluster: 1, weight: 3), (cluster: 2, weight: 6)])
        ])
        var random = RandomStream(seed: 7, replication: 0, key: "test/split")
        var counts = [0, 0, 0]
        for _ in 0..<20_000 { counts[table.cluster(route: 0, using: &random)] += 1 }
        #expect(chiSquare(counts, expected: [0.1, 0.3, 0.6]) < chiSquareCritical001[1])
        // The test can fail: the same counts are far from an even split.
        #expect(chiSquare(counts, expected: [1.0 / 3, 1.0 / 3, 1.0 / 3]) > chiSquareCritical001[1])
    }

    @Test("through the proxy: host and path routes reach their clusters, no route is 404, splits follow weights")
    func throughTheProxy() async throws {
        let named: (String) -> @Sendable (String) -> ScriptedBackend.Action = { name in
            { text in requestComplete(text) ? .respond(ok(name)) : .wait }
        }
        try await withScripted(named("a")) { _, a in
            try await withScripted(named("b")) { _, b in
                var configuration = ProxyConfiguration(
                    listen: ProxyAddress(host: "127.0.0.1", port: 0),
                    clusters: [
                        ProxyCluster(name: "a", backends: [a], balancer: BalancerSpec(.roundRobin)),
                        ProxyCluster(name: "b", backends: [b], balancer: BalancerSpec(.roundRobin)),
                    ],
                    routes: [
                        ProxyRoute(host: "a.test", targets: [(cluster: 0, weight: 1)]),
                        ProxyRoute(pathPrefix: "/b/", targets: [(cluster: 1, weight: 1)]),
                        ProxyRoute(pathPrefix: "/split", targets: [(cluster: 0, weight: 1), (cluster: 1, weight: 3)]),
                    ]
                )
                configuration.seed = 3
                try await withProxy(configuration) { _, port in
                    let client = try RawClient(port: port)
                    client.send(get("/anything", host: "a.test:8080"))
                    #expect(client.readResponse()?.body == "a")
                    client.send(get("/b/x", host: "elsewhere"))
                    #expect(client.readResponse()?.body == "b")
                    client.send(get("/split/1", host: "elsewhere"))
                    #expect(client.readResponse() != nil)
                    var counts = [0, 0]
                    for _ in 0..<400 {
                        client.send(get("/split", host: "x"))
                        let body = client.readResponse()?.body
                        counts[body == "a" ? 0 : 1] += 1
                    }
                    #expect(chiSquare(counts, expected: [0.25, 0.75]) < chiSquareCritical001[0])
                    client.send(get("/none", host: "elsewhere"))
                    let missing = try #require(client.readResponse())
                    #expect(missing.status == 404)
                }
            }
        }
    }
}
