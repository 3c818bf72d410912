import Foundation
import NIOCore
import Proxy
import Spec
import Testing

@Suite("Proxy admin listener and configuration", .timeLimit(.minutes(1)))
struct AdminAndStateTests {
    @Test("/metrics and /endpoints report requests by cluster, upstream and outcome")
    func admin() async throws {
        try await withScripted({ text in
            guard requestComplete(text) else { return .wait }
            return text.hasPrefix("GET /fail")
                ? .respond("HTTP/1.1 503 No\r\nContent-Length: 0\r\n\r\n") : .respond(ok())
        }) { _, address in
            var configuration = oneCluster([address], .p2cPeakEwma)
            configuration.admin = ProxyAddress(host: "127.0.0.1", port: 0)
            try await withProxy(configuration) { server, port in
                let client = try RawClient(port: port)
                for path in ["/a", "/b", "/fail"] {
                    client.send(get(path))
                    _ = client.readResponse()
                }
                _ = try fetch(port: port, "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
                let adminPort = try #require(server.adminAddress?.port)
                let metrics = try #require(try fetch(port: adminPort, get("/metrics")))
                #expect(metrics.status == 200)
                let upstream = "\(address)"
                #expect(
                    metrics.body.contains(
                        "meshsim_proxy_requests_total{cluster=\"default\",upstream=\"\(upstream)\",outcome=\"2xx\"} 2"
                    )
                )
                #expect(
                    metrics.body.contains(
                        "meshsim_proxy_requests_total{cluster=\"default\",upstream=\"\(upstream)\",outcome=\"5xx\"} 1"
                    )
                )
                #expect(metrics.body.contains("meshsim_proxy_upstream_duration_seconds_count{cluster=\"default\""))
                #expect(metrics.body.contains("meshsim_proxy_rejections_total{reason=\"bad_request\"} 1"))
                #expect(metrics.body.contains("# TYPE meshsim_proxy_upstream_duration_seconds histogram"))

                let endpoints = try #require(try fetch(port: adminPort, get("/endpoints")))
                #expect(endpoints.status == 200)
                #expect(endpoints.header("content-type") == "application/json")
                let report = try JSONDecoder().decode(EndpointsReport.self, from: Data(endpoints.body.utf8))
                #expect(report.clusters.count == 1)
                #expect(report.clusters[0].balancer == "p2c_peak_ewma")
                #expect(
                    report.clusters[0].endpoints == [
                        EndpointsReport.Endpoint(address: upstream, active: 0, requests: 3, failures: 1)
                    ]
                )
                // Keys are sorted.
                #expect(
                    endpoints.body.hasPrefix(
                        "{\"clusters\":[{\"balancer\":\"p2c_peak_ewma\",\"endpoints\":[{\"active\":0,"
                    )
                )
                #expect(try #require(try fetch(port: adminPort, get("/nothing"))).status == 404)
            }
        }
    }

    @Test("addresses parse as host:port, IPv6 in brackets; bad ones are refused")
    func addresses() {
        #expect(ProxyAddress(parsing: "127.0.0.1:8080") == ProxyAddress(host: "127.0.0.1", port: 8080))
        #expect(ProxyAddress(parsing: "[::1]:9") == ProxyAddress(host: "::1", port: 9))
        #expect(ProxyAddress(parsing: "[::1]:9")?.description == "[::1]:9")
        #expect(ProxyAddress(parsing: "localhost") == nil)
        #expect(ProxyAddress(parsing: ":80") == nil)
        #expect(ProxyAddress(parsing: "a:70000") == nil)
        #expect(ProxyAddress(parsing: "a:x") == nil)
    }

    @Test("a configuration with no backends or a route to a missing cluster is refused")
    func validation() {
        let empty = ProxyConfiguration.singleCluster(
            listen: ProxyAddress(host: "127.0.0.1", port: 0),
            backends: [],
            balancer: BalancerSpec(.roundRobin)
        )
        #expect(empty.validate() == ["cluster default has no backends"])
        var dangling = oneCluster([ProxyAddress(host: "127.0.0.1", port: 1)])
        dangling.routes.append(ProxyRoute(targets: [(cluster: 3, weight: 1)]))
        #expect(dangling.validate() == ["route 1 names cluster 3, which does not exist"])
    }
}

@Suite("Upstream pool bookkeeping")
struct PoolTests {
    final class Connection {}

    @Test("the newest idle connection is reused first; a full pool refuses; a closed one is forgotten")
    func pool() {
        var pool = IdlePool<Connection>(capacity: 2)
        let (a, b, c) = (Connection(), Connection(), Connection())
        #expect(pool.checkout() == nil)
        let first = pool.checkin(a)
        let second = pool.checkin(b)
        let third = pool.checkin(c)
        #expect(first && second && !third)
        #expect(pool.checkout() === b)
        let removed = pool.remove(a)
        let removedAgain = pool.remove(a)
        #expect(removed && !removedAgain)
        #expect(pool.count == 0)
        #expect(pool.checkout() == nil)
    }
}
