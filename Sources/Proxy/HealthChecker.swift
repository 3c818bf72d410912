//===----------------------------------------------------------------------===//
// meshsim — Proxy
//===----------------------------------------------------------------------===//

import Health
import NIOCore
import NIOPosix
import Prometheus
import SharedModel
import SimCore

/// Active HTTP health checking of one cluster's endpoints from one event loop, Envoy's (`health_check`) or HAProxy's
/// (`check` with `passive_health: haproxy`): each check is a `GET` of the health path on a new connection, passing on
/// a 200 within the check's timeout, failing on another status or a refused or broken connection, and timing out
/// otherwise. The cluster's call edge records the result as in the simulator (`CallEdge.recordActiveCheck`, or
/// `CallEdge.recordHAProxyCheck` with HAProxy's `inter`, `fastinter`, `downinter`, `fall` and `rise`), follows a
/// change of health in its view, and says when the next check is due.
///
/// At most one check of an endpoint is in flight per checker; a check whose time was brought forward by HAProxy's
/// `on-error` (with `fastinter`) replaces the one scheduled later, which then finds nothing due.
final class HealthChecker {
    /// Whose checks it runs.
    enum Kind {
        /// Envoy active health checking (`health_check`).
        case envoy
        /// HAProxy's `check` (`passive_health: haproxy`); the check timeout is `timeout_check`, else `inter`.
        case haproxy
    }

    let loop: ProxyLoop
    let cluster: ClusterState
    let kind: Kind
    private var stopped = false
    /// Whether a check of each endpoint is in flight.
    private var inFlight: [Bool]

    init(loop: ProxyLoop, cluster: ClusterState, kind: Kind = .envoy) {
        self.loop = loop
        self.cluster = cluster
        self.kind = kind
        inFlight = Array(repeating: false, count: cluster.spec.backends.count)
    }

    /// Schedules the first check of every endpoint (each due at once, as the simulator starts them).
    func start() {
        if kind == .haproxy {
            cluster.scheduleHAProxyCheck = { [unowned self] host, due in schedule(host: host, at: due) }
        }
        for host in 0..<cluster.spec.backends.count {
            if let due = nextDue(host: host) { schedule(host: host, at: due) }
        }
    }

    /// Stops checking (shutdown): checks in flight finish, none is scheduled.
    func stop() {
        stopped = true
        if kind == .haproxy { cluster.scheduleHAProxyCheck = { _, _ in } }
    }

    /// When the next check of `host` is due, by the checker's state machine.
    private func nextDue(host: Int) -> SimInstant? {
        switch kind {
        case .envoy: return cluster.edge.activeCheck?.nextCheckDue(host: host)
        case .haproxy: return cluster.edge.haproxy?.nextCheckDue(host: host)
        }
    }

    /// The check's timeout (HAProxy: without `timeout check`, `inter` bounds the whole check, as in the
    /// simulator).
    private var timeout: SimDuration? {
        switch kind {
        case .envoy: return cluster.edge.activeCheck?.configuration.timeout
        case .haproxy: return cluster.edge.haproxy.map { $0.configuration.checkTimeout ?? $0.configuration.inter }
        }
    }

    private func schedule(host: Int, at due: SimInstant) {
        guard !stopped, due < .distantFuture else { return }
        let deadline = NIODeadline.uptimeNanoseconds(loop.shared.startUptime &+ UInt64(max(0, due.nanoseconds)))
        _ = try? loop.loop.scheduleCallback(at: deadline, handler: LoopTimer { [self] in check(host: host) })
    }

    /// Sends one check to `host`, unless one is in flight or none is due yet (the schedule moved).
    private func check(host: Int) {
        guard !stopped, !inFlight[host], let timeout, let due = nextDue(host: host) else { return }
        // The timer fires at or after the due instant; 1 ms of slack covers the clock's rounding.
        guard due <= loop.now() + .milliseconds(1) else { return }
        inFlight[host] = true
        let started = loop.now()
        let probe = HealthProbe(
            path: loop.shared.configuration.healthPath,
            host: "\(cluster.spec.backends[host])"
        )
        var finished = false
        let finish: (CheckResult) -> Void = { [self] result in
            guard !finished else { return }
            finished = true
            inFlight[host] = false
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
        var ejections = 0
        let next: SimInstant
        switch kind {
        case .envoy:
            let (event, transition, due) = cluster.edge.recordActiveCheck(host: host, result: result, at: loop.now())
            if case .ejected? = event { ejections += 1 }
            if case .becameUnhealthy? = transition { ejections += 1 }
            next = due
        case .haproxy:
            let (transition, due) = cluster.edge.recordHAProxyCheck(host: host, result: result, at: loop.now())
            if case .becameUnhealthy? = transition { ejections += 1 }
            next = due
        }
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
