//===----------------------------------------------------------------------===//
// meshsim — Proxy
//===----------------------------------------------------------------------===//

import Breakers
import Foundation
import Limiters
import MeshTLS
public import NIOCore
import NIOPosix
import Prometheus
import SharedModel
import SimCore
import Spec

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Why the proxy could not start.
public enum ProxyError: Error, CustomStringConvertible, Sendable {
    /// A listener could not be bound.
    case bindFailed(address: ProxyAddress, reason: String, inUse: Bool)
    /// The configuration is unusable (or a backend address cannot be resolved).
    case invalid(String)

    public var description: String {
        switch self {
        case .bindFailed(let address, let reason, _): return "cannot listen on \(address): \(reason)"
        case .invalid(let message): return message
        }
    }
}

/// An HTTP/1.1 reverse proxy running meshsim's balancers: one state per event loop, no locks on the request path.
///
/// Each event loop keeps its own view of every cluster (balancer, active counts: per-loop, as nginx workers and
/// Envoy workers do) and its own upstream pools. Policies run on the loops' monotonic clock, as nanoseconds since
/// the proxy started, with seeded random streams (`proxy/<loop>/<cluster>`).
public final class ProxyServer: Sendable {
    /// The configuration it runs.
    public let configuration: ProxyConfiguration
    private let group: any EventLoopGroup
    private let shared: ProxyShared
    private let loops: [ProxyLoop]
    private let listeners = ControlBox<[any Channel]>([])

    /// Prepares the proxy on `group` (one state per loop); nothing listens until ``start()``.
    ///
    /// - Throws: ``ProxyError/invalid(_:)`` for an unusable configuration or a backend that cannot be resolved.
    public init(configuration: ProxyConfiguration, group: any EventLoopGroup) throws {
        let problems = configuration.validate()
        guard problems.isEmpty else { throw ProxyError.invalid(problems.joined(separator: "; ")) }
        self.configuration = configuration
        self.group = group
        do {
            shared = try ProxyShared(configuration: configuration)
        } catch {
            throw ProxyError.invalid("cannot resolve a backend or make the TLS contexts: \(error)")
        }
        var loops: [ProxyLoop] = []
        for (i, loop) in group.makeIterator().enumerated() {
            loops.append(ProxyLoop(loop: loop, index: i, shared: shared))
        }
        self.loops = loops
    }

    /// Binds the proxy listener and, if configured, the admin listener.
    ///
    /// - Throws: ``ProxyError/bindFailed(address:reason:inUse:)``.
    public func start() async throws {
        let byLoop = Dictionary(uniqueKeysWithValues: loops.map { (ObjectIdentifier($0.loop), $0) })
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.maxMessagesPerRead, value: 64)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    guard let state = byLoop[ObjectIdentifier(channel.eventLoop)] else {
                        throw ProxyError.invalid("a connection on an unknown event loop")
                    }
                    let connection = DownstreamConnection(loop: state)
                    try state.shared.addListenerTLS(to: channel.pipeline.syncOperations) { connection.peer = $0.name }
                    try channel.pipeline.syncOperations.addHandler(connection)
                }
            }
        let channel = try await bind(bootstrap, configuration.listen)
        listeners.withLock { $0.append(channel) }
        for state in loops { try await state.loop.submit { state.startSweeps() }.get() }
        if let admin = configuration.admin {
            let server = self
            let adminBootstrap = ServerBootstrap(group: loops[0].loop)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(AdminConnection(server: server))
                    }
                }
            do {
                let adminChannel = try await bind(adminBootstrap, admin)
                listeners.withLock { $0.append(adminChannel) }
            } catch {
                await stop(drain: .zero)
                throw error
            }
        }
    }

    private func bind(_ bootstrap: ServerBootstrap, _ address: ProxyAddress) async throws -> any Channel {
        do {
            return try await bootstrap.bind(host: address.host, port: address.port).get()
        } catch {
            let inUse = (error as? IOError)?.errnoCode == EADDRINUSE
            throw ProxyError.bindFailed(
                address: address,
                reason: inUse ? "the address is already in use" : "\(error)",
                inUse: inUse
            )
        }
    }

    /// The address the proxy listens on (with port 0 configured, the port the system chose).
    public var listeningAddress: SocketAddress? { listeners.withLock { $0.first?.localAddress } }

    /// The address the admin listener listens on, if any.
    public var adminAddress: SocketAddress? {
        listeners.withLock { $0.count > 1 ? $0[1].localAddress : nil }
    }

    /// Stops accepting, lets requests in flight finish for up to `drain`, then closes every connection.
    public func stop(drain: Duration = .seconds(5)) async {
        let channels = listeners.withLock { channels in
            defer { channels.removeAll() }
            return channels
        }
        for channel in channels { try? await channel.close() }
        for state in loops {
            try? await state.loop.submit {
                state.stopping = true
                state.stopSweeps()
                for connection in state.downstream.values { connection.closeWhenIdle() }
            }.get()
        }
        let deadline = ContinuousClock.now + drain
        while ContinuousClock.now < deadline, await pendingRequests() > 0 {
            try? await Task.sleep(for: .milliseconds(10))
        }
        for state in loops {
            try? await state.loop.submit {
                for connection in state.downstream.values { connection.closeNow() }
                for connection in state.upstream.values { connection.close() }
            }.get()
        }
    }

    /// Requests in flight over all loops.
    public func pendingRequests() async -> Int {
        var total = 0
        for state in loops { total += (try? await state.loop.submit { state.pending }.get()) ?? 0 }
        return total
    }

    /// Idle pooled upstream connections over all loops (for tests and the admin listener).
    public func idleUpstreamConnections() async -> Int {
        var total = 0
        for state in loops {
            total += (try? await state.loop.submit { state.pools.reduce(0) { $0 + $1.count } }.get()) ?? 0
        }
        return total
    }

    /// Open upstream connections over all loops.
    public func openUpstreamConnections() async -> Int {
        var total = 0
        for state in loops { total += (try? await state.loop.submit { state.upstream.count }.get()) ?? 0 }
        return total
    }

    /// The metrics in Prometheus text format (the breaker-state gauges as last refreshed).
    public func metricsText() -> String { shared.metrics.registry.emitToString() }

    /// The metrics in Prometheus text format, the breaker-state gauges first read from every event loop.
    public func refreshedMetricsText() -> EventLoopFuture<String> {
        let limits = loops.map { state in
            state.loop.submit { state.clusters.map { $0.concurrency?.limit } }
        }
        let limitsFuture = EventLoopFuture.whenAllSucceed(limits, on: loops[0].loop)
        return breakerStates().and(limitsFuture).map { [shared] perCluster, perLoop in
            for (c, counts) in perCluster.enumerated() where !shared.metrics.breakerStates[c].isEmpty {
                for (s, count) in counts.enumerated() { shared.metrics.breakerStates[c][s].set(Int64(count)) }
            }
            for (c, gauge) in shared.metrics.concurrencyLimits.enumerated() {
                let values = perLoop.compactMap { $0[c] }
                guard let gauge, !values.isEmpty else { continue }
                gauge.set(Double(values.reduce(0, +)) / Double(values.count))
            }
            return shared.metrics.registry.emitToString()
        }
    }

    /// On how many event loops each cluster's breaker is closed, open and half open (empty without a breaker).
    func breakerStates() -> EventLoopFuture<[[Int]]> {
        let futures = loops.map { state in
            state.loop.submit { state.clusters.map { $0.edge.breaker?.state } }
        }
        let clusters = configuration.clusters.count
        return EventLoopFuture.whenAllSucceed(futures, on: loops[0].loop).map { perLoop in
            (0..<clusters).map { c in
                var counts = Array(repeating: 0, count: ProxyMetrics.breakerStateLabels.count)
                var any = false
                for states in perLoop {
                    if let state = states[c] {
                        any = true
                        counts[ProxyMetrics.index(state)] += 1
                    }
                }
                return any ? counts : []
            }
        }
    }

    /// Each cluster's endpoints with their counts summed over the loops.
    public func endpoints() -> EventLoopFuture<EndpointsReport> {
        let first = loops[0].loop
        let futures = loops.map { state in
            state.loop.submit {
                let now = state.now()
                return state.clusters.map { cluster in
                    cluster.sent.indices.map {
                        (
                            Int(cluster.edge.activeByReplica[$0]), cluster.sent[$0], cluster.failures[$0],
                            cluster.isEjected($0), cluster.isDown($0, at: now)
                        )
                    }
                }
            }
        }
        let configuration = self.configuration
        return EventLoopFuture.whenAllSucceed(futures, on: first).and(breakerStates()).map { perLoop, breakers in
            EndpointsReport(
                clusters: configuration.clusters.enumerated().map { c, cluster in
                    EndpointsReport.Cluster(
                        name: cluster.name,
                        balancer: cluster.balancer.kind.rawValue,
                        breaker: breakers[c].isEmpty
                            ? nil
                            : Dictionary(
                                uniqueKeysWithValues: zip(ProxyMetrics.breakerStateLabels, breakers[c])
                            ),
                        endpoints: cluster.backends.enumerated().map { e, address in
                            var report = EndpointsReport.Endpoint(
                                address: "\(address)",
                                active: 0,
                                requests: 0,
                                failures: 0
                            )
                            for counts in perLoop {
                                report.active += counts[c][e].0
                                report.requests += counts[c][e].1
                                report.failures += counts[c][e].2
                                report.ejectedOnLoops += counts[c][e].3 ? 1 : 0
                                report.downOnLoops += counts[c][e].4 ? 1 : 0
                            }
                            return report
                        }
                    )
                }
            )
        }
    }
}

/// The `/endpoints` document: each cluster's endpoints and their counts.
public struct EndpointsReport: Codable, Sendable, Equatable {
    /// One endpoint.
    public struct Endpoint: Codable, Sendable, Equatable {
        /// `host:port`.
        public var address: String
        /// Requests outstanding now.
        public var active: Int
        /// Requests sent since start.
        public var requests: Int
        /// Requests that failed (5xx, connect failure, broken connection, timeout).
        public var failures: Int
        /// On how many event loops outlier detection has it ejected now (each loop keeps its own view).
        public var ejectedOnLoops = 0
        /// On how many event loops its health has it out of the view now: failing Envoy active checks, or down by
        /// nginx's or HAProxy's passive health or HAProxy's checks.
        public var downOnLoops = 0

        enum CodingKeys: String, CodingKey {
            case address, active, requests, failures
            case ejectedOnLoops = "ejected_on_loops"
            case downOnLoops = "down_on_loops"
        }

        /// An endpoint's row.
        public init(address: String, active: Int, requests: Int, failures: Int) {
            self.address = address
            self.active = active
            self.requests = requests
            self.failures = failures
        }
    }

    /// One cluster.
    public struct Cluster: Codable, Sendable, Equatable {
        /// Its name.
        public var name: String
        /// Its balancer (the scenario name).
        public var balancer: String
        /// On how many event loops its circuit breaker is closed, open and half open; `nil` without a breaker.
        public var breaker: [String: Int]?
        /// Its endpoints, in configuration order.
        public var endpoints: [Endpoint]
    }

    /// The clusters, in configuration order.
    public var clusters: [Cluster]

    /// The JSON text, keys sorted.
    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }
}

/// A value behind a lock, for control-path state (the listeners), never for the request path.
final class ControlBox<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
