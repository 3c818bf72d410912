//===----------------------------------------------------------------------===//
// meshsim — Live
//===----------------------------------------------------------------------===//

import MeshTLS
public import Proxy
import SharedModel
import SimCore
import SimRandom
public import Spec

/// A real proxy that `meshsim live` can put in front of the emulated backends.
public enum ProxyKind: String, Sendable, CaseIterable {
    /// `meshsim proxy`: the simulator's own call edge (balancer and policies) on real sockets.
    case meshsim
    /// nginx (Debian's nginx-light).
    case nginx
    /// HAProxy (Debian's haproxy).
    case haproxy
}

extension LivePlan {
    /// The configuration of `meshsim proxy` for this plan on `port`: one cluster (the called service's running
    /// replicas, with their weights) under the client's whole call policy, one event loop, the plan's seed.
    public func proxyConfiguration(port: Int) -> ProxyConfiguration {
        let running = backends.replicas.filter(\.initiallyActive)
        var cluster = ProxyCluster(
            name: service,
            backends: running.map { ProxyAddress(host: backends.host, port: $0.port) },
            weights: running.map { Int32(clamping: $0.weight) },
            policy: policy
        )
        cluster.zones = running.map(\.zone)
        cluster.localZone = clientZone
        cluster.callersByZone = clientsByZone
        var configuration = ProxyConfiguration(
            listen: ProxyAddress(host: "127.0.0.1", port: port),
            clusters: [cluster],
            routes: [ProxyRoute(targets: [(cluster: 0, weight: 1)])]
        )
        configuration.seed = load.seed
        configuration.threads = 1
        if tls != nil { configuration.clusters[0].service = service }
        configuration.tls = tls
        return configuration
    }

    /// The client's policies that `proxy` cannot carry, each as `clients.NAME.KEY: reason`: a scenario that sets
    /// one is refused rather than run without it (nothing a scenario says is dropped).
    ///
    /// nginx and HAProxy carry the balancer (those with an equivalent), the per-attempt timeout and `retries` with
    /// the default `retry_on`; every other policy of a call edge is meshsim's own.
    public static func refusals(for proxy: ProxyKind, spec: MeshSpec) -> [String] {
        guard let client = spec.clients.first else { return [] }
        let policy = client.policy
        let security =
            spec.security != nil && proxy != .meshsim
            ? ["security: \(proxy.rawValue) is not given the mesh's credentials and rules in meshsim live"] : []
        let defaults = CallPolicy()
        let path = "clients.\(client.name)."
        if proxy == .meshsim {
            return ProxyConfiguration.unsupported(policy).map { path + $0 + ": meshsim proxy does not run it yet" }
                + security
        }
        var keys: [String] = []
        if policy.retryOn != defaults.retryOn { keys.append("retry_on") }
        if policy.backoff != nil { keys.append("backoff") }
        if policy.budget != nil { keys.append("budget") }
        if policy.outlierDetection != nil { keys.append("outlier_detection") }
        if policy.panicThreshold != defaults.panicThreshold { keys.append("panic_threshold") }
        if policy.breaker != nil { keys.append("circuit_breaker") }
        if policy.rateLimit != nil { keys.append("rate_limit") }
        if policy.hedging != nil { keys.append("hedging") }
        if policy.adaptiveThrottle != nil { keys.append("adaptive_throttle") }
        if policy.deadline != nil { keys.append("deadline") }
        if policy.zoneAware != nil { keys.append("zone_aware") }
        if policy.healthCheck != nil { keys.append("health_check") }
        if policy.passiveHealth != nil { keys.append("passive_health") }
        if policy.releaseOnTimeout != defaults.releaseOnTimeout { keys.append("release_on_timeout") }
        if policy.balancer.slowStart != nil { keys.append("balancer.slow_start") }
        return keys.map { path + $0 + ": \(proxy.rawValue) has no equivalent in meshsim live" } + security
    }
}

/// What one scenario variant becomes on real sockets: backends, load, and the proxy's balancing and retries.
public struct LivePlan: Sendable {
    /// The emulated backends (the replicas of the service the client calls).
    public var backends: BackendConfiguration
    /// The load generator's settings (the host and port are the proxy's).
    public var load: LoadConfiguration
    /// The balancer named in the scenario.
    public var balancer: BalancerKind
    /// Draws of HAProxy's `random(N)` (the scenario's `draws`).
    public var draws = 2
    /// Client retries (re-tries by the proxy on a failed or timed-out attempt).
    public var retries: Int
    /// The per-attempt timeout the proxy applies, if any (ns).
    public var attemptTimeout: Int64?
    /// The client's whole call policy (what `meshsim proxy` runs).
    public var policy: CallPolicy
    /// The called service's name (the proxy's cluster).
    public var service: String
    /// The client's zone, and the scenario's clients per zone (for zone-aware routing in meshsim proxy).
    public var clientZone = 0
    /// The proxy's mutual TLS to the backends (the client's identity), when the scenario turns it on.
    public var tls: ProxyTLS?
    public var clientsByZone: [Int] = [1]

    /// Builds the plan for `spec`, with backends on ports from `backendPort` and the proxy on `proxyPort`.
    ///
    /// - Throws: `LiveError.invalid` for what cannot run live, naming the scenario key: more than one client, a
    ///   client that splits or routes, a called service that calls others, network faults.
    public init(spec: MeshSpec, seed: UInt64, backendPort: Int, proxyPort: Int, threads: Int) throws {
        guard (1...65535).contains(proxyPort) else {
            throw LiveError.invalid("--proxy-port must be in 1...65535, got \(proxyPort)")
        }
        guard spec.clients.count == 1, let client = spec.clients.first else {
            throw LiveError.invalid(
                "clients: live mode drives exactly one client, this scenario has \(spec.clients.count)"
            )
        }
        guard case .direct = client.routing else {
            throw LiveError.invalid("clients.\(client.name): live mode needs a single target (no split or routes)")
        }
        let service = spec.services[client.target]
        guard service.calls.isEmpty else {
            throw LiveError.invalid(
                "services.\(service.name).calls: live mode emulates one tier; \(service.name) calls other services"
            )
        }
        let backends = try Self.backends(
            spec: spec,
            services: [client.target],
            seed: seed,
            basePort: backendPort
        )
        if backends.replicas.contains(where: { $0.port == proxyPort }) {
            throw LiveError.invalid(
                "--proxy-port \(proxyPort) is one of the backend ports (\(backendPort)...\(backendPort + backends.replicas.count - 1))"
            )
        }
        let mode: LoadConfiguration.Mode
        var connections = 16
        var think: Distribution?
        switch client.load {
        case .open:
            mode = .open(ArrivalSchedule(client: 0, of: spec)!)
        case .closed(let users, let thinkTime):
            mode = .closed
            connections = users
            think = thinkTime.isAlwaysZero ? nil : thinkTime
        }
        var load = LoadConfiguration(host: "127.0.0.1", port: proxyPort, mode: mode)
        load.path = try LoadConfiguration.requestTarget(client.paths.first?.path ?? "/", in: "the client's path")
        load.thinkTime = think
        load.threads = threads
        load.connections = connections
        load.maxConnections = max(connections, 1024)
        load.duration = spec.duration.nanoseconds
        load.warmup = spec.warmup.nanoseconds
        load.drain = min(spec.drain.nanoseconds, 30_000_000_000)
        load.window = spec.window.nanoseconds
        load.seed = seed
        load.client = client.name
        load.scenario = spec.name
        if let timeout = client.policy.timeout {
            // The client's timeout covers all attempts; the generator gives up a little later than the proxy.
            let (all, overflow) = timeout.nanoseconds.multipliedReportingOverflow(by: Int64(client.policy.retries + 1))
            load.timeout =
                min(overflow ? .max : all, RunLimits.duration.upperBound.nanoseconds - 1_000_000_000)
                + 1_000_000_000
        }
        var backendsWithSecurity = backends
        if let security = spec.security {
            // The mesh's credentials, made for this run as a control plane issues them: the service's replicas
            // serve with the service's identity, and the proxy calls them with the client's.
            do {
                let credentials = try MeshCredentials.generate(
                    trustDomain: security.trustDomain,
                    names: [service.name, client.name]
                )
                backendsWithSecurity.security = try BackendSecurity(
                    credentials: credentials,
                    services: security.mtls ? [service.name] : [],
                    authorization: security.authorization
                )
                if security.mtls {
                    tls = ProxyTLS(credentials: credentials, identity: client.name)
                }
            } catch {
                throw LiveError.invalid("security: cannot make the mesh's credentials: \(error)")
            }
        }
        self.backends = backendsWithSecurity
        self.load = load
        self.balancer = client.policy.balancer.kind
        self.draws = client.policy.balancer.draws
        self.retries = client.policy.retries
        self.attemptTimeout = client.policy.timeout?.nanoseconds
        self.policy = client.policy
        self.service = service.name
        self.clientZone = client.zone
        self.clientsByZone = Array(repeating: 0, count: spec.zones.count)
        for other in spec.clients { self.clientsByZone[other.zone] += 1 }
    }

    /// The emulated replicas of `services` (in that order, on consecutive ports from `basePort`) with the faults
    /// of `spec` that touch them, in wall time.
    ///
    /// - Throws: `LiveError.invalid` for a `latency`, `partition` or `scale` fault (no live equivalent on one host).
    public static func backends(spec: MeshSpec, services: [Int], seed: UInt64, basePort: Int) throws
        -> BackendConfiguration
    {
        let total = services.reduce(0) { $0 + spec.services[$1].replicas.count }
        guard (1...65535).contains(basePort), total <= 65536 - basePort else {
            throw LiveError.invalid(
                "--backend-port \(basePort): the \(total) backend ports from it must fit in 1...65535"
            )
        }
        var replicas: [BackendReplica] = []
        for s in services {
            let service = spec.services[s]
            for (i, replica) in service.replicas.enumerated() {
                replicas.append(
                    BackendReplica(
                        service: service.name,
                        index: i,
                        port: basePort + replicas.count,
                        workers: service.workers,
                        queueCapacity: service.queueCapacity,
                        serviceTime: service.serviceTime,
                        errorRate: service.errorRate,
                        speed: replica.speed,
                        initiallyActive: replica.initiallyActive
                    )
                )
                replicas[replicas.count - 1].weight = replica.weight
                replicas[replicas.count - 1].serviceIndex = s
                replicas[replicas.count - 1].zone = replica.zone
                replicas[replicas.count - 1].concurrencyLimit = service.concurrencyLimit
            }
        }
        var backends = BackendConfiguration(replicas: replicas)
        backends.seed = seed
        for (f, fault) in spec.faults.enumerated() {
            switch fault.kind.scope {
            case .replicas:
                backends.faults.append(fault)
            case .load:
                break  // the load generator's arrival plan carries load spikes
            case .network, .scale:
                throw LiveError.invalid(
                    "faults[\(f)]: a \(fault.kind.name) fault has no live equivalent on one host"
                )
            }
        }
        return backends
    }
}
