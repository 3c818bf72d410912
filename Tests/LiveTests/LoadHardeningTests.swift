import Foundation
import Histogram
import Live
import NIOCore
import NIOPosix
import Reports
import SharedModel
import SimCore
import Spec
import Testing

@Suite("Load generator input: URLs and limits")
struct LoadInputTests {
    @Test("URLs: percent-encoding, fragments, IPv6, default port")
    func parsing() throws {
        let cases: [(String, String, Int, String)] = [
            ("http://127.0.0.1:8080/a?b=1", "127.0.0.1", 8080, "/a?b=1"),
            ("http://localhost", "localhost", 80, "/"),
            ("HTTP://h:1/", "h", 1, "/"),
            ("http://h:9/a b/é?q=1 2", "h", 9, "/a%20b/%C3%A9?q=1%202"),
            ("http://h/a#frag ment", "h", 80, "/a"),
            ("http://h#x", "h", 80, "/"),
            ("http://h?x=1", "h", 80, "/?x=1"),
            ("http://h/%41%zz%", "h", 80, "/%41%25zz%25"),
            ("http://h/\"<>\\^`{|}[]", "h", 80, "/%22%3C%3E%5C%5E%60%7B%7C%7D%5B%5D"),
            ("http://h/a:b@c;d=e,f+g$h!i*j'k(l)~m_n.o-p", "h", 80, "/a:b@c;d=e,f+g$h!i*j'k(l)~m_n.o-p"),
            ("http://[::1]:8080/x", "::1", 8080, "/x"),
            ("http://[::1]/", "::1", 80, "/"),
        ]
        for (url, host, port, path) in cases {
            let parsed = try LoadConfiguration.parseURL(url)
            #expect(parsed.host == host && parsed.port == port && parsed.path == path, "\(url) → \(parsed)")
        }
        #expect(LoadConfiguration(host: "::1", port: 8080, mode: .closed).hostHeader == "[::1]:8080")
    }

    @Test("URLs that cannot be sent are refused with a sentence")
    func refused() {
        let cases: [(String, String)] = [
            ("http://127.0.0.1:21200/a\r\nX-Injected: 1", "control character (CR)"),
            ("http://h/a\nb", "control character (LF)"),
            ("http://h/a\u{0}b", "control character (NUL)"),
            ("http://h/a\u{7F}", "control character (DEL)"),
            ("http://h/a\tb", "control character (tab)"),
            ("http://user:pw@h/", "credentials"),
            ("https://h/", "https is not supported"),
            ("ftp://h/", "only http://"),
            ("http://:80/", "no host"),
            ("http://h:0/", "1...65535"),
            ("http://h:99999/", "1...65535"),
            ("http://h:/", "1...65535"),
            ("http://h:-1/", "1...65535"),
            ("http://[::1/", "closing ]"),
            ("http://[nope]:80/", "not an IPv6 address"),
            ("http://h h/", "not a name or an address"),
        ]
        for (url, words) in cases {
            do {
                _ = try LoadConfiguration.parseURL(url)
                Issue.record("accepted \(url.debugDescription)")
            } catch let error as LiveError {
                #expect("\(error)".contains(words), "\(url.debugDescription): \(error)")
            } catch {
                Issue.record("\(error)")
            }
        }
    }

    @Test("a window out of range or with too many rows, and durations past 8760h, are refused")
    func windows() {
        var configuration = LoadConfiguration(host: "h", port: 1, mode: .closed)
        configuration.window = 1
        #expect(throws: LiveError.self) { try configuration.validate() }
        configuration.window = 1_000_000
        configuration.duration = 20_000 * 1_000_000_000
        #expect(throws: LiveError.self) { try configuration.validate() }
        configuration.duration = 10_000_000_000
        #expect(throws: Never.self) { try configuration.validate() }
        configuration.duration = RunLimits.duration.upperBound.nanoseconds + 1
        configuration.window = 3600 * 1_000_000_000
        #expect(throws: LiveError.self) { try configuration.validate() }
        #expect(
            RunLimits.windowProblem(window: .nanoseconds(1), duration: .seconds(10))?.contains("out of range") == true
        )
    }
}

/// A loopback server that records every byte it receives and answers each request head 200 (for wire tests).
final class RecordingServer: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let received = LockedBox<[UInt8]>([])
    private var pending: [UInt8] = []

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = Array(unwrapInboundIn(data).readableBytesView)
        received.withLock { $0 += bytes }
        pending += bytes
        while let end = pending.firstRange(of: Array("\r\n\r\n".utf8)) {
            pending.removeSubrange(0..<end.upperBound)
            let answer = ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            context.writeAndFlush(wrapOutboundOut(answer), promise: nil)
        }
    }
}

extension LoopbackTests {
    @Test("dropped requests have no latency: percentiles come only from answered requests")
    func droppedHaveNoLatency() async throws {
        try await withServer(workers: 64, serviceTime: 50_000_000) { _, _, port in
            var configuration = LoadConfiguration(
                host: "127.0.0.1",
                port: port,
                mode: .open(ArrivalSchedule(process: .constant, rate: 2000))
            )
            configuration.duration = 1_000_000_000
            configuration.connections = 2
            configuration.maxConnections = 2
            configuration.maxInFlight = 2
            configuration.drain = 2_000_000_000
            let result = try await runLoad(configuration)
            let stats = result.total.response
            let dropped = result.total.count(.dropped)
            #expect(dropped > 1500, "dropped \(dropped)")
            #expect(stats.count(.rejected) >= dropped)
            // Only sent requests have a latency, and each took the 50 ms service time at least.
            #expect(stats.measured == stats.count(.ok) + stats.count(.failed) + stats.count(.timedOut))
            #expect(stats.measured <= result.total.sent)
            #expect(stats.histogram.totalCount == stats.measured)
            let p50 = try #require(result.summaryRow.p50Ms)
            #expect(p50 >= 50, "p50 \(p50) ms")
            #expect(Double(stats.histogram.min) >= 50e6, "min \(stats.histogram.min) ns")
            for window in result.windows {
                if let p50 = window.row.p50Ms { #expect(p50 >= 50, "window \(window.index) p50 \(p50) ms") }
            }
            // They still count: every arrival has an outcome.
            #expect(result.summaryRow.requests == result.total.arrivals)
        }
    }

    @Test("the request line on the wire is percent-encoded and carries no injected header")
    func wireRequestLine() async throws {
        let recorder = RecordingServer()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let channel = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(recorder) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(channel.localAddress?.port)
        let url = "http://127.0.0.1:\(port)/a b/é?q=1 2#fragment\nX-Injected: 1"
        #expect(throws: LiveError.self) { _ = try LoadConfiguration.parseURL(url) }
        #expect(throws: LiveError.self) { _ = try LoadConfiguration.parseURL("http://h/a\r\nX-Injected: 1") }
        let parsed = try LoadConfiguration.parseURL("http://127.0.0.1:\(port)/a b/é?q=1 2#fragment")
        var configuration = LoadConfiguration(
            host: parsed.host,
            port: parsed.port,
            mode: .open(ArrivalSchedule(process: .constant, rate: 20))
        )
        configuration.path = parsed.path
        configuration.duration = 200_000_000
        configuration.connections = 1
        configuration.drain = 1_000_000_000
        let result = try await runLoad(configuration)
        try await channel.close()
        try await group.shutdownGracefully()
        #expect(result.total.response.count(.ok) == 4)
        let wire = String(decoding: recorder.received.withLock { $0 }, as: UTF8.self)
        #expect(wire.hasPrefix("GET /a%20b/%C3%A9?q=1%202 HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\n"), "\(wire)")
        #expect(!wire.contains("fragment") && !wire.contains("Injected"))
        // Every request line is well formed: method, target and version, nothing else.
        for line in wire.components(separatedBy: "\r\n") where line.hasPrefix("GET ") {
            #expect(line.split(separator: " ").count == 3, "\(line)")
        }
    }
}
