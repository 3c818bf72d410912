//===----------------------------------------------------------------------===//
// meshsim — Proxy
//===----------------------------------------------------------------------===//

import Health
import NIOCore
import NIOPosix
import Prometheus
import SharedModel
import SimCore

/// Envoy-style active HTTP health checking of one cluster's endpoints from one event loop: each check is a
/// `GET` of the health path on a new connection, passing on a 200 within the configured timeout, failing on another
/// status or a refused or broken connection, and timing out otherwise. The cluster's call edge
/// (`CallEdge.recordActiveCheck`, as in the simulator) records the result, follows a change of health in its
/// view, and says when the next check is due.
final class HealthChecker {
    let loop: ProxyLoop
    let cluster: ClusterState
    private var stopped = false

    init(loop: ProxyLoop, cluster: ClusterState) {
        self.loop = loop
        self.cluster = cluster
    }

    /// Schedules the first check of every endpoint (each due at once, as the simulator starts them).
    func start() {
        guard let checker = cluster.edge.activeCheck else { return }
        for host in 0..<cluster.spec.backends.count { schedule(host: host, at: checker.nextCheckDue(host: host)) }
    }

    /// Stops checking (shutdown): checks in flight finish, none is scheduled.
    func stop() { stopped = true }

    private func schedule(host: Int, at due: SimInstant) {
        guard !stopped, due < .distantFuture else { return }
        let deadline = NIODeadline.uptimeNanoseconds(loop.shared.startUptime &+ UInt64(max(0, due.nanoseconds)))
        _ = try? loop.loop.scheduleCallback(at: deadline, handler: LoopTimer { [self] in check(host: host) })
    }

    /// Sends one check to `host`.
    private func check(host: Int) {
        guard !stopped, let checker = cluster.edge.activeCheck else { return }
        let timeout = checker.configuration.timeout
        let started = loop.now()
        let probe = HealthProbe(
            path: loop.shared.configuration.healthPath,
            host: "\(cluster.spec.backends[host])"
        )
        var finished = false
        let finish: (CheckResult) -> Void = { [self] result in
            guard !finished else { return }
            finished = true
            record(host: host, result: result)
        }
        let timer = try? loop.loop.scheduleCallback(
            in: .nanoseconds(max(1, timeout.nanoseconds)),
            handler: LoopTimer {
                probe.close()
                finish(.timedOut)
            }
        )
        probe.onStatus = { [self] status in
            timer?.cancel()
            finish(status == 200 ? .passed(responseTime: loop.now() - started) : .failed)
        }
        ClientBootstrap(group: loop.loop)
            .connectTimeout(.nanoseconds(max(1, timeout.nanoseconds)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(probe) }
            }
            .connect(to: loop.shared.backendAddresses[cluster.backendOfEndpoint[host]])
            .whenFailure { _ in
                timer?.cancel()
                finish(.failed)
            }
    }

    private func record(host: Int, result: CheckResult) {
        let (event, transition, next) = cluster.edge.recordActiveCheck(host: host, result: result, at: loop.now())
        var ejections = 0
        if case .ejected? = event { ejections += 1 }
        if case .becameUnhealthy? = transition { ejections += 1 }
        if ejections > 0 { loop.shared.metrics.ejections[cluster.index].increment(by: Int64(ejections)) }
        loop.shared.metrics.healthChecks[cluster.index][Self.label(result)].increment()
        schedule(host: host, at: next)
    }

    /// The index of a result's `result` label in ``ProxyMetrics/healthChecks``.
    static func label(_ result: CheckResult) -> Int {
        switch result {
        case .passed: return 0
        case .failed: return 1
        case .timedOut: return 2
        }
    }

    /// The `result` label values, indexed by ``label(_:)``.
    static let labels = ["passed", "failed", "timed_out"]
}

/// One health-check exchange: sends the request, reports the status of the response, closes.
final class HealthProbe: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let request: ByteBuffer
    private var received = ByteBuffer()
    private var context: ChannelHandlerContext?
    /// Called once with the response's status (0: no parsable response before the connection ended).
    var onStatus: (Int) -> Void = { _ in }
    private var reported = false

    init(path: String, host: String) {
        request = ByteBuffer(string: "GET \(path) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n\r\n")
    }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        context.writeAndFlush(wrapOutboundOut(request), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        received.writeBuffer(&bytes)
        // "HTTP/1.x NNN": the status is known once 12 bytes have come.
        guard received.readableBytes >= 12, let line = received.getString(at: received.readerIndex, length: 12)
        else { return }
        let status = line.hasPrefix("HTTP/1.") ? Int(line.suffix(3)) ?? 0 : 0
        report(status)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        report(0)
        self.context = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }

    /// Closes the check's connection (its timeout passed).
    func close() { context?.close(promise: nil) }

    private func report(_ status: Int) {
        guard !reported else { return }
        reported = true
        onStatus(status)
    }
}
