import Foundation
import Histogram
import Live
import NIOCore
import NIOPosix
import Reports
import Scenario
import SharedModel
import SimCore
import SimRandom
import Spec
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Starts backends on `ports`, runs `body`, and stops them, whatever happens.
func withBackends<T>(
    _ replicas: [BackendReplica],
    faults: [FaultSpec] = [],
    maxRequestsPerConnection: Int = 0,
    _ body: (BackendServer) async throws -> T
) async throws -> T {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    var configuration = BackendConfiguration(replicas: replicas)
    configuration.faults = faults
    configuration.maxRequestsPerConnection = maxRequestsPerConnection
    return try await running(BackendServer(configuration: configuration, group: group), on: group, body)
}

/// Starts `server`, runs `body` with it, then stops the server and shuts `group` down, whatever happens.
func running<T>(
    _ server: BackendServer,
    on group: MultiThreadedEventLoopGroup,
    _ body: (BackendServer) async throws -> T
) async throws -> T {
    do {
        try await server.start()
        let result = try await body(server)
        await server.stop()
        try await group.shutdownGracefully()
        return result
    } catch {
        await server.stop()
        try? await group.shutdownGracefully()
        throw error
    }
}

/// Runs the generator against 127.0.0.1:`port` with one loop.
func runLoad(_ configuration: LoadConfiguration) async throws -> LoadResult {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.threads)
    let result = try await LoadGenerator(configuration: configuration, group: group).run()
    try await group.shutdownGracefully()
    return result
}

/// The port the system gave the server's first replica.
func boundPort(_ server: BackendServer) async throws -> Int {
    try #require(await server.listeningPorts().first ?? nil)
}

/// Runs the generator against the server's first replica, on the port the system gave it.
func runLoad(_ configuration: LoadConfiguration, against server: BackendServer) async throws -> LoadResult {
    var configuration = configuration
    configuration.port = try await boundPort(server)
    configuration.hostHeader = "127.0.0.1:\(configuration.port)"
    return try await runLoad(configuration)
}

/// An open-loop configuration at `rate` for `seconds`.
func openLoop(port: Int, rate: Double, seconds: Double, connections: Int = 8) -> LoadConfiguration {
    var configuration = LoadConfiguration(
        host: "127.0.0.1",
        port: port,
        mode: .open(ArrivalSchedule(process: .constant, rate: rate))
    )
    configuration.duration = Int64(seconds * 1e9)
    configuration.connections = connections
    configuration.drain = 3_000_000_000
    configuration.timeout = 3_000_000_000
    return configuration
}

/// Sends raw bytes on a new connection and returns everything the server sends back before it closes (≤ 2 s).
func exchange(port: Int, _ bytes: [UInt8]) throws -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #expect(fd >= 0)
    defer { close(fd) }
    var tv = timeval(tv_sec: 2, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    let address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
    let connected = address.withSockAddr { pointer, size in connect(fd, pointer, socklen_t(size)) }
    #expect(connected == 0)
    _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
    var received: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        received += chunk[0..<n]
    }
    return String(decoding: received, as: UTF8.self)
}

@Suite("Live half on loopback sockets", .serialized)
struct LoopbackTests {
    /// Timer and loopback overhead stay under 1 ms: 10.61 ms once failed a 0.6 ms bound in CI.
    @Test("a constant 10 ms backend at light load: the generator's p50 lies in [10.0, 11.0] ms")
    func lightLoadMedian() async throws {
        let replica = BackendReplica(
            service: "s",
            index: 0,
            port: 0,
            workers: 16,
            serviceTime: .constant(10_000_000)
        )
        let result = try await withBackends([replica]) { server in
            try await runLoad(openLoop(port: 0, rate: 100, seconds: 3), against: server)
        }
        let p50 = try #require(result.summaryRow.p50Ms)
        #expect(p50 >= 10.0 && p50 <= 11.0, "p50 \(p50) ms")
        #expect(result.summaryRow.successRate == 1)
    }

    @Test("the achieved rate matches the requested rate, and every planned request is sent")
    func achievedRate() async throws {
        let replica = BackendReplica(
            service: "s",
            index: 0,
            port: 0,
            workers: 64,
            serviceTime: .constant(1_000_000)
        )
        var configuration = openLoop(port: 0, rate: 1000, seconds: 3)
        configuration.warmup = 500_000_000
        let result = try await withBackends([replica]) { server in try await runLoad(configuration, against: server) }
        let planned = try #require(result.plannedRequests)
        #expect(abs(Double(result.total.arrivals) - planned) <= 1, "arrivals \(result.total.arrivals) vs \(planned)")
        #expect(abs(result.achievedRate - 1000) / 1000 < 0.005, "achieved \(result.achievedRate)")
        #expect(result.total.response.count(.ok) == result.total.arrivals)
        #expect(result.windows.count >= 3)
    }

    @Test("coordinated omission: a 1 s backend stall is in the corrected p99, not in the service-time p99")
    func coordinatedOmission() async throws {
        let replica = BackendReplica(service: "s", index: 0, port: 0, workers: 1, serviceTime: .constant(2_000_000))
        // One connection, as a closed-loop tool would have: the stall holds it, and requests wait unsent.
        var configuration = openLoop(port: 0, rate: 100, seconds: 5, connections: 1)
        configuration.maxConnections = 1
        let stall = FaultSpec(
            at: .seconds(2),
            duration: .seconds(1),
            kind: .pause(ReplicaSelection(service: 0), every: .seconds(10), length: .seconds(1))
        )
        let result = try await withBackends([replica], faults: [stall]) { server in
            try await runLoad(configuration, against: server)
        }
        let corrected = try #require(result.summaryRow.p99Ms)
        let service = Double(result.total.service.valueAtPercentile(99)) / 1e6
        #expect(corrected > 800, "corrected p99 \(corrected) ms")
        #expect(service < 50, "service-time p99 \(service) ms")
        #expect(result.total.response.count(.ok) == 500)
    }

    @Test("a target that dies mid-run: errors counted by kind, the schedule kept")
    func targetDies() async throws {
        let replica = BackendReplica(service: "s", index: 0, port: 0, workers: 8, serviceTime: .constant(1_000_000))
        let crash = FaultSpec(at: .seconds(1), duration: nil, kind: .crash(ReplicaSelection(service: 0)))
        let result = try await withBackends([replica], faults: [crash]) { server in
            try await runLoad(openLoop(port: 0, rate: 200, seconds: 3), against: server)
        }
        #expect(result.total.arrivals == 600)
        let refused = result.total.count(.refused)
        let ok = result.total.response.count(.ok)
        #expect(ok > 150 && ok < 250, "ok \(ok)")
        #expect(refused > 300, "refused \(refused)")
        #expect(ok + refused + result.total.count(.reset) + result.total.count(.timeout) == 600)
        #expect(result.summaryRow.rejected == refused)
    }

    @Test("malformed requests get 400, oversized heads 431, and the server keeps serving")
    func malformed() async throws {
        let replica = BackendReplica(service: "s", index: 0, port: 0, serviceTime: .constant(0))
        try await withBackends([replica]) { server in
            let port = try await boundPort(server)
            let bad = try exchange(port: port, Array("NOT HTTP AT ALL\r\n\r\n".utf8))
            #expect(bad.hasPrefix("HTTP/1.1 400 "), "\(bad)")
            let big = try exchange(
                port: port,
                Array(("GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 20_000) + "\r\n\r\n").utf8)
            )
            #expect(big.hasPrefix("HTTP/1.1 431 "), "\(big)")
            let pipelined = try exchange(
                port: port,
                Array(
                    ("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /health HTTP/1.1\r\nHost: a\r\n\r\n"
                        + "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").utf8
                )
            )
            #expect(pipelined.components(separatedBy: "HTTP/1.1 200 OK").count == 4, "\(pipelined)")
            let counts = await server.answered()
            #expect(counts.ok == 2 && counts.clientErrors == 2)
        }
    }

    @Test("a full queue answers 503 and the generator counts it as rejected")
    func queueFull() async throws {
        let replica = BackendReplica(
            service: "s",
            index: 0,
            port: 0,
            workers: 1,
            queueCapacity: 2,
            serviceTime: .constant(50_000_000)
        )
        var configuration = openLoop(port: 0, rate: 200, seconds: 1, connections: 16)
        configuration.maxConnections = 64
        let result = try await withBackends([replica]) { server in try await runLoad(configuration, against: server) }
        #expect(result.total.count(.status5xx) > 100)
        #expect(result.summaryRow.rejected == result.total.count(.status5xx))
    }

    @Test("connections the server closes after N requests are reopened and counted, and no request is lost")
    func serverCloses() async throws {
        let replica = BackendReplica(service: "s", index: 0, port: 0, workers: 8, serviceTime: .constant(1_000_000))
        let result = try await withBackends([replica], maxRequestsPerConnection: 50) { server in
            try await runLoad(openLoop(port: 0, rate: 500, seconds: 2, connections: 4), against: server)
        }
        #expect(result.total.response.count(.ok) == 1000, "ok \(result.total.response.count(.ok))")
        #expect(result.connections.closedByPeer >= 15, "closed by peer \(result.connections.closedByPeer)")
        #expect(result.connections.reconnects >= 14, "reconnects \(result.connections.reconnects)")
        #expect(result.connections.opened >= 18)
    }

    @Test("two event loops with Poisson arrivals keep the planned rate and merge their windows")
    func poissonTwoLoops() async throws {
        let replica = BackendReplica(
            service: "s",
            index: 0,
            port: 0,
            workers: 64,
            serviceTime: .constant(1_000_000)
        )
        var configuration = LoadConfiguration(
            host: "127.0.0.1",
            port: 0,
            mode: .open(ArrivalSchedule(process: .poisson, rate: 1000))
        )
        configuration.threads = 2
        configuration.connections = 8
        configuration.duration = 2_000_000_000
        let result = try await withBackends([replica]) { server in try await runLoad(configuration, against: server) }
        // 2,000 expected; a Poisson count has σ ≈ 45.
        #expect(abs(Double(result.total.arrivals) - 2000) < 225, "arrivals \(result.total.arrivals)")
        #expect(result.total.response.count(.ok) == result.total.arrivals)
        #expect(result.windows.map(\.index) == Array(0..<result.windows.count))
        let finished = result.windows.reduce(UInt64(0)) { $0 + $1.row.requests }
        #expect(finished == result.total.arrivals)
    }

    @Test("closed-loop users think between an answer and their next request")
    func thinkTime() async throws {
        let replica = BackendReplica(service: "s", index: 0, port: 0, workers: 8, serviceTime: .constant(5_000_000))
        var configuration = LoadConfiguration(host: "127.0.0.1", port: 0, mode: .closed)
        configuration.connections = 4
        configuration.maxConnections = 4
        configuration.duration = 1_000_000_000
        configuration.thinkTime = .constant(20_000_000)
        let result = try await withBackends([replica]) { server in try await runLoad(configuration, against: server) }
        // 4 users × 1 s / (5 ms + 20 ms) ≈ 160.
        let ok = result.total.response.count(.ok)
        #expect(ok >= 120 && ok <= 170, "ok \(ok)")
    }

    @Test("a pipelined flood behind a slow request is answered in order, without recursion")
    func pipelinedFlood() async throws {
        let replica = BackendReplica(
            service: "s",
            index: 0,
            port: 0,
            workers: 1,
            queueCapacity: 0,
            serviceTime: .constant(20_000_000)
        )
        try await withBackends([replica]) { server in
            var text = "GET / HTTP/1.1\r\nHost: a\r\n\r\n"
            text += String(repeating: "GET /health HTTP/1.1\r\nHost: a\r\n\r\n", count: 20_000)
            text += "GET /health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"
            let answer = try exchange(port: try await boundPort(server), Array(text.utf8))
            #expect(answer.hasPrefix("HTTP/1.1 200 OK"))
            #expect(answer.components(separatedBy: "HTTP/1.1 200 OK").count - 1 == 20_002)
            // Nothing is answered after the Connection: close answer.
            #expect(answer.hasSuffix("healthy\n"))
        }
    }

    @Test("closed loop keeps every connection busy and reports the same columns")
    func closedLoop() async throws {
        let replica = BackendReplica(service: "s", index: 0, port: 0, workers: 4, serviceTime: .constant(5_000_000))
        var configuration = LoadConfiguration(host: "127.0.0.1", port: 0, mode: .closed)
        configuration.connections = 4
        configuration.maxConnections = 4
        configuration.duration = 1_000_000_000
        let result = try await withBackends([replica]) { server in try await runLoad(configuration, against: server) }
        // 4 connections × 1 s / ~5 ms.
        #expect(result.total.response.count(.ok) > 500 && result.total.response.count(.ok) < 820)
        let csv = LoadReport.summaryCSV([LiveRun(scenario: "t", variant: "closed", seed: 1, result: result)])
        let lines = csv.split(separator: "\n")
        #expect(
            lines[0].split(separator: ",", omittingEmptySubsequences: false).count
                == lines[1].split(separator: ",", omittingEmptySubsequences: false).count
        )
        #expect(lines[1].hasPrefix("t,closed,1,live,"))
    }
}
