//===----------------------------------------------------------------------===//
// meshsim — Proxy
//===----------------------------------------------------------------------===//

import Health
import MeshTLS
import NIOCore
import NIOSSL
import Prometheus
import SharedModel
import SimCore
import SimRandom
import Spec

/// Everything one event loop of the proxy owns: its view of each cluster, its upstream pools, its counts.
///
/// Only its event loop touches it, so the request path takes no locks; loops share nothing but the immutable
/// configuration and the metrics' atomic counters.
final class ProxyLoop: @unchecked Sendable {
    /// The loop.
    let loop: any EventLoop
    /// The loop's position in the group.
    let index: Int
    /// The shared, immutable setup.
    let shared: ProxyShared
    /// Each cluster as this loop balances it.
    let clusters: [ClusterState]
    /// Idle upstream connections, by backend.
    var pools: [IdlePool<UpstreamConnection>]
    /// The stream of weighted split draws.
    var routeRandom: RandomStream
    /// Requests in flight on this loop (from head to the end of the upstream response).
    var pending = 0
    /// Open client connections.
    var downstream: [ObjectIdentifier: DownstreamConnection] = [:]
    /// Open upstream connections.
    var upstream: [ObjectIdentifier: UpstreamConnection] = [:]
    /// No new work after shutdown began.
    var stopping = false
    /// The clusters' periodic outlier-detection sweeps.
    private var sweeps: [RepeatedTask] = []
    /// The clusters' active health checkers (Envoy's and HAProxy's).
    private var checkers: [HealthChecker] = []

    init(loop: any EventLoop, index: Int, shared: ProxyShared) {
        self.loop = loop
        self.index = index
        self.shared = shared
        let seed = shared.configuration.seed
        clusters = shared.configuration.clusters.enumerated().map { i, cluster in
            ClusterState(
                index: i,
                spec: cluster,
                backendOfEndpoint: shared.backendOfEndpoint[i],
                seed: seed,
                loop: index
            )
        }
        pools = shared.backends.map { _ in IdlePool(capacity: shared.configuration.maxIdlePerBackend) }
        routeRandom = RandomStream(seed: seed, replication: 0, key: "proxy/\(index)/routes")
        for cluster in clusters where cluster.edge.nginx != nil {
            // nginx passive health: when a peer's `fail_timeout` ends, the view takes it back.
            cluster.scheduleRecovery = { [unowned self, unowned cluster] at in
                let due = NIODeadline.uptimeNanoseconds(shared.startUptime &+ UInt64(max(0, at.nanoseconds)))
                _ = try? loop.scheduleCallback(
                    at: due,
                    handler: LoopTimer { cluster.edge.setView(cluster.edge.fullView, at: self.now()) }
                )
            }
        }
    }

    /// Starts each cluster's health checkers and outlier-detection sweep every `interval` (Envoy's `interval`), on
    /// this loop.
    func startSweeps() {
        for cluster in clusters {
            if cluster.edge.activeCheck != nil { checkers.append(HealthChecker(loop: self, cluster: cluster)) }
            // HAProxy's own checks run whenever its server health does (as in the simulator).
            if cluster.edge.haproxy != nil {
                checkers.append(HealthChecker(loop: self, cluster: cluster, kind: .haproxy))
            }
        }
        for checker in checkers { checker.start() }
        for cluster in clusters {
            guard let interval = cluster.spec.policy.outlierDetection?.interval else { continue }
            let every = TimeAmount.nanoseconds(interval.nanoseconds)
            sweeps.append(
                loop.scheduleRepeatedTask(initialDelay: every, delay: every) { [self] _ in
                    let ejections = cluster.sweepOutliers(at: now())
                    if ejections > 0 { shared.metrics.ejections[cluster.index].increment(by: Int64(ejections)) }
                }
            )
        }
    }

    /// Stops the sweeps (shutdown).
    func stopSweeps() {
        for sweep in sweeps { sweep.cancel() }
        sweeps.removeAll()
        for checker in checkers { checker.stop() }
        checkers.removeAll()
    }

    /// The policies' clock: nanoseconds since the proxy started, from the monotonic clock the event loop uses.
    ///
    /// - Complexity: O(1), one clock read.
    func now() -> SimInstant {
        SimInstant(nanoseconds: Int64(NIODeadline.now().uptimeNanoseconds &- shared.startUptime))
    }
}

/// What every loop shares, immutable after start.
final class ProxyShared: Sendable {
    let configuration: ProxyConfiguration
    let routes: RouteTable
    /// The distinct backend addresses of all clusters.
    let backends: [ProxyAddress]
    /// Resolved addresses of ``backends``.
    let backendAddresses: [SocketAddress]
    /// `[cluster][endpoint]` → backend index.
    let backendOfEndpoint: [[Int]]
    let metrics: ProxyMetrics
    /// The uptime (ns) the policies' clock counts from.
    let startUptime: UInt64
    /// The TLS context for upstream connections, when they run mutual TLS.
    let upstreamTLS: NIOSSLContext?
    /// The TLS context of the listener, when it requires mutual TLS.
    let listenerTLS: NIOSSLContext?

    init(configuration: ProxyConfiguration) throws {
        self.configuration = configuration
        routes = RouteTable(configuration.routes)
        var backends: [ProxyAddress] = []
        var map: [[Int]] = []
        for cluster in configuration.clusters {
            map.append(
                cluster.backends.map { address in
                    if let i = backends.firstIndex(of: address) { return i }
                    backends.append(address)
                    return backends.count - 1
                }
            )
        }
        self.backends = backends
        backendOfEndpoint = map
        backendAddresses = try backends.map { try SocketAddress.makeAddressResolvingHost($0.host, port: $0.port) }
        metrics = ProxyMetrics(configuration: configuration, backends: backends)
        if let tls = configuration.tls {
            upstreamTLS = tls.upstream ? try tls.credentials.clientContext(for: tls.identity) : nil
            listenerTLS = tls.listener ? try tls.credentials.serverContext(for: tls.identity) : nil
        } else {
            upstreamTLS = nil
            listenerTLS = nil
        }
        startUptime = NIODeadline.now().uptimeNanoseconds
    }
}

/// A timer callback that runs a closure on its event loop.
struct LoopTimer: NIOScheduledCallbackHandler, @unchecked Sendable {
    let action: () -> Void
    func handleScheduledCallback(eventLoop: some EventLoop) { action() }
}
