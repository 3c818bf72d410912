//===----------------------------------------------------------------------===//
// meshsim — Scenario
//===----------------------------------------------------------------------===//

import SimRandom
import Spec

// The `security` block: mutual TLS, its costs, and authorization rules (docs/scenario-format.md, "Security").

extension ScenarioDecoder {
    static let securityKeys = ["mtls", "trust_domain", "handshake_cost", "request_cost", "authorization"]
    static let ruleKeys = ["action", "from", "to", "paths"]
    /// The most authorization rules a scenario may hold.
    static let maxRules = 10_000

    /// Reads the top-level `security` block, checking its names against the scenario's services and clients.
    mutating func security(_ node: YAMLTree?, services: [String], clients: [String]) -> SecuritySpec? {
        guard let f = reader.fields(node, "security", known: Self.securityKeys) else { return nil }
        var spec = SecuritySpec()
        spec.mtls = reader.bool(f["mtls"], f.path("mtls"), default: false)
        if let node = f["trust_domain"], let domain = reader.string(node, f.path("trust_domain"), maxLength: 255) {
            if !SecuritySpec.isValidTrustDomain(domain) {
                reader.fail(
                    .outOfRange,
                    node,
                    f.path("trust_domain"),
                    "'\(domain)' is not a SPIFFE trust domain (lowercase letters, digits, '.', '-', '_')"
                )
            } else {
                spec.trustDomain = domain
            }
        }
        for key in ["handshake_cost", "request_cost"] where f[key] != nil && !spec.mtls {
            reader.fail(
                .outOfRange,
                f[key],
                f.path(key),
                "'\(key)' is a cost of mutual TLS, which is off",
                suggestion: "set security.mtls: true, or remove '\(key)'"
            )
        }
        spec.handshakeCost = reader.distribution(
            f["handshake_cost"],
            f.path("handshake_cost"),
            default: spec.handshakeCost
        )
        spec.requestCost = reader.distribution(f["request_cost"], f.path("request_cost"), default: spec.requestCost)
        if let rulesNode = f["authorization"] {
            spec.authorization = authorization(
                rulesNode,
                f.path("authorization"),
                mtls: spec.mtls,
                services: services,
                clients: clients
            )
        }
        return spec
    }

    /// Reads `security.authorization`: a list of rules.
    private mutating func authorization(
        _ node: YAMLTree,
        _ path: String,
        mtls: Bool,
        services: [String],
        clients: [String]
    ) -> AuthorizationPolicy {
        var rules: [AuthorizationRule] = []
        let items = reader.list(node, path)
        if items.count > Self.maxRules {
            reader.fail(.tooLarge, node, path, "\(items.count) rules; at most \(Self.maxRules) are allowed")
            return AuthorizationPolicy(rules: [])
        }
        for (i, item) in items.enumerated() {
            let rulePath = path + "[\(i)]"
            guard let r = reader.fields(item, rulePath, known: Self.ruleKeys) else { continue }
            if r["action"] == nil {
                reader.fail(.missingField, item, r.path("action"), "a rule needs 'action' (allow or deny)")
            }
            if r["to"] == nil {
                reader.fail(.missingField, item, r.path("to"), "a rule needs 'to' (the service it guards)")
            }
            let action = reader.choice(
                r["action"],
                r.path("action"),
                choices: AuthorizationRule.Action.allCases.map(\.rawValue)
            )
            .flatMap(AuthorizationRule.Action.init(rawValue:))
            var to: String?
            if let node = r["to"], let name = reader.string(node, r.path("to"), maxLength: Self.maxNameLength) {
                if services.contains(name) {
                    to = name
                } else {
                    reader.fail(
                        .danglingReference,
                        node,
                        r.path("to"),
                        "no service named '\(name)'",
                        suggestion: "one of: \(services.joined(separator: ", "))"
                    )
                }
            }
            var from: [String]?
            if let node = r["from"] {
                if !mtls {
                    reader.fail(
                        .outOfRange,
                        node,
                        r.path("from"),
                        "'from' matches callers by their mutual-TLS identity, and mutual TLS is off",
                        suggestion: "set security.mtls: true"
                    )
                }
                from = names(node, r.path("from"), known: services + clients, what: "service or client")
            }
            var paths: [String]?
            if let node = r["paths"] {
                paths = []
                for (k, p) in reader.list(node, r.path("paths")).enumerated() {
                    guard let text = reader.string(p, r.path("paths") + "[\(k)]") else { continue }
                    if !text.hasPrefix("/") {
                        reader.fail(
                            .outOfRange,
                            p,
                            r.path("paths") + "[\(k)]",
                            "a path prefix starts with '/', found '\(text)'"
                        )
                    }
                    paths!.append(text)
                }
                if paths!.isEmpty {
                    reader.fail(
                        .outOfRange,
                        node,
                        r.path("paths"),
                        "an empty list matches no request; leave 'paths' out to match every path"
                    )
                }
            }
            if let action, let to { rules.append(AuthorizationRule(action: action, from: from, to: to, paths: paths)) }
        }
        return AuthorizationPolicy(rules: rules)
    }

    /// A name or a list of names, each one of `known`.
    private mutating func names(_ node: YAMLTree, _ path: String, known: [String], what: String) -> [String] {
        let items: [(YAMLTree, String)]
        if case .sequence = node {
            items = reader.list(node, path).enumerated().map { ($1, path + "[\($0)]") }
        } else {
            items = [(node, path)]
        }
        var out: [String] = []
        for (item, itemPath) in items {
            guard let name = reader.string(item, itemPath, maxLength: Self.maxNameLength) else { continue }
            if known.contains(name) {
                out.append(name)
            } else {
                reader.fail(.danglingReference, item, itemPath, "no \(what) named '\(name)'")
            }
        }
        if items.isEmpty {
            reader.fail(
                .outOfRange,
                node,
                path,
                "an empty list matches no caller; leave 'from' out to match every caller"
            )
        }
        return out
    }
}
