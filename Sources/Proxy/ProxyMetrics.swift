//===----------------------------------------------------------------------===//
// meshsim — Proxy
//===----------------------------------------------------------------------===//

import Breakers
import Prometheus
import Spec

/// Why the proxy answered a request itself, without an upstream.
enum Rejection: Int, CaseIterable {
    /// Malformed request (400).
    case badRequest
    /// Head over the size or header-count cap (431).
    case headerTooLarge
    /// Head not complete within the header timeout (408).
    case headerTimeout
    /// Request body paused longer than the body timeout (408).
    case bodyTimeout
    /// No route took the request (404).
    case noRoute
    /// Too many requests in flight on the event loop (503).
    case overload
    /// The balancer found no endpoint (503).
    case noEndpoint
    /// The cluster's rate limiter refused the request (503).
    case rateLimited
    /// The cluster's SRE adaptive throttle refused the request locally (503).
    case throttled
    /// The cluster's circuit breaker is open, or an Envoy threshold overflowed (503).
    case breakerOpen
    /// The deadline the client passed on had already expired (504).
    case deadlineExpired
    /// The cluster's adaptive concurrency limit is reached (503).
    case concurrencyLimited
    /// An authorization rule denies the caller (identified by its mutual-TLS certificate) this request (403).
    case forbidden

    /// The `reason` label.
    var label: String {
        switch self {
        case .badRequest: return "bad_request"
        case .headerTooLarge: return "header_too_large"
        case .headerTimeout: return "header_timeout"
        case .bodyTimeout: return "body_timeout"
        case .noRoute: return "no_route"
        case .overload: return "overload"
        case .noEndpoint: return "no_endpoint"
        case .rateLimited: return "rate_limited"
        case .throttled: return "throttled"
        case .breakerOpen: return "breaker_open"
        case .deadlineExpired: return "deadline_expired"
        case .concurrencyLimited: return "concurrency_limited"
        case .forbidden: return "forbidden"
        }
    }
}

extension ProxyMetrics {
    /// The `state` label values of ``breakerStates``.
    static let breakerStateLabels = ["closed", "open", "half_open", "disabled", "forced_open", "metrics_only"]

    /// The index of a state in ``breakerStateLabels``.
    static func index(_ state: BreakerState) -> Int {
        switch state {
        case .closed: return 0
        case .open: return 1
        case .halfOpen: return 2
        case .disabled: return 3
        case .forcedOpen: return 4
        case .metricsOnly: return 5
        }
    }
}

/// The proxy's Prometheus metrics, every series created up front so the request path only increments.
///
/// Counters are atomic (no lock); recording a latency takes the histogram's own short lock (swift-prometheus).
final class ProxyMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    /// `meshsim_proxy_requests_total{cluster, upstream, outcome}`, indexed `[cluster][endpoint][outcome]`.
    let requests: [[[Counter]]]
    /// `meshsim_proxy_upstream_duration_seconds{cluster, upstream}`, indexed `[cluster][endpoint]`.
    let latency: [[DurationHistogram]]
    /// `meshsim_proxy_upstream_connections_opened_total{upstream}`, by backend.
    let opened: [Counter]
    /// `meshsim_proxy_upstream_connections_reused_total{upstream}`, by backend.
    let reused: [Counter]
    /// `meshsim_proxy_rejections_total{reason}`, by ``Rejection``.
    let rejections: [Counter]
    /// `meshsim_proxy_downstream_connections_total`.
    let accepted: Counter
    /// Outlier-detection ejections, by cluster.
    let ejections: [Counter]
    /// Circuit-breaker openings, by cluster.
    let breakerOpens: [Counter]
    /// Active health checks (Envoy's and HAProxy's), by cluster and result (``HealthChecker/labels``).
    let healthChecks: [[Counter]]
    /// Retries sent, by cluster.
    let retries: [Counter]
    /// Retries the retry budget refused, by cluster.
    let retriesDenied: [Counter]
    /// `meshsim_proxy_authz_denials_total{cluster}`: requests an authorization rule denied (403), by cluster.
    let authzDenials: [Counter]
    /// `meshsim_proxy_tls_handshakes_total{side, result}`: mutual-TLS handshakes, upstream and downstream, that
    /// completed with a mesh identity (`ok`) or failed (`failed`: a TLS error, or a peer without the identity
    /// expected).
    let tlsHandshakes: [Counter]
    /// `meshsim_proxy_breaker_state{cluster, state}`: on how many event loops the cluster's circuit breaker is in
    /// each state (closed, open, half_open), refreshed when `/metrics` is read; indexed `[cluster][state]`.
    let breakerStates: [[Gauge]]
    /// `meshsim_proxy_concurrency_limit{cluster}`: the adaptive concurrency limit, the mean over event loops,
    /// refreshed when `/metrics` is read (clusters with a limit).
    let concurrencyLimits: [Gauge?]
    /// Hedges sent (attempts sent after the hedging delay or a failed hedged attempt), by cluster.
    let hedges: [Counter]
    /// Requests answered with a success (below 500) by a hedge, by cluster.
    let hedgesWon: [Counter]

    /// The name of the counter `meshsim_proxy_NAME_total`, with its help text.
    static func counterName(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(
            namespace: "meshsim",
            subsystem: "proxy",
            metricName: name,
            unitName: "total",
            helpText: help
        )
    }

    /// The latency buckets, in seconds: 0.5 ms to 10 s.
    static let buckets: [Duration] = [
        .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
        .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
    ]

    init(configuration: ProxyConfiguration, backends: [ProxyAddress]) {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        let requestsName = MetricNameDescriptor(
            namespace: "meshsim",
            subsystem: "proxy",
            metricName: "requests",
            unitName: "total",
            helpText: "Requests sent upstream, by cluster, upstream and outcome."
        )
        let latencyName = MetricNameDescriptor(
            namespace: "meshsim",
            subsystem: "proxy",
            metricName: "upstream_duration",
            unitName: "seconds",
            helpText: "Time from a request's head to the end of its upstream response."
        )
        requests = configuration.clusters.map { cluster in
            cluster.backends.map { backend in
                AttemptOutcome.labels.map { outcome in
                    registry.makeCounter(
                        descriptor: requestsName,
                        labels: [("cluster", cluster.name), ("upstream", "\(backend)"), ("outcome", outcome)]
                    )
                }
            }
        }
        latency = configuration.clusters.map { cluster in
            cluster.backends.map { backend in
                registry.makeDurationHistogram(
                    descriptor: latencyName,
                    labels: [("cluster", cluster.name), ("upstream", "\(backend)")],
                    buckets: Self.buckets
                )
            }
        }
        let openedName = MetricNameDescriptor(
            namespace: "meshsim",
            subsystem: "proxy",
            metricName: "upstream_connections_opened",
            unitName: "total",
            helpText: "Upstream connections opened (connect attempts), by upstream."
        )
        let reusedName = MetricNameDescriptor(
            namespace: "meshsim",
            subsystem: "proxy",
            metricName: "upstream_connections_reused",
            unitName: "total",
            helpText: "Requests sent on an idle keep-alive upstream connection, by upstream."
        )
        opened = backends.map { registry.makeCounter(descriptor: openedName, labels: [("upstream", "\($0)")]) }
        reused = backends.map { registry.makeCounter(descriptor: reusedName, labels: [("upstream", "\($0)")]) }
        let rejectionsName = MetricNameDescriptor(
            namespace: "meshsim",
            subsystem: "proxy",
            metricName: "rejections",
            unitName: "total",
            helpText: "Requests the proxy answered itself (400, 404, 408, 431, 503), by reason."
        )
        rejections = Rejection.allCases.map {
            registry.makeCounter(descriptor: rejectionsName, labels: [("reason", $0.label)])
        }
        /// One `meshsim_proxy_NAME_total` counter per cluster.
        func perCluster(_ name: String, _ help: String) -> [Counter] {
            let descriptor = Self.counterName(name, help)
            return configuration.clusters.map {
                registry.makeCounter(descriptor: descriptor, labels: [("cluster", $0.name)])
            }
        }
        ejections = perCluster(
            "outlier_ejections",
            "Endpoints ejected by outlier detection or marked down by health checks or passive health, by cluster."
        )
        breakerOpens = perCluster("breaker_opens", "Times the cluster's circuit breaker opened, by cluster.")
        retries = perCluster("retries", "Retries sent (attempts after the first), by cluster.")
        retriesDenied = perCluster("retries_denied", "Retries the retry budget refused, by cluster.")
        authzDenials = perCluster("authz_denials", "Requests an authorization rule denied (403), by cluster.")
        let handshakesName = Self.counterName(
            "tls_handshakes",
            "Mutual-TLS handshakes, by side (upstream, downstream) and result (ok, failed)."
        )
        tlsHandshakes = [("upstream", "ok"), ("upstream", "failed"), ("downstream", "ok"), ("downstream", "failed")]
            .map { registry.makeCounter(descriptor: handshakesName, labels: [("side", $0.0), ("result", $0.1)]) }
        hedges = perCluster("hedges", "Hedged attempts sent, by cluster.")
        let breakerName = MetricNameDescriptor(
            namespace: "meshsim",
            subsystem: "proxy",
            metricName: "breaker_state",
            helpText: "Event loops on which the cluster's circuit breaker is in each state (clusters with a breaker)."
        )
        let limitName = MetricNameDescriptor(
            namespace: "meshsim",
            subsystem: "proxy",
            metricName: "concurrency_limit",
            helpText: "The cluster's adaptive concurrency limit, the mean over event loops."
        )
        concurrencyLimits = configuration.clusters.map { cluster in
            cluster.concurrencyLimit == nil
                ? nil : registry.makeGauge(descriptor: limitName, labels: [("cluster", cluster.name)])
        }
        breakerStates = configuration.clusters.map { cluster in
            guard cluster.policy.breaker != nil else { return [] }
            return ProxyMetrics.breakerStateLabels.map {
                registry.makeGauge(descriptor: breakerName, labels: [("cluster", cluster.name), ("state", $0)])
            }
        }
        hedgesWon = perCluster("hedges_won", "Requests answered with a success by a hedged attempt, by cluster.")
        let checksName = Self.counterName(
            "health_checks",
            "Active health checks, by cluster and result (passed, failed, timed_out)."
        )
        healthChecks = configuration.clusters.map { cluster in
            HealthChecker.labels.map {
                registry.makeCounter(descriptor: checksName, labels: [("cluster", cluster.name), ("result", $0)])
            }
        }
        accepted = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "meshsim",
                subsystem: "proxy",
                metricName: "downstream_connections",
                unitName: "total",
                helpText: "Client connections accepted."
            )
        )
    }
}
