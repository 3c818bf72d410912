//===----------------------------------------------------------------------===//
// meshsim — Scenario
//===----------------------------------------------------------------------===//

import Balancers
import Breakers
import Health
import Limiters
import Retries
import SimCore
import SimRandom
import Spec

/// Builds a ``Scenario`` from a YAML tree: resolves names, applies defaults and variants, and records every problem.
struct ScenarioDecoder {
    var reader: TreeReader
    let file: String

    init(file: String) {
        self.file = file
        self.reader = TreeReader(file: file)
    }

    static let topKeys = [
        "name", "description", "seed", "seeds", "duration", "warmup", "window", "drain", "zones", "network",
        "discovery", "services", "clients", "faults", "report", "variants", "sweep", "security",
    ]

    /// Limits that keep a run within memory; documented in docs/scenario-format.md.
    static let maxSeeds = 10_000
    /// The most variants a scenario may define (each is decoded from the whole file).
    static let maxVariants = 1_000
    /// The longest scenario or variant name, in UTF-8 bytes (names go into every CSV row and the output folder).
    static let maxNameLength = 128
    static let maxReplicas = 100_000
    static let maxWorkers = 1_000_000
    static let maxUsers = 1_000_000
    static let maxFanout = 1_000
    static let maxRate = 100_000_000.0

    mutating func decode(_ tree: YAMLTree, source: String) -> Scenario? {
        guard let top = reader.fields(tree, "", known: Self.topKeys) else { return nil }
        let baseName = file.split(separator: "/").last.map { String($0) } ?? file
        let stem =
            baseName.hasSuffix(".yaml")
            ? String(baseName.dropLast(5)) : baseName.hasSuffix(".yml") ? String(baseName.dropLast(4)) : baseName
        let name = top["name"].flatMap { reader.string($0, "name", maxLength: Self.maxNameLength) } ?? stem
        let description = top["description"].flatMap { reader.string($0, "description") } ?? ""
        let seed = UInt64(reader.int(top["seed"], "seed", default: 1, range: 0...Int(Int64.max)))
        let seeds = reader.int(top["seeds"], "seeds", default: 1, range: 1...Self.maxSeeds)
        var rankBy = "success_rate"
        if let report = reader.fields(top["report"], "report", known: ["rank_by"]) {
            rankBy =
                reader.choice(report["rank_by"], "report.rank_by", choices: Scenario.rankMetrics.map(\.name)) ?? rankBy
        }
        guard let base = mesh(top, name: name) else { return nil }
        let (variants, axes) = self.variants(tree, top, name: name, base: base)
        reportSize(name: name, variants: variants, seeds: seeds, seedsNode: top["seeds"] ?? top.node)
        return Scenario(
            name: name,
            description: description,
            file: file,
            source: source,
            seed: seed,
            seeds: seeds,
            rankBy: rankBy,
            variants: variants,
            sweepAxes: axes
        )
    }

    /// Refuses a run whose reports could not be held in memory (see ``Scenario/reportBytes(name:variants:seeds:)``).
    mutating func reportSize(name: String, variants: [Scenario.Variant], seeds: Int, seedsNode: YAMLTree?) {
        let bytes = Scenario.reportBytes(name: name, variants: variants, seeds: seeds)
        guard bytes > Double(Scenario.maxReportBytes) else { return }
        reader.fail(
            .tooLarge,
            seedsNode,
            "seeds",
            "\(variants.count) variant(s) × \(seeds) seed(s) × the windows of 'duration' would make about "
                + "\(Int(bytes / Double(1 << 30))) GiB of timeseries rows, more than the "
                + "\(Scenario.maxReportBytes >> 30) GiB a run may hold; use fewer seeds, fewer variants or a wider 'window'"
        )
    }

    // MARK: - Mesh

    mutating func mesh(_ top: Fields, name: String) -> MeshSpec? {
        if top["duration"] == nil {
            reader.fail(.missingField, top.node, "duration", "a scenario needs 'duration' (e.g. duration: 60s)")
        }
        let duration = reader.duration(
            top["duration"],
            "duration",
            default: .seconds(10),
            range: RunLimits.duration
        )
        var spec = MeshSpec(name: name, duration: duration)
        spec.warmup = reader.duration(top["warmup"], "warmup", default: .zero)
        if spec.warmup >= duration, top["warmup"] != nil {
            reader.fail(
                .outOfRange,
                top["warmup"],
                "warmup",
                "warmup (\(spec.warmup.formatted)) must be shorter than duration (\(duration.formatted))"
            )
        }
        spec.window = reader.duration(
            top["window"],
            "window",
            default: .seconds(1),
            range: RunLimits.window
        )
        spec.drain = reader.duration(top["drain"], "drain", default: .seconds(60))
        // Windows cover the drain too: requests still outstanding after `duration` keep closing windows.
        if Scenario.windows(spec) > Double(RunLimits.maxWindows) {
            reader.fail(
                .outOfRange,
                top["window"] ?? top["drain"] ?? top["duration"],
                top["window"] != nil ? "window" : top["drain"] != nil ? "drain" : "duration",
                "window \(spec.window.formatted) over duration \(duration.formatted) and drain \(spec.drain.formatted) "
                    + "gives more than \(RunLimits.maxWindowsText) rows per replication; use a wider window or a shorter drain"
            )
        }

        // Zones.
        var zones: [String] = []
        var zoneNames: Set<String> = []
        let zoneList = reader.list(top["zones"], "zones", atMost: MeshSpec.maxZones, of: "zones")
        for (i, node) in zoneList.enumerated() {
            guard let zone = reader.string(node, "zones[\(i)]") else { continue }
            if !zoneNames.insert(zone).inserted {
                reader.fail(.duplicate, node, "zones[\(i)]", "zone '\(zone)' is listed twice")
            }
            zones.append(zone)
        }
        if zones.isEmpty { zones = ["default"] }
        spec.zones = zones
        spec.setAllLinks(LinkSpec())
        network(top["network"], &spec)

        if let discovery = reader.fields(top["discovery"], "discovery", known: ["propagation_delay", "refused_cost"]) {
            spec.discovery.propagationDelay = reader.duration(
                discovery["propagation_delay"],
                "discovery.propagation_delay",
                default: spec.discovery.propagationDelay
            )
            spec.discovery.refusedCost = reader.duration(
                discovery["refused_cost"],
                "discovery.refused_cost",
                default: spec.discovery.refusedCost
            )
        }

        // Services: names first, so calls can refer to services defined later.
        let serviceEntries = reader.entries(top["services"], "services")
        if top["services"] == nil || serviceEntries.isEmpty {
            reader.fail(.missingField, top["services"] ?? top.node, "services", "a scenario needs at least one service")
        }
        let serviceNames = serviceEntries.map(\.key)
        var totalReplicas = 0
        for entry in serviceEntries {
            spec.services.append(
                service(
                    entry.value,
                    "services." + entry.key,
                    name: entry.key,
                    zones: zones,
                    serviceNames: serviceNames,
                    totalReplicas: &totalReplicas
                )
            )
        }
        checkCycles(spec.services, serviceEntries)

        let clientEntries = reader.entries(top["clients"], "clients")
        if top["clients"] == nil || clientEntries.isEmpty {
            reader.fail(.missingField, top["clients"] ?? top.node, "clients", "a scenario needs at least one client")
        }
        for entry in clientEntries {
            if let c = client(
                entry.value,
                "clients." + entry.key,
                name: entry.key,
                zones: zones,
                serviceNames: serviceNames
            ) {
                spec.clients.append(c)
            }
        }
        let clientNames = clientEntries.map(\.key)
        for (i, node) in reader.list(top["faults"], "faults").enumerated() {
            if let f = fault(node, "faults[\(i)]", spec: spec, clientNames: clientNames) { spec.faults.append(f) }
        }
        spec.security = security(top["security"], services: spec.services.map(\.name), clients: clientNames)
        return spec
    }

    mutating func zoneIndex(_ node: YAMLTree?, _ path: String, zones: [String]) -> Int? {
        guard let name = reader.string(node, path) else { return nil }
        guard let index = zones.firstIndex(of: name) else {
            reader.fail(
                .danglingReference,
                node,
                path,
                "no zone named '\(name)' (zones: \(zones.joined(separator: ", ")))",
                suggestion: closestName(to: name, among: zones).map { "did you mean '\($0)'?" }
            )
            return nil
        }
        return index
    }

    mutating func serviceIndex(_ node: YAMLTree?, _ path: String, names: [String]) -> Int? {
        guard let name = reader.string(node, path) else { return nil }
        guard let index = names.firstIndex(of: name) else {
            reader.fail(
                .danglingReference,
                node,
                path,
                "no service named '\(name)' (services: \(names.joined(separator: ", ")))",
                suggestion: closestName(to: name, among: names).map { "did you mean '\($0)'?" }
            )
            return nil
        }
        return index
    }

    // MARK: - Network

    static let linkKeys = ["delay", "loss", "retransmit"]

    mutating func link(_ f: Fields, _ base: LinkSpec) -> LinkSpec {
        LinkSpec(
            delay: reader.distribution(f["delay"], f.path("delay"), default: base.delay),
            loss: reader.number(
                f["loss"],
                f.path("loss"),
                default: base.loss,
                range: 0...0.99,
                what: "a loss probability"
            ),
            retransmit: reader.duration(f["retransmit"], f.path("retransmit"), default: base.retransmit)
        )
    }

    mutating func network(_ node: YAMLTree?, _ spec: inout MeshSpec) {
        guard let f = reader.fields(node, "network", known: ["default", "links"]) else { return }
        if let d = reader.fields(f["default"], "network.default", known: Self.linkKeys) {
            spec.setAllLinks(link(d, LinkSpec()))
        }
        for (i, item) in reader.list(f["links"], "network.links").enumerated() {
            let path = "network.links[\(i)]"
            guard let l = reader.fields(item, path, known: Self.linkKeys + ["from", "to", "symmetric"]) else {
                continue
            }
            if l["from"] == nil || l["to"] == nil {
                reader.fail(.missingField, item, path, "a link needs 'from' and 'to' zones")
                continue
            }
            let from = zoneIndex(l["from"], path + ".from", zones: spec.zones)
            let to = zoneIndex(l["to"], path + ".to", zones: spec.zones)
            let symmetric = reader.bool(l["symmetric"], path + ".symmetric", default: true)
            guard let from, let to else { continue }
            let value = link(l, spec.links[from, to])
            spec.links[from, to] = value
            if symmetric { spec.links[to, from] = value }
        }
    }

    // MARK: - Services

    static let serviceKeys = [
        "replicas", "zones", "spares", "workers", "queue", "service_time", "error_rate", "calls", "concurrency_limit",
    ]
    static let policyKeys = [
        "timeout", "retries", "balancer", "release_on_timeout", "retry_on", "backoff", "budget", "outlier_detection",
        "panic_threshold", "circuit_breaker", "rate_limit", "hedging", "deadline", "adaptive_throttle", "zone_aware",
        "health_check", "passive_health",
    ]
    static let callKeys = ["service", "fanout"] + policyKeys

    mutating func service(
        _ node: YAMLTree,
        _ path: String,
        name: String,
        zones: [String],
        serviceNames: [String],
        totalReplicas: inout Int
    ) -> ServiceSpec {
        var result = ServiceSpec(name: name, replicas: [ReplicaSpec()], serviceTime: .constant(0))
        guard let f = reader.fields(node, path, known: Self.serviceKeys) else { return result }
        // Replicas: a count spread over `zones`, or a list of {zone, weight, speed}.
        var replicaZones: [Int] = []
        for (i, z) in reader.list(f["zones"], f.path("zones")).enumerated() {
            if let index = zoneIndex(z, f.path("zones") + "[\(i)]", zones: zones) { replicaZones.append(index) }
        }
        if replicaZones.isEmpty { replicaZones = [0] }
        var replicas: [ReplicaSpec] = []
        switch f["replicas"] {
        case .some(.sequence(let items, _)):
            for (i, item) in items.enumerated() {
                let rp = f.path("replicas") + "[\(i)]"
                guard let r = reader.fields(item, rp, known: ["zone", "weight", "speed"]) else { continue }
                let zone =
                    r["zone"] == nil
                    ? replicaZones[i % replicaZones.count] : (zoneIndex(r["zone"], rp + ".zone", zones: zones) ?? 0)
                replicas.append(
                    ReplicaSpec(
                        zone: zone,
                        weight: reader.int(r["weight"], rp + ".weight", default: 1, range: 1...1_000_000),
                        speed: reader.number(
                            r["speed"],
                            rp + ".speed",
                            default: 1,
                            range: 0.001...1000,
                            what: "a speed factor"
                        )
                    )
                )
            }
            if items.isEmpty {
                reader.fail(.outOfRange, f["replicas"], f.path("replicas"), "a service needs at least one replica")
            }
        default:
            let count = reader.int(f["replicas"], f.path("replicas"), default: 1, range: 1...Self.maxReplicas)
            replicas = (0..<count).map { ReplicaSpec(zone: replicaZones[$0 % replicaZones.count]) }
        }
        let spares = reader.int(f["spares"], f.path("spares"), default: 0, range: 0...Self.maxReplicas)
        let running = replicas.count
        for i in 0..<spares {
            replicas.append(ReplicaSpec(zone: replicaZones[(running + i) % replicaZones.count], initiallyActive: false))
        }
        totalReplicas += replicas.count
        if totalReplicas > Self.maxReplicas {
            reader.fail(
                .outOfRange,
                f["replicas"] ?? node,
                f.path("replicas"),
                "more than \(Self.maxReplicas) replicas in all"
            )
            replicas = Array(replicas.prefix(1))
        }
        if !replicas.isEmpty { result.replicas = replicas }
        result.workers = reader.int(f["workers"], f.path("workers"), default: 1, range: 1...Self.maxWorkers)
        if let q = f["queue"], case .scalar("unbounded", _, _) = q {
            result.queueCapacity = Int(Int32.max)
        } else {
            result.queueCapacity = reader.int(
                f["queue"],
                f.path("queue"),
                default: Int(Int32.max),
                range: 0...Int(Int32.max)
            )
        }
        if f["service_time"] == nil {
            reader.fail(
                .missingField,
                node,
                f.path("service_time"),
                "a service needs 'service_time' (e.g. service_time: exponential:mean=1ms)"
            )
        }
        result.serviceTime = reader.distribution(f["service_time"], f.path("service_time"), default: .constant(0))
        result.errorRate = reader.probability(f["error_rate"], f.path("error_rate"), default: 0)
        if let node = f["concurrency_limit"] {
            result.concurrencyLimit = concurrencyLimit(node, f.path("concurrency_limit"))
        }
        for (i, item) in reader.list(f["calls"], f.path("calls")).enumerated() {
            let cp = f.path("calls") + "[\(i)]"
            guard let c = reader.fields(item, cp, known: Self.callKeys + ["split", "routes"]) else { continue }
            guard let (target, routing) = targetAndRouting(c, cp, targetKey: "service", serviceNames: serviceNames)
            else { continue }
            var call = CallSpec(
                target: target,
                fanout: reader.int(c["fanout"], cp + ".fanout", default: 1, range: 1...Self.maxFanout),
                policy: policy(c, cp)
            )
            call.routing = routing
            result.calls.append(call)
        }
        if result.calls.count > 100 {
            reader.fail(.outOfRange, f["calls"], f.path("calls"), "at most 100 downstream steps per service")
        }
        return result
    }

    mutating func policy(_ f: Fields, _ path: String) -> CallPolicy {
        var policy = CallPolicy()
        if let node = f["balancer"] { policy.balancer = balancer(node, path + ".balancer") }
        if let t = f["timeout"], !t.isNull {
            policy.timeout = reader.duration(
                t,
                path + ".timeout",
                default: .seconds(1),
                range: .nanoseconds(1)...SimDuration.seconds(3600 * 24)
            )
        }
        policy.retries = reader.int(f["retries"], path + ".retries", default: 0, range: 0...100)
        policy.releaseOnTimeout = reader.bool(f["release_on_timeout"], path + ".release_on_timeout", default: true)
        if let node = f["retry_on"], let text = reader.string(node, path + ".retry_on") {
            do {
                policy.retryOn = try RetryOn.parse(text)
            } catch let error as PolicyParameterError {
                reader.fail(.unknownName, node, path + ".retry_on", error.message)
            } catch {
                reader.fail(.unknownName, node, path + ".retry_on", "\(error)")
            }
        }
        if let node = f["backoff"] { policy.backoff = backoff(node, path + ".backoff") }
        if let node = f["budget"] { policy.budget = retryBudget(node, path + ".budget") }
        if let node = f["outlier_detection"] {
            policy.outlierDetection = outlierDetection(node, path + ".outlier_detection")
        }
        policy.panicThreshold = reader.number(
            f["panic_threshold"],
            path + ".panic_threshold",
            default: 50,
            range: 0...100,
            what: "a percentage"
        )
        if let node = f["circuit_breaker"] { policy.breaker = circuitBreaker(node, path + ".circuit_breaker") }
        if let node = f["zone_aware"] { policy.zoneAware = zoneAware(node, path + ".zone_aware") }
        if let node = f["health_check"] { policy.healthCheck = healthCheck(node, path + ".health_check") }
        if let node = f["passive_health"] { policy.passiveHealth = passiveHealth(node, path + ".passive_health") }
        if let node = f["rate_limit"] { policy.rateLimit = rateLimit(node, path + ".rate_limit") }
        if let t = reader.fields(
            f["adaptive_throttle"],
            path + ".adaptive_throttle",
            known: ["k", "window", "buckets"]
        ) {
            do {
                policy.adaptiveThrottle = try AdaptiveThrottle.Configuration(
                    k: reader.number(t["k"], path + ".adaptive_throttle.k", default: 2, range: -1e9...1e9),
                    window: reader.duration(t["window"], path + ".adaptive_throttle.window", default: .seconds(120)),
                    buckets: reader.int(
                        t["buckets"],
                        path + ".adaptive_throttle.buckets",
                        default: 120,
                        range: -1_000_000...1_000_000
                    )
                )
            } catch {
                parameterProblem(error, t, path + ".adaptive_throttle")
            }
        }
        if let d = f["deadline"], !d.isNull {
            policy.deadline = reader.duration(
                d,
                path + ".deadline",
                default: .seconds(1),
                range: .nanoseconds(1)...SimDuration.seconds(3600 * 24)
            )
        }
        if let h = reader.fields(f["hedging"], path + ".hedging", known: ["delay", "max_attempts"]) {
            if h["delay"] == nil {
                reader.fail(.missingField, h.node, path + ".hedging.delay", "hedging needs 'delay' (gRPC hedgingDelay)")
            }
            do {
                policy.hedging = try HedgingSpec(
                    delay: reader.duration(h["delay"], path + ".hedging.delay", default: .milliseconds(10)),
                    maxAttempts: reader.int(
                        h["max_attempts"],
                        path + ".hedging.max_attempts",
                        default: 2,
                        range: -1_000...1_000
                    )
                )
            } catch {
                parameterProblem(error, h, path + ".hedging")
            }
            if let m = h["max_attempts"], case .scalar(let text, _, _) = m, let n = Int(text), n > 5 {
                reader.fail(
                    .outOfRange,
                    m,
                    path + ".hedging.max_attempts",
                    "gRPC caps hedging at 5 attempts; \(n) is more"
                )
            }
        }
        return policy
    }

    static let balancerKeys: [BalancerKind: [String]] = [
        .roundRobin: [], .random: [], .nginxLeastConn: [], .nginxRandomTwoLeastConn: [], .haproxyLeastConn: [],
        .weightedRoundRobin: ["slow_start"],
        .leastRequest: ["choice_count", "selection", "replacement", "active_request_bias", "slow_start"],
        .p2cPeakEwma: ["decay"], .ringHash: ["minimum_ring_size", "maximum_ring_size", "hash_balance_factor"],
        .maglev: ["table_size"], .haproxyRandom: ["draws"],
    ]

    /// A balancer: its name (`least_request`), or a mapping with `kind` and parameters.
    mutating func balancer(_ node: YAMLTree, _ path: String) -> BalancerSpec {
        let names = BalancerKind.allCases.map(\.rawValue)
        if case .scalar = node {
            return reader.choice(node, path, choices: names).flatMap(BalancerKind.init).map { BalancerSpec($0) }
                ?? BalancerSpec(.roundRobin)
        }
        guard case .mapping(let pairs, _) = node, let kindNode = pairs.first(where: { $0.key == "kind" })?.value else {
            reader.fail(
                .wrongType,
                node,
                path,
                "expected a balancer name or a mapping with 'kind' (one of: \(names.joined(separator: ", ")))"
            )
            return BalancerSpec(.roundRobin)
        }
        guard let kind = reader.choice(kindNode, path + ".kind", choices: names).flatMap(BalancerKind.init) else {
            return BalancerSpec(.roundRobin)
        }
        var spec = BalancerSpec(kind)
        guard let f = reader.fields(node, path, known: ["kind"] + (Self.balancerKeys[kind] ?? [])) else { return spec }
        switch kind {
        case .leastRequest:
            spec.choiceCount = reader.int(f["choice_count"], path + ".choice_count", default: 2, range: 2...100)
            if let selection = reader.choice(f["selection"], path + ".selection", choices: ["n_choices", "full_scan"]),
                selection == "full_scan"
            {
                spec.choiceCount = nil
            }
            spec.withReplacement = reader.bool(f["replacement"], path + ".replacement", default: true)
            spec.activeRequestBias = reader.number(
                f["active_request_bias"],
                path + ".active_request_bias",
                default: 1,
                range: 0...100,
                what: "a bias ≥ 0"
            )
        case .p2cPeakEwma:
            spec.decay = reader.duration(
                f["decay"],
                path + ".decay",
                default: .seconds(10),
                range: .nanoseconds(1)...SimDuration.seconds(3600 * 24)
            )
        case .ringHash:
            spec.minimumRingSize = reader.int(
                f["minimum_ring_size"],
                path + ".minimum_ring_size",
                default: 1024,
                range: 1...8_388_608
            )
            spec.maximumRingSize = reader.int(
                f["maximum_ring_size"],
                path + ".maximum_ring_size",
                default: 8_388_608,
                range: 1...8_388_608
            )
            if spec.maximumRingSize < spec.minimumRingSize {
                reader.fail(
                    .outOfRange,
                    f["maximum_ring_size"],
                    path + ".maximum_ring_size",
                    "must be at least minimum_ring_size (\(spec.minimumRingSize))"
                )
            }
            if let factor = f["hash_balance_factor"] {
                spec.hashBalanceFactor = reader.int(
                    factor,
                    path + ".hash_balance_factor",
                    default: 150,
                    range: 100...100_000
                )
            }
        case .maglev:
            spec.tableSize = reader.int(f["table_size"], path + ".table_size", default: 65_537, range: 2...5_000_011)
            if (try? MaglevBalancer(tableSize: spec.tableSize)) == nil {
                reader.fail(
                    .outOfRange,
                    f["table_size"],
                    path + ".table_size",
                    "\(spec.tableSize) is not prime: Maglev needs a prime table size (e.g. 65537)"
                )
                spec.tableSize = 65_537
            }
        case .haproxyRandom:
            spec.draws = reader.int(f["draws"], path + ".draws", default: 2, range: 1...100)
        default:
            break
        }
        if let ss = reader.fields(
            f["slow_start"],
            path + ".slow_start",
            known: ["window", "aggression", "min_weight_percent"]
        ) {
            if ss["window"] == nil {
                reader.fail(.missingField, ss.node, path + ".slow_start.window", "slow start needs 'window'")
            }
            spec.slowStart = (
                reader.duration(
                    ss["window"],
                    path + ".slow_start.window",
                    default: .seconds(1),
                    range: .nanoseconds(1)...SimDuration.seconds(3600 * 24)
                ),
                reader.number(
                    ss["aggression"],
                    path + ".slow_start.aggression",
                    default: 1,
                    range: 0.001...1000,
                    what: "an aggression > 0"
                ),
                reader.number(
                    ss["min_weight_percent"],
                    path + ".slow_start.min_weight_percent",
                    default: 10,
                    range: 0...100,
                    what: "a percentage"
                )
            )
        }
        return spec
    }

    /// A backoff: a mapping with `kind` (a ``Retries/BackoffKind`` name) and the kind's own parameter names.
    mutating func backoff(_ node: YAMLTree, _ path: String) -> Backoff? {
        let names = BackoffKind.names
        var kindNode: YAMLTree? = node
        if case .mapping(let pairs, _) = node { kindNode = pairs.first { $0.key == "kind" }?.value }
        guard let kindNode else {
            reader.fail(
                .missingField,
                node,
                path + ".kind",
                "a backoff needs 'kind' (one of: \(names.joined(separator: ", ")))"
            )
            return nil
        }
        let kindPath = node.isMapping ? path + ".kind" : path
        guard let kind = reader.choice(kindNode, kindPath, choices: names).flatMap({ BackoffKind(name: $0) }) else {
            return nil
        }
        let p = kind.parameterNames
        var fields: Fields?
        if node.isMapping {
            // Envoy's `retry_back_off` has only `base_interval` and `max_interval`: it always doubles, unjittered
            // bounds (algorithms.md §2.4).
            let tuning = kind == .envoy ? [] : [p.multiplier, "jitter"]
            fields = reader.fields(node, path, known: ["kind", p.base, p.cap] + tuning)
        }
        let connection = kind == .grpcConnectionNew || kind == .grpcConnectionOld
        let base = reader.duration(
            fields?[p.base],
            path + "." + p.base,
            default: connection ? .seconds(1) : .milliseconds(25)
        )
        let cap = reader.duration(
            fields?[p.cap],
            path + "." + p.cap,
            default: connection
                ? .seconds(120)
                : SimDuration(
                    nanoseconds: base.nanoseconds.multipliedReportingOverflow(by: 10).overflow
                        ? Int64.max / 4 : base.nanoseconds * 10
                )
        )
        let multiplier = fields?[p.multiplier].map {
            reader.number(
                $0,
                path + "." + p.multiplier,
                default: kind.defaultMultiplier,
                range: 1...1000,
                what: "a multiplier ≥ 1"
            )
        }
        let jitter = fields?["jitter"].map {
            reader.number($0, path + ".jitter", default: kind.defaultJitter, range: 0...1, what: "a jitter fraction")
        }
        do {
            return try Backoff(kind: kind, base: base, cap: cap, multiplier: multiplier, jitter: jitter)
        } catch let error as PolicyParameterError {
            reader.fail(.outOfRange, fields?[error.parameter] ?? node, path + "." + error.parameter, error.message)
        } catch {
            reader.fail(.outOfRange, node, path, "\(error)")
        }
        return nil
    }

    /// A retry budget: `{kind: envoy|finagle|grpc, …}` with the source's parameter names and defaults.
    mutating func retryBudget(_ node: YAMLTree, _ path: String) -> RetryBudgetSpec? {
        let kinds = ["envoy", "finagle", "grpc"]
        var kindNode: YAMLTree? = node
        if case .mapping(let pairs, _) = node { kindNode = pairs.first { $0.key == "kind" }?.value }
        guard let kindNode, let kind = reader.choice(kindNode, node.isMapping ? path + ".kind" : path, choices: kinds)
        else {
            if !node.isMapping || (node.isMapping && kindNode == nil) {
                reader.fail(
                    .missingField,
                    node,
                    path + ".kind",
                    "a retry budget needs 'kind' (one of: envoy, finagle, grpc)"
                )
            }
            return nil
        }
        let keys: [String: [String]] = [
            "envoy": ["budget_percent", "min_retry_concurrency"],
            "finagle": ["ttl", "min_retries_per_sec", "percent_can_retry"], "grpc": ["max_tokens", "token_ratio"],
        ]
        let f = node.isMapping ? reader.fields(node, path, known: ["kind"] + keys[kind]!) : nil
        let spec: RetryBudgetSpec
        switch kind {
        case "envoy":
            spec = .envoy(
                budgetPercent: reader.number(
                    f?["budget_percent"],
                    path + ".budget_percent",
                    default: 20,
                    range: 0...100,
                    what: "a percentage"
                ),
                minRetryConcurrency: reader.int(
                    f?["min_retry_concurrency"],
                    path + ".min_retry_concurrency",
                    default: 3,
                    range: 0...1_000_000
                )
            )
        case "finagle":
            spec = .finagle(
                ttl: reader.duration(
                    f?["ttl"],
                    path + ".ttl",
                    default: .seconds(10),
                    range: .seconds(1)...SimDuration.seconds(60)
                ),
                minRetriesPerSecond: reader.int(
                    f?["min_retries_per_sec"],
                    path + ".min_retries_per_sec",
                    default: 10,
                    range: 0...1_000_000
                ),
                percentCanRetry: reader.number(
                    f?["percent_can_retry"],
                    path + ".percent_can_retry",
                    default: 0.2,
                    range: 0...1000,
                    what: "a fraction"
                )
            )
        default:
            if f?["max_tokens"] == nil || f?["token_ratio"] == nil {
                reader.fail(.missingField, node, path, "gRPC retry throttling needs 'max_tokens' and 'token_ratio'")
            }
            spec = .grpc(
                maxTokens: reader.number(
                    f?["max_tokens"],
                    path + ".max_tokens",
                    default: 10,
                    range: 1...1000,
                    what: "a token count"
                ),
                tokenRatio: reader.number(
                    f?["token_ratio"],
                    path + ".token_ratio",
                    default: 0.1,
                    range: 0.001...1000,
                    what: "a ratio > 0"
                )
            )
        }
        guard let problem = spec.problem else { return spec }
        reader.fail(.outOfRange, f?[problem.parameter] ?? node, path + "." + problem.parameter, problem.message)
        return nil
    }

    // MARK: - Traffic management

    /// The target of a call site: `targetKey` (one service), or `split` (weighted sides, e.g. a canary), or `routes`
    /// (by path prefix and host, first match wins) — exactly one of them. Each side or route has its own policies.
    mutating func targetAndRouting(_ f: Fields, _ path: String, targetKey: String, serviceNames: [String]) -> (
        Int, Routing
    )? {
        let given = [targetKey, "split", "routes"].filter { f[$0] != nil }
        guard given.count == 1 else {
            reader.fail(
                given.isEmpty ? .missingField : .outOfRange,
                f.node,
                path + "." + (given.count > 1 ? given[1] : targetKey),
                given.isEmpty
                    ? "a call needs '\(targetKey)' (or 'split' or 'routes')"
                    : "give one of '\(targetKey)', 'split' and 'routes', not several"
            )
            return nil
        }
        if f[targetKey] != nil {
            guard let target = serviceIndex(f[targetKey], path + "." + targetKey, names: serviceNames) else {
                return nil
            }
            return (target, .direct)
        }
        let isSplit = f["split"] != nil
        let key = isSplit ? "split" : "routes"
        let items = reader.list(f[key], path + "." + key)
        if items.isEmpty {
            reader.fail(
                .missingField,
                f[key],
                path + "." + key,
                "expected a list of \(isSplit ? "weighted services" : "routes")"
            )
            return nil
        }
        var sides: [RouteSpec] = []
        for (i, item) in items.enumerated() {
            let ip = path + ".\(key)[\(i)]"
            let own = isSplit ? ["service", "weight"] : ["service", "path_prefix", "host"]
            guard let r = reader.fields(item, ip, known: own + Self.policyKeys) else { continue }
            if r["service"] == nil {
                reader.fail(
                    .missingField,
                    item,
                    ip + ".service",
                    "each \(isSplit ? "side" : "route") needs a 'service'"
                )
            }
            guard let target = serviceIndex(r["service"], ip + ".service", names: serviceNames) else { continue }
            var route = RouteSpec(target: target, policy: policy(r, ip))
            if isSplit {
                if r["weight"] == nil {
                    reader.fail(.missingField, item, ip + ".weight", "each side of a split needs a 'weight'")
                }
                route.weight = reader.number(
                    r["weight"],
                    ip + ".weight",
                    default: 1,
                    range: 0...1e9,
                    what: "a weight ≥ 0"
                )
            } else {
                route.pathPrefix = r["path_prefix"].flatMap { reader.string($0, ip + ".path_prefix") }
                route.host = r["host"].flatMap { reader.string($0, ip + ".host") }
                if let prefix = route.pathPrefix, !prefix.hasPrefix("/") {
                    reader.fail(.outOfRange, r["path_prefix"], ip + ".path_prefix", "a path prefix starts with '/'")
                }
            }
            sides.append(route)
        }
        guard sides.count == items.count, let first = sides.first else { return nil }
        if isSplit && sides.allSatisfy({ $0.weight == 0 }) {
            reader.fail(.outOfRange, f[key], path + ".split", "at least one side needs a weight above 0")
            return nil
        }
        return (first.target, isSplit ? .split(sides) : .routes(sides))
    }

    // MARK: - Health, breakers and limiters

    /// Reads a policy mapping: `kind` (one of `kinds`) and that kind's keys; returns the kind and its fields.
    mutating func policyFields(_ node: YAMLTree, _ path: String, kinds: [String: [String]]) -> (String, Fields)? {
        let names = kinds.keys.sorted()
        guard case .mapping(let pairs, _) = node, let kindNode = pairs.first(where: { $0.key == "kind" })?.value else {
            reader.fail(
                .missingField,
                node,
                path + ".kind",
                "expected a mapping with 'kind' (one of: \(names.joined(separator: ", ")))"
            )
            return nil
        }
        guard let kind = reader.choice(kindNode, path + ".kind", choices: names),
            let fields = reader.fields(node, path, known: ["kind"] + kinds[kind]!)
        else { return nil }
        return (kind, fields)
    }

    /// Reports a module's parameter error at its key.
    mutating func parameterProblem(_ error: any Error, _ f: Fields, _ path: String) {
        if let problem = error as? PolicyParameterError {
            reader.fail(.outOfRange, f[problem.parameter] ?? f.node, path + "." + problem.parameter, problem.message)
        } else {
            reader.fail(.outOfRange, f.node, path, "\(error)")
        }
    }

    static let outlierKeys = [
        "interval", "base_ejection_time", "max_ejection_time", "max_ejection_percent", "consecutive_5xx",
        "enforcing_consecutive_5xx", "consecutive_gateway_failure", "enforcing_consecutive_gateway_failure",
        "enforcing_success_rate", "success_rate_minimum_hosts", "success_rate_request_volume",
        "success_rate_stdev_factor", "failure_percentage_threshold", "enforcing_failure_percentage",
        "failure_percentage_minimum_hosts", "failure_percentage_request_volume",
    ]

    /// Envoy outlier detection, with Envoy's names and defaults.
    mutating func outlierDetection(_ node: YAMLTree, _ path: String) -> OutlierDetectionConfiguration? {
        guard let f = reader.fields(node, path, known: Self.outlierKeys) else { return nil }
        do {
            return try OutlierDetectionConfiguration(
                interval: reader.parameterDuration(f, "interval", .seconds(10)),
                baseEjectionTime: reader.parameterDuration(f, "base_ejection_time", .seconds(30)),
                maxEjectionTime: f["max_ejection_time"].map { _ in
                    reader.parameterDuration(f, "max_ejection_time", .seconds(300))
                },
                maxEjectionPercent: reader.parameterInt(f, "max_ejection_percent", 10),
                consecutive5xx: reader.parameterInt(f, "consecutive_5xx", 5),
                enforcingConsecutive5xx: reader.parameterInt(f, "enforcing_consecutive_5xx", 100),
                consecutiveGatewayFailure: reader.parameterInt(f, "consecutive_gateway_failure", 5),
                enforcingConsecutiveGatewayFailure: reader.parameterInt(f, "enforcing_consecutive_gateway_failure", 0),
                enforcingSuccessRate: reader.parameterInt(f, "enforcing_success_rate", 100),
                successRateMinimumHosts: reader.parameterInt(f, "success_rate_minimum_hosts", 5),
                successRateRequestVolume: reader.parameterInt(f, "success_rate_request_volume", 100),
                successRateStdevFactor: reader.parameterInt(f, "success_rate_stdev_factor", 1900),
                failurePercentageThreshold: reader.parameterInt(f, "failure_percentage_threshold", 85),
                enforcingFailurePercentage: reader.parameterInt(f, "enforcing_failure_percentage", 0),
                failurePercentageMinimumHosts: reader.parameterInt(f, "failure_percentage_minimum_hosts", 5),
                failurePercentageRequestVolume: reader.parameterInt(f, "failure_percentage_request_volume", 50)
            )
        } catch {
            parameterProblem(error, f, path)
            return nil
        }
    }

    /// Envoy zone-aware routing (`zone_aware.rst`; algorithms.md §1.8): `routing_enabled` (percent, 100) and
    /// `min_cluster_size` (6).
    mutating func zoneAware(_ node: YAMLTree, _ path: String) -> ZoneAwareRouting? {
        guard let f = reader.fields(node, path, known: ["routing_enabled", "min_cluster_size"]) else { return nil }
        do {
            return try ZoneAwareRouting(
                routingEnabledPercent: reader.parameterNumber(f, "routing_enabled", 100),
                minClusterSize: reader.parameterInt(f, "min_cluster_size", 6)
            )
        } catch {
            parameterProblem(error, f, path)
            return nil
        }
    }

    static let healthCheckKeys = ["interval", "timeout", "unhealthy_threshold", "healthy_threshold"]

    /// Envoy active health checking (`health_check.proto`): all four keys are required, as Envoy requires them.
    mutating func healthCheck(_ node: YAMLTree, _ path: String) -> ActiveHealthCheckConfiguration? {
        guard let f = reader.fields(node, path, known: Self.healthCheckKeys) else { return nil }
        let missing = Self.healthCheckKeys.filter { f[$0] == nil }
        for key in missing {
            reader.fail(
                .missingField,
                node,
                f.path(key),
                "an active health check needs '\(key)' (Envoy requires \(Self.healthCheckKeys.joined(separator: ", ")))"
            )
        }
        guard missing.isEmpty else { return nil }
        do {
            return try ActiveHealthCheckConfiguration(
                interval: reader.parameterDuration(f, "interval", .seconds(1)),
                timeout: reader.parameterDuration(f, "timeout", .seconds(1)),
                unhealthyThreshold: reader.parameterInt(f, "unhealthy_threshold", 1),
                healthyThreshold: reader.parameterInt(f, "healthy_threshold", 1)
            )
        } catch {
            parameterProblem(error, f, path)
            return nil
        }
    }

    static let nginxStatuses: [String: NginxFailureStatuses] = [
        "http_500": .http500, "http_502": .http502, "http_503": .http503, "http_504": .http504, "http_429": .http429,
    ]
    static let haproxyOnError: [String: HAProxyServerHealthConfiguration.OnError] = [
        "fastinter": .fastinter, "fail-check": .failCheck, "sudden-death": .suddenDeath, "mark-down": .markDown,
    ]

    /// Passive health as nginx (`max_fails`, `fail_timeout`) or HAProxy (`observe`, `error-limit`, `on-error`,
    /// with its `check` timing) keeps it, with their names and defaults.
    mutating func passiveHealth(_ node: YAMLTree, _ path: String) -> PassiveHealthSpec? {
        let kinds = [
            "nginx": ["max_fails", "fail_timeout", "next_upstream", "counting"],
            "haproxy": [
                "observe", "error_limit", "on_error", "inter", "fastinter", "downinter", "fall", "rise",
                "timeout_check",
            ],
        ]
        guard let (kind, f) = policyFields(node, path, kinds: kinds) else { return nil }
        do {
            if kind == "nginx" {
                var statuses: NginxFailureStatuses = []
                if let text = f["next_upstream"].flatMap({ reader.string($0, f.path("next_upstream")) }) {
                    let names = text.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
                    let known = ["error", "timeout"] + Self.nginxStatuses.keys.sorted()
                    for name in names {
                        if let status = Self.nginxStatuses[name] {
                            statuses.insert(status)
                        } else if name != "error" && name != "timeout" {
                            reader.fail(
                                .unknownName,
                                f["next_upstream"],
                                f.path("next_upstream"),
                                "unknown value '\(name)' (expected some of: \(known.joined(separator: ", ")))",
                                suggestion: closestName(to: name, among: known).map { "did you mean '\($0)'?" }
                            )
                        }
                    }
                }
                let counting = reader.choice(
                    f["counting"],
                    f.path("counting"),
                    choices: ["documented", "round_robin_module"]
                )
                return .nginx(
                    try NginxPassiveHealthConfiguration(
                        maxFails: reader.parameterInt(f, "max_fails", 1),
                        failTimeout: reader.parameterDuration(f, "fail_timeout", .seconds(10)),
                        failureStatuses: statuses,
                        variant: counting == "round_robin_module" ? .roundRobinModule : .documented
                    )
                )
            }
            let observe = reader.choice(f["observe"], f.path("observe"), choices: ["layer4", "layer7", "none"])
            let onError = reader.choice(f["on_error"], f.path("on_error"), choices: Self.haproxyOnError.keys.sorted())
            return .haproxy(
                try HAProxyServerHealthConfiguration(
                    inter: reader.parameterDuration(f, "inter", .seconds(2)),
                    fastinter: f["fastinter"].map { _ in reader.parameterDuration(f, "fastinter", .seconds(2)) },
                    downinter: f["downinter"].map { _ in reader.parameterDuration(f, "downinter", .seconds(2)) },
                    fall: reader.parameterInt(f, "fall", 3),
                    rise: reader.parameterInt(f, "rise", 2),
                    checkTimeout: f["timeout_check"].map { _ in
                        reader.parameterDuration(f, "timeout_check", .seconds(2))
                    },
                    observe: observe == "none" ? nil : (observe == "layer4" ? .layer4 : .layer7),
                    errorLimit: reader.parameterInt(f, "error_limit", 10),
                    onError: onError.flatMap { Self.haproxyOnError[$0] } ?? .failCheck
                )
            )
        } catch {
            parameterProblem(error, f, path)
            return nil
        }
    }

    /// A circuit breaker: Envoy thresholds, resilience4j or Hystrix, with their own names and defaults.
    mutating func circuitBreaker(_ node: YAMLTree, _ path: String) -> BreakerSpec? {
        let kinds = [
            "envoy": ["max_requests", "max_retries", "max_pending_requests", "max_connections"],
            "resilience4j": [
                "failure_rate_threshold", "slow_call_rate_threshold", "slow_call_duration_threshold",
                "sliding_window_type", "sliding_window_size", "minimum_number_of_calls", "wait_duration_in_open_state",
                "permitted_number_of_calls_in_half_open_state",
            ],
            "hystrix": ["request_volume_threshold", "error_threshold_percentage", "sleep_window"],
        ]
        guard let (kind, f) = policyFields(node, path, kinds: kinds) else { return nil }
        do {
            switch kind {
            case "envoy":
                return .envoy(
                    try EnvoyCircuitBreakerThresholds(
                        maxConnections: reader.parameterInt(f, "max_connections", 1024),
                        maxPendingRequests: reader.parameterInt(f, "max_pending_requests", 1024),
                        maxRequests: reader.parameterInt(f, "max_requests", 1024),
                        maxRetries: reader.parameterInt(f, "max_retries", 3)
                    )
                )
            case "resilience4j":
                let type = reader.choice(
                    f["sliding_window_type"],
                    path + ".sliding_window_type",
                    choices: ["count_based", "time_based"]
                )
                return .resilience4j(
                    try Resilience4jCircuitBreakerConfiguration(
                        failureRateThreshold: reader.parameterNumber(f, "failure_rate_threshold", 50),
                        slowCallRateThreshold: reader.parameterNumber(f, "slow_call_rate_threshold", 100),
                        slowCallDurationThreshold: reader.parameterDuration(
                            f,
                            "slow_call_duration_threshold",
                            .seconds(60)
                        ),
                        slidingWindowType: type == "time_based" ? .timeBased : .countBased,
                        slidingWindowSize: reader.parameterInt(f, "sliding_window_size", 100),
                        minimumNumberOfCalls: reader.parameterInt(f, "minimum_number_of_calls", 100),
                        waitIntervalInOpenState: .fixed(
                            reader.parameterDuration(f, "wait_duration_in_open_state", .seconds(60))
                        ),
                        permittedNumberOfCallsInHalfOpenState: reader.parameterInt(
                            f,
                            "permitted_number_of_calls_in_half_open_state",
                            10
                        ),
                        automaticTransitionFromOpenToHalfOpenEnabled: false
                    )
                )
            default:
                return .hystrix(
                    try HystrixCircuitBreakerConfiguration(
                        requestVolumeThreshold: reader.parameterInt(f, "request_volume_threshold", 20),
                        errorThresholdPercentage: reader.parameterInt(f, "error_threshold_percentage", 50),
                        sleepWindow: reader.parameterDuration(f, "sleep_window", .seconds(5))
                    )
                )
            }
        } catch {
            parameterProblem(error, f, path)
            return nil
        }
    }

    /// A rate limit on an edge's calls.
    mutating func rateLimit(_ node: YAMLTree, _ path: String) -> RateLimitSpec? {
        let kinds = [
            "token_bucket": ["max_tokens", "tokens_per_fill", "fill_interval", "refill"],
            "gcra": ["max_burst", "count", "period"], "fixed_window": ["limit", "window"],
            "sliding_log": ["limit", "window"], "sliding_window": ["limit", "window"],
        ]
        guard let (kind, f) = policyFields(node, path, kinds: kinds) else { return nil }
        for key in kinds[kind]! where f[key] == nil && !["tokens_per_fill", "refill"].contains(key) {
            reader.fail(.missingField, f.node, path + "." + key, "a \(kind) rate limit needs '\(key)'")
        }
        do {
            switch kind {
            case "token_bucket":
                let refill = reader.choice(
                    f["refill"],
                    path + ".refill",
                    choices: TokenBucket.Refill.allCases.map(\.rawValue)
                )
                return .tokenBucket(
                    try TokenBucket.Configuration(
                        maxTokens: reader.parameterInt(f, "max_tokens", 1),
                        tokensPerFill: reader.parameterInt(f, "tokens_per_fill", 1),
                        fillInterval: reader.parameterDuration(f, "fill_interval", .seconds(1)),
                        refill: refill.flatMap(TokenBucket.Refill.init(rawValue:)) ?? .continuous
                    )
                )
            case "gcra":
                return .gcra(
                    try GCRALimiter.Configuration(
                        maxBurst: reader.parameterInt(f, "max_burst", 0),
                        count: reader.parameterInt(f, "count", 1),
                        period: reader.parameterDuration(f, "period", .seconds(1))
                    )
                )
            case "fixed_window":
                return .fixedWindow(
                    try FixedWindowLimiter.Configuration(
                        limit: reader.parameterInt(f, "limit", 1),
                        window: reader.parameterDuration(f, "window", .seconds(1))
                    )
                )
            case "sliding_log":
                let limit = reader.parameterInt(f, "limit", 1)
                if limit > 1_000_000 {
                    reader.fail(
                        .outOfRange,
                        f["limit"],
                        path + ".limit",
                        "a sliding log keeps one stamp per permit: at most 1000000"
                    )
                }
                return .slidingLog(
                    try SlidingWindowLogLimiter.Configuration(
                        limit: min(limit, 1_000_000),
                        window: reader.parameterDuration(f, "window", .seconds(1))
                    )
                )
            default:
                return .slidingCounter(
                    try SlidingWindowCounterLimiter.Configuration(
                        limit: reader.parameterInt(f, "limit", 1),
                        window: reader.parameterDuration(f, "window", .seconds(1))
                    )
                )
            }
        } catch {
            parameterProblem(error, f, path)
            return nil
        }
    }

    /// An adaptive concurrency limit on each replica of a service (Netflix names and defaults).
    mutating func concurrencyLimit(_ node: YAMLTree, _ path: String) -> ConcurrencyLimitSpec? {
        let kinds = [
            "aimd": ["initial_limit", "min_limit", "max_limit", "backoff_ratio", "timeout"],
            "vegas": ["initial_limit", "max_concurrency", "smoothing", "probe_multiplier"],
            "gradient2": [
                "initial_limit", "min_limit", "max_concurrency", "smoothing", "queue_size", "long_window",
                "rtt_tolerance",
            ],
        ]
        guard let (kind, f) = policyFields(node, path, kinds: kinds) else { return nil }
        do {
            switch kind {
            case "aimd":
                return .aimd(
                    try AIMDLimit.Configuration(
                        initialLimit: reader.parameterInt(f, "initial_limit", 20),
                        minLimit: reader.parameterInt(f, "min_limit", 20),
                        maxLimit: reader.parameterInt(f, "max_limit", 200),
                        backoffRatio: reader.parameterNumber(f, "backoff_ratio", 0.9),
                        timeout: reader.parameterDuration(f, "timeout", .seconds(5))
                    )
                )
            case "vegas":
                return .vegas(
                    try VegasLimit.Configuration(
                        initialLimit: reader.parameterInt(f, "initial_limit", 20),
                        maxConcurrency: reader.parameterInt(f, "max_concurrency", 1000),
                        smoothing: reader.parameterNumber(f, "smoothing", 1.0),
                        probeMultiplier: reader.parameterInt(f, "probe_multiplier", 30)
                    )
                )
            default:
                return .gradient2(
                    try Gradient2Limit.Configuration(
                        initialLimit: reader.parameterInt(f, "initial_limit", 20),
                        minLimit: reader.parameterInt(f, "min_limit", 20),
                        maxConcurrency: reader.parameterInt(f, "max_concurrency", 200),
                        smoothing: reader.parameterNumber(f, "smoothing", 0.2),
                        queueSize: reader.parameterNumber(f, "queue_size", 4),
                        longWindow: reader.parameterInt(f, "long_window", 600),
                        rttTolerance: reader.parameterNumber(f, "rtt_tolerance", 1.5)
                    )
                )
            }
        } catch {
            parameterProblem(error, f, path)
            return nil
        }
    }

    /// A service that (transitively) calls itself would recurse forever: report the cycle.
    mutating func checkCycles(_ services: [ServiceSpec], _ entries: [(key: String, mark: SourceMark?, value: YAMLTree)])
    {
        var state = Array(repeating: 0, count: services.count)  // 0 new, 1 on stack, 2 done
        func visit(_ s: Int, _ trail: [Int], _ reader: inout TreeReader) {
            state[s] = 1
            var targets: [Int] = []
            for call in services[s].calls {
                switch call.routing {
                case .direct: targets.append(call.target)
                case .split(let sides), .routes(let sides): targets += sides.map(\.target)
                }
            }
            for target in targets where target < services.count {
                if state[target] == 1 {
                    let names = (trail + [s, target]).drop { $0 != target }.map { services[$0].name }
                    reader.fail(
                        .outOfRange,
                        entries[s].value,
                        "services.\(services[s].name).calls",
                        "services call each other in a cycle: \(names.joined(separator: " → "))",
                        mark: entries[s].mark
                    )
                } else if state[target] == 0 {
                    visit(target, trail + [s], &reader)
                }
            }
            state[s] = 2
        }
        for s in services.indices where state[s] == 0 { visit(s, [], &reader) }
    }

    // MARK: - Clients

    static let clientKeys =
        [
            "target", "zone", "rate", "arrival", "schedule", "users", "think_time", "split", "routes", "paths", "host",
        ] + policyKeys

    mutating func client(_ node: YAMLTree, _ path: String, name: String, zones: [String], serviceNames: [String])
        -> ClientSpec?
    {
        guard let f = reader.fields(node, path, known: Self.clientKeys) else { return nil }
        let routed = targetAndRouting(f, path, targetKey: "target", serviceNames: serviceNames)
        let zone = f["zone"] == nil ? 0 : (zoneIndex(f["zone"], f.path("zone"), zones: zones) ?? 0)
        let load: LoadSpec
        if f["users"] != nil {
            for key in ["rate", "schedule", "arrival"] where f[key] != nil {
                reader.fail(
                    .outOfRange,
                    f[key],
                    f.path(key),
                    "'\(key)' is for open-loop clients; a closed-loop client (users) has 'think_time'"
                )
            }
            load = .closed(
                users: reader.int(f["users"], f.path("users"), default: 1, range: 1...Self.maxUsers),
                thinkTime: reader.distribution(f["think_time"], f.path("think_time"), default: .constant(0))
            )
        } else {
            if f["think_time"] != nil {
                reader.fail(
                    .outOfRange,
                    f["think_time"],
                    f.path("think_time"),
                    "'think_time' is for closed-loop clients (set 'users')"
                )
            }
            let arrival =
                reader.choice(f["arrival"], f.path("arrival"), choices: ArrivalProcess.allCases.map(\.rawValue))
                .flatMap(ArrivalProcess.init) ?? .poisson
            var schedule: [RatePoint] = []
            if let rate = f["rate"] {
                schedule.append(
                    RatePoint(
                        at: .zero,
                        rate: reader.number(
                            rate,
                            f.path("rate"),
                            default: 0,
                            range: 0...Self.maxRate,
                            what: "requests per second"
                        )
                    )
                )
            }
            for (i, item) in reader.list(f["schedule"], f.path("schedule")).enumerated() {
                let sp = f.path("schedule") + "[\(i)]"
                guard let p = reader.fields(item, sp, known: ["at", "rate", "ramp"]) else { continue }
                if p["at"] == nil || p["rate"] == nil {
                    reader.fail(.missingField, item, sp, "a schedule point needs 'at' and 'rate'")
                }
                let point = RatePoint(
                    at: reader.duration(p["at"], sp + ".at", default: .zero),
                    rate: reader.number(
                        p["rate"],
                        sp + ".rate",
                        default: 0,
                        range: 0...Self.maxRate,
                        what: "requests per second"
                    ),
                    ramp: reader.bool(p["ramp"], sp + ".ramp", default: false)
                )
                if let last = schedule.last, point.at < last.at {
                    reader.fail(.outOfRange, p["at"], sp + ".at", "schedule points must be in time order")
                }
                schedule.append(point)
            }
            if schedule.isEmpty {
                reader.fail(
                    .missingField,
                    node,
                    f.path("rate"),
                    "a client needs 'rate' (open loop), 'schedule', or 'users' (closed loop)"
                )
            }
            load = .open(arrival: arrival, schedule: schedule)
        }
        guard let (target, routing) = routed else { return nil }
        var client = ClientSpec(name: name, zone: zone, target: target, load: load, policy: policy(f, path))
        client.routing = routing
        if let host = f["host"] { client.host = reader.string(host, f.path("host")) ?? client.host }
        if let pathsNode = f["paths"] {
            var paths: [(path: String, weight: Double)] = []
            for entry in reader.entries(pathsNode, f.path("paths")) {
                guard entry.key.hasPrefix("/") else {
                    reader.fail(
                        .outOfRange,
                        entry.value,
                        f.path("paths") + "." + entry.key,
                        "a path starts with '/'",
                        mark: entry.mark
                    )
                    continue
                }
                paths.append(
                    (
                        entry.key,
                        reader.number(
                            entry.value,
                            f.path("paths") + "." + entry.key,
                            default: 1,
                            range: 0...1e9,
                            what: "a weight"
                        )
                    )
                )
            }
            if paths.isEmpty || paths.allSatisfy({ $0.weight == 0 }) {
                reader.fail(
                    .outOfRange,
                    pathsNode,
                    f.path("paths"),
                    "expected a mapping of paths to weights, e.g. {\"/\": 0.8, \"/world\": 0.2}"
                )
            } else {
                client.paths = paths
            }
        }
        return client
    }

    // MARK: - Faults

    static let faultKinds = [
        "crash", "slowdown", "service_time", "errors", "latency", "partition", "zone_outage", "pause", "load_spike",
        "scale",
    ]
    static let faultKeys = [
        "at", "for", "kind", "service", "replica", "replicas", "factor", "dist", "rate", "zones", "zone", "delay",
        "every", "length", "client", "delta", "mode",
    ]

    mutating func fault(_ node: YAMLTree, _ path: String, spec: MeshSpec, clientNames: [String]) -> FaultSpec? {
        guard let f = reader.fields(node, path, known: Self.faultKeys) else { return nil }
        if f["at"] == nil { reader.fail(.missingField, node, path + ".at", "a fault needs 'at' (when it begins)") }
        if f["kind"] == nil {
            reader.fail(
                .missingField,
                node,
                path + ".kind",
                "a fault needs 'kind' (one of: \(Self.faultKinds.joined(separator: ", ")))"
            )
        }
        let at = reader.duration(f["at"], path + ".at", default: .zero)
        let length = f["for"].map {
            reader.duration(
                $0,
                path + ".for",
                default: .seconds(1),
                range: .nanoseconds(1)...SimDuration.year
            )
        }
        guard let kindName = reader.choice(f["kind"], path + ".kind", choices: Self.faultKinds) else { return nil }
        let allowed: Set<String>
        let kind: FaultKind?
        switch kindName {
        case "crash":
            allowed = ["service", "replica", "replicas"]
            kind = selection(f, path, spec).map { .crash($0) }
        case "slowdown":
            allowed = ["service", "replica", "replicas", "factor"]
            let factor = reader.number(
                f["factor"],
                path + ".factor",
                default: 1,
                range: 0.001...1_000_000,
                what: "a slowdown factor"
            )
            if f["factor"] == nil {
                reader.fail(
                    .missingField,
                    node,
                    path + ".factor",
                    "a slowdown needs 'factor' (e.g. 10 for ten times slower)"
                )
            }
            kind = selection(f, path, spec).map { .slowdown($0, factor: factor) }
        case "service_time":
            allowed = ["service", "replica", "replicas", "dist"]
            if f["dist"] == nil {
                reader.fail(
                    .missingField,
                    node,
                    path + ".dist",
                    "a service_time fault needs 'dist', the distribution to use instead"
                )
            }
            let distribution = reader.distribution(f["dist"], path + ".dist", default: .constant(0))
            kind = selection(f, path, spec).map { .serviceTime($0, distribution: distribution) }
        case "errors":
            allowed = ["service", "replica", "replicas", "rate"]
            if f["rate"] == nil {
                reader.fail(.missingField, node, path + ".rate", "an errors fault needs 'rate' (a probability)")
            }
            let rate = reader.probability(f["rate"], path + ".rate", default: 0)
            kind = selection(f, path, spec).map { .errors($0, rate: rate) }
        case "latency", "partition":
            allowed = kindName == "latency" ? ["zones", "delay"] : ["zones", "mode"]
            let pair = reader.list(f["zones"], path + ".zones")
            var indices: [Int] = []
            for (i, z) in pair.enumerated() {
                if let index = zoneIndex(z, path + ".zones[\(i)]", zones: spec.zones) { indices.append(index) }
            }
            if pair.count != 2 {
                reader.fail(
                    pair.isEmpty ? .missingField : .outOfRange,
                    f["zones"] ?? node,
                    path + ".zones",
                    "expected a pair of zones, e.g. zones: [a, b]"
                )
            }
            if kindName == "latency" {
                if f["delay"] == nil {
                    reader.fail(.missingField, node, path + ".delay", "a latency fault needs 'delay'")
                }
                let delay = reader.duration(f["delay"], path + ".delay", default: .zero)
                kind = indices.count == 2 ? .latency(a: indices[0], b: indices[1], delay: delay) : nil
            } else {
                if indices.count == 2 && indices[0] == indices[1] {
                    reader.fail(.outOfRange, f["zones"], path + ".zones", "a partition needs two different zones")
                }
                let mode = f["mode"].map { reader.choice($0, path + ".mode", choices: ["drop", "hold"]) } ?? "drop"
                kind = indices.count == 2 ? .partition(a: indices[0], b: indices[1], holds: mode == "hold") : nil
            }
        case "zone_outage":
            allowed = ["zone"]
            if f["zone"] == nil { reader.fail(.missingField, node, path + ".zone", "a zone outage needs 'zone'") }
            kind = zoneIndex(f["zone"], path + ".zone", zones: spec.zones).map { .zoneOutage(zone: $0) }
        case "pause":
            allowed = ["service", "replica", "replicas", "every", "length"]
            if f["every"] == nil || f["length"] == nil {
                reader.fail(
                    .missingField,
                    node,
                    path,
                    "a pause needs 'every' and 'length' (e.g. every: 10s, length: 200ms)"
                )
            }
            let every = reader.duration(
                f["every"],
                path + ".every",
                default: .seconds(1),
                range: .milliseconds(1)...SimDuration.seconds(3600 * 24)
            )
            let pauseLength = reader.duration(f["length"], path + ".length", default: .zero)
            if pauseLength >= every {
                reader.fail(
                    .outOfRange,
                    f["length"],
                    path + ".length",
                    "a pause must be shorter than its period 'every'"
                )
            }
            kind = selection(f, path, spec).map { .pause($0, every: every, length: pauseLength) }
        case "load_spike":
            allowed = ["client", "factor"]
            let factor = reader.number(
                f["factor"],
                path + ".factor",
                default: 1,
                range: 0...1000,
                what: "a rate multiplier"
            )
            if f["factor"] == nil { reader.fail(.missingField, node, path + ".factor", "a load spike needs 'factor'") }
            guard let clientName = reader.string(f["client"], path + ".client") else {
                if f["client"] == nil {
                    reader.fail(.missingField, node, path + ".client", "a load spike needs 'client'")
                }
                return nil
            }
            guard let c = clientNames.firstIndex(of: clientName), c < spec.clients.count else {
                reader.fail(
                    .danglingReference,
                    f["client"],
                    path + ".client",
                    "no client named '\(clientName)'",
                    suggestion: closestName(to: clientName, among: clientNames).map { "did you mean '\($0)'?" }
                )
                return nil
            }
            if case .closed = spec.clients[c].load {
                reader.fail(
                    .outOfRange,
                    f["client"],
                    path + ".client",
                    "a load spike applies to open-loop clients (with a rate)"
                )
            }
            kind = .loadSpike(client: c, factor: factor)
        default:  // scale
            allowed = ["service", "delta"]
            let delta = reader.int(f["delta"], path + ".delta", default: 0, range: -Self.maxReplicas...Self.maxReplicas)
            if f["delta"] == nil || delta == 0 {
                reader.fail(
                    .missingField,
                    f["delta"] ?? node,
                    path + ".delta",
                    "a scale fault needs a non-zero 'delta' (+2 adds spares, -1 removes a replica)"
                )
            }
            kind = selection(f, path, spec).map { .scale(service: $0.service, delta: delta) }
            if let s = kind, case .scale(let service, let d) = s, d > 0 {
                let spares = spec.services[service].replicas.filter { !$0.initiallyActive }.count
                if d > spares {
                    reader.fail(
                        .outOfRange,
                        f["delta"],
                        path + ".delta",
                        "service '\(spec.services[service].name)' has \(spares) spare replicas; adding \(d) needs 'spares: \(d)' on the service"
                    )
                }
            }
        }
        for key in f.values.keys.sorted() where !["at", "for", "kind"].contains(key) && !allowed.contains(key) {
            reader.fail(
                .unknownKey,
                f[key],
                path + "." + key,
                "a \(kindName) fault has no '\(key)' (it takes: \((["at", "for", "kind"] + allowed.sorted()).joined(separator: ", ")))"
            )
        }
        guard let kind else { return nil }
        return FaultSpec(at: at, duration: length, kind: kind)
    }

    mutating func selection(_ f: Fields, _ path: String, _ spec: MeshSpec) -> ReplicaSelection? {
        if f["service"] == nil {
            reader.fail(.missingField, f.node, path + ".service", "this fault needs the 'service' it affects")
            return nil
        }
        guard let s = serviceIndex(f["service"], path + ".service", names: spec.services.map(\.name)) else {
            return nil
        }
        let count = spec.services[s].replicas.count
        var chosen: [Int] = []
        if let one = f["replica"] {
            chosen.append(reader.int(one, path + ".replica", default: 0, range: 0...(count - 1)))
        }
        for (i, r) in reader.list(f["replicas"], path + ".replicas").enumerated() {
            chosen.append(reader.int(r, path + ".replicas[\(i)]", default: 0, range: 0...(count - 1)))
        }
        return ReplicaSelection(service: s, replicas: chosen)
    }
}
