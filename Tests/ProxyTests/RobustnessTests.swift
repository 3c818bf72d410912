import Foundation
import NIOCore
import Proxy
import SimCore
import Spec
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// A backend that answers every complete request with 200.
private let answerAll: @Sendable (String) -> ScriptedBackend.Action = { text in
    requestComplete(text) ? .respond(ok()) : .wait
}

@Suite("Proxy robustness", .timeLimit(.minutes(1)))
struct RobustnessTests {
    /// Requests the proxy must refuse with 400 and a close, never passing a byte upstream.
    static let malformed: [(String, String)] = [
        (
            "Content-Length and Transfer-Encoding",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        ),
        (
            "two differing Content-Length",
            "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!"
        ),
        ("Content-Length list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello!"),
        ("obsolete line folding", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  folded\r\n\r\n"),
        ("bare LF", "GET / HTTP/1.1\nHost: a\n\n"),
        ("bare LF in a header line", "GET / HTTP/1.1\r\nHost: a\nX: 1\r\n\r\n"),
        ("NUL in a value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\u{0}2\r\n\r\n"),
        ("space before the colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n"),
        ("Transfer-Encoding other than chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"),
        ("two Host lines", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"),
        ("no Host in HTTP/1.1", "GET / HTTP/1.1\r\nX: 1\r\n\r\n"),
        ("HTTP/0.9 line", "GET /\r\n\r\n"),
    ]

    @Test("malformed or ambiguous heads: 400, closed, nothing sent upstream", arguments: 0..<malformed.count)
    func malformedHeads(_ index: Int) async throws {
        let (name, request) = Self.malformed[index]
        try await withScripted(answerAll) { backend, address in
            try await withProxy(oneCluster([address])) { _, port in
                let client = try RawClient(port: port)
                client.send(request)
                let response = client.readToClose()
                #expect(response.hasPrefix("HTTP/1.1 400 "), "\(name): \(response)")
                #expect(backend.opened == 0, "\(name)")
            }
        }
    }

    @Test("a bad chunk size mid-body: 400, closed, and the upstream connection is dropped")
    func badChunk() async throws {
        try await withScripted(answerAll) { backend, address in
            try await withProxy(oneCluster([address])) { server, port in
                let client = try RawClient(port: port)
                client.send("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
                let response = client.readToClose()
                #expect(response.hasPrefix("HTTP/1.1 400 "))
                #expect(await backend.wait { backend.closed == backend.opened })
                #expect(await server.idleUpstreamConnections() == 0)
                // A smuggled request after the bad chunk never reached the backend.
                #expect(backend.requests.isEmpty)
            }
        }
    }

    @Test("a head over the size cap or with too many lines: 431 and closed")
    func headTooLarge() async throws {
        var configuration = oneCluster([ProxyAddress(host: "127.0.0.1", port: 9)])
        configuration.maxHeadBytes = 1024
        configuration.maxHeaderCount = 20
        try await withProxy(configuration) { _, port in
            let big = try RawClient(port: port)
            big.send("GET / HTTP/1.1\r\nHost: a\r\nX-Big: \(String(repeating: "x", count: 2000))\r\n\r\n")
            #expect(big.readToClose().hasPrefix("HTTP/1.1 431 "))
            let many = try RawClient(port: port)
            many.send("GET / HTTP/1.1\r\nHost: a\r\n" + (0..<30).map { "X-\($0): 1\r\n" }.joined() + "\r\n")
            #expect(many.readToClose().hasPrefix("HTTP/1.1 431 "))
        }
    }

    @Test("a head that does not arrive whole within the header timeout: 408 and closed (slowloris)")
    func headerTimeout() async throws {
        var configuration = oneCluster([ProxyAddress(host: "127.0.0.1", port: 9)])
        configuration.headerTimeout = .milliseconds(300)
        try await withProxy(configuration) { _, port in
            let client = try RawClient(port: port)
            let start = ContinuousClock.now
            client.send("GET / HTTP/1.1\r\nHost: a\r\n")
            try await Task.sleep(for: .milliseconds(100))
            client.send("X-Slow: 1\r\n")
            let response = client.readToClose()
            #expect(response.hasPrefix("HTTP/1.1 408 "))
            #expect(ContinuousClock.now - start < .seconds(8))  // the default header timeout is 10 s
        }
    }

    @Test("a body that pauses longer than the body timeout: 408, closed, the upstream connection dropped")
    func bodyTimeout() async throws {
        try await withScripted(answerAll) { backend, address in
            var configuration = oneCluster([address])
            configuration.bodyTimeout = .milliseconds(300)
            try await withProxy(configuration) { server, port in
                let client = try RawClient(port: port)
                let start = ContinuousClock.now
                client.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab")
                // A blocking pause on this thread: the second piece goes at 200 ms, before the first deadline,
                // however busy the test's executor is.
                usleep(200_000)
                client.send("cd")
                let response = client.readToClose()
                #expect(response.hasPrefix("HTTP/1.1 408 "))
                // The pause is measured from the last read, not from the head.
                #expect(ContinuousClock.now - start >= .milliseconds(450))
                #expect(await backend.wait { backend.closed == 1 })
                #expect(await server.pendingRequests() == 0)
                #expect(server.metricsText().contains("reason=\"body_timeout\"} 1"))
            }
        }
    }

    @Test("an upstream that closes mid-request: 502, its active count released, a failure counted")
    func upstreamDies() async throws {
        try await withScripted({ text in
            guard requestComplete(text) else { return .wait }
            return .close
        }) { _, address in
            try await withProxy(oneCluster([address])) { server, port in
                let response = try #require(try fetch(port: port, get()))
                #expect(response.status == 502)
                let report = try await server.endpoints().get()
                #expect(report.clusters[0].endpoints[0].active == 0)
                #expect(report.clusters[0].endpoints[0].failures == 1)
                #expect(server.metricsText().contains("outcome=\"502\"} 1"))
            }
        }
    }

    @Test("an ambiguous or malformed upstream response: 502, the upstream connection closed")
    func badUpstreamResponse() async throws {
        try await withScripted({ text in
            guard requestComplete(text) else { return .wait }
            return .respond("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        }) { backend, address in
            try await withProxy(oneCluster([address])) { server, port in
                let response = try #require(try fetch(port: port, get()))
                #expect(response.status == 502)
                #expect(await backend.wait { backend.closed == 1 })
                #expect(await server.idleUpstreamConnections() == 0)
            }
        }
    }

    @Test("an upstream that sends more than it framed is not reused")
    func upstreamOverrun() async throws {
        try await withScripted({ text in
            guard requestComplete(text) else { return .wait }
            return .respond(ok("hi") + "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nextra")
        }) { backend, address in
            try await withProxy(oneCluster([address])) { _, port in
                let client = try RawClient(port: port)
                client.send(get())
                #expect(client.readResponse()?.body == "hi")
                #expect(await backend.wait { backend.closed == 1 })
                client.send(get())
                #expect(client.readResponse()?.body == "hi")
                #expect(backend.opened == 2)
            }
        }
    }

    @Test("an upstream that dies mid-response: the client connection is closed, the response cut short")
    func upstreamDiesMidResponse() async throws {
        try await withScripted({ text in
            guard requestComplete(text) else { return .wait }
            return .respondAndClose("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        }) { _, address in
            try await withProxy(oneCluster([address])) { server, port in
                let client = try RawClient(port: port)
                client.send(get())
                let text = client.readToClose()
                #expect(text.hasPrefix("HTTP/1.1 200 OK"))
                #expect(text.hasSuffix("only part"))
                #expect(await server.pendingRequests() == 0)
            }
        }
    }

    @Test("no upstream listening: 502")
    func connectRefused() async throws {
        // A port that was just bound and released: nothing listens there.
        let address = try await withScripted(answerAll) { _, address in address }
        try await withProxy(oneCluster([address])) { server, port in
            let response = try #require(try fetch(port: port, get()))
            #expect(response.status == 502)
            #expect(try await server.endpoints().get().clusters[0].endpoints[0].active == 0)
        }
    }

    @Test("an upstream slower than the upstream timeout: 504, and its connection is closed")
    func upstreamTimeout() async throws {
        try await withScripted({ _ in .wait }) { backend, address in
            var configuration = oneCluster([address])
            configuration.upstreamTimeout = .milliseconds(200)
            try await withProxy(configuration) { server, port in
                let response = try #require(try fetch(port: port, get()))
                #expect(response.status == 504)
                #expect(await backend.wait { backend.closed == 1 })
                #expect(try await server.endpoints().get().clusters[0].endpoints[0].active == 0)
            }
        }
    }

    @Test("a client that leaves mid-exchange: the upstream connection is closed, not pooled")
    func clientDisconnect() async throws {
        try await withScripted({ _ in .wait }) { backend, address in
            try await withProxy(oneCluster([address])) { server, port in
                do {
                    let client = try RawClient(port: port)
                    client.send(get())
                    #expect(await backend.wait { backend.opened == 1 })
                }
                #expect(await backend.wait { backend.closed == 1 })
                #expect(await server.idleUpstreamConnections() == 0)
                // The backend sees the close on its own thread; the proxy's loop forgets the connection when its
                // close completes there, which a loaded machine may run a moment later.
                #expect(await eventually { await server.openUpstreamConnections() == 0 })
                #expect(await server.pendingRequests() == 0)
                #expect(server.metricsText().contains("outcome=\"cancelled\"} 1"))
            }
        }
    }

    @Test("past the cap of requests in flight: 503 at once")
    func overload() async throws {
        try await withScripted({ _ in .wait }) { _, address in
            var configuration = oneCluster([address])
            configuration.maxPendingPerLoop = 1
            try await withProxy(configuration) { server, port in
                let first = try RawClient(port: port)
                first.send(get())
                let deadline = ContinuousClock.now + .seconds(2)
                while await server.pendingRequests() < 1 && ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(10))
                }
                let second = try #require(try fetch(port: port, get()))
                #expect(second.status == 503)
                #expect(server.metricsText().contains("reason=\"overload\"} 1"))
            }
        }
    }

    @Test("a client that does not read stops the upstream (backpressure): the proxy buffers a bounded amount")
    func responseBackpressure() async throws {
        let total = 256 << 20
        let backend = StreamingBackend(total: total)
        let address = try await backend.start()
        do {
            try await withProxy(oneCluster([address])) { _, port in
                let client = try RawClient(port: port)
                client.send(get())
                // The client reads nothing: after the socket buffers fill, the backend must stall.
                var last = -1
                let deadline = ContinuousClock.now + .seconds(10)
                while ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(300))
                    let now = backend.written
                    if now == last { break }
                    last = now
                }
                #expect(backend.written == last, "the backend never stalled")
                #expect(backend.written < 64 << 20, "\(backend.written) bytes written of \(total)")
                // Reading resumes the flow: the first megabytes arrive.
                let response = try #require(client.readHead())
                #expect(response.hasPrefix("HTTP/1.1 200 OK"))
            }
        } catch {
            await backend.stop()
            throw error
        }
        await backend.stop()
    }

    @Test("an upstream that does not read stops the client (backpressure): the proxy buffers a bounded amount")
    func requestBackpressure() async throws {
        let backend = SilentBackend()
        let address = try await backend.start()
        do {
            try await withProxy(oneCluster([address])) { _, port in
                let client = try RawClient(port: port)
                client.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000\r\n\r\n")
                let limit = 256 << 20
                let sent = client.sendUntilBlocked(limit: limit)
                #expect(sent < 64 << 20, "\(sent) bytes accepted")
            }
        } catch {
            await backend.stop()
            throw error
        }
        await backend.stop()
    }

    @Test("a large body streams through in both directions")
    func largeBody() async throws {
        let size = 1 << 20
        try await withScripted({ text in
            guard requestComplete(text) else { return .wait }
            let received = text.utf8.count - (text.range(of: "\r\n\r\n")!.upperBound.utf16Offset(in: text))
            let body = String(repeating: "r", count: size)
            return .respond("HTTP/1.1 200 OK\r\nX-Received: \(received)\r\nContent-Length: \(size)\r\n\r\n\(body)")
        }) { _, address in
            try await withProxy(oneCluster([address])) { _, port in
                let client = try RawClient(port: port, timeout: 10)
                client.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \(size)\r\n\r\n")
                client.send(String(repeating: "q", count: size))
                let response = try #require(client.readResponse())
                #expect(response.header("x-received") == "\(size)")
                #expect(response.body.utf8.count == size)
            }
        }
    }
}
