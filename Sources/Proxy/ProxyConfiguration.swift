//===----------------------------------------------------------------------===//
// meshsim — Proxy
//===----------------------------------------------------------------------===//

public import MeshTLS
public import SimCore
public import Spec

/// A host and port to listen on or connect to.
public struct ProxyAddress: Sendable, Hashable, CustomStringConvertible {
    /// An IPv4 or IPv6 literal, or a name.
    public var host: String
    /// The port (0: one the system chooses, for listeners).
    public var port: Int

    /// Creates an address.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port` (`[v6]:port` for IPv6); `nil` when malformed or the port is outside 0...65535.
    public init?(parsing text: String) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else {
            return nil
        }
        self.init(host: host, port: port)
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// One upstream cluster: its backends and the call policy of the edge to them (the balancer that spreads requests
/// over them, the per-attempt timeout, rate limit, adaptive throttle, circuit breaker, outlier detection), with the
/// scenario's key names and defaults.
public struct ProxyCluster: Sendable, Equatable {
    /// The cluster's name (a metrics label).
    public var name: String
    /// The backends, in order (an endpoint's index is its position here).
    public var backends: [ProxyAddress]
    /// Static weights of the backends (all 1 when empty), for weighted balancers.
    public var weights: [Int32]
    /// The zone of each backend (indices into the zones of the scenario; all 0 when empty), for zone-aware routing.
    public var zones: [Int] = []
    /// The proxy's own zone (the calling client's), for zone-aware routing.
    public var localZone = 0
    /// How many callers (the scenario's clients) sit in each zone: the originating cluster of zone-aware routing.
    public var callersByZone: [Int] = [1]
    /// The call policy: the balancer and the resilience policies (``ProxyConfiguration/unsupported(_:)`` lists
    /// those the proxy does not run yet).
    public var policy: CallPolicy
    /// An adaptive concurrency limit on the cluster's requests, applied by the proxy in front of the service (as
    /// Envoy's adaptive-concurrency filter is): beyond the limit a request is answered 503 at once; each answer
    /// teaches the limit (a success is a sample, a 503, 502 or timeout a drop, another 5xx nothing). `nil`: none.
    public var concurrencyLimit: ConcurrencyLimitSpec?
    /// The service the backends run: the mesh identity their mutual-TLS certificates must carry, and the service
    /// authorization rules guard; `nil`: any identity of the mesh, and the cluster's name for the rules.
    public var service: String?

    /// The balancer and its parameters.
    public var balancer: BalancerSpec {
        get { policy.balancer }
        set { policy.balancer = newValue }
    }

    /// Creates a cluster with the default policy and `balancer`.
    public init(name: String, backends: [ProxyAddress], weights: [Int32] = [], balancer: BalancerSpec) {
        self.init(name: name, backends: backends, weights: weights, policy: CallPolicy(balancer: balancer))
    }

    /// Creates a cluster with `policy`.
    public init(name: String, backends: [ProxyAddress], weights: [Int32] = [], policy: CallPolicy) {
        self.name = name
        self.backends = backends
        self.weights = weights
        self.policy = policy
    }

    /// The weight of backend `i`.
    func weight(_ i: Int) -> Int32 { i < weights.count ? weights[i] : 1 }
}

/// A route: which requests it takes (host and path prefix) and the clusters it splits them over, by weight.
public struct ProxyRoute: Sendable, Equatable {
    /// The host it takes (without port, case-insensitive), or `nil` for any.
    public var host: String?
    /// The path prefix it takes, or `nil` for any.
    public var pathPrefix: String?
    /// The clusters (indices into ``ProxyConfiguration/clusters``) and their weights; one entry for a plain route.
    public var targets: [(cluster: Int, weight: Double)]

    /// Creates a route.
    public init(host: String? = nil, pathPrefix: String? = nil, targets: [(cluster: Int, weight: Double)]) {
        self.host = host
        self.pathPrefix = pathPrefix
        self.targets = targets
    }

    public static func == (lhs: ProxyRoute, rhs: ProxyRoute) -> Bool {
        lhs.host == rhs.host && lhs.pathPrefix == rhs.pathPrefix
            && lhs.targets.map(\.cluster) == rhs.targets.map(\.cluster)
            && lhs.targets.map(\.weight) == rhs.targets.map(\.weight)
    }
}

/// The proxy's part in the mesh's security: its identity, where it speaks mutual TLS, and the rules it enforces.
///
/// Upstream, the proxy presents its identity's certificate and accepts a backend only with the identity of the
/// cluster's service (``ProxyCluster/service``). On the listener it requires a client certificate of the mesh and
/// enforces ``authorization`` against the caller's identity and the cluster's service: the server side of a
/// proxy-to-proxy hop. A plain listener is the proxy's own client's side: it enforces no rules (the called side
/// does).
public struct ProxyTLS: Sendable, Equatable {
    /// The credentials of the mesh (the root and the issued identities).
    public var credentials: MeshCredentials
    /// The proxy's own workload name: the identity it presents.
    public var identity: String
    /// Whether connections to the backends run mutual TLS.
    public var upstream: Bool
    /// Whether the listener requires mutual TLS (and enforces ``authorization``).
    public var listener: Bool
    /// The rules enforced on the listener, if any.
    public var authorization: AuthorizationPolicy?

    /// Creates the settings.
    public init(
        credentials: MeshCredentials,
        identity: String,
        upstream: Bool = true,
        listener: Bool = false,
        authorization: AuthorizationPolicy? = nil
    ) {
        self.credentials = credentials
        self.identity = identity
        self.upstream = upstream
        self.listener = listener
        self.authorization = authorization
    }
}

/// Everything a proxy runs with: listeners, clusters, routes and limits.
///
/// Plain values, so a scenario's call edges can be turned into one as well as command-line flags.
public struct ProxyConfiguration: Sendable, Equatable {
    /// Where proxied traffic is accepted.
    public var listen: ProxyAddress
    /// Where `/metrics` and `/endpoints` are served, if anywhere.
    public var admin: ProxyAddress?
    /// The upstream clusters.
    public var clusters: [ProxyCluster]
    /// The routes, first match wins; a request no route takes is answered 404.
    public var routes: [ProxyRoute]
    /// Seed of the balancers' and the splits' random streams.
    public var seed: UInt64 = 1
    /// Event-loop threads.
    public var threads = 1
    /// A request's exchange with its upstream (connect, send, whole response) may take at most this long; then 504.
    public var upstreamTimeout: SimDuration?
    /// The largest request or response head.
    public var maxHeadBytes = 16 * 1024
    /// The most header lines in a head.
    public var maxHeaderCount = 100
    /// A request head must arrive whole within this, from its first byte (or the accept): then 408 and close.
    public var headerTimeout = SimDuration.seconds(10)
    /// A request body may pause at most this long between reads: then 408 (or close) and the upstream dropped.
    public var bodyTimeout = SimDuration.seconds(60)
    /// A keep-alive client connection idle this long between requests is closed.
    public var idleTimeout = SimDuration.seconds(60)
    /// Requests in flight per event loop beyond which new ones are answered 503.
    public var maxPendingPerLoop = 10_000
    /// Idle upstream connections kept per backend per event loop.
    public var maxIdlePerBackend = 64
    /// A pooled upstream connection idle longer than this is closed instead of reused (below the usual backend
    /// keep-alive timeouts: nginx 75 s, meshsim serve 75 s), so that a request rarely meets a connection the backend
    /// is closing.
    public var upstreamIdleTimeout = SimDuration.seconds(30)
    /// The most bytes buffered on one side before reading from the other stops.
    public var maxBufferedBytes = 64 * 1024
    /// The path of the backends' health endpoint, for active health checks (`meshsim serve`'s default).
    public var healthPath = "/health"
    /// The largest request body kept to send a request again (a retry or a hedge); a longer one is not retried or
    /// hedged, as with Envoy's `per_request_buffer_limit_bytes`.
    public var maxRetryBufferBytes = 64 * 1024
    /// Mutual TLS with the mesh's credentials, and authorization of the callers on the listener, if on.
    public var tls: ProxyTLS?

    /// Creates a configuration.
    public init(listen: ProxyAddress, admin: ProxyAddress? = nil, clusters: [ProxyCluster], routes: [ProxyRoute]) {
        self.listen = listen
        self.admin = admin
        self.clusters = clusters
        self.routes = routes
    }

    /// One cluster named `default` that takes every request.
    public static func singleCluster(
        listen: ProxyAddress,
        backends: [ProxyAddress],
        balancer: BalancerSpec,
        admin: ProxyAddress? = nil
    ) -> ProxyConfiguration {
        ProxyConfiguration(
            listen: listen,
            admin: admin,
            clusters: [ProxyCluster(name: "default", backends: backends, balancer: balancer)],
            routes: [ProxyRoute(targets: [(cluster: 0, weight: 1)])]
        )
    }

    /// The keys of `policy` the proxy does not run yet, as scenario key names: a configuration that sets one is
    /// refused rather than run without it. Every call-policy key is run now, so the list is empty; the check stays
    /// for keys added to the scenario format later.
    public static func unsupported(_ policy: CallPolicy) -> [String] {
        []
    }

    /// The problems that make it unusable, if any (empty clusters, routes to missing clusters, bad weights, policies
    /// the proxy does not run yet).
    public func validate() -> [String] {
        var problems: [String] = []
        if clusters.isEmpty { problems.append("no clusters") }
        for cluster in clusters where cluster.backends.isEmpty {
            problems.append("cluster \(cluster.name) has no backends")
        }
        for cluster in clusters {
            for key in Self.unsupported(cluster.policy) {
                problems.append("cluster \(cluster.name): \(key) is not run by meshsim proxy yet")
            }
        }
        for (i, route) in routes.enumerated() {
            if route.targets.isEmpty { problems.append("route \(i) has no target") }
            for target in route.targets {
                if !clusters.indices.contains(target.cluster) {
                    problems.append("route \(i) names cluster \(target.cluster), which does not exist")
                }
                if !(target.weight > 0) || !target.weight.isFinite {
                    problems.append("route \(i): weights must be positive")
                }
            }
        }
        if threads < 1 { problems.append("threads must be at least 1") }
        if let tls {
            if tls.credentials.identities[tls.identity] == nil {
                problems.append("the mesh credentials have no identity '\(tls.identity)' for the proxy")
            }
            if tls.authorization != nil && !tls.listener {
                problems.append("authorization rules are enforced on a mutual-TLS listener only")
            }
        }
        return problems
    }
}
