import Foundation
import NIOCore
import Proxy
import SimCore
import Spec
import Testing

@Suite("Proxy forwarding", .timeLimit(.minutes(1)))
struct ForwardingTests {
    @Test("status and body pass through; keep-alive connections are reused on both sides")
    func statusBodyAndReuse() async throws {
        try await withScripted({ text in
            guard requestComplete(text) else { return .wait }
            return text.hasPrefix("GET /missing")
                ? .respond("HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope")
                : .respond(ok("hello"))
        }) { backend, address in
            try await withProxy(oneCluster([address])) { server, port in
                let client = try RawClient(port: port)
                for _ in 0..<5 {
                    client.send(get("/x"))
                    let response = try #require(client.readResponse())
                    #expect(response.status == 200)
                    #expect(response.body == "hello")
                    #expect(response.header("connection") == nil)
                }
                client.send(get("/missing"))
                let missing = try #require(client.readResponse())
                #expect(missing.status == 404)
                #expect(missing.body == "nope")
                // Six requests, one client connection, one upstream connection.
                #expect(backend.opened == 1)
                #expect(backend.requests.count == 6)
                #expect(await server.idleUpstreamConnections() == 1)
                let metrics = server.metricsText()
                #expect(metrics.contains("meshsim_proxy_upstream_connections_opened_total{upstream=\"\(address)\"} 1"))
                #expect(metrics.contains("meshsim_proxy_upstream_connections_reused_total{upstream=\"\(address)\"} 5"))
            }
        }
    }

    @Test("a pooled connection idle past the pool's limit is closed, not reused")
    func idleUpstreamExpires() async throws {
        try await withScripted({ text in requestComplete(text) ? .respond(ok()) : .wait }) { backend, address in
            var configuration = oneCluster([address])
            configuration.upstreamIdleTimeout = .milliseconds(100)
            try await withProxy(configuration) { _, port in
                let client = try RawClient(port: port)
                client.send(get())
                #expect(client.readResponse()?.status == 200)
                client.send(get())
                #expect(client.readResponse()?.status == 200)
                #expect(backend.opened == 1)
                try await Task.sleep(for: .milliseconds(250))
                client.send(get())
                #expect(client.readResponse()?.status == 200)
                #expect(backend.opened == 2)
                #expect(await backend.wait { backend.closed == 1 })
            }
        }
    }

    @Test("hop-by-hop headers are dropped both ways, X-Forwarded-For is added, end-to-end ones kept")
    func headers() async throws {
        try await withScripted({ text in
            guard requestComplete(text) else { return .wait }
            return .respond(
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Secret, keep-alive\r\nX-Secret: 1\r\n"
                    + "Keep-Alive: timeout=5\r\nX-Kept: yes\r\n\r\nok"
            )
        }) { backend, address in
            try await withProxy(oneCluster([address])) { _, port in
                let client = try RawClient(port: port)
                client.send(
                    "GET / HTTP/1.1\r\nHost: test\r\nConnection: keep-alive, X-Private\r\nX-Private: a\r\n"
                        + "Keep-Alive: 5\r\nTE: trailers\r\nUpgrade: h2c\r\nX-Custom: b\r\n"
                        + "X-Forwarded-For: 10.0.0.1\r\n\r\n"
                )
                let response = try #require(client.readResponse())
                #expect(response.status == 200)
                #expect(response.header("x-secret") == nil)
                #expect(response.header("keep-alive") == nil)
                #expect(response.header("connection") == nil)
                #expect(response.header("x-kept") == "yes")
                let request = try #require(backend.requests.first).lowercased()
                #expect(!request.contains("x-private"))
                #expect(!request.contains("keep-alive"))
                #expect(!request.contains("\r\nte:"))
                #expect(!request.contains("upgrade"))
                #expect(!request.contains("\r\nconnection:"))
                #expect(request.contains("x-custom: b"))
                #expect(request.contains("host: test"))
                // The client's own X-Forwarded-For line stays and the proxy's follows it.
                #expect(request.contains("x-forwarded-for: 10.0.0.1\r\nx-forwarded-for: 127.0.0.1\r\n"))
            }
        }
    }

    @Test("chunked request and response bodies stream through unchanged")
    func chunkedBothWays() async throws {
        let chunkedResponse =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        try await withScripted({ text in
            guard requestComplete(text) else { return .wait }
            return .respond(chunkedResponse)
        }) { backend, address in
            try await withProxy(oneCluster([address])) { _, port in
                let client = try RawClient(port: port)
                client.send("POST /upload HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab")
                try await Task.sleep(for: .milliseconds(50))
                client.send("cd\r\n3;ext=1\r\nefg\r\n0\r\nX-Trailer: t\r\n\r\n")
                let response = try #require(client.readResponse())
                #expect(response.status == 200)
                #expect(response.body == "hello world")
                #expect(response.header("transfer-encoding") == "chunked")
                let request = try #require(backend.requests.first)
                #expect(request.hasSuffix("\r\n\r\n4\r\nabcd\r\n3;ext=1\r\nefg\r\n0\r\nX-Trailer: t\r\n\r\n"))
                // The same connection carries a Content-Length request next.
                client.send("POST /b HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\n\r\nxyz")
                let second = try #require(client.readResponse())
                #expect(second.body == "hello world")
                #expect(backend.requests.last?.hasSuffix("\r\n\r\nxyz") == true)
                #expect(backend.opened == 1)
            }
        }
    }

    @Test("pipelined requests with bodies are answered in order on one connection")
    func pipelined() async throws {
        try await withScripted({ text in
            guard requestComplete(text) else { return .wait }
            return .respond(ok(String(text.split(separator: " ")[1])))
        }) { backend, address in
            try await withProxy(oneCluster([address])) { _, port in
                let client = try RawClient(port: port)
                client.send(
                    "POST /one HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
                        + "POST /two HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n"
                        + "GET /three HTTP/1.1\r\nHost: a\r\n\r\n"
                )
                #expect(client.readResponse()?.body == "/one")
                #expect(client.readResponse()?.body == "/two")
                #expect(client.readResponse()?.body == "/three")
                #expect(backend.requests.count == 3)
                #expect(backend.requests[1].hasSuffix("\r\n\r\n2\r\nde\r\n0\r\n\r\n"))
            }
        }
    }

    @Test("Expect: 100-continue is answered by the proxy and not passed on")
    func expectContinue() async throws {
        try await withScripted({ text in requestComplete(text) ? .respond(ok("got it")) : .wait }) { backend, address in
            try await withProxy(oneCluster([address])) { _, port in
                let client = try RawClient(port: port)
                client.send("POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
                #expect(client.readHead() == "HTTP/1.1 100 Continue\r\n\r\n")
                client.send("hello")
                let response = try #require(client.readResponse())
                #expect(response.body == "got it")
                let request = try #require(backend.requests.first)
                #expect(!request.lowercased().contains("expect"))
                #expect(request.hasSuffix("\r\n\r\nhello"))
            }
        }
    }

    @Test("HEAD responses have no body; Connection: close and HTTP/1.0 are honoured")
    func headAndClose() async throws {
        try await withScripted({ text in
            guard requestComplete(text) else { return .wait }
            return .respond("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" + (text.hasPrefix("HEAD") ? "" : "hello"))
        }) { _, address in
            try await withProxy(oneCluster([address])) { _, port in
                let client = try RawClient(port: port)
                client.send("HEAD / HTTP/1.1\r\nHost: test\r\n\r\n")
                let head = try #require(client.readResponse(requestWasHead: true))
                #expect(head.status == 200)
                #expect(head.header("content-length") == "5")
                client.send("GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                let closing = try #require(client.readResponse())
                #expect(closing.body == "hello")
                #expect(closing.header("connection") == "close")
                #expect(client.isClosedByPeer())

                let old = try RawClient(port: port)
                old.send("GET / HTTP/1.0\r\n\r\n")
                let response = try #require(old.readResponse())
                #expect(response.body == "hello")
                #expect(response.header("connection") == "close")
                #expect(old.isClosedByPeer())
            }
        }
    }

    @Test("a response framed by the connection's end is passed on and the client connection closed")
    func responseUntilClose() async throws {
        try await withScripted({ text in
            guard requestComplete(text) else { return .wait }
            return .respondAndClose("HTTP/1.1 200 OK\r\n\r\nall of it")
        }) { _, address in
            try await withProxy(oneCluster([address])) { _, port in
                let client = try RawClient(port: port)
                client.send(get())
                let response = try #require(client.readResponse())
                #expect(response.status == 200)
                #expect(response.body == "all of it")
            }
        }
    }
}
