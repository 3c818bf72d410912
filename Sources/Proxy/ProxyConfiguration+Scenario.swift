//===----------------------------------------------------------------------===//
// meshsim — Proxy
//===----------------------------------------------------------------------===//

public import Spec

extension ProxyConfiguration {
    /// The ports `meshsim serve --scenario` gives the replicas of `spec` from `base`: every service's replicas in
    /// the file's order, on consecutive ports (spares included), as `[service][replica]`.
    public static func servePorts(of spec: MeshSpec, base: Int) -> [[Int]] {
        var next = base
        return spec.services.map { service in
            service.replicas.map { _ in
                defer { next += 1 }
                return next
            }
        }
    }

    /// The proxy a scenario's client calls through: its call edge becomes the routes and clusters, with the same
    /// key names and defaults. A direct target is one cluster (named after the service) with the client's policy;
    /// a weighted split is one cluster per side with a weighted route; routes by host and path prefix keep their
    /// order (first match wins, no match is 404).
    ///
    /// Backends are the running replicas of each target service at the ports `meshsim serve --scenario` gives them
    /// from `backendPort` (see ``servePorts(of:base:)``); spares, which only a `scale` fault starts, are left out,
    /// as the simulator leaves them out of the callers' view.
    ///
    /// - Throws: ``ProxyError/invalid(_:)`` naming each key path the proxy cannot run yet
    ///   (`clients.NAME.retries`, …), or an empty target.
    public init(spec: MeshSpec, client c: Int, backendPort: Int, listen: ProxyAddress) throws {
        let client = spec.clients[c]
        let ports = Self.servePorts(of: spec, base: backendPort)
        var problems: [String] = []
        var clusters: [ProxyCluster] = []
        func cluster(service s: Int, policy: CallPolicy, name: String, path: String) -> Int {
            let service = spec.services[s]
            let running = service.replicas.indices.filter { service.replicas[$0].initiallyActive }
            if running.isEmpty { problems.append("\(path): \(service.name) has no running replica to proxy to") }
            for key in Self.unsupported(policy) {
                problems.append("\(path).\(key): meshsim proxy does not run it yet")
            }
            var cluster = ProxyCluster(
                name: name,
                backends: running.map { ProxyAddress(host: "127.0.0.1", port: ports[s][$0]) },
                weights: running.map { Int32(clamping: service.replicas[$0].weight) },
                policy: policy
            )
            // With mutual TLS the backends must present the service's identity.
            cluster.service = service.name
            // Zone-aware routing sees the scenario's zones: the backends', the client's own, and the clients per
            // zone as the originating cluster (as a simulated client edge does).
            cluster.zones = running.map { service.replicas[$0].zone }
            cluster.localZone = client.zone
            cluster.callersByZone = Array(repeating: 0, count: spec.zones.count)
            for other in spec.clients { cluster.callersByZone[other.zone] += 1 }
            clusters.append(cluster)
            return clusters.count - 1
        }
        let path = "clients.\(client.name)"
        var routes: [ProxyRoute] = []
        switch client.routing {
        case .direct:
            let index = cluster(
                service: client.target,
                policy: client.policy,
                name: spec.services[client.target].name,
                path: path
            )
            routes = [ProxyRoute(targets: [(cluster: index, weight: 1)])]
        case .split(let sides):
            var targets: [(cluster: Int, weight: Double)] = []
            for (i, side) in sides.enumerated() {
                let name = "split\(i)-\(spec.services[side.target].name)"
                targets.append(
                    (
                        cluster(service: side.target, policy: side.policy, name: name, path: path + ".split[\(i)]"),
                        side.weight
                    )
                )
            }
            routes = [ProxyRoute(targets: targets)]
        case .routes(let list):
            for (i, route) in list.enumerated() {
                let name = "route\(i)-\(spec.services[route.target].name)"
                let index = cluster(
                    service: route.target,
                    policy: route.policy,
                    name: name,
                    path: path + ".routes[\(i)]"
                )
                routes.append(
                    ProxyRoute(host: route.host, pathPrefix: route.pathPrefix, targets: [(cluster: index, weight: 1)])
                )
            }
        }
        guard problems.isEmpty else { throw ProxyError.invalid(problems.joined(separator: "; ")) }
        self.init(listen: listen, clusters: clusters, routes: routes)
    }
}
