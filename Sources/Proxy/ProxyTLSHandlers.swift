//===----------------------------------------------------------------------===//
// meshsim — Proxy
//===----------------------------------------------------------------------===//

import MeshTLS
import NIOCore
import NIOSSL
import Prometheus

extension ProxyShared {
    /// Puts mutual TLS in front of a new upstream connection of `cluster`, if the proxy runs it upstream: the
    /// proxy's certificate, the backend's chain checked against the mesh's root, and its identity against the
    /// cluster's service. A failed handshake closes the connection (the attempt fails as a broken connection).
    func addUpstreamTLS(to pipeline: ChannelPipeline.SynchronousOperations, cluster: Int) throws {
        guard let context = upstreamTLS, let tls = configuration.tls else { return }
        try pipeline.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil))
        let expected = configuration.clusters[cluster].service.map {
            MeshIdentity(name: $0, trustDomain: tls.credentials.trustDomain)
        }
        let metrics = self.metrics
        try pipeline.addHandler(
            MeshPeerVerifier(
                expected: expected,
                onIdentity: { _ in metrics.tlsHandshakes[0].increment() },
                onFailure: { _ in metrics.tlsHandshakes[1].increment() }
            )
        )
    }

    /// Puts mutual TLS in front of a new client connection, if the listener requires it; the caller's identity
    /// goes to `onPeer` before its first request is read.
    func addListenerTLS(
        to pipeline: ChannelPipeline.SynchronousOperations,
        onPeer: @escaping (MeshIdentity) -> Void
    ) throws {
        guard let context = listenerTLS else { return }
        try pipeline.addHandler(NIOSSLServerHandler(context: context))
        let metrics = self.metrics
        try pipeline.addHandler(
            MeshPeerVerifier(
                expected: nil,
                onIdentity: {
                    metrics.tlsHandshakes[2].increment()
                    onPeer($0)
                },
                onFailure: { _ in metrics.tlsHandshakes[3].increment() }
            )
        )
    }
}
