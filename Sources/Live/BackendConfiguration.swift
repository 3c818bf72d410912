//===----------------------------------------------------------------------===//
// meshsim — Live
//===----------------------------------------------------------------------===//

public import SimRandom

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
    /// Probability that a request is answered 500 after its service time.
    public var errorRate: Double
    /// Speed factor: service times are divided by it.
    public var speed: Double
    /// Whether it listens from the start (a spare does not).
    public var initiallyActive: Bool
    /// Its static weight, for the proxies' weighted balancers.
    public var weight = 1

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

/// A fault applied to some replicas in wall time, from `at` after the servers start, for `duration`.
public struct LiveFault: Sendable {
    /// What the fault does.
    public enum Kind: Sendable {
        /// Stop accepting connections (refused) and reset the open ones; listen again when it ends.
        case crash
        /// Multiply service times by `factor`.
        case slowdown(factor: Double)
        /// Draw service times from `distribution` instead.
        case serviceTime(Distribution)
        /// Answer 500 with probability `rate` (or the replica's own error rate if higher).
        case errors(rate: Double)
        /// Stop the world for `length` every `every`: nothing completes during a pause.
        case pause(every: Int64, length: Int64)
    }

    /// Nanoseconds after the start.
    public var at: Int64
    /// How long it lasts in nanoseconds (`nil`: to the end).
    public var duration: Int64?
    /// Indices into ``BackendConfiguration/replicas``.
    public var replicas: [Int]
    /// What it does.
    public var kind: Kind

    /// Creates a fault.
    public init(at: Int64, duration: Int64?, replicas: [Int], kind: Kind) {
        self.at = at
        self.duration = duration
        self.replicas = replicas
        self.kind = kind
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
    /// Seed of the service-time and error random streams (one stream per replica).
    public var seed: UInt64 = 1
    /// Faults in wall time.
    public var faults: [LiveFault] = []

    /// Creates a configuration.
    public init(replicas: [BackendReplica]) {
        self.replicas = replicas
    }
}
