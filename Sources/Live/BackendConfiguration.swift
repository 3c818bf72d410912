//===----------------------------------------------------------------------===//
// meshsim — Live
//===----------------------------------------------------------------------===//

public import MeshTLS
public import NIOSSL
public import SharedModel
public import SimRandom
public import Spec

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One emulated replica: an HTTP/1.1 server on its own port that behaves like a simulated replica.
public struct BackendReplica: Sendable {
    /// The service it belongs to (for logs and errors).
    public var service: String
    /// Its index within the service.
    public var index: Int
    /// The TCP port on the backend host.
    public var port: Int
    /// Requests served at once; the rest wait in the queue.
    public var workers: Int
    /// Requests that may wait for a worker; one more is answered 503 at once.
    public var queueCapacity: Int
    /// Service time per request, drawn from the simulator's distributions and waited with a timer.
    public var serviceTime: Distribution
    /// Probability that a request is answered 500 after its service time (drawn when the work ends, as the
    /// simulator does).
    public var errorRate: Double
    /// Speed factor: service times are divided by it.
    public var speed: Double
    /// Whether it listens from the start (a spare does not).
    public var initiallyActive: Bool
    /// Its static weight, for the proxies' weighted balancers.
    public var weight = 1
    /// The service's index in the scenario (what a fault's selection names).
    public var serviceIndex = 0
    /// Its zone's index in the scenario (what a zone outage names).
    public var zone = 0
    /// An adaptive concurrency limit on the replica, if its service has one.
    public var concurrencyLimit: ConcurrencyLimitSpec?

    /// Where it sits in the scenario, for matching faults.
    public var address: ReplicaAddress { ReplicaAddress(service: serviceIndex, replica: index, zone: zone) }

    /// The service as the replica state machine reads it.
    var serviceSpec: ServiceSpec {
        var spec = ServiceSpec(name: service, replicas: [], workers: workers, serviceTime: serviceTime)
        spec.queueCapacity = queueCapacity
        spec.errorRate = errorRate
        spec.concurrencyLimit = concurrencyLimit
        return spec
    }

    /// The replica as the replica state machine reads it.
    var replicaSpec: ReplicaSpec {
        ReplicaSpec(zone: zone, weight: weight, speed: speed, initiallyActive: initiallyActive)
    }

    /// Creates a replica description.
    public init(
        service: String,
        index: Int,
        port: Int,
        workers: Int = 1,
        queueCapacity: Int = 1024,
        serviceTime: Distribution,
        errorRate: Double = 0,
        speed: Double = 1,
        initiallyActive: Bool = true
    ) {
        self.service = service
        self.index = index
        self.port = port
        self.workers = workers
        self.queueCapacity = queueCapacity
        self.serviceTime = serviceTime
        self.errorRate = errorRate
        self.speed = speed
        self.initiallyActive = initiallyActive
    }
}

/// The emulated backends to run.
public struct BackendConfiguration: Sendable {
    /// The address to listen on (loopback).
    public var host = "127.0.0.1"
    /// The replicas, each on its own port.
    public var replicas: [BackendReplica]
    /// The path of the health endpoint (answered 200 at once, outside the workers and queue).
    public var healthPath = "/health"
    /// The most bytes a request head may take; a longer one is answered 431 and the connection closed.
    public var maxHeadBytes = 8 * 1024
    /// After this many requests on one connection the answer says `Connection: close` and the connection is closed,
    /// as nginx does after `keepalive_requests` (1,000 by default); 0 keeps connections open.
    public var maxRequestsPerConnection = 0
    /// How long a request head may take to arrive, in ns: from its first byte, or from the accept for a connection's
    /// first request. The whole head must arrive in time (the timer does not restart per byte), as nginx's
    /// `client_header_timeout` (60 s). Then a partial head is answered 408 and the connection closed; a connection
    /// that sent nothing is closed silently.
    public var headerTimeout: Int64 = 60_000_000_000
    /// The longest pause between two reads of a request body, in ns, as nginx's `client_body_timeout` (60 s); then
    /// 408 and close.
    public var bodyTimeout: Int64 = 60_000_000_000
    /// How long a keep-alive connection may stay idle between requests, in ns, as nginx's `keepalive_timeout` (75 s);
    /// then it is closed silently.
    public var idleTimeout: Int64 = 75_000_000_000
    /// The most connections one replica holds open; at the cap it stops accepting (the kernel's listen queue holds
    /// the next ones) until one closes. `nil`: ``defaultMaxConnections(replicas:reserve:)`` at start.
    public var maxConnectionsPerReplica: Int?
    /// Seed of the service-time and error random streams (two per replica, keyed as the simulator keys them).
    public var seed: UInt64 = 1
    /// The fault timeline, in the scenario's terms: each replica takes the faults that select it (by service index,
    /// replica index or zone), in wall time from the start. Faults that do not act on replicas are ignored here.
    public var faults: [FaultSpec] = []

    /// Mutual TLS and authorization on the replicas' side of the mesh, if the scenario turns them on.
    public var security: BackendSecurity?

    /// Creates a configuration.
    public init(replicas: [BackendReplica]) {
        self.replicas = replicas
    }
}

/// The replicas' side of the mesh's security: each serves mutual TLS with its service's identity and enforces the
/// authorization rules against the caller's identity.
public struct BackendSecurity: Sendable {
    /// The server TLS context of each service (requiring a client certificate of the mesh).
    public let contexts: [String: NIOSSLContext]
    /// The rules enforced, if any (a denied request is answered 403 before any work).
    public let authorization: AuthorizationPolicy?
    /// The credentials the contexts were made from.
    public let credentials: MeshCredentials

    /// Makes the server contexts of `services` from `credentials`.
    ///
    /// - Throws: ``MeshTLS/MeshTLSError`` when a service has no credential, or a TLS error.
    public init(credentials: MeshCredentials, services: [String], authorization: AuthorizationPolicy?) throws {
        var contexts: [String: NIOSSLContext] = [:]
        for service in services where contexts[service] == nil {
            contexts[service] = try credentials.serverContext(for: service)
        }
        self.contexts = contexts
        self.authorization = authorization
        self.credentials = credentials
    }
}

extension BackendConfiguration {
    /// File descriptors kept out of the connection cap by default: listeners, event-loop descriptors, logs, the
    /// standard streams, a proxy's pipes.
    public static let fileReserve = 256

    /// The soft limit on open files of this process (`RLIMIT_NOFILE`), or `nil` when it cannot be read or is
    /// unlimited.
    public static func openFileLimit() -> Int? {
        var limit = rlimit()
        guard getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max
        else { return nil }
        return Int(clamping: limit.rlim_cur)
    }

    /// The default per-replica connection cap: the open-file limit less `reserve` (at most a quarter of a small
    /// limit), shared by `replicas` (at least 1; 65,536 when the limit is unknown).
    public static func defaultMaxConnections(replicas: Int, reserve: Int = fileReserve) -> Int {
        guard let limit = openFileLimit() else { return 65_536 }
        return max(1, (limit - min(reserve, limit / 4)) / max(replicas, 1))
    }
}
