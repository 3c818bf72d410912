import Foundation
import Live
import NIOCore
import NIOPosix
import Proxy
import SimRandom
import Spec
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Starts the proxy with `configuration` (listening on an OS-chosen port), runs `body` with it and its port, then
/// stops it, whatever happens.
func withProxy<T>(
    _ configuration: ProxyConfiguration,
    _ body: (ProxyServer, Int) async throws -> T
) async throws -> T {
    var configuration = configuration
    configuration.listen = ProxyAddress(host: "127.0.0.1", port: 0)
    let group = MultiThreadedEventLoopGroup(numberOfThreads: configuration.threads)
    let server = try ProxyServer(configuration: configuration, group: group)
    do {
        try await server.start()
        let port = try #require(server.listeningAddress?.port)
        let result = try await body(server, port)
        await server.stop(drain: .milliseconds(200))
        try await group.shutdownGracefully()
        return result
    } catch {
        await server.stop(drain: .zero)
        try? await group.shutdownGracefully()
        throw error
    }
}

/// Starts emulated backends (``Live/BackendServer``) on OS-chosen ports, runs `body` with their addresses, then
/// stops them.
func withBackends<T>(
    _ replicas: [BackendReplica],
    security: BackendSecurity? = nil,
    _ body: ([ProxyAddress], BackendServer) async throws -> T
) async throws -> T {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    var configuration = BackendConfiguration(replicas: replicas)
    configuration.security = security
    let server = BackendServer(configuration: configuration, group: group)
    do {
        try await server.start()
        let ports = await server.listeningPorts()
        let addresses = ports.map { ProxyAddress(host: "127.0.0.1", port: $0 ?? 0) }
        let result = try await body(addresses, server)
        await server.stop()
        try await group.shutdownGracefully()
        return result
    } catch {
        await server.stop()
        try? await group.shutdownGracefully()
        throw error
    }
}

/// Whether `condition` holds within `seconds`, polled every 10 ms (for state another thread updates).
func eventually(seconds: Double = 3, _ condition: () async -> Bool) async -> Bool {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return await condition()
}

/// `count` backends answering at once (or after `serviceTime`) on OS-chosen ports.
func replicas(_ count: Int, serviceTime: String = "constant:0ms", workers: Int = 64, speeds: [Double] = [])
    -> [BackendReplica]
{
    (0..<count).map {
        BackendReplica(
            service: "test",
            index: $0,
            port: 0,
            workers: workers,
            serviceTime: try! Distribution.parse(serviceTime),
            speed: $0 < speeds.count ? speeds[$0] : 1
        )
    }
}

/// A one-cluster configuration on `backends`.
func oneCluster(_ backends: [ProxyAddress], _ kind: BalancerKind = .roundRobin) -> ProxyConfiguration {
    ProxyConfiguration.singleCluster(
        listen: ProxyAddress(host: "127.0.0.1", port: 0),
        backends: backends,
        balancer: BalancerSpec(kind)
    )
}

// MARK: - A raw client

/// A blocking TCP client for tests: sends bytes and reads HTTP/1.1 responses (or whatever comes back).
final class RawClient {
    let fd: Int32
    private var pending: [UInt8] = []

    /// Connects to 127.0.0.1:`port`; reads time out after `timeout` seconds.
    init(port: Int, timeout: Int = 3) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: port)
        let connected = address.withSockAddr { pointer, size in connect(fd, pointer, socklen_t(size)) }
        guard connected == 0 else {
            close(fd)
            throw RawClientError.connectFailed
        }
    }

    deinit { close(fd) }

    /// Sends `text` (or bytes).
    func send(_ text: String) { send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            offset += n
        }
    }

    /// Sends zeros until a send blocks for `stall` ms or `limit` bytes went; returns the bytes sent.
    func sendUntilBlocked(limit: Int, stall: Int = 500) -> Int {
        var tv = timeval(tv_sec: 0, tv_usec: stall * 1000)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let block = [UInt8](repeating: 0x7A, count: 65536)
        var sent = 0
        while sent < limit {
            let n = block.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            sent += n
        }
        return sent
    }

    /// Reads more bytes into the pending buffer; `false` at the end of the stream or a timeout.
    private func fill() -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return false }
        pending.append(contentsOf: chunk[0..<n])
        return true
    }

    /// Everything until the peer closes (or the read timeout), as text.
    func readToClose() -> String {
        while fill() {}
        defer { pending.removeAll() }
        return String(decoding: pending, as: UTF8.self)
    }

    /// Whether the peer closed the connection (a read returns end of stream within the timeout).
    func isClosedByPeer() -> Bool {
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, 0)
        if n > 0 { pending.append(byte) }
        return n == 0 || (n < 0 && errno == ECONNRESET)
    }

    /// Reads a response head only (consuming it).
    func readHead() -> String? {
        while true {
            if let end = findCRLFCRLF() {
                defer { pending.removeFirst(end) }
                return String(decoding: pending[0..<end], as: UTF8.self)
            }
            if !fill() { return nil }
        }
    }

    /// Reads one response: status, head text and decoded body (Content-Length, chunked, or to the close).
    func readResponse(requestWasHead: Bool = false) -> RawResponse? {
        var headEnd: Int?
        while headEnd == nil {
            if let range = findCRLFCRLF() {
                headEnd = range
            } else if !fill() {
                return nil
            }
        }
        let headBytes = Array(pending[0..<headEnd!])
        pending.removeFirst(headEnd!)
        let head = String(decoding: headBytes, as: UTF8.self)
        let status = Int(head.split(separator: " ", maxSplits: 2)[1]) ?? 0
        let lower = head.lowercased()
        var body: [UInt8] = []
        if requestWasHead || status == 204 || status == 304 {
            // No body.
        } else if lower.contains("transfer-encoding: chunked") {
            while true {
                guard let line = readLine(), let size = Int(line.split(separator: ";")[0], radix: 16) else {
                    return nil
                }
                if size == 0 {
                    while let trailer = readLine(), !trailer.isEmpty {}
                    break
                }
                while pending.count < size + 2 { if !fill() { return nil } }
                body.append(contentsOf: pending[0..<size])
                pending.removeFirst(size + 2)
            }
        } else if let range = lower.range(of: "content-length: ") {
            let digits = lower[range.upperBound...].prefix { $0.isNumber }
            let length = Int(digits) ?? 0
            while pending.count < length { if !fill() { return nil } }
            body = Array(pending[0..<length])
            pending.removeFirst(length)
        } else {
            while fill() {}
            body = pending
            pending.removeAll()
        }
        return RawResponse(status: status, head: head, body: String(decoding: body, as: UTF8.self))
    }

    private func findCRLFCRLF() -> Int? {
        guard pending.count >= 4 else { return nil }
        for i in 0...(pending.count - 4)
        where pending[i] == 13 && pending[i + 1] == 10 && pending[i + 2] == 13 && pending[i + 3] == 10 {
            return i + 4
        }
        return nil
    }

    private func readLine() -> String? {
        while true {
            if let i = pending.firstIndex(of: 10) {
                let line = String(decoding: pending[0..<max(0, i - 1)], as: UTF8.self)
                pending.removeFirst(i + 1)
                return line
            }
            if !fill() { return nil }
        }
    }
}

enum RawClientError: Error { case connectFailed }

/// A response read by ``RawClient``.
struct RawResponse {
    var status: Int
    var head: String
    var body: String

    /// Whether the head has a header line `name: value` (case-insensitive name).
    func header(_ name: String) -> String? {
        for line in head.split(separator: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            if line[..<colon].lowercased() == name.lowercased() {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }
}

/// Sends one request on a new connection and reads the response.
func fetch(port: Int, _ request: String) throws -> RawResponse? {
    let client = try RawClient(port: port)
    client.send(request)
    return client.readResponse()
}

/// A GET request for `path` on `host`.
func get(_ path: String = "/", host: String = "test", extra: String = "") -> String {
    "GET \(path) HTTP/1.1\r\nHost: \(host)\r\n\(extra)\r\n"
}

// MARK: - A scripted backend

/// A backend whose answers the test writes: it collects each connection's bytes and asks `script` what to do with
/// them, and records what it received and how many connections it saw open and close.
final class ScriptedBackend: @unchecked Sendable {
    /// What to do with the bytes received so far on a connection.
    enum Action {
        /// Wait for more bytes.
        case wait
        /// Send these bytes, forget what was received, keep the connection.
        case respond(String)
        /// Send these bytes, then close.
        case respondAndClose(String)
        /// Close at once (reset).
        case close
    }

    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private let lock = NSLock()
    private var _requests: [String] = []
    private var _opened = 0
    private var _closed = 0
    private var channel: (any Channel)?
    let script: @Sendable (String) -> Action

    init(_ script: @escaping @Sendable (String) -> Action) { self.script = script }

    /// Requests (the bytes of each answered exchange) received so far.
    var requests: [String] { lock.withLock { _requests } }
    /// Connections accepted so far.
    var opened: Int { lock.withLock { _opened } }
    /// Connections closed so far.
    var closed: Int { lock.withLock { _closed } }

    /// Starts listening on an OS-chosen port and returns its address.
    func start() async throws -> ProxyAddress {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    lock.withLock { _opened += 1 }
                    channel.closeFuture.whenComplete { [self] _ in lock.withLock { _closed += 1 } }
                    try channel.pipeline.syncOperations.addHandler(ScriptedHandler(backend: self))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        self.channel = channel
        return ProxyAddress(host: "127.0.0.1", port: channel.localAddress!.port!)
    }

    func stop() async {
        try? await channel?.close()
        try? await group.shutdownGracefully()
    }

    fileprivate func record(_ request: String) { lock.withLock { _requests.append(request) } }

    /// Waits up to `seconds` for `condition`.
    func wait(seconds: Double = 3, until condition: () -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition()
    }
}

/// Runs `body` with a started scripted backend, then stops it.
func withScripted<T>(
    _ script: @escaping @Sendable (String) -> ScriptedBackend.Action,
    _ body: (ScriptedBackend, ProxyAddress) async throws -> T
) async throws -> T {
    let backend = ScriptedBackend(script)
    do {
        let address = try await backend.start()
        let result = try await body(backend, address)
        await backend.stop()
        return result
    } catch {
        await backend.stop()
        throw error
    }
}

private final class ScriptedHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let backend: ScriptedBackend
    var received = ""

    init(backend: ScriptedBackend) { self.backend = backend }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        received += buffer.readString(length: buffer.readableBytes) ?? ""
        switch backend.script(received) {
        case .wait:
            break
        case .respond(let text):
            backend.record(received)
            received = ""
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text)), promise: nil)
        case .respondAndClose(let text):
            backend.record(received)
            received = ""
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: text))).whenComplete { _ in
                channel.close(promise: nil)
            }
        case .close:
            backend.record(received)
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}

/// The answer `200 OK` with `body`, framed by Content-Length.
func ok(_ body: String = "hello") -> String {
    "HTTP/1.1 200 OK\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
}

/// Whether `text` holds a complete request with no body, or a body framed by Content-Length or chunked coding.
func requestComplete(_ text: String) -> Bool {
    guard let headEnd = text.range(of: "\r\n\r\n") else { return false }
    let head = text[..<headEnd.lowerBound].lowercased()
    let body = text[headEnd.upperBound...]
    if head.contains("transfer-encoding: chunked") {
        // The last chunk (size 0), then trailers, then an empty line.
        return body.hasSuffix("\r\n\r\n") && (body.hasPrefix("0\r\n") || body.contains("\r\n0\r\n"))
    }
    if let range = head.range(of: "content-length: ") {
        let length = Int(head[range.upperBound...].prefix { $0.isNumber }) ?? 0
        return body.utf8.count >= length
    }
    return true
}

// MARK: - Statistics

/// The chi-square statistic of `observed` counts against `expected` proportions.
func chiSquare(_ observed: [Int], expected proportions: [Double]) -> Double {
    let total = Double(observed.reduce(0, +))
    var statistic = 0.0
    for (count, p) in zip(observed, proportions) {
        let e = total * p
        statistic += (Double(count) - e) * (Double(count) - e) / e
    }
    return statistic
}

/// The chi-square critical values at p = 0.001 for 1...5 degrees of freedom.
let chiSquareCritical001: [Double] = [10.828, 13.816, 16.266, 18.467, 20.515]

// MARK: - A backend that never reads

/// Accepts connections and never reads from them.
final class SilentBackend: @unchecked Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    private var channel: (any Channel)?

    func start() async throws -> ProxyAddress {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.autoRead, value: false)
            .bind(host: "127.0.0.1", port: 0).get()
        self.channel = channel
        return ProxyAddress(host: "127.0.0.1", port: channel.localAddress!.port!)
    }

    func stop() async {
        try? await channel?.close()
        try? await group.shutdownGracefully()
    }
}

// MARK: - A streaming backend

/// A backend that answers each request with a `total`-byte chunked body, written only while its socket takes more,
/// and counts the bytes it managed to write: a proxy that buffers without bound lets it write everything.
final class StreamingBackend: @unchecked Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let total: Int
    private let lock = NSLock()
    private var _written = 0
    private var channel: (any Channel)?

    init(total: Int) { self.total = total }

    /// Body bytes written to the socket so far.
    var written: Int { lock.withLock { _written } }

    fileprivate func add(_ n: Int) { lock.withLock { _written += n } }

    func start() async throws -> ProxyAddress {
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(StreamingHandler(backend: self))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        self.channel = channel
        return ProxyAddress(host: "127.0.0.1", port: channel.localAddress!.port!)
    }

    func stop() async {
        try? await channel?.close()
        try? await group.shutdownGracefully()
    }
}

private final class StreamingHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    let backend: StreamingBackend
    var received = ""
    var remaining = -1
    static let chunk = ByteBuffer(string: "10000\r\n" + String(repeating: "s", count: 65536) + "\r\n")

    init(backend: StreamingBackend) { self.backend = backend }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        received += buffer.readString(length: buffer.readableBytes) ?? ""
        guard remaining < 0, requestComplete(received) else { return }
        remaining = backend.total
        context.write(
            wrapOutboundOut(ByteBuffer(string: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")),
            promise: nil
        )
        pump(context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) { pump(context) }

    private func pump(_ context: ChannelHandlerContext) {
        while remaining > 0 && context.channel.isWritable {
            context.write(wrapOutboundOut(Self.chunk), promise: nil)
            remaining -= 65536
            backend.add(65536)
        }
        if remaining == 0 {
            remaining = -2
            context.write(wrapOutboundOut(ByteBuffer(string: "0\r\n\r\n")), promise: nil)
        }
        context.flush()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
}
