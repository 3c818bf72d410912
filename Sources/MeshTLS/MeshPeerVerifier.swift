//===----------------------------------------------------------------------===//
// meshsim — MeshTLS
//===----------------------------------------------------------------------===//

public import NIOCore
import NIOSSL
import NIOTLS

/// The peer's certificate named no mesh identity, or not the one expected.
public struct MeshPeerIdentityError: Error, CustomStringConvertible, Equatable {
    /// The identity the connection expected, if any.
    public var expected: MeshIdentity?
    /// The identity the peer presented, if any.
    public var presented: MeshIdentity?

    public var description: String {
        "TLS peer presented \(presented.map { $0.uri } ?? "no SPIFFE ID")"
            + (expected.map { ", expected \($0.uri)" } ?? "")
    }
}

/// Reads the SPIFFE identity of a mutual-TLS peer once the handshake completes (after ``NIOSSLHandler`` in the
/// pipeline), checks it against the identity expected, if any, and reports it; a peer without a mesh identity,
/// or with another one than expected, has its connection closed with ``MeshPeerIdentityError``.
///
/// On the serving side the reported identity is the caller's, which authorization rules are checked against; on
/// the calling side `expected` is the called service's identity (SPIFFE's "secure naming": the chain alone proves
/// only membership of the trust domain).
public final class MeshPeerVerifier: ChannelInboundHandler, RemovableChannelHandler {
    public typealias InboundIn = NIOAny

    private let expected: MeshIdentity?
    private let onIdentity: (MeshIdentity) -> Void
    private let onFailure: (any Error) -> Void
    /// The handshake completed with an acceptable identity, or a failure was reported.
    private var settled = false

    /// A verifier expecting `expected` (any identity of the mesh when `nil`) that reports the peer's identity to
    /// `onIdentity` before any application data passes, or the first error before that (a TLS alert, a bad
    /// certificate, the wrong identity) to `onFailure`.
    public init(
        expected: MeshIdentity?,
        onIdentity: @escaping (MeshIdentity) -> Void = { _ in },
        onFailure: @escaping (any Error) -> Void = { _ in }
    ) {
        self.expected = expected
        self.onIdentity = onIdentity
        self.onFailure = onFailure
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !settled {
            settled = true
            onFailure(error)
        }
        context.fireErrorCaught(error)
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted = event as? TLSUserEvent {
            let presented = Self.peerIdentity(of: context.pipeline)
            if let presented, expected == nil || presented == expected {
                settled = true
                onIdentity(presented)
            } else {
                let error = MeshPeerIdentityError(expected: expected, presented: presented)
                settled = true
                onFailure(error)
                context.fireErrorCaught(error)
                context.close(promise: nil)
                return
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// The identity in the peer certificate of the pipeline's TLS handler (call on the channel's event loop).
    public static func peerIdentity(of pipeline: ChannelPipeline) -> MeshIdentity? {
        guard let handler = try? pipeline.syncOperations.handler(type: NIOSSLHandler.self),
            let certificate = handler.peerCertificate, let der = try? certificate.toDERBytes()
        else { return nil }
        return (try? MeshCredentials.identity(ofDER: der)) ?? nil
    }
}
