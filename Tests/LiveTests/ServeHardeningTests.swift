import Foundation
import Live
import NIOCore
import NIOPosix
import SimRandom
import Testing

#if canImport(Glibc)
    import Glibc
#endif
#if canImport(CoreFoundation)
    // With swift-nio-ssl in the graph, `timespec` resolves through CoreFoundation's copy of the C headers.
    import CoreFoundation
#endif

/// Starts one replica on a port the system assigns, with `configure` applied, runs `body` with the server, its
/// event loop and its port, and stops it.
func withServer<T>(
    workers: Int = 4,
    serviceTime: Int64 = 0,
    configure: (inout BackendConfiguration) -> Void = { _ in },
    _ body: (BackendServer, any EventLoop, Int) async throws -> T
) async throws -> T {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let replica = BackendReplica(
        service: "s",
        index: 0,
        port: 0,
        workers: workers,
        serviceTime: .constant(Double(serviceTime))
    )
    var configuration = BackendConfiguration(replicas: [replica])
    configure(&configuration)
    return try await running(BackendServer(configuration: configuration, group: group), on: group) { server in
        let port = try #require(await server.listeningPorts().first ?? nil)
        return try await body(server, group.next(), port)
    }
}

/// A blocking loopback client socket with a receive timeout, for raw-byte tests.
final class RawClient {
    let fd: Int32

    /// Connects to 127.0.0.1:`port`.
    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        let connected = address.withSockAddr { pointer, size in connect(fd, pointer, socklen_t(size)) }
        guard fd >= 0, connected == 0 else {
            close(fd)
            throw RawClientError.connect
        }
    }

    deinit { close(fd) }

    /// Shuts the connection down both ways (the server sees EOF); the descriptor stays ours until deinit.
    func shutDown() { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }

    /// Sends `bytes` (MSG_NOSIGNAL: a closed peer is an error, not SIGPIPE); returns whether all went out.
    @discardableResult
    func send(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == bytes.count
    }

    /// Sends `text`.
    @discardableResult
    func send(_ text: String) -> Bool { send(Array(text.utf8)) }

    /// What one `recv` returns within `seconds`: bytes, `[]` at EOF (or reset), `nil` when nothing came.
    func receive(within seconds: Double) -> [UInt8]? {
        var tv = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n > 0 { return Array(chunk[0..<n]) }
        if n == 0 || errno == ECONNRESET { return [] }
        return nil
    }

    /// Reads one response (head, and a Content-Length body unless `head`), waiting at most `seconds` in all.
    /// Returns its status, or `nil` if none arrived; `closed` tells whether EOF came with or before it.
    func response(within seconds: Double, head: Bool = false) -> (status: Int?, closed: Bool) {
        let deadline = Date().addingTimeInterval(seconds)
        var received: [UInt8] = []
        while Date() < deadline {
            guard let bytes = receive(within: max(0.01, deadline.timeIntervalSinceNow)) else { break }
            if bytes.isEmpty { return (Self.status(received), true) }
            received += bytes
            let text = String(decoding: received, as: UTF8.self)
            guard let headEnd = text.range(of: "\r\n\r\n") else { continue }
            let headText = text[..<headEnd.lowerBound]
            var length = 0
            for line in headText.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
                length = Int(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) ?? 0
            }
            let bodyBytes = text[headEnd.upperBound...].utf8.count
            if head || bodyBytes >= length { return (Self.status(received), false) }
        }
        return (Self.status(received), false)
    }

    /// Whether the server closes the connection within `seconds` (EOF or reset), with nothing more sent.
    func closes(within seconds: Double) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            guard let bytes = receive(within: max(0.01, deadline.timeIntervalSinceNow)) else { return false }
            if bytes.isEmpty { return true }
        }
        return false
    }

    private static func status(_ bytes: [UInt8]) -> Int? {
        let text = String(decoding: bytes.prefix(12), as: UTF8.self)
        guard text.hasPrefix("HTTP/1.1 "), text.count >= 12 else { return nil }
        return Int(text.dropFirst(9).prefix(3))
    }
}

/// A raw client could not connect.
enum RawClientError: Error { case connect }

/// The CPU time (user + system, ns) of the calling thread.
func threadCPUNanoseconds() -> Int64 {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
}

/// One raw request of the HTTP table, with the status `serve` must answer and whether it then closes.
struct RawCase: CustomTestStringConvertible, Sendable {
    var name: String
    var bytes: [UInt8]
    var status: Int
    var closes: Bool
    var head = false

    init(_ name: String, _ text: String, _ status: Int, closes: Bool, head: Bool = false) {
        self.name = name
        self.bytes = Array(text.utf8)
        self.status = status
        self.closes = closes
        self.head = head
    }

    var testDescription: String { name }
}

/// The HTTP table: malformed requests (each answered 400, or 431, and closed) and a few valid ones.
let httpTable: [RawCase] = [
    RawCase("GET, HTTP/1.1, keep-alive", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 200, closes: false),
    RawCase("HEAD: headers only", "HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", 200, closes: false, head: true),
    RawCase("HTTP/1.0 without Host closes", "GET / HTTP/1.0\r\n\r\n", 200, closes: true),
    RawCase("Connection: close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", 200, closes: true),
    RawCase(
        "chunked body",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        200,
        closes: false
    ),
    RawCase("health endpoint", "GET /health HTTP/1.1\r\nHost: a\r\n\r\n", 200, closes: false),
    RawCase("NUL in a header value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\u{0}c\r\n\r\n", 400, closes: true),
    RawCase("NUL in a header name", "GET / HTTP/1.1\r\nHost: a\r\nX\u{0}A: b\r\n\r\n", 400, closes: true),
    RawCase("a header name that is not a token", "GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n", 400, closes: true),
    RawCase("HTTP/1.1 without Host", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400, closes: true),
    RawCase("two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, closes: true),
    RawCase(
        "Transfer-Encoding: gzip, chunked",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        400,
        closes: true
    ),
    RawCase(
        "chunked twice in one header",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
        400,
        closes: true
    ),
    RawCase(
        "chunked in two headers",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        400,
        closes: true
    ),
    RawCase(
        "Content-Length with Transfer-Encoding",
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
        closes: true
    ),
    RawCase("bare LF line ends", "GET / HTTP/1.1\nHost: a\n\n", 400, closes: true),
    RawCase("a bare LF in one header line", "GET / HTTP/1.1\r\nHost: a\nX: y\r\n\r\n", 400, closes: true),
    RawCase("an HTTP/0.9 request", "GET /\r\n", 400, closes: true),
    RawCase("an HTTP/0.9 request with LF", "GET /\n", 400, closes: true),
    RawCase("HTTP/2.0 on the request line", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 400, closes: true),
    RawCase("a space before the colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, closes: true),
    RawCase("obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n z\r\n\r\n", 400, closes: true),
    RawCase("a bad Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n", 400, closes: true),
    RawCase(
        "a bad chunk size",
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        400,
        closes: true
    ),
    RawCase("not HTTP at all", "HELLO\r\n\r\n", 400, closes: true),
    RawCase(
        "a head over --max-header-bytes",
        "GET / HTTP/1.1\r\nHost: a\r\nX: " + String(repeating: "a", count: 9000) + "\r\n\r\n",
        431,
        closes: true
    ),
]

extension LoopbackTests {
    @Test("the HTTP table: each raw request gets its status, and the connection closes or stays open")
    func httpTableOverSockets() async throws {
        try await withServer { server, _, port in
            for entry in httpTable {
                let client = try RawClient(port: port)
                client.send(entry.bytes)
                let answer = client.response(within: 2, head: entry.head)
                #expect(answer.status == entry.status, "\(entry.name): status \(String(describing: answer.status))")
                if entry.closes {
                    #expect(answer.closed || client.closes(within: 2), "\(entry.name): not closed")
                } else {
                    #expect(!answer.closed && !client.closes(within: 0.2), "\(entry.name): closed")
                    // Still usable: a second request on the same connection is answered.
                    client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                    #expect(client.response(within: 2).status == 200, "\(entry.name): second request")
                }
            }
            let counts = await server.answered()
            #expect(counts.clientErrors == httpTable.filter { $0.status >= 400 }.count)
        }
    }

    @Test("a client trickling a head one byte at a time is answered 408 and closed after the header timeout")
    func trickledHead() async throws {
        try await withServer(configure: { $0.headerTimeout = 1_000_000_000 }) { _, _, port in
            let client = try RawClient(port: port)
            let start = Date()
            var status: Int?
            var closed = false
            // One byte every 50 ms, for up to 4 s: the timer must not restart per byte.
            for byte in Array(("GET / HTTP/1.1\r\nHost: a\r\nX-Slow: " + String(repeating: "z", count: 200)).utf8) {
                guard client.send([byte]) else { break }
                if let bytes = client.receive(within: 0.05) {
                    if bytes.isEmpty {
                        closed = true
                        break
                    }
                    status = Int(String(decoding: bytes.prefix(12), as: UTF8.self).dropFirst(9).prefix(3))
                    closed = client.closes(within: 1)
                    break
                }
                if Date().timeIntervalSince(start) > 4 { break }
            }
            let elapsed = Date().timeIntervalSince(start)
            #expect(status == 408)
            #expect(closed)
            #expect(elapsed >= 0.9 && elapsed < 2.5, "closed after \(elapsed) s")
        }
    }

    @Test("a connection that sends nothing, and an idle keep-alive one, are closed silently after their timeouts")
    func idleConnections() async throws {
        try await withServer(configure: {
            $0.headerTimeout = 800_000_000
            $0.idleTimeout = 1_200_000_000
        }) { _, _, port in
            let silent = try RawClient(port: port)
            var start = Date()
            #expect(silent.closes(within: 3))
            var elapsed = Date().timeIntervalSince(start)
            #expect(elapsed >= 0.7 && elapsed < 2, "silent connection closed after \(elapsed) s")

            let idle = try RawClient(port: port)
            idle.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            #expect(idle.response(within: 2).status == 200)
            start = Date()
            #expect(idle.closes(within: 3))
            elapsed = Date().timeIntervalSince(start)
            #expect(elapsed >= 1.1 && elapsed < 2.5, "idle connection closed after \(elapsed) s")
        }
    }

    @Test("a body that pauses longer than the body timeout gets 408; one that keeps coming is served")
    func bodyTimeout() async throws {
        try await withServer(configure: {
            $0.bodyTimeout = 600_000_000
            $0.headerTimeout = 5_000_000_000
        }) { _, _, port in
            let stalled = try RawClient(port: port)
            stalled.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab")
            let start = Date()
            let answer = stalled.response(within: 3)
            let elapsed = Date().timeIntervalSince(start)
            #expect(answer.status == 408)
            #expect(elapsed >= 0.5 && elapsed < 2, "408 after \(elapsed) s")
            #expect(answer.closed || stalled.closes(within: 1))

            // 8 bytes, one every 250 ms: 2 s in all, but never 600 ms without a read.
            let steady = try RawClient(port: port)
            steady.send("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 8\r\n\r\n")
            for byte in Array("abcdefgh".utf8) {
                #expect(steady.receive(within: 0.25) == nil)
                steady.send([byte])
            }
            #expect(steady.response(within: 2).status == 200)
        }
    }

    @Test("at the connection cap the listener stops accepting without spinning, and resumes as connections close")
    func connectionCap() async throws {
        try await withServer(configure: { $0.maxConnectionsPerReplica = 4 }) { server, loop, port in
            var clients: [RawClient] = []
            for _ in 0..<10 { clients.append(try RawClient(port: port)) }
            for client in clients { client.send("GET / HTTP/1.1\r\nHost: a\r\n\r\n") }
            // The first four are accepted and answered; the others wait in the kernel's listen queue.
            var answered = Set<Int>()
            for (i, client) in clients.enumerated() where client.response(within: 0.3).status == 200 {
                answered.insert(i)
            }
            #expect(answered.count == 4, "answered \(answered.sorted())")
            #expect(await server.openConnections() == 4)
            // At the cap the event loop sleeps: a second of it costs next to no CPU.
            let before = try await loop.submit { threadCPUNanoseconds() }.get()
            try await Task.sleep(nanoseconds: 1_000_000_000)
            let after = try await loop.submit { threadCPUNanoseconds() }.get()
            #expect(after - before < 50_000_000, "the loop used \(Double(after - before) / 1e6) ms of CPU in 1 s")
            // Closing two lets two more in.
            for i in answered.sorted().prefix(2) { clients[i].shutDown() }
            var more = 0
            for (i, client) in clients.enumerated() where !answered.contains(i) {
                if client.response(within: 0.5).status == 200 { more += 1 }
            }
            #expect(more == 2, "answered after two closed: \(more)")
            #expect(await server.openConnections() <= 4)
        }
    }

    @Test("a port in use names the process that holds it")
    func portOwner() async throws {
        try await withServer { _, _, port in
            let holders = PortOwner.holders(port: port)
            #expect(holders.map(\.pid).contains(getpid()), "holders \(holders)")
            let sentence = try #require(PortOwner.describe(port: port))
            #expect(sentence.contains("port \(port) is in use by") && sentence.contains("kill \(getpid())"))
            // A second server on the same port fails with that sentence.
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let second = BackendServer(
                configuration: BackendConfiguration(replicas: [
                    BackendReplica(service: "t", index: 0, port: port, serviceTime: .constant(0))
                ]),
                group: group
            )
            do {
                try await second.start()
                Issue.record("a second server bound port \(port)")
            } catch let error as LiveError {
                #expect("\(error)".contains("in use by"), "\(error)")
            }
            await second.stop()
            try await group.shutdownGracefully()
        }
    }
}
