//===----------------------------------------------------------------------===//
// meshsim — MeshTLS
//===----------------------------------------------------------------------===//

import Crypto
import Foundation
public import NIOSSL
import SwiftASN1
import X509

/// Why credentials could not be made, read or used.
public enum MeshTLSError: Error, CustomStringConvertible, Equatable {
    /// No certificate was issued for this workload name.
    case unknownIdentity(String)
    /// A credential file could not be read or written.
    case file(path: String, reason: String)
    /// A certificate or key is not valid PEM of the expected kind.
    case invalid(path: String, reason: String)

    public var description: String {
        switch self {
        case .unknownIdentity(let name):
            return
                "no mesh identity was issued for '\(name)' (credentials are made for the scenario's services and clients)"
        case .file(let path, let reason): return "\(path): \(reason)"
        case .invalid(let path, let reason): return "\(path): \(reason)"
        }
    }
}

/// One workload's credentials: its certificate (with its SPIFFE ID as the only URI SAN) and private key, in PEM.
public struct IdentityCredential: Sendable, Equatable {
    /// The identity the certificate carries.
    public var identity: MeshIdentity
    /// The X.509 certificate, PEM.
    public var certificatePEM: String
    /// The P-256 private key, PEM (PKCS#8).
    public var privateKeyPEM: String
}

/// A mesh's certificate authority and the identities it issued: what the proxies and backends need for mutual
/// TLS.
///
/// meshsim makes them at start (``generate(trustDomain:names:validity:now:)``), as a mesh's control plane issues
/// workload certificates (Istio's `istiod` CA, Linkerd's identity controller): a self-signed P-256 root, and per
/// workload a leaf certificate for both TLS server and client authentication whose subject alternative name is the
/// workload's SPIFFE ID (X.509-SVID, SPIFFE `X509-SVID.md` §2, §4). Peers verify the chain to the root and then
/// read the SPIFFE ID (``MeshPeerVerifier``); host names play no part.
public struct MeshCredentials: Sendable, Equatable {
    /// The trust domain of every identity.
    public let trustDomain: String
    /// The root certificate, PEM.
    public let authorityPEM: String
    /// The issued credentials by workload name.
    public let identities: [String: IdentityCredential]

    /// Makes a new root and one credential per name in `names`, valid from a minute before `now` for `validity`.
    ///
    /// - Complexity: one P-256 key generation and one signature per name.
    public static func generate(
        trustDomain: String = MeshIdentity.defaultTrustDomain,
        names: [String],
        validity: TimeInterval = 7 * 24 * 3600,
        now: Date = Date()
    ) throws -> MeshCredentials {
        let rootKey = P256.Signing.PrivateKey()
        let rootName = try DistinguishedName {
            OrganizationName("meshsim")
            CommonName("meshsim mesh CA (\(trustDomain))")
        }
        let notBefore = now.addingTimeInterval(-60)
        let notAfter = now.addingTimeInterval(validity)
        let window = (notBefore, notAfter)
        let root = try issue(
            key: rootKey.publicKey,
            subject: rootName,
            by: (rootName, rootKey),
            validity: window,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: Certificate.PublicKey(rootKey.publicKey))
            }
        )
        var identities: [String: IdentityCredential] = [:]
        for name in names where identities[name] == nil {
            let identity = MeshIdentity(name: name, trustDomain: trustDomain)
            let key = P256.Signing.PrivateKey()
            let leaf = try issue(
                key: key.publicKey,
                subject: try DistinguishedName { OrganizationName("meshsim") },
                by: (rootName, rootKey),
                validity: window,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true, keyAgreement: true))
                    try ExtendedKeyUsage([.serverAuth, .clientAuth])
                    SubjectAlternativeNames([.uniformResourceIdentifier(identity.uri)])
                    AuthorityKeyIdentifier(
                        keyIdentifier: try root.extensions.subjectKeyIdentifier?.keyIdentifier
                    )
                }
            )
            identities[name] = IdentityCredential(
                identity: identity,
                certificatePEM: try leaf.serializeAsPEM().pemString,
                privateKeyPEM: key.pemRepresentation
            )
        }
        return MeshCredentials(
            trustDomain: trustDomain,
            authorityPEM: try root.serializeAsPEM().pemString,
            identities: identities
        )
    }

    /// An X.509 v3 certificate for `key` named `subject`, signed with ECDSA P-256 SHA-256 by `issuer`.
    private static func issue(
        key: P256.Signing.PublicKey,
        subject: DistinguishedName,
        by issuer: (name: DistinguishedName, key: P256.Signing.PrivateKey),
        validity: (Date, Date),
        extensions: Certificate.Extensions
    ) throws -> Certificate {
        try Certificate(
            version: .v3,
            serialNumber: Certificate.SerialNumber(),
            publicKey: .init(key),
            notValidBefore: validity.0,
            notValidAfter: validity.1,
            issuer: issuer.name,
            subject: subject,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: extensions,
            issuerPrivateKey: .init(issuer.key)
        )
    }

    /// Writes the credentials into `directory` (made if missing): `ca.pem`, and per workload `NAME.pem` and
    /// `NAME.key` (the key readable by its owner only), NAME percent-encoded as in the SPIFFE ID.
    public func write(to directory: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw MeshTLSError.file(path: directory, reason: "cannot make the folder (\(error.localizedDescription))")
        }
        try Self.writeFile(directory + "/ca.pem", authorityPEM, permissions: 0o644)
        for (name, credential) in identities.sorted(by: { $0.key < $1.key }) {
            let stem = directory + "/" + MeshIdentity.encode(name)
            try Self.writeFile(stem + ".pem", credential.certificatePEM, permissions: 0o644)
            try Self.writeFile(stem + ".key", credential.privateKeyPEM, permissions: 0o600)
        }
    }

    /// Reads credentials written by ``write(to:)`` for the workloads in `names`, checking that each certificate
    /// carries the SPIFFE ID of its name.
    public static func load(from directory: String, names: [String]) throws -> MeshCredentials {
        let authorityPEM = try readFile(directory + "/ca.pem")
        do { _ = try NIOSSLCertificate(bytes: Array(authorityPEM.utf8), format: .pem) } catch {
            throw MeshTLSError.invalid(path: directory + "/ca.pem", reason: "not a PEM certificate (\(error))")
        }
        var identities: [String: IdentityCredential] = [:]
        var trustDomain = MeshIdentity.defaultTrustDomain
        for name in names where identities[name] == nil {
            let stem = directory + "/" + MeshIdentity.encode(name)
            let certificatePEM = try readFile(stem + ".pem")
            let keyPEM = try readFile(stem + ".key")
            guard let identity = try? Self.identity(ofPEM: certificatePEM), identity.name == name else {
                throw MeshTLSError.invalid(
                    path: stem + ".pem",
                    reason: "not a certificate whose SPIFFE ID names '\(name)'"
                )
            }
            do { _ = try NIOSSLPrivateKey(bytes: Array(keyPEM.utf8), format: .pem) } catch {
                throw MeshTLSError.invalid(path: stem + ".key", reason: "not a PEM private key (\(error))")
            }
            trustDomain = identity.trustDomain
            identities[name] = IdentityCredential(
                identity: identity,
                certificatePEM: certificatePEM,
                privateKeyPEM: keyPEM
            )
        }
        return MeshCredentials(trustDomain: trustDomain, authorityPEM: authorityPEM, identities: identities)
    }

    /// The TLS context a workload serves with: its certificate, and a client certificate required and verified
    /// against the mesh's root (TLS 1.3 only; read the caller's identity with ``MeshPeerVerifier``).
    public func serverContext(for name: String) throws -> NIOSSLContext {
        let (chain, key, root) = try material(for: name)
        var configuration = TLSConfiguration.makeServerConfigurationWithMTLS(
            certificateChain: chain,
            privateKey: key,
            trustRoots: .certificates([root])
        )
        configuration.minimumTLSVersion = .tlsv13
        return try NIOSSLContext(configuration: configuration)
    }

    /// The TLS context a workload calls others with: its certificate as the client certificate, the server's
    /// chain verified against the mesh's root, no host-name check (the SPIFFE ID is checked instead).
    public func clientContext(for name: String) throws -> NIOSSLContext {
        let (chain, key, root) = try material(for: name)
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateChain = chain
        configuration.privateKey = key
        configuration.trustRoots = .certificates([root])
        configuration.certificateVerification = .noHostnameVerification
        configuration.minimumTLSVersion = .tlsv13
        return try NIOSSLContext(configuration: configuration)
    }

    /// The identity a certificate in PEM carries (its first SPIFFE URI SAN).
    public static func identity(ofPEM pem: String) throws -> MeshIdentity? {
        try identity(of: Certificate(pemEncoded: pem))
    }

    /// The identity a DER-encoded certificate carries (its first SPIFFE URI SAN).
    static func identity(ofDER der: [UInt8]) throws -> MeshIdentity? {
        try identity(of: Certificate(derEncoded: der))
    }

    private static func identity(of certificate: Certificate) throws -> MeshIdentity? {
        guard let names = try certificate.extensions.subjectAlternativeNames else { return nil }
        for name in names {
            if case .uniformResourceIdentifier(let uri) = name, let identity = MeshIdentity(uri: uri) {
                return identity
            }
        }
        return nil
    }

    private func material(for name: String) throws -> (
        [NIOSSLCertificateSource], NIOSSLPrivateKeySource, NIOSSLCertificate
    ) {
        guard let credential = identities[name] else { throw MeshTLSError.unknownIdentity(name) }
        let certificate = try NIOSSLCertificate(bytes: Array(credential.certificatePEM.utf8), format: .pem)
        let key = try NIOSSLPrivateKey(bytes: Array(credential.privateKeyPEM.utf8), format: .pem)
        let root = try NIOSSLCertificate(bytes: Array(authorityPEM.utf8), format: .pem)
        return ([.certificate(certificate)], .privateKey(key), root)
    }

    private static func writeFile(_ path: String, _ text: String, permissions: Int) throws {
        guard
            FileManager.default.createFile(
                atPath: path,
                contents: Data(text.utf8),
                attributes: [.posixPermissions: permissions]
            )
        else { throw MeshTLSError.file(path: path, reason: "cannot write the file") }
    }

    private static func readFile(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MeshTLSError.file(path: path, reason: "cannot read the file")
        }
        guard data.count <= 1 << 20, let text = String(data: data, encoding: .utf8) else {
            throw MeshTLSError.invalid(path: path, reason: "not a PEM file (over 1 MiB, or not text)")
        }
        return text
    }
}
