import Foundation
import MeshModel
import Reports
import Scenario
import SimCore
import Spec
import Testing

/// The mesh's security in the simulator: mutual TLS costs, connection reuse, authorization; and the `security`
/// block's validation.
@Suite("Security in the simulator")
struct SecurityModelTests {
    static func run(_ yaml: String) throws -> Simulation.Result { try simulate(yaml: yaml, file: "t.yaml") }

    /// Two tiers, constant times and evenly spaced arrivals, so every latency is known exactly.
    static func twoTiers(_ security: String, crash: Bool = false) -> String {
        """
        duration: 20s
        services:
          web:
            replicas: 2
            workers: 8
            service_time: "constant:2ms"
            calls:
              - {service: db, timeout: 1s}
          db:
            replicas: 2
            workers: 8
            service_time: "constant:1ms"
        clients:
          users:
            target: web
            rate: 200
            arrival: constant
            paths: {"/api": 0.75, "/admin": 0.25}
        \(crash ? "faults:\n  - {at: 10s, for: 1s, kind: crash, service: db, replica: 0}" : "")
        \(security)
        """
    }

    @Test("mutual TLS adds the request cost on each hop and one handshake per connection kept alive")
    func costs() throws {
        let plain = try Self.run(Self.twoTiers(""))
        #expect(plain.summary.p50Ms == 3.0)
        #expect(plain.counters[.tlsHandshakes] == 0)
        let mtls = try Self.run(
            Self.twoTiers(#"security: {mtls: true, handshake_cost: "constant:4ms", request_cost: "constant:0.5ms"}"#)
        )
        // Two hops of 0.5 ms each on every request (within the histogram's precision).
        #expect(abs(mtls.summary.p50Ms! - 4.0) < 0.005)
        #expect(mtls.summary.ok == plain.summary.ok)
        // The slowest request paid both hops' handshakes.
        #expect(abs(mtls.summary.maxMs! - (4.0 + 2 * 4.0)) < 0.02)
        // While the first, slow handshakes are under way, requests overlap on a replica and open more
        // connections; later every connection is reused.
        #expect((4...8).contains(mtls.counters[.tlsHandshakes]))
        // With the measured default costs no request overlaps another on a replica: one connection per edge and
        // replica (users→web ×2, web→db ×2).
        let measured = try Self.run(Self.twoTiers("security: {mtls: true}"))
        #expect(measured.counters[.tlsHandshakes] == 4)
    }

    @Test("a crash closes the replica's connections: the next requests handshake again")
    func crashReconnects() throws {
        let result = try Self.run(Self.twoTiers("security: {mtls: true}", crash: true))
        // The four of the steady state, and web→db's new connection to the restarted db replica.
        #expect(result.counters[.tlsHandshakes] == 5)
    }

    @Test("a deny rule answers 403 on its path only; a 403 deeper down fails the request above it")
    func authorization() throws {
        let deny = try Self.run(
            Self.twoTiers(
                """
                security:
                  mtls: true
                  authorization:
                    - {action: deny, to: web, paths: ["/admin"]}
                """
            )
        )
        let total = deny.summary.requests
        #expect(deny.counters[.authzDenials] == deny.summary.failed)
        #expect(abs(Double(deny.summary.failed) / Double(total) - 0.25) < 0.03)
        // Allow rules: web may call db on /api only, so /admin requests are denied at db and web fails them.
        let allow = try Self.run(
            Self.twoTiers(
                """
                security:
                  mtls: true
                  authorization:
                    - {action: allow, from: users, to: web}
                    - {action: allow, from: [web], to: db, paths: ["/api"]}
                """
            )
        )
        #expect(allow.counters[.authzDenials] == allow.summary.failed)
        #expect(allow.summary.failed == deny.summary.failed)
        // The same rule naming another caller denies every call to db.
        let wrong = try Self.run(
            Self.twoTiers(
                """
                security:
                  mtls: true
                  authorization:
                    - {action: allow, from: [users], to: db}
                """
            )
        )
        #expect(wrong.summary.ok == 0)
        #expect(wrong.counters[.authzDenials] == wrong.summary.requests)
    }

    @Test("without mutual TLS a rule on paths still applies; nothing is drawn or counted for TLS")
    func rulesWithoutTLS() throws {
        let result = try Self.run(
            Self.twoTiers(
                """
                security:
                  authorization:
                    - {action: deny, to: db, paths: ["/admin"]}
                """
            )
        )
        #expect(result.counters[.tlsHandshakes] == 0)
        #expect(result.summary.p50Ms == 3.0)
        #expect(result.counters[.authzDenials] > 0)
    }

    @Test("Istio's order: a deny match wins, allow rules admit only what they match, no rules admit all")
    func evaluationOrder() {
        let policy = AuthorizationPolicy(rules: [
            AuthorizationRule(action: .allow, from: ["web"], to: "api"),
            AuthorizationRule(action: .deny, from: ["web"], to: "api", paths: ["/admin"]),
        ])
        #expect(policy.allows(caller: "web", service: "api", path: "/users"))
        #expect(!policy.allows(caller: "web", service: "api", path: "/admin/x"))
        #expect(!policy.allows(caller: "batch", service: "api", path: "/users"))
        #expect(!policy.allows(caller: nil, service: "api", path: "/users"))
        #expect(policy.allows(caller: nil, service: "db", path: "/anything"))
    }

    @Test(
        "bad security blocks are refused at their key path",
        arguments: [
            ("security: {handshake_cost: \"constant:1ms\"}", "security.handshake_cost"),
            ("security: {mtls: true, trust_domain: \"Bad Domain\"}", "security.trust_domain"),
            ("security: {authorization: [{action: deny, from: [users], to: api}]}", "security.authorization[0].from"),
            ("security: {mtls: true, authorization: [{action: deny, to: nowhere}]}", "security.authorization[0].to"),
            ("security: {mtls: true, authorization: [{action: maybe, to: api}]}", "security.authorization[0].action"),
            ("security: {mtls: true, authorization: [{to: api}]}", "security.authorization[0].action"),
            (
                "security: {mtls: true, authorization: [{action: deny, to: api, paths: [admin]}]}",
                "security.authorization[0].paths[0]"
            ),
            (
                "security: {mtls: true, authorization: [{action: deny, to: api, paths: []}]}",
                "security.authorization[0].paths"
            ),
            (
                "security: {mtls: true, authorization: [{action: deny, from: [ghost], to: api}]}",
                "security.authorization[0].from[0]"
            ),
            ("security: {mtls: true, tls: 1.3}", "security.tls"),
            ("security: {mtls: maybe}", "security.mtls"),
        ]
    )
    func refused(block: String, keyPath: String) {
        let found = problems(minimal(block))
        #expect(found.contains { $0.keyPath == keyPath }, "\(found.map(\.description))")
    }
}
