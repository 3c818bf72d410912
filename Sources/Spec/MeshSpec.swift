//===----------------------------------------------------------------------===//
// meshsim — Spec
//===----------------------------------------------------------------------===//

public import Balancers
public import Breakers
public import Health
public import Limiters
public import Retries
public import SimCore
public import SimRandom

/// A fully resolved, validated mesh: what one replication simulates.
///
/// The scenario loader builds it from a YAML file (names resolved to indices, defaults applied, variants merged);
/// tests can build one directly. Indices refer into the arrays of the same spec.
public struct MeshSpec: Sendable {
    /// The scenario's name (the first CSV column).
    public var name: String
    /// When arrivals stop.
    public var duration: SimDuration
    /// Requests that arrive before this are left out of `summary.csv` (they still appear in `timeseries.csv`).
    public var warmup: SimDuration = .zero
    /// The width of a `timeseries.csv` window.
    public var window: SimDuration = .seconds(1)
    /// How long after `duration` outstanding requests may still finish; those that do not are `unfinished`.
    public var drain: SimDuration = .seconds(60)
    /// Zone names; replicas, clients and links refer to them by index.
    public var zones: [String] = ["default"]
    /// One-way links between zones: `links[from, to]`, a default and the pairs the scenario declares.
    public var links = LinkTable(fallback: LinkSpec())
    /// How endpoint changes reach callers.
    public var discovery = DiscoverySpec()
    /// The services.
    public var services: [ServiceSpec] = []
    /// The clients that offer load.
    public var clients: [ClientSpec] = []
    /// The fault timeline.
    public var faults: [FaultSpec] = []
    /// Mutual TLS and authorization, if the scenario turns them on.
    public var security: SecuritySpec?

    /// Creates a spec with one zone and no services.
    public init(name: String, duration: SimDuration) {
        self.name = name
        self.duration = duration
    }

    /// Sets every link to `link`, forgetting declared pairs.
    public mutating func setAllLinks(_ link: LinkSpec) {
        links = LinkTable(fallback: link)
    }

    /// The most zones a scenario may name: the model keeps a 4-byte index per ordered pair of zones (4 MB at this
    /// limit), and a link's own state and random stream only for the pairs that carry traffic.
    public static let maxZones = 1_000
}

/// The links between zones: one default for every ordered pair, and the pairs given their own link.
///
/// Storage is in the number of declared pairs, not in the square of the zone count.
public struct LinkTable: Sendable, Equatable {
    /// The link of every pair not declared.
    public var fallback: LinkSpec
    /// The pairs (from, to) given their own link.
    public private(set) var declared: [ZonePair: LinkSpec] = [:]

    /// A table in which every pair has `fallback`.
    public init(fallback: LinkSpec) { self.fallback = fallback }

    /// The link from zone index `from` to zone index `to`.
    public subscript(from: Int, to: Int) -> LinkSpec {
        get { declared[ZonePair(from: from, to: to)] ?? fallback }
        set { declared[ZonePair(from: from, to: to)] = newValue }
    }
}

/// An ordered pair of zone indices.
public struct ZonePair: Hashable, Sendable {
    /// The sending zone's index.
    public var from: Int
    /// The receiving zone's index.
    public var to: Int

    /// The pair (from, to).
    public init(from: Int, to: Int) {
        self.from = from
        self.to = to
    }
}

/// A one-way network link between two zones.
public struct LinkSpec: Sendable, Equatable {
    /// One-way delay of a message.
    public var delay: Distribution = .constant(0)
    /// Probability that a transmission is lost; each loss costs `retransmit` more delay.
    public var loss: Double = 0
    /// Delay added by each lost transmission (a TCP retransmission timeout).
    public var retransmit: SimDuration = .milliseconds(200)

    /// Creates a link.
    public init(delay: Distribution = .constant(0), loss: Double = 0, retransmit: SimDuration = .milliseconds(200)) {
        self.delay = delay
        self.loss = loss
        self.retransmit = retransmit
    }

    /// Whether messages cross the link in zero time with no draw.
    public var isInstant: Bool { delay.isAlwaysZero && loss == 0 }
}

/// Service discovery: how changes to a service's endpoint set reach its callers.
public struct DiscoverySpec: Sendable, Equatable {
    /// Delay between an endpoint change (crash, restart, scale) and callers seeing it.
    public var propagationDelay: SimDuration = .seconds(1)
    /// What a refused connection to a dead endpoint costs the caller before it learns of the failure.
    public var refusedCost: SimDuration = .milliseconds(1)

    /// Creates the discovery settings.
    public init(propagationDelay: SimDuration = .seconds(1), refusedCost: SimDuration = .milliseconds(1)) {
        self.propagationDelay = propagationDelay
        self.refusedCost = refusedCost
    }
}

/// The balancing algorithms the mesh model can drive, by their scenario names.
public enum BalancerKind: String, Sendable, CaseIterable {
    /// ``Balancers/RoundRobinBalancer`` (Envoy round robin, random start; weights ignored).
    case roundRobin = "round_robin"
    /// ``Balancers/WeightedRoundRobinBalancer`` (Envoy EDF weighted round robin).
    case weightedRoundRobin = "weighted_round_robin"
    /// ``Balancers/RandomBalancer``.
    case random
    /// ``Balancers/LeastRequestBalancer`` (Envoy least request; Finagle's P2C with `replacement: false`).
    case leastRequest = "least_request"
    /// ``Balancers/PeakEWMABalancer`` (Finagle / Linkerd P2C peak EWMA).
    case p2cPeakEwma = "p2c_peak_ewma"
    /// ``Balancers/RingHashBalancer`` (each request a random hash key).
    case ringHash = "ring_hash"
    /// ``Balancers/MaglevBalancer`` (each request a random hash key).
    case maglev
    /// ``Balancers/NginxLeastConnBalancer`` (nginx `least_conn`).
    case nginxLeastConn = "nginx_least_conn"
    /// ``Balancers/NginxRandomTwoLeastConnBalancer`` (nginx `random two least_conn`).
    case nginxRandomTwoLeastConn = "nginx_random_two_least_conn"
    /// ``Balancers/HAProxyLeastConnBalancer`` (HAProxy `leastconn`).
    case haproxyLeastConn = "haproxy_leastconn"
    /// ``Balancers/HAProxyRandomBalancer`` (HAProxy `random(draws)`).
    case haproxyRandom = "haproxy_random"
}

/// A balancer and its parameters, with the reference defaults.
public struct BalancerSpec: Sendable, Equatable {
    /// The algorithm.
    public var kind: BalancerKind
    /// Least request: random choices per pick (≥ 2), or `nil` for a full scan.
    public var choiceCount: Int? = 2
    /// Least request: draw choices with replacement (Envoy) or distinct (Finagle).
    public var withReplacement = true
    /// Least request with unequal weights: Envoy's `active_request_bias`.
    public var activeRequestBias = 1.0
    /// Peak EWMA: the decay time constant.
    public var decay: SimDuration = .seconds(10)
    /// Ring hash: minimum and maximum ring size, and bounded-load factor in percent.
    public var minimumRingSize = 1024
    /// Ring hash: the largest ring.
    public var maximumRingSize = 8_388_608
    /// Ring hash: bounded load in percent of the average, if any.
    public var hashBalanceFactor: Int?
    /// Maglev: the (prime) table size.
    public var tableSize = 65_537
    /// HAProxy random: the number of draws.
    public var draws = 2
    /// Weighted round robin and least request: slow start for new endpoints, as (window, aggression, min %).
    public var slowStart: (window: SimDuration, aggression: Double, minWeightPercent: Double)?

    /// A balancer of `kind` with default parameters.
    public init(_ kind: BalancerKind) { self.kind = kind }

    public static func == (lhs: BalancerSpec, rhs: BalancerSpec) -> Bool {
        lhs.kind == rhs.kind && lhs.choiceCount == rhs.choiceCount && lhs.withReplacement == rhs.withReplacement
            && lhs.activeRequestBias == rhs.activeRequestBias && lhs.decay == rhs.decay
            && lhs.minimumRingSize == rhs.minimumRingSize && lhs.maximumRingSize == rhs.maximumRingSize
            && lhs.hashBalanceFactor == rhs.hashBalanceFactor && lhs.tableSize == rhs.tableSize
            && lhs.draws == rhs.draws && lhs.slowStart?.window == rhs.slowStart?.window
            && lhs.slowStart?.aggression == rhs.slowStart?.aggression
            && lhs.slowStart?.minWeightPercent == rhs.slowStart?.minWeightPercent
    }
}

/// How a caller calls a service: balancing, timeout and retries on one call edge.
public struct CallPolicy: Sendable, Equatable {
    /// The balancer that picks the endpoint for each attempt.
    public var balancer = BalancerSpec(.roundRobin)
    /// Per-attempt timeout; `nil` waits forever.
    public var timeout: SimDuration?
    /// How many times a failed attempt (error, 503, refused, reset, timeout) is retried.
    public var retries: Int = 0
    /// Whether a timed-out attempt stops counting as outstanding for the balancer at once (the stream is reset,
    /// as Envoy does), or only when its response finally arrives (pure-delay servers that ignore cancellation, as
    /// in Finagle's load-balancer simulation); in the second case the balancer also learns the full latency.
    public var releaseOnTimeout = true
    /// Which failures are retried (Envoy `retry_on` names); by default every failure the model produces.
    public var retryOn: RetryOn = [.fiveXX, .reset, .connectFailure, .timeout]
    /// The wait before each retry; `nil` retries at once.
    public var backoff: Backoff?
    /// A limit on retries across the edge's requests, if any.
    public var budget: RetryBudgetSpec?
    /// Envoy outlier detection on the edge's view of the target's replicas, if any.
    public var outlierDetection: OutlierDetectionConfiguration?
    /// Envoy's `healthy_panic_threshold` in percent: below it, ejections are ignored (0 disables panic).
    public var panicThreshold: Double = 50
    /// A circuit breaker on the edge, if any.
    public var breaker: BreakerSpec?
    /// A rate limit on the calls the edge starts, if any.
    public var rateLimit: RateLimitSpec?
    /// Hedging: further attempts sent while earlier ones are still out, if any.
    public var hedging: HedgingSpec?
    /// Google SRE client-side adaptive throttling of the edge's attempts, if any.
    public var adaptiveThrottle: AdaptiveThrottle.Configuration?
    /// An overall deadline for the call, retries included (gRPC `deadline`); calls made while serving it inherit
    /// the remaining time (deadline propagation down the call graph).
    public var deadline: SimDuration?
    /// Envoy zone-aware routing: the zone of each attempt is chosen first (keeping traffic in the caller's zone as
    /// far as the target's capacity there allows), then the balancer picks within it; `nil` balances over all zones.
    public var zoneAware: ZoneAwareRouting?
    /// Envoy active health checking of the target's replicas from this edge, if any.
    public var healthCheck: ActiveHealthCheckConfiguration?
    /// Passive health of the target's replicas as nginx or HAProxy keep it, if any.
    public var passiveHealth: PassiveHealthSpec?

    /// Creates a policy.
    public init(balancer: BalancerSpec = BalancerSpec(.roundRobin), timeout: SimDuration? = nil, retries: Int = 0) {
        self.balancer = balancer
        self.timeout = timeout
        self.retries = retries
    }
}

/// Passive health for one call edge, as a proxy other than Envoy keeps it.
public enum PassiveHealthSpec: Sendable, Equatable {
    /// nginx `max_fails` / `fail_timeout` (``Health/NginxPassiveHealthStateMachine``).
    case nginx(NginxPassiveHealthConfiguration)
    /// HAProxy `check` with `observe`, `error-limit` and `on-error` (``Health/HAProxyServerHealthStateMachine``);
    /// the edge runs HAProxy's own checks (`inter`, `fall`, `rise`) too.
    case haproxy(HAProxyServerHealthConfiguration)
}

/// Hedged requests (gRFC A6 `hedgingPolicy`): after `delay` without an answer another attempt is sent, up to
/// `maxAttempts` in all; the first success wins and the others are cancelled. A failure that `retry_on` covers sends
/// the next hedge at once; attempts that all fail end the call.
public struct HedgingSpec: Sendable, Equatable {
    /// The wait before each further attempt (gRPC `hedgingDelay`).
    public var delay: SimDuration
    /// The most attempts, the first included (gRPC `maxAttempts`, 2 to 5).
    public var maxAttempts: Int

    /// Creates the settings (validated with ``Retries/HedgingPolicy``).
    public init(delay: SimDuration, maxAttempts: Int) throws {
        _ = try HedgingPolicy(maxAttempts: maxAttempts, hedgingDelay: delay)
        self.delay = delay
        self.maxAttempts = min(maxAttempts, 5)
    }
}

/// A circuit breaker for one call edge.
public enum BreakerSpec: Sendable, Equatable {
    /// Envoy's thresholds: concurrent requests and retries on the edge (overflow fails the attempt at once).
    case envoy(EnvoyCircuitBreakerThresholds)
    /// resilience4j's failure- and slow-call-rate breaker.
    case resilience4j(Resilience4jCircuitBreakerConfiguration)
    /// Hystrix's error-percentage breaker.
    case hystrix(HystrixCircuitBreakerConfiguration)
}

/// A rate limiter for the calls of one edge.
public enum RateLimitSpec: Sendable, Equatable {
    /// Envoy's token bucket.
    case tokenBucket(TokenBucket.Configuration)
    /// The generic cell rate algorithm.
    case gcra(GCRALimiter.Configuration)
    /// A fixed window counter.
    case fixedWindow(FixedWindowLimiter.Configuration)
    /// A sliding window log.
    case slidingLog(SlidingWindowLogLimiter.Configuration)
    /// Cloudflare's sliding window counter.
    case slidingCounter(SlidingWindowCounterLimiter.Configuration)
}

/// An adaptive concurrency limit on each replica of a service (server side, Netflix concurrency-limits).
public enum ConcurrencyLimitSpec: Sendable, Equatable {
    /// Additive increase, multiplicative decrease.
    case aimd(AIMDLimit.Configuration)
    /// TCP Vegas-style queue estimation.
    case vegas(VegasLimit.Configuration)
    /// Gradient2: long/short RTT ratio.
    case gradient2(Gradient2Limit.Configuration)
}

/// A retry budget or throttle for one call edge.
public enum RetryBudgetSpec: Sendable, Equatable {
    /// Envoy: active retries ≤ max(`min_retry_concurrency`, `budget_percent` % of active requests).
    case envoy(budgetPercent: Double, minRetryConcurrency: Int)
    /// Finagle: retries ≤ `percent_can_retry` of requests in the last `ttl`, plus `min_retries_per_sec`.
    case finagle(ttl: SimDuration, minRetriesPerSecond: Int, percentCanRetry: Double)
    /// gRPC retry throttling: token bucket of `max_tokens`, `token_ratio` back per success.
    case grpc(maxTokens: Double, tokenRatio: Double)
}

extension RetryBudgetSpec {
    /// The problem with these parameters, if the budget cannot be built from them.
    public var problem: PolicyParameterError? {
        do {
            switch self {
            case .envoy(let percent, let minimum):
                _ = try EnvoyRetryBudget(budgetPercent: percent, minRetryConcurrency: minimum)
            case .finagle(let ttl, let perSecond, let percent):
                _ = try FinagleRetryBudget(ttl: ttl, minRetriesPerSecond: perSecond, percentCanRetry: percent)
            case .grpc(let maxTokens, let ratio):
                _ = try GRPCRetryThrottle(maxTokens: maxTokens, tokenRatio: ratio)
            }
            return nil
        } catch let error as PolicyParameterError {
            return error
        } catch {
            return PolicyParameterError("budget", "\(error)")
        }
    }
}

/// One way out of a call site: a route (matched by path prefix or host), or one side of a weighted split, with its
/// own target and policies.
public struct RouteSpec: Sendable, Equatable {
    /// The requests it takes: path prefix (nil: any path).
    public var pathPrefix: String?
    /// The requests it takes: host (nil: any host).
    public var host: String?
    /// Its share of a weighted split (ignored for routes).
    public var weight: Double = 1
    /// The service it calls.
    public var target: Int
    /// Its balancing, timeout, retries and other policies.
    public var policy = CallPolicy()

    /// Creates a route or split side.
    public init(
        target: Int,
        pathPrefix: String? = nil,
        host: String? = nil,
        weight: Double = 1,
        policy: CallPolicy = CallPolicy()
    ) {
        self.target = target
        self.pathPrefix = pathPrefix
        self.host = host
        self.weight = weight
        self.policy = policy
    }
}

/// How a call site chooses its target service.
public enum Routing: Sendable, Equatable {
    /// Always the site's own `target` with its own policy.
    case direct
    /// Traffic management by weight between service versions (canary): each call picks a side by weight.
    case split([RouteSpec])
    /// Routes by request path prefix and host, first match wins (the classic ingress); no match is a 404, counted
    /// as a failed request.
    case routes([RouteSpec])
}

/// One step of a service's downstream work: a call to `target`, made `fanout` times in parallel.
public struct CallSpec: Sendable, Equatable {
    /// The index of the called service.
    public var target: Int
    /// How many parallel calls (1 for a plain call); the step ends when all have answered.
    public var fanout: Int = 1
    /// Balancing, timeout and retries for these calls.
    public var policy = CallPolicy()
    /// A weighted split or routes instead of the single `target`.
    public var routing = Routing.direct

    /// Creates a call step.
    public init(target: Int, fanout: Int = 1, policy: CallPolicy = CallPolicy()) {
        self.target = target
        self.fanout = fanout
        self.policy = policy
    }
}

/// One replica of a service.
public struct ReplicaSpec: Sendable, Equatable {
    /// The replica's zone (index into ``MeshSpec/zones``).
    public var zone: Int = 0
    /// Its static weight, for weighted balancers.
    public var weight: Int = 1
    /// Its speed factor: service times are divided by it (2 is twice as fast).
    public var speed: Double = 1
    /// Whether it runs from the start; spares (false) are started by a `scale` fault.
    public var initiallyActive = true

    /// Creates a replica.
    public init(zone: Int = 0, weight: Int = 1, speed: Double = 1, initiallyActive: Bool = true) {
        self.zone = zone
        self.weight = weight
        self.speed = speed
        self.initiallyActive = initiallyActive
    }
}

/// A service: replicas with worker slots and a bounded FIFO queue, a service time, an error rate, downstream calls.
public struct ServiceSpec: Sendable, Equatable {
    /// The service's name.
    public var name: String
    /// Its replicas, including spares for scaling out.
    public var replicas: [ReplicaSpec]
    /// Requests a replica serves at once.
    public var workers: Int = 1
    /// Requests a replica holds waiting for a worker; one more is rejected with a 503.
    public var queueCapacity: Int = Int(Int32.max)
    /// Local work per request, before the downstream calls.
    public var serviceTime: Distribution
    /// Probability that a request fails with a 500 after its work.
    public var errorRate: Double = 0
    /// Downstream calls, made in order while the worker is held.
    public var calls: [CallSpec] = []
    /// An adaptive concurrency limit on each replica: requests beyond it are rejected with a 503.
    public var concurrencyLimit: ConcurrencyLimitSpec?

    /// Creates a service.
    public init(name: String, replicas: [ReplicaSpec], workers: Int = 1, serviceTime: Distribution) {
        self.name = name
        self.replicas = replicas
        self.workers = workers
        self.serviceTime = serviceTime
    }
}

/// How a client offers load.
public enum LoadSpec: Sendable, Equatable {
    /// Open loop: arrivals at a rate (requests per second) that follows `schedule`, whatever the responses do.
    case open(arrival: ArrivalProcess, schedule: [RatePoint])
    /// Closed loop: `users` users, each sending a request, waiting for the answer, then thinking.
    case closed(users: Int, thinkTime: Distribution)
}

/// The spacing of open-loop arrivals.
public enum ArrivalProcess: String, Sendable, Equatable, CaseIterable {
    /// Exponential gaps (a Poisson process).
    case poisson
    /// Evenly spaced arrivals.
    case constant
}

/// A point of a rate schedule: from `at`, the rate is `rate`; with `ramp`, it changes linearly to the next point.
public struct RatePoint: Sendable, Equatable {
    /// When this rate begins.
    public var at: SimDuration
    /// Requests per second.
    public var rate: Double
    /// Whether the rate moves linearly from this point to the next (otherwise it steps).
    public var ramp: Bool

    /// Creates a point.
    public init(at: SimDuration, rate: Double, ramp: Bool = false) {
        self.at = at
        self.rate = rate
        self.ramp = ramp
    }
}

/// A source of requests to one service.
public struct ClientSpec: Sendable, Equatable {
    /// The client's name.
    public var name: String
    /// Its zone.
    public var zone: Int = 0
    /// The service it calls.
    public var target: Int
    /// Open or closed loop.
    public var load: LoadSpec
    /// Balancing, timeout (the per-client timeout) and retries of its calls.
    public var policy = CallPolicy()
    /// A weighted split or routes instead of the single `target`.
    public var routing = Routing.direct
    /// The paths of its requests with their weights (for routes); `["/"]` by default.
    public var paths: [(path: String, weight: Double)] = [("/", 1)]
    /// The host its requests name (for routes).
    public var host = "default"

    public static func == (lhs: ClientSpec, rhs: ClientSpec) -> Bool {
        lhs.name == rhs.name && lhs.zone == rhs.zone && lhs.target == rhs.target && lhs.load == rhs.load
            && lhs.policy == rhs.policy && lhs.routing == rhs.routing && lhs.host == rhs.host
            && lhs.paths.map(\.path) == rhs.paths.map(\.path) && lhs.paths.map(\.weight) == rhs.paths.map(\.weight)
    }

    /// Creates a client.
    public init(name: String, zone: Int = 0, target: Int, load: LoadSpec, policy: CallPolicy = CallPolicy()) {
        self.name = name
        self.zone = zone
        self.target = target
        self.load = load
        self.policy = policy
    }
}

/// A fault: `kind` from `at` for `duration` (forever when `nil`).
public struct FaultSpec: Sendable, Equatable {
    /// When the fault begins.
    public var at: SimDuration
    /// How long it lasts; `nil` means to the end of the run.
    public var duration: SimDuration?
    /// What happens.
    public var kind: FaultKind

    /// Creates a fault.
    public init(at: SimDuration, duration: SimDuration?, kind: FaultKind) {
        self.at = at
        self.duration = duration
        self.kind = kind
    }
}

/// The replicas of one service that a fault touches.
public struct ReplicaSelection: Sendable, Equatable {
    /// The service.
    public var service: Int
    /// Replica indices; empty means every replica.
    public var replicas: [Int]

    /// Creates a selection.
    public init(service: Int, replicas: [Int] = []) {
        self.service = service
        self.replicas = replicas
    }
}

/// What a fault does while it is active.
public enum FaultKind: Sendable, Equatable {
    /// The replicas crash: queued and running requests are reset, new connections are refused; they restart after.
    case crash(ReplicaSelection)
    /// Service times are multiplied by `factor`.
    case slowdown(ReplicaSelection, factor: Double)
    /// Service times are drawn from `distribution` instead of the service's own.
    case serviceTime(ReplicaSelection, distribution: Distribution)
    /// The error probability becomes `rate` (or stays at the service's own `error_rate` if that is higher).
    case errors(ReplicaSelection, rate: Double)
    /// Every message between zones `a` and `b` (both ways) takes `delay` longer.
    case latency(a: Int, b: Int, delay: SimDuration)
    /// Every message between zones `a` and `b` (both ways) is lost (`holds` false), or held and delivered when the
    /// partition heals (`holds` true: TCP retransmits across an outage; never, for a partition to the run's end).
    case partition(a: Int, b: Int, holds: Bool)
    /// Every replica in the zone crashes.
    case zoneOutage(zone: Int)
    /// Stop-the-world pauses of `length` every `every` (the first at the fault's start).
    case pause(ReplicaSelection, every: SimDuration, length: SimDuration)
    /// The client's arrival rate is multiplied by `factor` (open loop) .
    case loadSpike(client: Int, factor: Double)
    /// `delta` replicas are added (spares started) or removed (the last running ones stopped).
    case scale(service: Int, delta: Int)
}
