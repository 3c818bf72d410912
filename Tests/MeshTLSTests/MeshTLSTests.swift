import Foundation
import MeshTLS
import NIOCore
import NIOPosix
import NIOSSL
import Testing

@Suite("Mesh identities and credentials")
struct MeshIdentityTests {
    @Test("a SPIFFE ID names the workload and survives a round trip, odd characters included")
    func roundTrip() {
        let plain = MeshIdentity(name: "api", trustDomain: "prod.example")
        #expect(plain.uri == "spiffe://prod.example/ns/default/sa/api")
        #expect(MeshIdentity(uri: plain.uri) == plain)
        let odd = MeshIdentity(name: "api v2/é")
        #expect(odd.uri == "spiffe://meshsim.local/ns/default/sa/api%20v2%2F%C3%A9")
        #expect(MeshIdentity(uri: odd.uri) == odd)
    }

    @Test(
        "anything but spiffe://DOMAIN/ns/NS/sa/NAME is no identity",
        arguments: [
            "https://meshsim.local/ns/default/sa/api", "spiffe://meshsim.local/sa/api",
            "spiffe:///ns/default/sa/api", "spiffe://meshsim.local/ns/default/sa/", "spiffe://d/ns/default/sa/a%zz",
            "spiffe://d/ns/default/sa/a/b",
        ]
    )
    func malformed(uri: String) {
        #expect(MeshIdentity(uri: uri) == nil)
    }

    @Test("issued certificates carry their workload's SPIFFE ID; written and read back they are the same")
    func writeAndLoad() throws {
        let credentials = try MeshCredentials.generate(trustDomain: "test.local", names: ["web", "api", "api"])
        #expect(credentials.identities.count == 2)
        for (name, credential) in credentials.identities {
            #expect(
                try MeshCredentials.identity(ofPEM: credential.certificatePEM)
                    == MeshIdentity(name: name, trustDomain: "test.local")
            )
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("meshtls-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try credentials.write(to: directory)
        let key = try FileManager.default.attributesOfItem(atPath: directory + "/api.key")
        #expect((key[.posixPermissions] as? Int) == 0o600)
        let loaded = try MeshCredentials.load(from: directory, names: ["web", "api"])
        #expect(loaded == credentials)
        #expect(throws: MeshTLSError.self) { try MeshCredentials.load(from: directory, names: ["db"]) }
        // A certificate filed under another name is refused.
        try FileManager.default.copyItem(atPath: directory + "/web.pem", toPath: directory + "/db.pem")
        try FileManager.default.copyItem(atPath: directory + "/web.key", toPath: directory + "/db.key")
        #expect(throws: MeshTLSError.self) { try MeshCredentials.load(from: directory, names: ["db"]) }
        #expect(throws: MeshTLSError.unknownIdentity("db")) { try credentials.clientContext(for: "db") }
    }
}

@Suite("Mutual TLS handshakes over loopback", .timeLimit(.minutes(1)))
struct MeshHandshakeTests {
    /// Serves `server`'s identity with `serverCredentials`, connects as `client` with `clientCredentials` expecting
    /// `expected`, and returns what each side saw: the identity the server read, and the client's outcome.
    func handshake(
        serverCredentials: MeshCredentials,
        server: String,
        clientCredentials: MeshCredentials,
        client: String,
        expected: String?
    ) async throws -> (serverSaw: MeshIdentity?, clientSaw: Result<MeshIdentity, any Error>) {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            let result = try await handshake(
                on: group,
                serverCredentials: serverCredentials,
                server: server,
                clientCredentials: clientCredentials,
                client: client,
                expected: expected
            )
            try await group.shutdownGracefully()
            return result
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    private func handshake(
        on group: MultiThreadedEventLoopGroup,
        serverCredentials: MeshCredentials,
        server: String,
        clientCredentials: MeshCredentials,
        client: String,
        expected: String?
    ) async throws -> (serverSaw: MeshIdentity?, clientSaw: Result<MeshIdentity, any Error>) {
        let serverSaw = Seen()
        let serverContext = try serverCredentials.serverContext(for: server)
        let listener = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: serverContext))
                    try channel.pipeline.syncOperations.addHandler(
                        MeshPeerVerifier(expected: nil) { identity in serverSaw.set(identity) }
                    )
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let clientContext = try clientCredentials.clientContext(for: client)
        let outcome = group.next().makePromise(of: MeshIdentity.self)
        let expectedIdentity = expected.map { MeshIdentity(name: $0, trustDomain: serverCredentials.trustDomain) }
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        NIOSSLClientHandler(context: clientContext, serverHostname: nil)
                    )
                    try channel.pipeline.syncOperations.addHandler(
                        MeshPeerVerifier(
                            expected: expectedIdentity,
                            onIdentity: { outcome.succeed($0) },
                            onFailure: { outcome.fail($0) }
                        )
                    )
                }
            }
            .connect(to: listener.localAddress!).get()
        channel.closeFuture.whenComplete { _ in outcome.fail(ChannelError.ioOnClosedChannel) }
        let result: Result<MeshIdentity, any Error>
        do { result = .success(try await outcome.futureResult.get()) } catch { result = .failure(error) }
        // Give the server side a moment to finish its half of the handshake.
        try await Task.sleep(for: .milliseconds(50))
        try? await channel.close()
        try? await listener.close()
        return (serverSaw.get(), result)
    }

    @Test("both sides learn each other's identity")
    func success() async throws {
        let mesh = try MeshCredentials.generate(names: ["web", "api"])
        let (serverSaw, clientSaw) = try await handshake(
            serverCredentials: mesh,
            server: "api",
            clientCredentials: mesh,
            client: "web",
            expected: "api"
        )
        #expect(serverSaw == MeshIdentity(name: "web"))
        #expect(try clientSaw.get() == MeshIdentity(name: "api"))
    }

    @Test("a server with another identity than expected is refused (secure naming)")
    func wrongIdentity() async throws {
        let mesh = try MeshCredentials.generate(names: ["web", "api", "db"])
        let (_, clientSaw) = try await handshake(
            serverCredentials: mesh,
            server: "db",
            clientCredentials: mesh,
            client: "web",
            expected: "api"
        )
        #expect(throws: MeshPeerIdentityError.self) { try clientSaw.get() }
    }

    @Test("a certificate from another mesh's authority fails the handshake on both sides")
    func foreignAuthority() async throws {
        let mesh = try MeshCredentials.generate(names: ["api"])
        let other = try MeshCredentials.generate(names: ["web"])
        let (serverSaw, clientSaw) = try await handshake(
            serverCredentials: mesh,
            server: "api",
            clientCredentials: other,
            client: "web",
            expected: "api"
        )
        #expect(serverSaw == nil)
        #expect(throws: (any Error).self) { try clientSaw.get() }
    }
}

/// The identity a server saw, set on its event loop and read by the test.
final class Seen: @unchecked Sendable {
    private let lock = NSLock()
    private var identity: MeshIdentity?

    func set(_ identity: MeshIdentity) { lock.withLock { self.identity = identity } }
    func get() -> MeshIdentity? { lock.withLock { identity } }
}
