//===----------------------------------------------------------------------===//
// meshsim — Live
//===----------------------------------------------------------------------===//

import SimCore
import SimRandom
public import Spec

/// A real proxy that `meshsim live` can put in front of the emulated backends.
public enum ProxyKind: String, Sendable, CaseIterable {
    /// nginx (Debian's nginx-light).
    case nginx
    /// HAProxy (Debian's haproxy).
    case haproxy
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
        var spikes: [(start: Int64, end: Int64, factor: Double)] = []
        for fault in spec.faults {
            if case .loadSpike(let c, let factor) = fault.kind, c == 0 {
                let at = fault.at.nanoseconds
                spikes.append((at, fault.duration.map { at + $0.nanoseconds } ?? Int64.max / 2, factor))
            }
        }
        let mode: LoadConfiguration.Mode
        var connections = 16
        var think: Distribution?
        switch client.load {
        case .open(let arrival, let schedule):
            mode = .open(schedule: RateSchedule(points: schedule, spikes: spikes), arrival: arrival)
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
        load.scenario = spec.name
        if let timeout = client.policy.timeout {
            // The client's timeout covers all attempts; the generator gives up a little later than the proxy.
            let (all, overflow) = timeout.nanoseconds.multipliedReportingOverflow(by: Int64(client.policy.retries + 1))
            load.timeout =
                min(overflow ? .max : all, RunLimits.duration.upperBound.nanoseconds - 1_000_000_000)
                + 1_000_000_000
        }
        self.backends = backends
        self.load = load
        self.balancer = client.policy.balancer.kind
        self.draws = client.policy.balancer.draws
        self.retries = client.policy.retries
        self.attemptTimeout = client.policy.timeout?.nanoseconds
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
        var first: [Int: Int] = [:]
        for s in services {
            let service = spec.services[s]
            first[s] = replicas.count
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
            }
        }
        var backends = BackendConfiguration(replicas: replicas)
        backends.seed = seed
        for (f, fault) in spec.faults.enumerated() {
            let at = fault.at.nanoseconds
            let duration = fault.duration?.nanoseconds
            func add(_ selection: ReplicaSelection, _ kind: LiveFault.Kind) {
                guard let base = first[selection.service] else { return }
                let count = spec.services[selection.service].replicas.count
                let local = selection.replicas.isEmpty ? Array(0..<count) : selection.replicas
                backends.faults.append(
                    LiveFault(at: at, duration: duration, replicas: local.map { base + $0 }, kind: kind)
                )
            }
            switch fault.kind {
            case .crash(let s): add(s, .crash)
            case .slowdown(let s, let factor): add(s, .slowdown(factor: factor))
            case .serviceTime(let s, let distribution): add(s, .serviceTime(distribution))
            case .errors(let s, let rate): add(s, .errors(rate: rate))
            case .pause(let s, let every, let length):
                add(s, .pause(every: every.nanoseconds, length: length.nanoseconds))
            case .zoneOutage(let zone):
                for s in services {
                    let inZone = spec.services[s].replicas.indices.filter { spec.services[s].replicas[$0].zone == zone }
                    if !inZone.isEmpty { add(ReplicaSelection(service: s, replicas: inZone), .crash) }
                }
            case .loadSpike:
                break
            case .latency, .partition, .scale:
                throw LiveError.invalid(
                    "faults[\(f)]: a \(Self.faultName(fault.kind)) fault has no live equivalent on one host"
                )
            }
        }
        return backends
    }

    private static func faultName(_ kind: FaultKind) -> String {
        switch kind {
        case .latency: return "latency"
        case .partition: return "partition"
        case .scale: return "scale"
        default: return "this"
        }
    }
}
