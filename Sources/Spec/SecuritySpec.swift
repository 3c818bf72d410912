//===----------------------------------------------------------------------===//
// meshsim — Spec
//===----------------------------------------------------------------------===//

public import SimRandom

/// The mesh's own security: mutual TLS on every hop, what it costs, and which caller may call what.
///
/// In the simulator mutual TLS is a cost: a handshake on every new connection (connections are kept alive per
/// caller edge and replica, and lost when the replica crashes or the attempt is abandoned), and a crypto cost on
/// every request. `meshsim proxy` and `serve` run real TLS 1.3 with certificates meshsim issues at start.
public struct SecuritySpec: Sendable, Equatable {
    /// Whether every hop (client to service, service to service) runs mutual TLS.
    public var mtls: Bool
    /// The SPIFFE trust domain of the identities (`spiffe://TRUST_DOMAIN/ns/default/sa/NAME`).
    public var trustDomain: String
    /// The time a new connection's TLS handshake adds before its first request (simulator).
    public var handshakeCost: Distribution
    /// The time each request's encryption and decryption adds, both directions together (simulator).
    public var requestCost: Distribution
    /// Which callers may call which services and paths; `nil`: every call is allowed.
    public var authorization: AuthorizationPolicy?

    /// The handshake cost measured on this project's proxy: a full TLS 1.3 mutual handshake with P-256
    /// certificates over loopback (`docs/performance.md`, "mTLS").
    public static let measuredHandshakeCost = Distribution.constant(1_900_000)
    /// The per-request cost measured on this project's proxy: the added median latency of a request over a kept-alive
    /// mutual-TLS connection against plain HTTP (`docs/performance.md`, "mTLS").
    public static let measuredRequestCost = Distribution.constant(60_000)

    /// Whether `domain` is a SPIFFE trust domain: not empty, only lowercase letters, digits, `.`, `-` and `_`
    /// (SPIFFE ID specification §2.1).
    public static func isValidTrustDomain(_ domain: String) -> Bool {
        !domain.isEmpty
            && domain.utf8.allSatisfy {
                ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z"))
                    || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9"))
                    || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_")
            }
    }

    /// Creates the settings; the costs default to the figures measured on the proxy.
    public init(
        mtls: Bool = true,
        trustDomain: String = "meshsim.local",
        handshakeCost: Distribution = SecuritySpec.measuredHandshakeCost,
        requestCost: Distribution = SecuritySpec.measuredRequestCost,
        authorization: AuthorizationPolicy? = nil
    ) {
        self.mtls = mtls
        self.trustDomain = trustDomain
        self.handshakeCost = handshakeCost
        self.requestCost = requestCost
        self.authorization = authorization
    }
}

/// One authorization rule: callers (`from`), a service (`to`) and path prefixes, allowed or denied.
public struct AuthorizationRule: Sendable, Equatable {
    /// What a matching request gets.
    public enum Action: String, Sendable, CaseIterable {
        /// The request may pass (once a service has an allow rule, only matching requests pass).
        case allow
        /// The request is answered 403.
        case deny
    }

    /// What a matching request gets.
    public var action: Action
    /// The caller names (services or clients, as their mTLS identities name them); `nil`: any caller, with or
    /// without an identity.
    public var from: [String]?
    /// The service called.
    public var to: String
    /// Path prefixes; `nil`: every path.
    public var paths: [String]?

    /// Creates a rule.
    public init(action: Action, from: [String]? = nil, to: String, paths: [String]? = nil) {
        self.action = action
        self.from = from
        self.to = to
        self.paths = paths
    }

    /// Whether the rule covers a request from `caller` (its verified identity, `nil` without mTLS) to `service`
    /// for `path`.
    public func matches(caller: String?, service: String, path: String) -> Bool {
        guard to == service else { return false }
        if let from {
            guard let caller, from.contains(caller) else { return false }
        }
        if let paths { return paths.contains { path.hasPrefix($0) } }
        return true
    }
}

/// Authorization rules evaluated as Istio's `AuthorizationPolicy` evaluates ALLOW and DENY policies
/// (istio.io, "Authorization Policy", the evaluation order): a request that matches a deny rule is denied; else,
/// when the called service has allow rules, it must match one of them; else it is allowed. A denied request is
/// answered 403 by the called side, before the service does any work.
public struct AuthorizationPolicy: Sendable, Equatable {
    /// The rules, in the scenario's order (the order does not change the outcome).
    public var rules: [AuthorizationRule]

    /// Creates a policy of `rules`.
    public init(rules: [AuthorizationRule]) {
        self.rules = rules
    }

    /// Whether a request from `caller` (its verified identity; `nil` without one) to `service` for `path` may
    /// pass.
    ///
    /// - Complexity: O(rules × (callers + paths)); the simulator evaluates it once per edge and path at build.
    public func allows(caller: String?, service: String, path: String) -> Bool {
        var hasAllow = false
        var allowed = false
        for rule in rules where rule.to == service {
            let matches = rule.matches(caller: caller, service: service, path: path)
            switch rule.action {
            case .deny: if matches { return false }
            case .allow:
                hasAllow = true
                if matches { allowed = true }
            }
        }
        return !hasAllow || allowed
    }
}
