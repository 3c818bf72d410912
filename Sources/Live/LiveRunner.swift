//===----------------------------------------------------------------------===//
// meshsim — Live
//===----------------------------------------------------------------------===//

import NIOCore
import NIOPosix

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
        do {
            try await backends.start(schedulingFaults: false)
            proxyProcess = try ProxyProcess(kind: proxy, plan: plan, port: proxyPort, directory: directory)
            let generator = LoadGenerator(configuration: plan.load, group: clientGroup)
            // The fault timeline and the load share one time zero.
            let result = try await generator.run(
                onStart: { start in backends.scheduleFaults(from: start) },
                onWindow: onWindow
            )
            proxyProcess?.stop()
            await backends.stop()
            try? await clientGroup.shutdownGracefully()
            try? await serverGroup.shutdownGracefully()
            return result
        } catch {
            proxyProcess?.stop()
            await backends.stop()
            try? await clientGroup.shutdownGracefully()
            try? await serverGroup.shutdownGracefully()
            throw error
        }
    }
}
