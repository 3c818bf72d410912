//===----------------------------------------------------------------------===//
// meshsim — Live
//===----------------------------------------------------------------------===//

import Foundation
import NIOCore
import NIOPosix
import Proxy

/// Runs one ``LivePlan`` end to end: backends, proxy, load; stops everything it started, whatever happens.
public enum LiveRunner {
    /// Starts the backends and the proxy, runs the load through the proxy, then stops both.
    ///
    /// The backends and the generator get their own event-loop groups (`threads` loops each), so the generator's
    /// pacing does not share a thread with the servers it measures.
    public static func run(
        plan: LivePlan,
        proxy: ProxyKind,
        proxyPort: Int,
        directory: String,
        threads: Int,
        onWindow: @Sendable (LoadWindow) -> Void = { _ in }
    ) async throws -> LoadResult {
        let serverGroup = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        let clientGroup = MultiThreadedEventLoopGroup(numberOfThreads: threads)
        var configuration = plan.backends
        if configuration.maxConnectionsPerReplica == nil {
            // The generator's sockets share this process's descriptors with the backends.
            configuration.maxConnectionsPerReplica = BackendConfiguration.defaultMaxConnections(
                replicas: configuration.replicas.count,
                reserve: BackendConfiguration.fileReserve + plan.load.maxConnections
            )
        }
        let backends = BackendServer(configuration: configuration, group: serverGroup)
        var proxyProcess: ProxyProcess?
        var ownProxy: (server: ProxyServer, group: MultiThreadedEventLoopGroup)?
        func stopAll() async {
            proxyProcess?.stop()
            if let ownProxy {
                await ownProxy.server.stop(drain: .zero)
                try? await ownProxy.group.shutdownGracefully()
            }
            await backends.stop()
            try? await clientGroup.shutdownGracefully()
            try? await serverGroup.shutdownGracefully()
        }
        do {
            try await backends.start(schedulingFaults: false)
            if proxy == .meshsim {
                // meshsim proxy runs in this process on an event loop of its own (one worker, as nginx and HAProxy
                // get), with the client's call policy on the simulator's call edge.
                let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
                do {
                    let server = try ProxyServer(configuration: plan.proxyConfiguration(port: proxyPort), group: group)
                    ownProxy = (server, group)
                    try await server.start()
                } catch let error as ProxyError {
                    if ownProxy == nil { try? await group.shutdownGracefully() }
                    switch error {
                    case .bindFailed(let address, let reason, let inUse):
                        throw LiveError.bindFailed(
                            host: address.host,
                            port: address.port,
                            reason: inUse ? PortOwner.describe(port: address.port) ?? reason : reason
                        )
                    case .invalid(let message):
                        throw LiveError.invalid(message)
                    }
                }
            } else {
                proxyProcess = try ProxyProcess(kind: proxy, plan: plan, port: proxyPort, directory: directory)
            }
            let generator = LoadGenerator(configuration: plan.load, group: clientGroup)
            // The fault timeline and the load share one time zero.
            let result = try await generator.run(
                onStart: { start in backends.scheduleFaults(from: start) },
                onWindow: onWindow
            )
            if let ownProxy {
                // The proxy's own counters (requests by outcome, ejections, breaker openings), as Prometheus text.
                try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                try? ownProxy.server.metricsText().write(
                    toFile: directory + "/metrics.prom",
                    atomically: true,
                    encoding: .utf8
                )
            }
            await stopAll()
            return result
        } catch {
            await stopAll()
            throw error
        }
    }
}
