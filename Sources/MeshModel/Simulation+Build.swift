//===----------------------------------------------------------------------===//
// meshsim — MeshModel
//===----------------------------------------------------------------------===//

import Balancers
import Breakers
import DequeModule
import Health
import Limiters
import Reports
import Retries
import SharedModel
import SimCore
import SimKernel
import SimRandom
import Spec

extension Simulation {
    /// Creates the runtime state and every random stream, keyed by stable component names.
    mutating func build() {
        for (s, service) in spec.services.enumerated() {
            serviceFirstReplica.append(replicas.count)
            var view: [EndpointState] = []
            var zoneCounts = Array(repeating: 0, count: spec.zones.count)
            for (i, replica) in service.replicas.enumerated() {
                let keys = ReplicaStateMachine.streamKeys(service: service.name, index: i)
                replicas.append(
                    ReplicaState(
                        service: Int32(s),
                        localIndex: Int32(i),
                        zone: Int32(replica.zone),
                        stageCount: Int32(service.calls.count),
                        machine: ReplicaStateMachine(
                            service: service,
                            replica: replica,
                            serviceStream: stream(keys.serviceTime),
                            errorStream: stream(keys.errors)
                        )
                    )
                )
                if replica.initiallyActive {
                    capacityTotal += service.workers
                    view.append(EndpointState(index: Int32(i), weight: Int32(clamping: replica.weight)))
                    zoneCounts[replica.zone] += 1
                }
            }
            views.append(view)
            viewZoneCounts.append(zoneCounts)
        }
        edgesByTarget = Array(repeating: [], count: spec.services.count)
        for client in spec.clients {
            for (path, _) in client.paths where !pathNames.contains(path) { pathNames.append(path) }
            if !hostNames.contains(client.host) { hostNames.append(client.host) }
        }
        if pathNames.isEmpty { pathNames = ["/"] }
        if hostNames.isEmpty { hostNames = ["default"] }
        for (s, service) in spec.services.enumerated() {
            var sites: [CallSite] = []
            let caller = Caller(service: Int32(s), zone: Int32(service.replicas.first?.zone ?? 0), name: service.name)
            for (k, call) in service.calls.enumerated() {
                sites.append(
                    addSite(
                        target: call.target,
                        policy: call.policy,
                        routing: call.routing,
                        key: "edge/\(service.name)/\(k)",
                        caller: caller
                    )
                )
            }
            callSites.append(sites)
        }
        for client in spec.clients {
            clientSites.append(
                addSite(
                    target: client.target,
                    policy: client.policy,
                    routing: client.routing,
                    key: "edge/client/\(client.name)",
                    caller: Caller(service: -1, zone: Int32(client.zone), name: client.name)
                )
            )
            let key = "client/\(client.name)"
            let arrivalKeys = ArrivalGenerator.streamKeys(client: client.name)
            var state = ClientState(
                generator: ArrivalSchedule(client: clients.count, of: spec).map {
                    ArrivalGenerator(
                        schedule: $0,
                        end: durationNs,
                        arrivals: stream(arrivalKeys.arrivals),
                        thinning: stream(arrivalKeys.thinning)
                    )
                },
                think: stream(key + "/think"),
                zone: Int32(client.zone)
            )
            state.hostIndex = Int16(hostNames.firstIndex(of: client.host)!)
            state.pathIndices = client.paths.map { Int16(pathNames.firstIndex(of: $0.path)!) }
            if client.paths.count > 1 {
                let total = client.paths.reduce(0) { $0 + $1.weight }
                var sum = 0.0
                state.pathCumulative = client.paths.map {
                    sum += $0.weight / total; return sum
                }
                state.paths = stream(key + "/paths")
            }
            clients.append(state)
        }
        if !edgeDenied.contains(where: { $0.contains(true) }) { edgeDenied = [] }
        if let security = spec.security, security.mtls {
            self.security = SecurityState(
                spec: security,
                stream: stream("security/tls"),
                replicasPerEdge: edges.map { spec.services[Int($0.target)].replicas.count }
            )
        }
        linkIndex = Array(repeating: -1, count: spec.zones.count * spec.zones.count)
        faultActive = Array(repeating: false, count: spec.faults.count)
        scaleChanges = Array(repeating: [], count: spec.faults.count)
    }

    /// Who makes the calls of a site: a service (its replicas are the originating cluster of zone-aware routing),
    /// or a client (-1); and the zone its health checks are sent from.
    struct Caller {
        var service: Int32
        var zone: Int32
        /// The caller's name: its identity for authorization.
        var name: String
    }

    /// Builds a call site: one edge, or an edge per split side or route (each with its own balancer and policies).
    private mutating func addSite(
        target: Int,
        policy: CallPolicy,
        routing: Routing,
        key: String,
        caller: Caller
    ) -> CallSite {
        var site = CallSite()
        switch routing {
        case .direct:
            site.direct = addEdge(target: target, policy: policy, key: key, caller: caller)
        case .split(let sides):
            let total = sides.reduce(0) { $0 + $1.weight }
            var sum = 0.0
            for (i, side) in sides.enumerated() {
                site.splitEdges.append(
                    addEdge(target: side.target, policy: side.policy, key: key + "/split/\(i)", caller: caller)
                )
                sum += side.weight / total
                site.cumulative.append(sum)
            }
            site.rng = stream(key + "/split")
        case .routes(let routes):
            let edges = routes.enumerated().map {
                addEdge(target: $1.target, policy: $1.policy, key: key + "/route/\($0)", caller: caller)
            }
            for path in pathNames {
                for host in hostNames {
                    let match = routes.firstIndex {
                        ($0.pathPrefix.map { path.hasPrefix($0) } ?? true) && ($0.host.map { $0 == host } ?? true)
                    }
                    site.routeTable.append(match.map { edges[$0] } ?? -1)
                }
            }
        }
        return site
    }

    private mutating func addEdge(target: Int, policy: CallPolicy, key: String, caller: Caller) -> Int32 {
        var edge = CallEdge(
            target: target,
            policy: policy,
            replicaZones: spec.services[target].replicas.map(\.zone),
            zoneCount: spec.zones.count,
            stream: { stream($0) },
            key: key
        )
        edge.checkZone = caller.zone
        if edge.zoneAware != nil {
            edge.originService = caller.service
            if caller.service < 0 {
                edge.originByZone = Array(repeating: 0, count: spec.zones.count)
                for client in spec.clients { edge.originByZone[client.zone] += 1 }
            }
        }
        edge.setView(views[target], at: .zero)
        if let security = spec.security, let authorization = security.authorization {
            let identity = security.mtls ? caller.name : nil
            let service = spec.services[target].name
            edgeDenied.append(pathNames.map { !authorization.allows(caller: identity, service: service, path: $0) })
        }
        edges.append(edge)
        // Every timeout of the edge is its per-try timeout from when it is set: they come due in the order set,
        // so they wait in one FIFO lane of the event queue rather than in its heap.
        timeoutLanes.append(
            edge.timeoutNs > 0 ? Int32(queue.lane(forDelay: SimDuration(nanoseconds: edge.timeoutNs))) : -1
        )
        edgesByTarget[target].append(Int32(edges.count - 1))
        return Int32(edges.count - 1)
    }

    /// Schedules the first arrivals and the fault timeline.
    mutating func start() {
        for (c, client) in spec.clients.enumerated() {
            switch client.load {
            case .open:
                if let first = nextArrival(client: c) {
                    schedule(.arrival(client: Int32(c), user: -1), at: first)
                }
            case .closed(let users, let think):
                for u in 0..<users {
                    let t = think.sample(using: clients[c].think)
                    if t < durationNs { schedule(.arrival(client: Int32(c), user: Int32(u)), at: t) }
                }
            }
        }
        for (i, fault) in spec.faults.enumerated() {
            schedule(.faultStart(index: Int32(i)), at: fault.at.nanoseconds)
        }
        for e in edges.indices {
            if let interval = edges[e].policy.outlierDetection?.interval {
                schedule(.outlierSweep(edge: Int32(e)), at: interval.nanoseconds)
            }
            scheduleFirstHealthChecks(edge: e)
        }
    }
}
